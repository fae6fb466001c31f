// Command skiff is the workstation tool of skiff, also installed as the
// kubectl plugin kubectl-skiff: `skiff up`/`down` run a local single-node
// cluster, `skiff image` puts images into its node, and rollout, logs,
// exec, get nodes, cordon, uncordon, drain and convert work on skiff's
// objects as kubectl's commands do on upstream ones.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/skiff-dev/skiff/internal/cli"
)

func main() {
	if err := cli.NewRootCommand().Execute(); err != nil {
		// `skiff exec` ends with the exit code of the command it ran.
		var exit interface{ ExitStatus() int }
		if errors.As(err, &exit) {
			fmt.Fprintf(os.Stderr, "command terminated with exit code %d\n", exit.ExitStatus())
			os.Exit(exit.ExitStatus())
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
