package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/skiff-dev/skiff/controllers/nodeaccess"
)

func init() {
	// Each node identity reads exactly the Secrets and ConfigMaps of its pods.
	Register("nodeaccess", func(mgr ctrl.Manager, _ Options) error {
		return nodeaccess.NewReconciler(mgr.GetClient()).SetupWithManager(mgr)
	})
}
