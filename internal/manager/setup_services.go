package manager

import (
	"cmp"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/skiff-dev/skiff/controllers/service"
)

func init() { Register("services", setupServices) }

func setupServices(mgr ctrl.Manager, opts Options) error {
	rng, err := service.ParseRange(cmp.Or(opts.ServiceCIDR, "10.112.0.0/16"), cmp.Or(opts.NodePortRange, "30000-32767"))
	if err != nil {
		return err
	}
	alloc := service.NewAllocator(mgr.GetClient(), mgr.GetClient(), rng)
	if err := service.NewServiceReconciler(mgr.GetClient(), alloc, mgr.GetEventRecorder("service-controller")).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := service.NewEndpointSliceReconciler(mgr.GetClient()).SetupWithManager(mgr); err != nil {
		return err
	}
	return mgr.Add(&service.Repair{Client: mgr.GetClient(), Alloc: alloc, Interval: 5 * time.Minute})
}
