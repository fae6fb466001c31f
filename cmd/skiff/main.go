// Command skiff is the workstation tool of skiff, also installed as the
// kubectl plugin kubectl-skiff: `skiff up` starts a local cluster and
// `skiff convert` moves manifests between upstream and skiff apiVersions.
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
