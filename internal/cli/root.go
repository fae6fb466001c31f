// Package cli implements the commands of the skiff binary (also run as
// the kubectl plugin kubectl-skiff). Each command lives in its own file;
// cmd/skiff only calls NewRootCommand.
package cli

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// NewRootCommand returns the skiff command with all its subcommands.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "skiff runs Kubernetes workloads with controllers built as an operator pack",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	if strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl-") {
		// Run by kubectl as a plugin: usage lines read "kubectl skiff ...".
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl skiff"}
	}
	root.AddCommand(
		newUpCommand(), newDownCommand(), newImageCommand(),
		newLogsCommand(), newExecCommand(),
		newRolloutCommand(), newGetCommand(), newCordonCommand(true), newCordonCommand(false), newDrainCommand(),
		newConvertCommand(), newNodeCommand(), newVersionCommand(),
	)
	return root
}
