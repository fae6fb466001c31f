// Command skiff-controller-manager runs skiff's cluster-wide controllers:
// workloads, scheduler, node lifecycle, service allocation, EndpointSlices
// and volume binding. Run one per cluster; replicas elect a leader.
package main

import (
	"flag"
	"os"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/skiff-dev/skiff/internal/manager"
)

func main() {
	var opts manager.Options
	flag.BoolVar(&opts.LeaderElection, "leader-elect", true, "Elect a leader, so that one of several replicas is active.")
	flag.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader Lease (default: the manager's own namespace).")
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", `Address of the metrics endpoint; "0" disables it.`)
	flag.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", `Address of /healthz and /readyz; "0" disables them.`)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	logger := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)

	cfg, err := ctrl.GetConfig()
	if err != nil {
		logger.Error(err, "Unable to load a kubeconfig")
		os.Exit(1)
	}
	if err := manager.Run(ctrl.SetupSignalHandler(), cfg, opts); err != nil {
		logger.Error(err, "Manager stopped")
		os.Exit(1)
	}
}
