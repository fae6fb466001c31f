package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/agent/cri"
	"github.com/skiff-dev/skiff/agent/dns"
	"github.com/skiff-dev/skiff/agent/localpath"
	"github.com/skiff-dev/skiff/agent/logs"
	"github.com/skiff-dev/skiff/agent/node"
	"github.com/skiff-dev/skiff/agent/pods"
	"github.com/skiff-dev/skiff/agent/routes"
	"github.com/skiff-dev/skiff/agent/server"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/proxy"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// LabelSimulated marks the Nodes of simulated nodes.
const LabelSimulated = "skiff.dev/simulated"

// NodeSpec is one node the process runs.
type NodeSpec struct {
	// Name is the Node's name.
	Name string
	// Machine is what the node reports about itself.
	Machine node.Machine
}

// Options configure an agent process.
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	// Nodes are the nodes this process runs: one for a real node, many
	// for simulated ones.
	Nodes []NodeSpec
	// Simulated marks the Nodes as simulated and watches every bound pod
	// (one informer shared by all nodes) instead of one node's pods.
	Simulated bool
	// Runtime runs the containers of every node.
	Runtime cri.Runtime
	// NewVolumes builds the pod volumes from a reader of ConfigMaps and
	// Secrets; nil for simulated nodes, which mount nothing.
	NewVolumes func(client.Reader) pods.Volumes
	// Prober is nil for simulated nodes: their probes always succeed.
	Prober pods.Prober
	// RootDir holds pod logs and volumes.
	RootDir string
	// HostDNS is the DNS configuration of pods with dnsPolicy Default.
	HostDNS func() *runtimeapi.DNSConfig
	// ClusterDNS and ClusterDomain configure ClusterFirst pods.
	ClusterDNS    []string
	ClusterDomain string
	// TerminationLog returns a host file for a container's termination message.
	TerminationLog func(pod *corev1alpha1.Pod, container string, attempt uint32) (string, error)
	// TerminationMessage reads what a container wrote to that file.
	TerminationMessage func(uid types.UID, container string, attempt uint32) string
	// UseFinalizer puts the agent's finalizer on bound pods.
	UseFinalizer bool
	// Events records events on pods.
	Events bool
	// Workers is the number of pod workers shared by every node.
	Workers int
	// Resync and SteadyResync pace the pod syncs (0: package defaults).
	Resync, SteadyResync time.Duration
	// Housekeeping paces the search for remains of deleted pods.
	Housekeeping time.Duration
	// LeaseInterval and StatusInterval pace the heartbeat (0: defaults).
	LeaseInterval, StatusInterval time.Duration
	// Observe reads the machine's pressure signals, judged against
	// Thresholds for the MemoryPressure, DiskPressure and PIDPressure
	// conditions; nil (simulated nodes) reports no pressure.
	Observe    func() node.Observations
	Thresholds []node.Threshold
	// API, when set, serves the agent API (container logs and exec) of
	// the node; real nodes only.
	API *server.Config
	// LogRotation, when set, rotates the logs of the node's running
	// containers; Run fills its Runtime and Labels. Real nodes only.
	LogRotation *logs.Rotator
	// ClusterDNSAddr, when set ("10.88.0.1:53"), serves the cluster zone
	// (ClusterDomain) there for this node's pods (real nodes only).
	ClusterDNSAddr string
	// ServiceProxy, when set, programs the cluster's Services into this
	// node's nftables (real nodes only).
	ServiceProxy *proxy.Config
	// NodeRoutes, when set, routes the pod CIDRs of the other Nodes
	// through their InternalIPs (agent/routes) on this node (real nodes only).
	NodeRoutes *routes.Self
	// Ready, when set, is closed once every node is registered.
	Ready chan<- struct{}
	// MetricsAddr serves Prometheus metrics and ProbeAddr /healthz and
	// /readyz; empty or "0" disables them.
	MetricsAddr, ProbeAddr string
}

