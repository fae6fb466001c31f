package manager

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/skiff-dev/skiff/controllers/apps"
)

func init() {
	Register("apps", setupApps)
}

// setupApps registers the workload controllers of apps.skiff.dev.
func setupApps(mgr ctrl.Manager, _ Options) error {
	return apps.SetupWithManager(context.Background(), mgr)
}
