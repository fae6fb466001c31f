package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/manager"
)

type upOptions struct {
	dataDir   string
	assetsDir string
	verbose   bool
}

func newUpCommand() *cobra.Command {
	o := upOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a local skiff cluster in the foreground; Ctrl-C stops it",
		Long: `up starts etcd, kube-apiserver and kube-controller-manager (garbage collector and
namespace controllers) from the binaries of hack/envtest.sh, installs skiff's CRDs,
and runs skiff-controller-manager against them. The objects are kept in the data
directory, so running up again brings them back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runUp(ctx, cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().StringVar(&o.dataDir, "data-dir", defaultDataDir(), "directory that keeps the cluster's state and kubeconfig")
	cmd.Flags().StringVar(&o.assetsDir, "assets-dir", "", "directory of the control-plane binaries (default: $KUBEBUILDER_ASSETS or the hack/envtest.sh cache)")
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "show the logs of the control plane and the controllers")
	return cmd
}

func defaultDataDir() string {
	if dir := os.Getenv("SKIFF_DATA_DIR"); dir != "" {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".skiff"
	}
	return filepath.Join(home, ".local", "share", "skiff")
}

func runUp(ctx context.Context, out io.Writer, o upOptions) error {
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Fprintf(out, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	var logs io.Writer
	if o.verbose {
		logs = os.Stderr
		ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	} else {
		ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	}

	step("Starting etcd, kube-apiserver and kube-controller-manager (data in %s)", dataDir)
	cp, err := controlplane.Start(ctx, controlplane.Options{
		AssetsDir:   o.assetsDir,
		WorkDir:     dataDir,
		EtcdDataDir: filepath.Join(dataDir, "etcd"),
		Output:      logs,
		Webhooks:    true,
	})
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping the control plane")
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(out, "warning:", err)
		}
	}()
	kubeconfig := filepath.Join(dataDir, "kubeconfig")
	raw, err := os.ReadFile(cp.KubeconfigPath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(kubeconfig, raw, 0o600); err != nil {
		return err
	}
	step("API server ready at %s; skiff CRDs installed", cp.Config.Host)

	wh := cp.WebhookServer()
	mgr, err := manager.New(cp.Config, manager.Options{
		MetricsAddr: "0", ProbeAddr: "0",
		Webhooks: true, WebhookHost: wh.Host, WebhookPort: wh.Port, WebhookCertDir: wh.CertDir,
	})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- mgr.Start(ctx) }()
	step("skiff-controller-manager running")

	fmt.Fprintf(out, `
skiff is up. In another terminal:

  export KUBECONFIG=%s
  kubectl get crds | grep skiff.dev
  kubectl apply -f config/samples/
  kubectl get skiff

Press Ctrl-C to stop; the objects stay in %s for the next 'skiff up'.
`, kubeconfig, dataDir)

	select {
	case <-ctx.Done():
		<-errc
		return nil
	case err := <-errc:
		return err
	}
}
