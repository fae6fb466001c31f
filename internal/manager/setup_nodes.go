package manager

import (
	"k8s.io/client-go/discovery"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/skiff-dev/skiff/controllers/core"
)

func init() {
	Register("nodes", func(mgr ctrl.Manager, opts Options) error {
		clusterCIDR, maskSize := opts.ClusterCIDR, opts.NodeCIDRMaskSize
		if clusterCIDR == "" {
			clusterCIDR = core.DefaultClusterCIDR
		}
		if maskSize == 0 {
			maskSize = core.DefaultNodeCIDRMaskSize
		}
		alloc, err := core.NewCIDRAllocator(clusterCIDR, maskSize)
		if err != nil {
			return err
		}
		if err := core.NewNodeIPAMReconciler(mgr.GetClient(), mgr.GetEventRecorder("node-ipam-controller"), alloc).SetupWithManager(mgr); err != nil {
			return err
		}
		tolerations := core.UpstreamDefaultTolerations
		if opts.DefaultNotReadyTolerationSeconds != nil {
			tolerations.NotReady = *opts.DefaultNotReadyTolerationSeconds
		}
		if opts.DefaultUnreachableTolerationSeconds != nil {
			tolerations.Unreachable = *opts.DefaultUnreachableTolerationSeconds
		}
		disruption := opts.NodeDisruption
		if disruption == (core.DisruptionOptions{}) {
			disruption = core.UpstreamDisruptionOptions
		}
		if err := core.NewNodeLifecycleReconciler(mgr.GetClient(), mgr.GetEventRecorder("node-lifecycle-controller"),
			clock.RealClock{}, opts.NodeMonitorGracePeriod, nil).WithDefaultTolerations(tolerations).WithDisruption(disruption).
			WithAPIReader(mgr.GetAPIReader()).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := core.NewPodGCReconciler(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetEventRecorder("pod-garbage-collector"), clock.RealClock{},
			core.PodGCOptions{TerminatingDelay: opts.TerminatingPodGCDelay, OrphanQuarantine: opts.OrphanPodGCQuarantine}).SetupWithManager(mgr); err != nil {
			return err
		}
		dc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
		if err != nil {
			return err
		}
		return mgr.Add(core.NewTolerationPolicyInstaller(mgr.GetClient(), mgr.GetAPIReader(), dc).WithDefaultTolerations(tolerations))
	})
}
