package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/controlplane"
)

// scenario is one size of the scheduling benchmark.
type scenario struct{ nodes, pods int }

func (s scenario) String() string { return fmt.Sprintf("%dnodes-%dpods", s.nodes, s.pods) }

var schedulingScenarios = []scenario{{100, 1000}, {1000, 5000}}

// mustScrape reads the API server's request counters, for the writes per
// pod each side makes while its pods are bound.
func mustScrape(ctx context.Context, b *testing.B, cs kubernetes.Interface) requestTotals {
	b.Helper()
	t, err := scrapeRequests(ctx, cs)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// runUpstreamScheduling creates nodes kwok keeps Ready and pods that
// kube-scheduler binds, and measures create-to-bound for every pod.
func runUpstreamScheduling(b *testing.B, sc scenario) result {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{WithoutCRDs: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cp.Stop() })
	startKwok(b, cp)
	startUpstreamScheduler(b, cp, 0, 0)
	cs := fastClient(b, cp.Config)
	createUpstreamNodes(ctx, b, cs, sc.nodes)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	tracker := trackPods(ctx, corePods(cs, ns.Name))
	before, cpu := mustScrape(ctx, b, cs), cpuSeconds()
	created := make([]time.Time, sc.pods)
	parallel(b, sc.pods, func(i int) error {
		created[i] = time.Now()
		_, err := cs.CoreV1().Pods(ns.Name).Create(ctx, upstreamPod(ns.Name, i), metav1.CreateOptions{})
		return err
	})
	bound := tracker.waitBound(ctx, b, sc.pods)
	fmt.Printf("%-40s upstream: %s\n    %s\n", b.Name()+":", writeSummary(before, mustScrape(ctx, b, cs), sc.pods), cpuSummary(cpu, cpuSeconds()))
	byName := map[string]time.Time{}
	for i, t := range created {
		byName[fmt.Sprintf("pod-%d", i)] = t
	}
	return summarize(b, byName, bound, tracker.firstSeen())
}