// Run registers the nodes and runs their pods until ctx ends.
func Run(ctx context.Context, opts Options) error {
	log := ctrl.LoggerFrom(ctx)
	if len(opts.Nodes) == 0 {
		return fmt.Errorf("no node to run")
	}
	cfg := rest.CopyConfig(opts.Config)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	opts.Config = cfg
	s := scheme.New()
	podSelector := fields.OneTermEqualSelector("spec.nodeName", opts.Nodes[0].Name)
	if opts.Simulated || len(opts.Nodes) > 1 {
		podSelector = fields.OneTermNotEqualSelector("spec.nodeName", "")
	}
	mgr, err := ctrl.NewManager(opts.Config, manager.Options{
		Scheme:                 s,
		Metrics:                metricsserver.Options{BindAddress: orZero(opts.MetricsAddr)},
		HealthProbeBindAddress: orZero(opts.ProbeAddr),
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{&corev1alpha1.Pod{}: {Field: podSelector}},
		},
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: false}},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	direct, err := client.New(opts.Config, client.Options{Scheme: s})
	if err != nil {
		return err
	}
	if err := node.EnsureLeaseNamespace(ctx, direct); err != nil {
		return err
	}
	v, err := opts.Runtime.Version(ctx, "v1")
	if err != nil {
		return fmt.Errorf("asking the container runtime for its version: %w", err)
	}
	var recorder = mgr.GetEventRecorderFor("skiff-agent")
	if !opts.Events {
		recorder = nil
	}
	workers := opts.Workers
	if workers == 0 {
		workers = 32
	}
	var volumes pods.Volumes
	if opts.NewVolumes != nil {
		volumes = opts.NewVolumes(direct)
	}
	var apiPort int32
	var apiCert string
	if opts.API != nil {
		api, err := newAPI(opts, mgr)
		if err != nil {
			return err
		}
		if err := mgr.Add(api); err != nil {
			return err
		}
		apiPort, apiCert = api.Port(), api.Certificate()
	}
	if opts.LogRotation != nil {
		if err := addLogRotation(mgr, opts); err != nil {
			return err
		}
	}
	disp := pods.NewDispatcher(mgr.GetCache(), workers, opts.Housekeeping)
	keepers := make([]*node.Node, len(opts.Nodes))
	for i, spec := range opts.Nodes {
		labels := map[string]string{}
		if opts.Simulated {
			labels[LabelSimulated] = "true"
		}
		keepers[i] = node.New(node.Options{
			Name: spec.Name, Labels: labels, Machine: spec.Machine, Runtime: opts.Runtime, Client: direct,
			LeaseInterval: opts.LeaseInterval, StatusInterval: opts.StatusInterval,
			Observe: opts.Observe, Thresholds: opts.Thresholds,
			Port: apiPort, Certificate: apiCert,
		})
		k := keepers[i]
		pn := pods.NewNode(pods.Options{
			NodeName: spec.Name, Runtime: opts.Runtime, RuntimeName: v.RuntimeName,
			Client: direct, Reader: direct, Recorder: recorder, Volumes: volumes, Prober: opts.Prober,
			HostIP: k.HostIP, Allocatable: func() corev1.ResourceList { return spec.Machine.Capacity },
			HostDNS: opts.HostDNS, ClusterDNS: opts.ClusterDNS, ClusterDomain: opts.ClusterDomain,
			RootDir: opts.RootDir, TerminationLog: opts.TerminationLog, TerminationMessage: opts.TerminationMessage, UseFinalizer: opts.UseFinalizer,
			Resync: opts.Resync, SteadyResync: opts.SteadyResync,
		})
		disp.AddNode(pn)
	}
	if err := registerAll(ctx, keepers); err != nil {
		return err
	}
	log.Info("Registered nodes", "count", len(keepers), "first", klog.KRef("", keepers[0].Name()))
	if opts.Ready != nil {
		close(opts.Ready)
	}
	for _, k := range keepers {
		go k.Run(ctx)
	}
	if err := mgr.Add(disp); err != nil {
		return err
	}
	if !opts.Simulated && opts.NewVolumes != nil && opts.RootDir != "" {
		// The node's skiff.dev/local-path provisioner.
		lp := localpath.New(mgr.GetClient(), mgr.GetEventRecorder("local-path-provisioner"), opts.Nodes[0].Name, filepath.Join(opts.RootDir, "local-path"))
		if err := lp.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	if opts.ServiceProxy != nil {
		if err := startProxy(mgr, *opts.ServiceProxy); err != nil {
			return err
		}
	}
	if opts.NodeRoutes != nil {
		if err := routes.New(mgr.GetCache(), routes.NetlinkTable{}, *opts.NodeRoutes).SetupWithManager(mgr); err != nil {
			return err
		}
	}
	if opts.ClusterDNSAddr != "" {
		if err := startDNS(ctx, mgr, opts.ClusterDNSAddr, opts.ClusterDomain); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}

// newAPI prepares the agent API of the (single, real) node: its
// certificate names the node's addresses.
func newAPI(opts Options, mgr ctrl.Manager) (*server.Server, error) {
	rt, ok := opts.Runtime.(server.Runtime)
	if !ok || len(opts.Nodes) != 1 {
		return nil, fmt.Errorf("the agent API needs one real node on a CRI runtime")
	}
	cs, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, err
	}
	spec := opts.Nodes[0]
	hosts := []string{spec.Name}
	for _, a := range spec.Machine.Addresses {
		hosts = append(hosts, a.Address)
	}
	return server.New(server.Options{
		Config: *opts.API, NodeName: spec.Name, Hosts: hosts,
		Pods: mgr.GetCache(), Runtime: rt, Client: cs,
	})
}

