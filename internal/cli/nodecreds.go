package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/nodeid"
)

func newNodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Manage node identities",
	}
	cmd.AddCommand(newNodeCredentialsCommand())
	return cmd
}

func newNodeCredentialsCommand() *cobra.Command {
	k := &kubeFlags{}
	var out string
	var expiration, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "credentials NODE",
		Short: "Issue a node identity's client certificate and write a kubeconfig for skiff-agent --kubeconfig",
		Long: `Issue the credentials of node NODE: a new private key and a client certificate
for user system:skiff-node:NODE in group system:skiff-nodes, signed by the
cluster's kubernetes.io/kube-apiserver-client signer through a
CertificateSigningRequest that this command creates and approves (your
kubeconfig's user must be allowed to). An agent running with them may write only
its own Node and Lease and the status of the pods bound to it, and read only the
Secrets and ConfigMaps those pods use.`,
		Example: `  skiff node credentials worker-1 --out /etc/skiff/worker-1.kubeconfig
  skiff-agent --node-name worker-1 --kubeconfig /etc/skiff/worker-1.kubeconfig ...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := k.clientConfig().ClientConfig()
			if err != nil {
				return fmt.Errorf("loading kubeconfig: %w", err)
			}
			raw, err := issueNodeKubeconfig(cmd.Context(), cfg, args[0], nodeid.Options{Expiration: expiration, Timeout: timeout})
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(raw)
				return err
			}
			if err := os.WriteFile(out, raw, 0o600); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.ErrOrStderr(), "Wrote the kubeconfig of %s to %s\n", nodeid.UserName(args[0]), out)
			return err
		},
	}
	k.add(cmd, false)
	cmd.Flags().StringVarP(&out, "out", "o", "", "file to write the kubeconfig to, mode 0600 (default: standard output)")
	cmd.Flags().DurationVar(&expiration, "expiration", 0, "how long the certificate is valid (default: the signer's, a year for kube-controller-manager)")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for the signed certificate")
	return cmd
}
