// Command skiff-controller-manager runs skiff's cluster-wide controllers:
// workloads, scheduler, node lifecycle, service allocation, EndpointSlices
// and volume binding. Run one per cluster; replicas elect a leader.
package main

import (
	"flag"
	"os"
	"time"

	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/skiff-dev/skiff/controllers/core"
	"github.com/skiff-dev/skiff/controllers/scheduler"
	"github.com/skiff-dev/skiff/internal/manager"
)

func main() {
	var opts manager.Options
	flag.BoolVar(&opts.LeaderElection, "leader-elect", true, "Elect a leader, so that one of several replicas is active.")
	flag.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader Lease (default: the manager's own namespace).")
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", `Address of the metrics endpoint; "0" disables it.`)
	flag.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", `Address of /healthz and /readyz; "0" disables them.`)
	flag.BoolVar(&opts.Webhooks, "webhooks", true, "Serve the admission webhooks (needs a serving certificate in --webhook-cert-dir).")
	flag.IntVar(&opts.WebhookPort, "webhook-port", 9443, "Port of the admission webhook server.")
	flag.StringVar(&opts.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory holding tls.crt and tls.key of the webhook server.")
	flag.DurationVar(&opts.NodeMonitorGracePeriod, "node-monitor-grace-period", 40*time.Second, "How long a Node's Lease may go unrenewed before the Node is marked Ready=Unknown and tainted unreachable.")
	flag.Float64Var(&opts.NodeDisruption.EvictionRate, "node-eviction-rate", core.UpstreamDisruptionOptions.EvictionRate, "Nodes per second that get their NoExecute taint (after which their pods are evicted) when they stop being ready, in a zone that is healthy, as kube-controller-manager's flag of that name.")
	flag.Float64Var(&opts.NodeDisruption.SecondaryEvictionRate, "secondary-node-eviction-rate", core.UpstreamDisruptionOptions.SecondaryEvictionRate, "The same in an unhealthy zone; zones of --large-cluster-size-threshold nodes or fewer taint none then.")
	flag.Float64Var(&opts.NodeDisruption.UnhealthyZoneThreshold, "unhealthy-zone-threshold", core.UpstreamDisruptionOptions.UnhealthyZoneThreshold, "Share of a zone's nodes (and at least three) that, not ready, make the zone unhealthy.")
	flag.IntVar(&opts.NodeDisruption.LargeClusterSizeThreshold, "large-cluster-size-threshold", core.UpstreamDisruptionOptions.LargeClusterSizeThreshold, "Zone size above which an unhealthy zone still taints, at --secondary-node-eviction-rate.")
	notReadySecs := flag.Int64("default-not-ready-toleration-seconds", 300, "tolerationSeconds of the node.kubernetes.io/not-ready:NoExecute toleration given to pods that have none, as kube-apiserver's flag of that name.")
	unreachableSecs := flag.Int64("default-unreachable-toleration-seconds", 300, "tolerationSeconds of the node.kubernetes.io/unreachable:NoExecute toleration given to pods that have none, as kube-apiserver's flag of that name.")
	flag.DurationVar(&opts.TerminatingPodGCDelay, "terminating-pod-gc-delay", time.Minute, "How long after its grace period a terminating pod on a NotReady node is force-deleted, so that its controller replaces it (a StatefulSet pod's name is free only then); its containers there are removed when the node returns. Zero means 1m; negative never, as upstream (only the node.kubernetes.io/out-of-service taint releases such pods).")
	flag.StringVar(&opts.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "Range from which each Node gets its spec.podCIDR.")
	flag.IntVar(&opts.NodeCIDRMaskSize, "node-cidr-mask-size", 24, "Prefix length of each Node's pod CIDR.")
	var qps float64
	flag.Float64Var(&qps, "kube-api-qps", manager.DefaultQPS, "Requests per second the manager's controllers and scheduler send to the API server together; negative turns client-side limiting off.")
	flag.IntVar(&opts.Burst, "kube-api-burst", manager.DefaultBurst, "Requests the manager may send at once above --kube-api-qps.")
	flag.StringVar(&opts.ServiceCIDR, "service-cluster-ip-range", "10.112.0.0/16", "Range of Service ClusterIPs; it must not overlap the host cluster's own service range.")
	flag.StringVar(&opts.NodePortRange, "service-node-port-range", "30000-32767", "Range of Service NodePorts.")
	flag.IntVar(&opts.SchedulerParallelism, "scheduler-parallelism", scheduler.DefaultParallelism, "How many nodes the scheduler filters and scores at once (at most GOMAXPROCS run together), as kube-scheduler's parallelism.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	opts.QPS = float32(qps)
	opts.DefaultNotReadyTolerationSeconds, opts.DefaultUnreachableTolerationSeconds = notReadySecs, unreachableSecs

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
