package manager

import (
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/skiff-dev/skiff/controllers/batch"
)

func init() { Register("batch", setupBatch) }

func setupBatch(mgr ctrl.Manager, opts Options) error {
	if err := batch.NewCronJobReconciler(mgr.GetClient(), clock.RealClock{}, mgr.GetEventRecorder("cronjob-controller")).SetupWithManager(mgr); err != nil {
		return err
	}
	if opts.Webhooks {
		return batch.CronJobValidator{}.SetupWebhookWithManager(mgr)
	}
	return nil
}
