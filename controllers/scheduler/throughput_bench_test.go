package scheduler_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/scheduler"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkBindThroughput measures the scheduler against a real API server:
// Nodes and Pods are created directly (no agent), and each pod counts from
// just before its create call to the watch event that shows it bound. The
// scheduler's client is limited to SKIFF_BENCH_QPS (default 50, burst twice
// that: kube-scheduler's defaults). Run with
//
//	go test -run '^$' -bench BindThroughput -benchtime 1x ./controllers/scheduler/
//
// SKIFF_BENCH_NODES and SKIFF_BENCH_PODS change the shape (default 100 and 1000).
func BenchmarkBindThroughput(b *testing.B) {
	nodes, pods, qps := envInt("SKIFF_BENCH_NODES", 100), envInt("SKIFF_BENCH_PODS", 1000), envInt("SKIFF_BENCH_QPS", 50)
	for i := 0; i < b.N; i++ {
		runBindThroughput(b, nodes, pods, qps)
	}
}

func runBindThroughput(b *testing.B, numNodes, numPods, qps int) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cp.Stop() }()
	s := scheme.New()
	admin, err := client.New(cp.Config, client.Options{Scheme: s})
	if err != nil {
		b.Fatal(err)
	}
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = float32(qps), 2*qps
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: s, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		b.Fatal(err)
	}
	status, err := client.New(cfg, client.Options{Scheme: s, Mapper: mgr.GetRESTMapper()})
	if err != nil {
		b.Fatal(err)
	}
	if err := scheduler.New(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetCache(), mgr.GetEventRecorder(scheduler.Name), clock.RealClock{}).WithStatusClient(status).SetupWithManager(mgr); err != nil {
		b.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()

	parallel(numNodes, func(i int) error {
		node := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%04d", i)}}
		if err := admin.Create(ctx, node); err != nil {
			return err
		}
		rl := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("128Gi"), corev1.ResourcePods: resource.MustParse("110")}
		node.Status = corev1alpha1.NodeStatus{Capacity: rl, Allocatable: rl, Conditions: []metav1.Condition{{
			Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: corev1alpha1.ReasonAgentReady, LastTransitionTime: metav1.Now()}}}
		return admin.Status().Update(ctx, node)
	}, b)
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}); err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the scheduler's caches see the nodes

	var mu sync.Mutex
	created := map[string]time.Time{}
	bound := map[string]time.Time{}
	done := make(chan struct{})
	observe := func(o any) {
		pod, ok := o.(*corev1alpha1.Pod)
		if !ok || pod.Namespace != "bench" || pod.Spec.NodeName == "" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, seen := bound[pod.Name]; !seen {
			bound[pod.Name] = time.Now()
			if len(bound) == numPods {
				close(done)
			}
		}
	}
	watcher, err := cache.New(cp.Config, cache.Options{Scheme: s})
	if err != nil {
		b.Fatal(err)
	}
	inf, err := watcher.GetInformer(ctx, &corev1alpha1.Pod{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: observe, UpdateFunc: func(_, o any) { observe(o) },
	}); err != nil {
		b.Fatal(err)
	}
	go func() { _ = watcher.Start(ctx) }()
	if !watcher.WaitForCacheSync(ctx) {
		b.Fatal("the watching cache did not sync")
	}

	b.ResetTimer()
	start := time.Now()
	parallel(numPods, func(i int) error {
		pod := &corev1alpha1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Namespace: "bench"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
		}
		t := time.Now()
		mu.Lock()
		created[pod.Name] = t
		mu.Unlock()
		return admin.Create(ctx, pod)
	}, b)
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		list := &corev1alpha1.PodList{}
		_ = admin.List(ctx, list, client.InNamespace("bench"))
		n := 0
		for _, p := range list.Items {
			if p.Spec.NodeName != "" {
				n++
			} else if n == 0 {
				b.Logf("pod %s: conditions %+v", p.Name, p.Status.Conditions)
			}
		}
		b.Logf("listed %d pods, %d bound", len(list.Items), n)
		b.Fatalf("only %d of %d pods bound in 3 minutes", len(bound), numPods)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	mu.Lock()
	defer mu.Unlock()
	lat := make([]time.Duration, 0, numPods)
	for name, t := range bound {
		lat = append(lat, t.Sub(created[name]))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99 := lat[len(lat)*50/100], lat[len(lat)*99/100]
	rate := float64(numPods) / elapsed.Seconds()
	fmt.Printf("skiff scheduler: %d nodes, %d pods, client QPS %d: all bound in %v, %.1f pods/s, create-to-bound p50 %v p99 %v\n",
		numNodes, numPods, qps, elapsed.Round(time.Millisecond), rate, p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	b.ReportMetric(rate, "pods/s")
	b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
}

// parallel runs f for 0..n-1 on 16 goroutines.
func parallel(n int, f func(i int) error, b *testing.B) {
	var wg sync.WaitGroup
	next := make(chan int)
	var errOnce sync.Once
	var firstErr error
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}
