package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/skiff-dev/skiff/controllers/policy"
)

func init() {
	Register("policy", func(mgr ctrl.Manager, _ Options) error {
		return policy.NewDisruptionReconciler(mgr.GetClient(), mgr.GetEventRecorder("disruption-controller"), nil).SetupWithManager(mgr)
	})
}
