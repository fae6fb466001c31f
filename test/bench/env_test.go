package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/manager"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// workloadEnv is one API server with both sides' simulated nodes: skiff
// Nodes run by skiff-agent's fake runtime in this process, and core Nodes
// that kwok keeps. Each side's controllers start and stop per scenario;
// the nodes of both stay up throughout, so each side pays for the other's
// idle heartbeats alike.
type workloadEnv struct {
	cp *controlplane.ControlPlane
	// c and cs are the benchmark's own clients, without a practical rate
	// limit: creating the objects and watching pods is not measured work.
	c  client.WithWatch
	cs kubernetes.Interface
	// debugSocket serves kube-apiserver's /debug/pprof (SKIFF_BENCH_PPROF).
	debugSocket string
}

// envInt reads a size from the environment, for quick runs while developing
// (SKIFF_BENCH_REPLICAS=100).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func startWorkloadEnv(ctx context.Context, b *testing.B, nodes int) *workloadEnv {
	b.Helper()
	ctrl.SetLogger(zap.New(zap.WriteTo(discard{})))
	cp, fast, debugSocket := startBenchControlPlane(ctx, b)
	c, err := client.NewWithWatch(fast, client.Options{Scheme: scheme.New()})
	if err != nil {
		b.Fatal(err)
	}
	env := &workloadEnv{cp: cp, c: c, cs: fastClient(b, cp.Config), debugSocket: debugSocket}

	// skiff-agent with the fake runtime and the client limits it ships
	// with for this many nodes. Containers start at once and pods asking
	// to exit do so at once, as kwok's default (fast) stages do for core pods.
	ac := rest.CopyConfig(cp.Config)
	ac.QPS = agent.SimulatedQPS(nodes)
	ac.Burst = int(2 * ac.QPS)
	res := node.Resources{CPU: resource.MustParse("32"), Memory: resource.MustParse("256Gi"), EphemeralStorage: resource.MustParse("1Ti")}
	aopts := agent.Options{Config: ac, Simulated: true, Runtime: fake.New(fake.Options{}), Workers: 64,
		Nodes: agent.SimulatedNodes("sim-", nodes, res)}
	ready := make(chan struct{})
	aopts.Ready = ready
	actx, cancel := context.WithCancel(ctx)
	agentDone := make(chan struct{})
	go func() { defer close(agentDone); _ = agent.Run(actx, aopts) }()
	b.Cleanup(func() { cancel(); <-agentDone })
	select {
	case <-ready:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d simulated nodes did not register", nodes)
	}

	startKwok(b, cp)
	createUpstreamNodes(ctx, b, env.cs, nodes)
	return env
}

// limits are the client rate limits of one comparison: zero means the
// shipped default of that component.
type limits struct {
	name string
	// skiff is skiff-controller-manager's (--kube-api-qps, --kube-api-burst).
	skiffQPS   float32
	skiffBurst int
	// kcm is kube-controller-manager's, kubeScheduler kube-scheduler's.
	kcmQPS, schedulerQPS     float32
	kcmBurst, schedulerBurst int
}

func (l limits) describe() (skiff, upstream string) {
	q := func(qps float32, burst int, defQPS float32, defBurst int) string {
		if qps == 0 {
			return fmt.Sprintf("%g/%d (shipped)", defQPS, defBurst)
		}
		return fmt.Sprintf("%g/%d", qps, burst)
	}
	return "skiff-controller-manager " + q(l.skiffQPS, l.skiffBurst, manager.DefaultQPS, manager.DefaultBurst),
		"kube-controller-manager " + q(l.kcmQPS, l.kcmBurst, 20, 30) + ", kube-scheduler " + q(l.schedulerQPS, l.schedulerBurst, 50, 100)
}

// The two comparisons of the workload benchmarks.
var comparisons = []limits{
	{name: "shipped-limits"},
	{name: "500qps", skiffQPS: 500, skiffBurst: 1000, kcmQPS: 500, kcmBurst: 1000, schedulerQPS: 500, schedulerBurst: 1000},
}

// startSkiff runs skiff-controller-manager's areas in this process, as
// the binary does (manager.New), with l's limits; stop ends it.
func (e *workloadEnv) startSkiff(ctx context.Context, b *testing.B, l limits, areas ...string) (stop func()) {
	b.Helper()
	mgr, err := manager.New(e.cp.Config, manager.Options{
		Areas: areas, MetricsAddr: "0", ProbeAddr: "0",
		QPS: l.skiffQPS, Burst: l.skiffBurst, SkipNameValidation: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(mctx) }()
	if !mgr.GetCache().WaitForCacheSync(mctx) {
		b.Fatal("skiff-controller-manager caches did not sync")
	}
	return func() { cancel(); <-done }
}

// startUpstream runs kube-controller-manager with controllers and
// kube-scheduler with l's limits; stop ends them.
func (e *workloadEnv) startUpstream(b *testing.B, l limits, controllers string) (stop func()) {
	b.Helper()
	kcm := startUpstreamControllers(b, e.cp, controllers, l.kcmQPS, l.kcmBurst)
	sched := startUpstreamScheduler(b, e.cp, l.schedulerQPS, l.schedulerBurst)
	return func() { kcm.stop(); sched.stop() }
}

// namespace creates a namespace for one scenario and returns a function
// that deletes it and waits until it is gone, so that cleaning up one
// scenario does not load the API server during the next.
func (e *workloadEnv) namespace(ctx context.Context, b *testing.B, name string) (cleanup func()) {
	b.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := e.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	return func() {
		zero := int64(0)
		_ = e.cs.CoreV1().Pods(name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if err := e.cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			_, err := e.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		b.Fatalf("namespace %s was not deleted in 5 minutes", name)
	}
}

// poll calls done every 100 ms until it reports true, and returns when
// it did; it fails the benchmark after timeout.
func poll(ctx context.Context, b *testing.B, what string, timeout time.Duration, done func() (bool, error)) time.Time {
	b.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ok, err := done()
		if ok {
			return time.Now()
		}
		if err != nil {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("%s: not done after %v (last error: %v)", what, timeout, last)
	return time.Time{}
}

// benchTemplate is the pod template of both sides: the pod of the
// scheduling benchmark, with labels.
func benchTemplate(app string) corev1.PodTemplateSpec {
	pod := upstreamPod("", 0)
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       pod.Spec,
	}
}

// ratio formats skiff's time over upstream's.
func ratio(skiff, upstream time.Duration) float64 {
	return skiff.Seconds() / upstream.Seconds()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// startBenchControlPlane starts the benchmark's API server (with a debug
// socket for CPU profiles when SKIFF_BENCH_PPROF is set) and returns it with
// a copy of its config whose client limits never hold the benchmark back,
// and the debug socket's path ("" without SKIFF_BENCH_PPROF).
func startBenchControlPlane(ctx context.Context, b *testing.B) (*controlplane.ControlPlane, *rest.Config, string) {
	b.Helper()
	opts := controlplane.Options{}
	if os.Getenv("SKIFF_BENCH_PPROF") != "" {
		dir, err := os.MkdirTemp("", "skiff-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
		opts.APIServerDebugSocket = filepath.Join(dir, "apiserver.sock")
	}
	cp, err := controlplane.Start(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cp.Stop() })
	fast := rest.CopyConfig(cp.Config)
	fast.QPS, fast.Burst = 5000, 10000
	return cp, fast, opts.APIServerDebugSocket
}
