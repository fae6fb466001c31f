// Package manager builds skiff-controller-manager: a controller-runtime
// manager with skiff's scheme, leader election, health probes and metrics,
// and every skiff controller registered on it. cmd/manager runs it as its
// own process; `skiff up` runs it in-process against the local cluster.
package manager

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/core"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// Shipped client limits of skiff-controller-manager (flags --kube-api-qps
// and --kube-api-burst). Upstream gives every controller of
// kube-controller-manager a client of its own at 20 QPS (burst 30), and
// kube-scheduler one at 50 (burst 100); skiff's controllers and scheduler
// share one budget in one process, so it is sized for the busiest of them
// running at once: a 1000-pod rollout creates, binds and deletes pods at
// the same time. API Priority and Fairness on the server still protects it
// from a manager that asks for more than its share.
const (
	DefaultQPS   = 200
	DefaultBurst = 400
)

// Options configure the manager.
type Options struct {
	// LeaderElection makes one replica of several active at a time.
	LeaderElection bool
	// LeaderElectionNamespace holds the leader Lease; empty means the
	// namespace the manager runs in, or kube-system outside a cluster.
	LeaderElectionNamespace string
	// MetricsAddr serves Prometheus metrics; "0" disables them.
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz; "0" disables them.
	ProbeAddr string
	// Areas limits the controllers to these registered areas ("apps",
	// "batch", "nodeaccess", "nodes", "scheduler", "services", "volumes"); empty means all of them.
	Areas []string
	// Webhooks serves skiff's admission webhooks (Job defaults, CronJob schedules and
	// time zones, claim resizes) on WebhookHost:WebhookPort with the certificate in
	// WebhookCertDir (tls.crt, tls.key).
	Webhooks bool
	// ServiceCIDR is where Service ClusterIPs come from; empty means 10.112.0.0/16.
	ServiceCIDR string
	// NodePortRange is where NodePorts come from; empty means 30000-32767.
	NodePortRange  string
	WebhookHost    string
	WebhookPort    int
	WebhookCertDir string
	// NodeMonitorGracePeriod is how long a Node's Lease may go unrenewed
	// before the Node is marked Ready=Unknown and tainted unreachable;
	// zero means 40s.
	NodeMonitorGracePeriod time.Duration
	// NodeDisruption sets how fast nodes that stopped being ready get
	// their NoExecute taints, zone by zone; the zero value means
	// kube-controller-manager's defaults (core.UpstreamDisruptionOptions).
	NodeDisruption core.DisruptionOptions
	// DefaultNotReadyTolerationSeconds and DefaultUnreachableTolerationSeconds
	// are the tolerationSeconds pods get for the not-ready and unreachable
	// NoExecute taints when they have no toleration of their own, as
	// upstream's kube-apiserver flags of those names; nil means 300.
	DefaultNotReadyTolerationSeconds, DefaultUnreachableTolerationSeconds *int64
	// TerminatingPodGCDelay is how long after its grace period a
	// terminating pod on a node that is not Ready is force-deleted, so
	// that its controller can replace it (a StatefulSet pod's name is free
	// only then); zero means 1m, negative never (upstream's behaviour:
	// only the node.kubernetes.io/out-of-service taint releases it).
	TerminatingPodGCDelay time.Duration
	// OrphanPodGCQuarantine is how long a pod bound to a Node that does
	// not exist waits for it before it is force-deleted; zero means 40s.
	OrphanPodGCQuarantine time.Duration
	// ClusterCIDR is the range node pod CIDRs are taken from; empty means
	// 10.244.0.0/16.
	ClusterCIDR string
	// NodeCIDRMaskSize is the prefix length of each node's pod CIDR; zero
	// means 24.
	NodeCIDRMaskSize int
	// JobClock is the clock of the Job and CronJob controllers (schedules,
	// deadlines, back-off, TTLs); nil means the real clock. Tests move it
	// ahead instead of waiting.
	JobClock clock.PassiveClock
	// QPS and Burst limit the requests of the manager's clients to the API
	// server; zero means DefaultQPS and DefaultBurst, a negative QPS turns
	// client-side limiting off (API Priority and Fairness still applies).
	QPS   float32
	Burst int
	// SchedulerParallelism bounds how many nodes a scheduling cycle filters
	// and scores at once; zero means scheduler.DefaultParallelism (16, as
	// upstream). GOMAXPROCS bounds it as well.
	SchedulerParallelism int
	// SkipNameValidation lets one process build several managers one after
	// another (test suites): controller names are otherwise unique per process.
	SkipNameValidation bool
}

// New returns a manager with every skiff controller registered. It fails
// with a clear message when skiff's CRDs are not installed in the cluster.
func New(cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if cfg.QPS == 0 {
		cfg.QPS = DefaultQPS
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	if err := checkCRDs(cfg); err != nil {
		return nil, err
	}
	leaderNS := opts.LeaderElectionNamespace
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:  opts.ProbeAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        "skiff-controller-manager.skiff.dev",
		LeaderElectionNamespace: leaderNS,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: opts.WebhookHost, Port: opts.WebhookPort, CertDir: opts.WebhookCertDir,
		}),
		Controller: config.Controller{SkipNameValidation: ptr.To(opts.SkipNameValidation)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := setupAll(mgr, opts); err != nil {
		return nil, err
	}
	return mgr, nil
}

// Run builds the manager and runs it until ctx is done.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	mgr, err := New(cfg, opts)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// checkCRDs asks discovery for every skiff group version, so a manager
// pointed at a cluster without the CRDs says what to do instead of
// failing later with "no matches for kind".
func checkCRDs(cfg *rest.Config) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	for _, gv := range []string{
		corev1alpha1.GroupVersion.String(), appsv1alpha1.GroupVersion.String(),
		batchv1alpha1.GroupVersion.String(), storagev1alpha1.GroupVersion.String(),
	} {
		if _, err := dc.ServerResourcesForGroupVersion(gv); err != nil {
			return fmt.Errorf("skiff API %s is not served by %s (%v): install the CRDs with `kubectl apply -f config/crd/bases`", gv, cfg.Host, err)
		}
	}
	return nil
}
