package manager

import (
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/controllers/scheduler"
)

func init() {
	Register("scheduler", func(mgr ctrl.Manager, opts Options) error {
		// Pod conditions get a client, and so a rate limiter, of their own.
		status, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
		if err != nil {
			return err
		}
		return scheduler.New(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetCache(),
			mgr.GetEventRecorder(scheduler.Name), clock.RealClock{}).WithStatusClient(status).
			WithParallelism(opts.SchedulerParallelism).SetupWithManager(mgr)
	})
}
