package agent_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// BenchmarkSimulatedPods creates pods bound round-robin to simulated nodes
// and reports how fast the agent brings them to Ready: pods per second and
// create-to-Ready latency (p50, p99), as seen by polling every 100 ms. Sizes come from
// SKIFF_BENCH_NODES and SKIFF_BENCH_PODS (default 100 and 1000).
func BenchmarkSimulatedPods(b *testing.B) {
	nodes, pods := envInt("SKIFF_BENCH_NODES", 100), envInt("SKIFF_BENCH_PODS", 1000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cp.Stop() }()
	cfg := *cp.Config
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.NewWithWatch(&cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		b.Fatal(err)
	}
	res := node.Resources{CPU: resource.MustParse("32"), Memory: resource.MustParse("256Gi"), EphemeralStorage: resource.MustParse("1Ti")}
	opts := agent.Options{Config: &cfg, Simulated: true, Runtime: fake.New(fake.Options{}), Workers: 64}
	opts.Nodes = agent.SimulatedNodes("sim-", nodes, res)
	ready := make(chan struct{})
	opts.Ready = ready
	regStart := time.Now()
	go func() { _ = agent.Run(ctx, opts) }()
	<-ready
	b.Logf("Registered %d simulated nodes in %s", nodes, time.Since(regStart).Round(time.Millisecond))

	for iter := 0; iter < b.N; iter++ {
		ns := fmt.Sprintf("bench-%d", iter)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		created := make([]time.Time, pods)
		readyAt := map[string]time.Time{}
		done := make(chan struct{})
		// Poll rather than watch: a watch on a just-created CRD resource
		// can fail with "Too large resource version". 100 ms resolution.
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				list := &corev1alpha1.PodList{}
				if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
					continue
				}
				now := time.Now()
				for i := range list.Items {
					p := &list.Items[i]
					if _, seen := readyAt[p.Name]; !seen && meta.IsStatusConditionTrue(p.Status.Conditions, conditions.Ready) {
						readyAt[p.Name] = now
					}
				}
				if len(readyAt) == pods {
					close(done)
					return
				}
			}
		}()
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for i := range pods {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				p := &corev1alpha1.Pod{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p-%d", i)},
					Spec: corev1.PodSpec{NodeName: fmt.Sprintf("sim-%d", i%nodes),
						Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
				}
				created[i] = time.Now()
				if err := c.Create(ctx, p); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		b.Logf("Created %d pods in %s", pods, time.Since(start).Round(time.Millisecond))
		select {
		case <-done:
		case <-time.After(time.Duration(envInt("SKIFF_BENCH_TIMEOUT_SECONDS", 300)) * time.Second):
			list := &corev1alpha1.PodList{}
			_ = c.List(ctx, list, client.InNamespace(ns))
			if len(list.Items) > 0 {
				b.Logf("First pod: %+v", list.Items[0].Status)
			}
			b.Fatalf("not all %d pods Ready in time", pods)
		}
		total := time.Since(start)
		var lat []time.Duration
		for i := range pods {
			lat = append(lat, readyAt[fmt.Sprintf("p-%d", i)].Sub(created[i]))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(pods)/total.Seconds(), "pods/s")
		b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
		b.Logf("%d pods on %d simulated nodes Ready in %s: p50 %s, p99 %s", pods, nodes, total.Round(time.Millisecond),
			lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond))
	}
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err == nil && n > 0 {
		return n
	}
	return def
}
