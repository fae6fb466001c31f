package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/convert"
)

func newConvertCommand() *cobra.Command {
	var file string
	var toUpstream bool
	cmd := &cobra.Command{
		Use:   "convert -f FILE",
		Short: "Rewrite the apiVersions of upstream manifests to skiff's, or back with --to-upstream",
		Long: `convert changes apiVersion, and nothing else, of every Pod, Node, Service,
EndpointSlice, PersistentVolume, PersistentVolumeClaim, ReplicaSet, Deployment,
StatefulSet, DaemonSet, Job, CronJob and StorageClass in a YAML stream.
Other kinds pass unchanged. Use "-f -" to read standard input.`,
		Example: `  skiff convert -f deployment.yaml | kubectl apply -f -
  skiff convert --to-upstream -f skiff-manifests.yaml > upstream.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var in []byte
			var err error
			if file == "-" {
				in, err = io.ReadAll(cmd.InOrStdin())
			} else {
				in, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			dir := convert.ToSkiff
			if toUpstream {
				dir = convert.ToUpstream
			}
			docs, err := convert.Manifests(in, dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for i, doc := range docs {
				if i > 0 {
					fmt.Fprintln(out, "---")
				}
				if _, err := out.Write(doc); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", `manifest file to convert ("-" for standard input)`)
	cmd.Flags().BoolVar(&toUpstream, "to-upstream", false, "convert skiff apiVersions back to upstream ones")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}
