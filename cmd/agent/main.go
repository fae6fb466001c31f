// Command skiff-agent is skiff's kubelet: it registers its Node, renews the
// node Lease and runs the node's pods as containers through CRI. With
// --runtime=fake it runs many simulated nodes in one process above an
// in-memory runtime, with the same agent code.
//
// This file holds flags and wiring only; the agent lives in agent/.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/containerd"
	"github.com/skiff-dev/skiff/agent/cri"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/logs"
	"github.com/skiff-dev/skiff/agent/node"
	"github.com/skiff-dev/skiff/agent/pods"
	"github.com/skiff-dev/skiff/agent/routes"
	"github.com/skiff-dev/skiff/agent/server"
	"github.com/skiff-dev/skiff/controllers/proxy"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func main() {
	err := run()
	klog.Flush()
	if err != nil {
		fmt.Fprintln(os.Stderr, "skiff-agent:", err)
		os.Exit(1)
	}
}

func run() error {
	// Our own flag set: controller-runtime registers --kubeconfig on the
	// default one.
	fs := flag.NewFlagSet("skiff-agent", flag.ExitOnError)
	var (
		kubeconfig     = fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server")
		nodeName       = fs.String("node-name", "", "name of the Node (default: the host name)")
		criEndpoint    = fs.String("cri-endpoint", "unix:///run/containerd/containerd.sock", "CRI endpoint of an external runtime")
		rootDir        = fs.String("root-dir", "/var/lib/skiff-agent", "directory for pod volumes, logs and a managed containerd's state")
		containerdMode = fs.String("containerd", "external", "managed: start and own a containerd under --root-dir; external: use --cri-endpoint")
		runtimeKind    = fs.String("runtime", "cri", "cri: run real containers; fake: simulate nodes with an in-memory runtime")
		nodes          = fs.Int("nodes", 1, "number of simulated nodes (--runtime=fake)")
		prefix         = fs.String("node-name-prefix", "sim-", "name prefix of simulated nodes; they are named <prefix><index>")
		simDelay       = fs.Duration("sim-start-delay", time.Second, "how long a simulated container takes to start")
		simRun         = fs.Duration("sim-run-duration", 5*time.Second, "how long a simulated container that should exit runs (annotation "+fake.AnnotationExitCode+")")
		simCPU         = fs.String("sim-cpu", "32", "CPU capacity of a simulated node")
		simMemory      = fs.String("sim-memory", "256Gi", "memory capacity of a simulated node")
		simStorage     = fs.String("sim-ephemeral-storage", "1Ti", "ephemeral-storage capacity of a simulated node")
		qps            = fs.Float64("kube-api-qps", 0, "client QPS to the API server (default 50, or 20 per 10 simulated nodes up to 1000)")
		burst          = fs.Int("kube-api-burst", 0, "client burst to the API server (default 2x QPS)")
		workers        = fs.Int("workers", 0, "pod workers shared by all nodes (default 32, 64 for simulated nodes)")
		finalizer      = fs.String("pod-finalizer", "auto", "put the agent finalizer on bound pods: true, false, or auto (true for real containers, false for simulated ones)")
		events         = fs.Bool("events", true, "record events on pods")
		nodeIP         = fs.String("node-ip", "", "InternalIP of the node (default: the first global IPv4 address)")
		podCIDR        = fs.String("pod-cidr", "10.88.0.0/16", "pod CIDR of a managed containerd when the Node has no spec.podCIDR")
		waitPodCIDR    = fs.Bool("wait-for-pod-cidr", false, "with --containerd=managed: register the Node and wait until skiff-controller-manager's node IPAM gives it a spec.podCIDR, instead of falling back to --pod-cidr; set it on every node of a multi-node cluster")
		nodeRoutes     = fs.String("node-routes", "auto", "route the other Nodes' spec.podCIDR through their InternalIP (host-gateway: the nodes share a link), so pods reach pods on other nodes: true, false, or auto (true with --containerd=managed, whose pod bridge the agent configures; with an external runtime another network plugin usually connects the nodes)")
		pauseBinary    = fs.String("pause-binary", "", "static pause binary for the sandbox image of a managed containerd (default: skiff-pause next to this binary)")
		clusterDNS     = fs.String("cluster-dns", "", "comma-separated DNS server addresses for ClusterFirst pods (default: the agent's own cluster DNS on a real node, see --serve-cluster-dns)")
		clusterDomain  = fs.String("cluster-domain", "cluster.local", "cluster DNS domain")
		serveDNS       = fs.String("serve-cluster-dns", "auto", "serve the cluster domain on port 53 of the gateway address (the first) of the node's pod CIDR, which every pod of the node reaches: true, false, or auto (true with --containerd=managed, whose pod bridge the agent configures; with an external runtime, set --pod-cidr to its pod network and this to true)")
		serviceCIDR    = fs.String("service-cluster-ip-range", "10.112.0.0/16", "range of Service ClusterIPs, as skiff-controller-manager's flag; the proxy rejects addresses in it that match no Service")
		proxyMode      = fs.String("proxy-mode", "nftables", "service proxy on real nodes: nftables, or none")
		evictionHard   = fs.String("eviction-hard", node.DefaultEvictionHardFlags, "thresholds below which the node reports MemoryPressure, DiskPressure or PIDPressure, in the kubelet's syntax (signal<quantity or signal<percent%, comma-separated; signals memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available); the agent does not evict pods")
		address        = fs.String("address", "", "IP address the agent API (logs, exec) listens on; empty means every address")
		port           = fs.Int("port", server.DefaultPort, "port of the agent API; 0 picks a free one (the Node status publishes it)")
		tlsCert        = fs.String("tls-cert-file", "", "serving certificate of the agent API (default: a self-signed one under --root-dir/pki)")
		tlsKey         = fs.String("tls-private-key-file", "", "key of --tls-cert-file")
		clientCA       = fs.String("client-ca-file", "", "CA bundle that authenticates agent API clients by certificate (the API server's client CA); bearer tokens are checked with TokenReview")
		authnTTL       = fs.Duration("authentication-token-webhook-cache-ttl", server.DefaultAuthenticationCacheTTL, "how long TokenReview results are cached")
		authzAllowTTL  = fs.Duration("authorization-webhook-cache-authorized-ttl", server.DefaultAuthorizationAllowTTL, "how long allowed SubjectAccessReview results are cached")
		authzDenyTTL   = fs.Duration("authorization-webhook-cache-unauthorized-ttl", server.DefaultAuthorizationDenyTTL, "how long denied SubjectAccessReview results are cached")
		logMaxSize     = fs.String("container-log-max-size", "10Mi", "size at which a container's log file is rotated")
		logMaxFiles    = fs.Int("container-log-max-files", logs.DefaultMaxFiles, "most log files a container keeps, the current one included (at least 2)")
		logInterval    = fs.Duration("container-log-monitor-interval", logs.DefaultInterval, "how often container log sizes are checked")
		metricsAddr    = fs.String("metrics-bind-address", "0", `address of the Prometheus metrics endpoint, e.g. ":10264"; "0" disables it`)
		probeAddr      = fs.String("health-probe-bind-address", "0", `address of /healthz and /readyz, e.g. ":10265"; "0" disables them`)
		housekeeping   = fs.Duration("housekeeping-interval", pods.DefaultHousekeeping, "how often the runtime is searched for the containers and sandboxes of pods that no longer exist (deleted, or recreated with a new UID, while the agent was away or cut off) to remove them, as the kubelet's flag")
		leaseInterval  = fs.Duration("node-lease-renew-interval", node.DefaultLeaseInterval, "how often the node's Lease is renewed; skiff-controller-manager's --node-monitor-grace-period must be several times longer")
		insecure       = fs.String("insecure-registry", "", "comma-separated host:port registries a managed containerd reaches over plain HTTP (127.0.0.1:5000 and localhost:5000 always are)")
	)
	klog.InitFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	ctrl.SetLogger(klog.NewKlogr())

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	opts := agent.Options{Config: cfg, RootDir: *rootDir, Events: *events, Workers: *workers, ClusterDomain: *clusterDomain}
	opts.MetricsAddr, opts.ProbeAddr = *metricsAddr, *probeAddr
	opts.Housekeeping, opts.LeaseInterval = *housekeeping, *leaseInterval
	opts.ClusterDNS = splitList(*clusterDNS)
	switch *runtimeKind {
	case "fake":
		res := node.Resources{}
		for _, q := range []struct {
			dst *resource.Quantity
			val string
		}{{&res.CPU, *simCPU}, {&res.Memory, *simMemory}, {&res.EphemeralStorage, *simStorage}} {
			if *q.dst, err = resource.ParseQuantity(q.val); err != nil {
				return fmt.Errorf("parsing %q: %w", q.val, err)
			}
		}
		opts.Simulated = true
		opts.Runtime = fake.New(fake.Options{StartDelay: *simDelay, RunDuration: *simRun})
		opts.Nodes = agent.SimulatedNodes(*prefix, *nodes, res)
		if *qps == 0 {
			*qps = float64(agent.SimulatedQPS(*nodes))
		}
		if *workers == 0 {
			opts.Workers = 64
		}
		opts.UseFinalizer = *finalizer == "true"
	case "cri":
		if *nodeName == "" {
			if *nodeName, err = os.Hostname(); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(*rootDir, 0o755); err != nil {
			return err
		}
		endpoint := *criEndpoint
		nodePodCIDR := *podCIDR
		if *containerdMode == "managed" {
			pause := *pauseBinary
			if pause == "" {
				exe, _ := os.Executable()
				pause = filepath.Join(filepath.Dir(exe), "skiff-pause")
			}
			cidr, err := containerd.NodePodCIDR(ctx, cfg, *nodeName, *podCIDR)
			if err != nil {
				return err
			}
			if *waitPodCIDR {
				if cidr, err = awaitPodCIDR(ctx, cfg, *nodeName, *rootDir, *nodeIP); err != nil {
					return err
				}
			}
			nodePodCIDR = cidr
			cd, err := containerd.Start(ctx, containerd.Options{RootDir: filepath.Join(*rootDir, "containerd"), PodCIDR: cidr, PauseBinary: pause, NodeName: *nodeName, InsecureRegistries: splitList(*insecure)})
			if err != nil {
				return err
			}
			defer cd.Stop()
			go cd.Supervise(ctx)
			endpoint = cd.Endpoint()
		} else if *containerdMode != "external" {
			return fmt.Errorf("--containerd must be managed or external, not %q", *containerdMode)
		}
		rt, err := cri.Connect(ctx, endpoint, 10*time.Second)
		if err != nil {
			return err
		}
		m, err := node.HostMachine(*rootDir, *nodeIP)
		if err != nil {
			return err
		}
		opts.Runtime = rt
		opts.Nodes = []agent.NodeSpec{{Name: *nodeName, Machine: m}}
		if opts.Thresholds, err = node.ParseThresholds(*evictionHard); err != nil {
			return fmt.Errorf("--eviction-hard: %w", err)
		}
		imageFS := filepath.Join(*rootDir, "containerd")
		if *containerdMode != "managed" {
			imageFS = "/var/lib/containerd"
		}
		opts.Observe = node.HostObserver{NodeFS: *rootDir, ImageFS: imageFS}.Observe
		opts.NewVolumes = func(r client.Reader) pods.Volumes { return pods.NewHostVolumes(*rootDir, r) }
		opts.Prober = pods.RuntimeProber{Runtime: rt}
		opts.HostDNS = pods.ResolvConfDNS("/etc/resolv.conf")
		opts.TerminationLog = pods.TerminationLogFiles(*rootDir)
		opts.TerminationMessage = pods.TerminationMessages(*rootDir)
		opts.UseFinalizer = *finalizer != "false"
		if *proxyMode == "nftables" {
			sc, err := netip.ParsePrefix(*serviceCIDR)
			if err != nil {
				return fmt.Errorf("--service-cluster-ip-range: %w", err)
			}
			pc, _ := netip.ParsePrefix(nodePodCIDR)
			opts.ServiceProxy = &proxy.Config{ServiceCIDR: sc.Masked(), PodCIDR: pc, NodeName: *nodeName}
		} else if *proxyMode != "none" {
			return fmt.Errorf("--proxy-mode must be nftables or none, not %q", *proxyMode)
		}
		switch *nodeRoutes {
		case "true", "false", "auto":
		default:
			return fmt.Errorf("--node-routes must be true, false or auto, not %q", *nodeRoutes)
		}
		if *nodeRoutes == "true" || *nodeRoutes == "auto" && *containerdMode == "managed" {
			self := routes.Self{Name: *nodeName}
			if self.PodCIDR, err = netip.ParsePrefix(nodePodCIDR); err != nil {
				return fmt.Errorf("the node's pod CIDR %q: %w", nodePodCIDR, err)
			}
			self.PodCIDR = self.PodCIDR.Masked()
			for _, a := range m.Addresses {
				if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == corev1.NodeInternalIP {
					self.Addresses = append(self.Addresses, ip)
				}
			}
			opts.NodeRoutes = &self
		}
		opts.API = &server.Config{
			Address: *address, Port: *port, CertDir: filepath.Join(*rootDir, "pki"),
			TLSCertFile: *tlsCert, TLSKeyFile: *tlsKey, ClientCAFile: *clientCA,
			AuthenticationCacheTTL: *authnTTL, AuthorizationAllowTTL: *authzAllowTTL, AuthorizationDenyTTL: *authzDenyTTL,
		}
		maxSize, err := resource.ParseQuantity(*logMaxSize)
		if err != nil {
			return fmt.Errorf("--container-log-max-size: %w", err)
		}
		opts.LogRotation = &logs.Rotator{MaxSize: maxSize.Value(), MaxFiles: *logMaxFiles, Interval: *logInterval}
		if err := opts.LogRotation.Validate(); err != nil {
			return err
		}
		switch *serveDNS {
		case "true", "false", "auto":
		default:
			return fmt.Errorf("--serve-cluster-dns must be true, false or auto, not %q", *serveDNS)
		}
		if *serveDNS == "true" || *serveDNS == "auto" && *containerdMode == "managed" {
			gw, err := podGateway(nodePodCIDR)
			if err != nil {
				return err
			}
			opts.ClusterDNSAddr = netip.AddrPortFrom(gw, 53).String()
			if len(opts.ClusterDNS) == 0 {
				opts.ClusterDNS = []string{gw.String()}
			}
		}
		// Real containers exit on their own: look at every pod each second,
		// as the upstream kubelet's relisting does.
		opts.SteadyResync = time.Second
	default:
		return fmt.Errorf("--runtime must be cri or fake, not %q", *runtimeKind)
	}
	if *qps == 0 {
		*qps = 50
	}
	if *burst == 0 {
		*burst = int(2 * *qps)
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	return agent.Run(ctx, opts)
}

// awaitPodCIDR registers the Node if needed and waits for its spec.podCIDR.
func awaitPodCIDR(ctx context.Context, cfg *rest.Config, name, rootDir, nodeIP string) (string, error) {
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return "", err
	}
	m, err := node.HostMachine(rootDir, nodeIP)
	if err != nil {
		return "", err
	}
	return node.AwaitPodCIDR(ctx, c, name, m)
}

// podGateway is the address of the node's pod bridge: the first address of
// its pod CIDR, as the managed containerd's CNI configuration sets it.
func podGateway(cidr string) (netip.Addr, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return netip.Addr{}, fmt.Errorf("the pod CIDR %q is not an IPv4 prefix: %v", cidr, err)
	}
	return p.Masked().Addr().Next(), nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
