package manager

import (
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/skiff-dev/skiff/controllers/scheduler"
)

func init() {
	Register("scheduler", func(mgr ctrl.Manager, _ Options) error {
		return scheduler.New(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetCache(),
			mgr.GetEventRecorder(scheduler.Name), clock.RealClock{}).SetupWithManager(mgr)
	})
}
