package manager

import (
	"context"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/skiff-dev/skiff/controllers/volume"
)

func init() {
	Register("volumes", func(mgr ctrl.Manager, opts Options) error {
		if err := volume.IndexPodClaims(context.Background(), mgr); err != nil {
			return err
		}
		rec := mgr.GetEventRecorder("persistentvolume-controller")
		if err := volume.NewClaimReconciler(mgr.GetClient(), mgr.GetAPIReader(), rec).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := volume.NewVolumeReconciler(mgr.GetClient(), mgr.GetAPIReader(), rec, clock.RealClock{}).SetupWithManager(mgr); err != nil {
			return err
		}
		if opts.Webhooks {
			return volume.ClaimValidator{Reader: mgr.GetAPIReader()}.SetupWebhookWithManager(mgr)
		}
		return nil
	})
}