// addLogRotation adds the rotation of the node's container logs.
func addLogRotation(mgr ctrl.Manager, opts Options) error {
	rt, ok := opts.Runtime.(logs.RotationRuntime)
	if !ok || len(opts.Nodes) != 1 {
		return fmt.Errorf("log rotation needs one real node on a CRI runtime")
	}
	r := *opts.LogRotation
	r.Runtime = rt
	r.Labels = map[string]string{cri.LabelNodeName: opts.Nodes[0].Name}
	if err := r.Validate(); err != nil {
		return err
	}
	return mgr.Add(&r)
}

// startProxy adds the service proxy to the agent's manager: it follows
// Services and EndpointSlices and removes its nftables table when the agent
// stops.
func startProxy(mgr ctrl.Manager, cfg proxy.Config) error {
	nft, err := knftables.New(knftables.IPv4Family, proxy.TableName)
	if err != nil {
		return fmt.Errorf("the service proxy needs nftables (Debian package nftables): %w", err)
	}
	p := proxy.New(nft, mgr.GetCache(), cfg)
	p.Conntrack = proxy.CommandConntrack{}
	return p.SetupWithManager(mgr)
}

// startDNS adds the cluster DNS server to the agent's manager, and starts
// the informers it reads so that the first query finds a synced cache.
func startDNS(ctx context.Context, mgr ctrl.Manager, addr, domain string) error {
	for _, obj := range []client.Object{&corev1alpha1.Service{}, &corev1alpha1.EndpointSlice{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return err
		}
	}
	srv, err := dns.New(mgr.GetCache(), dns.Options{Addr: addr, Zone: domain})
	if err != nil {
		return err
	}
	return mgr.Add(srv)
}

// orZero turns an empty address into "0", which controller-runtime reads as
// "do not serve".
func orZero(addr string) string {
	if addr == "" {
		return "0"
	}
	return addr
}

// registerAll registers the nodes with a bounded number in flight.
func registerAll(ctx context.Context, keepers []*node.Node) error {
	sem := make(chan struct{}, 16)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for _, k := range keepers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := k.Register(ctx); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// SimulatedQPS is the client QPS skiff-agent ships with for n simulated
// nodes in one process: 2 per node (a pod start and a status patch each
// second on every node), at least 50 and at most 1000.
func SimulatedQPS(n int) float32 {
	return float32(min(1000, max(50, 2*n)))
}

// SimulatedNodes describes n simulated nodes named <prefix><index>, each with
// the same resources, for Options.Nodes with Simulated and a fake runtime.
func SimulatedNodes(prefix string, n int, res node.Resources) []NodeSpec {
	out := make([]NodeSpec, 0, n)
	for i := range n {
		name := fmt.Sprintf("%s%d", prefix, i)
		out = append(out, NodeSpec{Name: name, Machine: node.SimulatedMachine(name, i, res)})
	}
	return out
}
