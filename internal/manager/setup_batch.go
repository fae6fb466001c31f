package manager

import (
	"context"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/skiff-dev/skiff/controllers/batch"
)

func init() { Register("batch", setupBatch) }

func setupBatch(mgr ctrl.Manager, opts Options) error {
	ctx := context.Background()
	var clk clock.PassiveClock = clock.RealClock{}
	if opts.JobClock != nil {
		clk = opts.JobClock
	}
	if err := batch.NewJobReconciler(mgr.GetClient(), clk, mgr.GetEventRecorder("job-controller")).SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	if err := batch.NewCronJobReconciler(mgr.GetClient(), mgr.GetAPIReader(), clk, mgr.GetEventRecorder("cronjob-controller")).SetupWithManager(mgr); err != nil {
		return err
	}
	if opts.Webhooks {
		if err := (batch.JobDefaulter{}).SetupWebhookWithManager(mgr); err != nil {
			return err
		}
		return batch.CronJobValidator{}.SetupWebhookWithManager(mgr)
	}
	return nil
}
