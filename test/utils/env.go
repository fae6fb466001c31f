package utils

import (
	"context"
	"io"
	"os"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// Verbose tells whether SKIFF_TEST_VERBOSE asks for the logs of the
// controllers and of the control-plane processes.
func Verbose() bool { return os.Getenv("SKIFF_TEST_VERBOSE") != "" }

// SetLogger sends controller-runtime's logs to w when Verbose, and
// discards them otherwise (a quiet suite prints only its failures).
func SetLogger(w io.Writer) {
	if Verbose() {
		ctrl.SetLogger(zap.New(zap.WriteTo(w), zap.UseDevMode(true)))
		return
	}
	ctrl.SetLogger(logr.Discard())
}

// StartControlPlane starts etcd, kube-apiserver with skiff's CRDs and
// kube-controller-manager's garbage collector (see internal/controlplane),
// with their output on w when Verbose, and returns it with an uncached
// client that can watch. The caller stops it with Stop.
func StartControlPlane(ctx context.Context, opts controlplane.Options, w io.Writer) (*controlplane.ControlPlane, client.WithWatch, error) {
	if Verbose() && opts.Output == nil {
		opts.Output = w
	}
	cp, err := controlplane.Start(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	c, err := client.NewWithWatch(cp.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		_ = cp.Stop()
		return nil, nil, err
	}
	return cp, c, nil
}
