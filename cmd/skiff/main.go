// Command skiff is the workstation tool of skiff, also installed as the
// kubectl plugin kubectl-skiff: `skiff up` starts a local cluster and
// `skiff convert` moves manifests between upstream and skiff apiVersions.
package main

import (
	"fmt"
	"os"

	"github.com/skiff-dev/skiff/internal/cli"
)

func main() {
	if err := cli.NewRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
