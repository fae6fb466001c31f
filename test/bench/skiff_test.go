package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/scheduler"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// Shipped client limits: client-go's default for skiff's manager is
// raised to upstream kube-scheduler's (50 QPS, burst 100) so the
// comparison is at equal limits.
const (
	schedulerQPS   = 50
	schedulerBurst = 100
)

// startSimulatedNodes runs n skiff simulated nodes (skiff-agent with the
// fake runtime) in this process and waits until they are registered.
func startSimulatedNodes(ctx context.Context, b *testing.B, cfg *rest.Config, n int) {
	b.Helper()
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 1000, 2000
	res := node.Resources{CPU: resource.MustParse("32"), Memory: resource.MustParse("256Gi"), EphemeralStorage: resource.MustParse("1Ti")}
	// kwok's nodes in the upstream run send no heartbeat while pods are
	// scheduled (no Lease or Node status write shows in its request
	// counts), so these nodes renew theirs only after the run: both
	// schedulers then meet the same API server load. At kubelet's 10 s
	// a thousand nodes add 100 writes a second.
	opts := agent.Options{Config: c, Simulated: true, Runtime: fake.New(fake.Options{}), Workers: 64,
		LeaseInterval: 10 * time.Minute, StatusInterval: 10 * time.Minute}
	for i := range n {
		name := fmt.Sprintf("sim-%d", i)
		opts.Nodes = append(opts.Nodes, agent.NodeSpec{Name: name, Machine: node.SimulatedMachine(name, i, res)})
	}
	ready := make(chan struct{})
	opts.Ready = ready
	go func() { _ = agent.Run(ctx, opts) }()
	select {
	case <-ready:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d simulated nodes did not register", n)
	}
}

// startSkiffScheduler runs skiff's scheduler alone in a manager with the given client limits.
func startSkiffScheduler(ctx context.Context, b *testing.B, cfg *rest.Config, qps float32, burst int) {
	b.Helper()
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = qps, burst
	ctrl.SetLogger(zap.New(zap.WriteTo(discard{})))
	mgr, err := ctrl.NewManager(c, ctrl.Options{Scheme: scheme.New(), Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		b.Fatal(err)
	}
	status, err := client.New(c, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		b.Fatal(err)
	}
	s := scheduler.New(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetCache(), mgr.GetEventRecorder(scheduler.Name), clock.RealClock{}).
		WithStatusClient(status).WithParallelism(benchParallelism(b))
	if err := s.SetupWithManager(mgr); err != nil {
		b.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	// Ready before the first pod, as kube-scheduler is in the upstream run
	// (it starts before kwok's nodes are made Ready): the clock starts at
	// the first creation and must not time the manager's start-up.
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		b.Fatal("the scheduler's caches did not sync")
	}
}

// benchParallelism is the scheduler's --scheduler-parallelism in the
// benchmark: SKIFF_BENCH_SCHEDULER_PARALLELISM, or the shipped default.
func benchParallelism(b *testing.B) int {
	v := os.Getenv("SKIFF_BENCH_SCHEDULER_PARALLELISM")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("SKIFF_BENCH_SCHEDULER_PARALLELISM: %v", err)
	}
	return n
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func skiffPod(ns string, i int) *corev1alpha1.Pod {
	up := upstreamPod(ns, i)
	return &corev1alpha1.Pod{ObjectMeta: up.ObjectMeta, Spec: up.Spec}
}

// runSkiffScheduling is runUpstreamScheduling for skiff: simulated nodes,
// skiff's scheduler, skiff Pods.
func runSkiffScheduling(b *testing.B, sc scenario) result {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { cancel(); _ = cp.Stop() }()
	startSkiffScheduler(ctx, b, cp.Config, schedulerQPS, schedulerBurst)
	startSimulatedNodes(ctx, b, cp.Config, sc.nodes)

	fast := rest.CopyConfig(cp.Config)
	fast.QPS, fast.Burst = 5000, 10000
	c, err := client.NewWithWatch(fast, client.Options{Scheme: scheme.New()})
	if err != nil {
		b.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}
	if err := c.Create(ctx, ns); err != nil {
		b.Fatal(err)
	}
	tracker := trackPods(ctx, skiffPods(c, ns.Name))
	cs := fastClient(b, cp.Config)
	before, cpu := mustScrape(ctx, b, cs), cpuSeconds()
	created := make([]time.Time, sc.pods)
	parallel(b, sc.pods, func(i int) error {
		created[i] = time.Now()
		return c.Create(ctx, skiffPod(ns.Name, i))
	})
	bound := tracker.waitBound(ctx, b, sc.pods)
	fmt.Printf("%-40s skiff: %s\n    %s\n", b.Name()+":", writeSummary(before, mustScrape(ctx, b, cs), sc.pods), cpuSummary(cpu, cpuSeconds()))
	byName := map[string]time.Time{}
	for i, t := range created {
		byName[fmt.Sprintf("pod-%d", i)] = t
	}
	return summarize(b, byName, bound, tracker.firstSeen())
}

// BenchmarkScheduling compares skiff's scheduler on simulated nodes with
// kube-scheduler on kwok nodes, both at 50 QPS (kube-scheduler's shipped
// limit), for 100 nodes and 1000 pods, then 1000 nodes and 5000 pods.
func BenchmarkScheduling(b *testing.B) {
	requireBenchTools(b)
	for _, sc := range schedulingScenarios {
		b.Run(sc.String(), func(b *testing.B) {
			for range b.N {
				s := runSkiffScheduling(b, sc)
				report(b, "skiff", s)
				u := runUpstreamScheduling(b, sc)
				report(b, "upstream", u)
				b.ReportMetric(s.throughput/u.throughput, "skiff/upstream-throughput")
				fmt.Printf("%-40s skiff/upstream throughput %.2f, p99 %.2f\n", b.Name()+":", s.throughput/u.throughput, s.p99.Seconds()/u.p99.Seconds())
			}
		})
	}
}
