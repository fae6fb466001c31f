package scheduler

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// BenchmarkScheduleCycle measures one scheduling cycle (prepare, filter,
// score, assume) over the in-memory cache, without the API server: the
// upper bound of the scheduler's throughput. ns/op is the time of one
// cycle. Every node already runs podsPerNode pods of the same app, and each
// cycle's pod is forgotten again after it is assumed, so every cycle sees
// the same cluster whatever b.N is. Run with
//
//	go test -run '^$' -bench ScheduleCycle ./controllers/scheduler/
func BenchmarkScheduleCycle(b *testing.B) {
	const podsPerNode = 10
	for _, bc := range []struct {
		nodes  int
		spread bool
	}{{100, false}, {1000, false}, {1000, true}, {5000, false}, {5000, true}} {
		name := fmt.Sprintf("nodes=%d", bc.nodes)
		if bc.spread {
			name += "/zone-spread"
		}
		b.Run(name, func(b *testing.B) {
			nodes := make([]*corev1alpha1.Node, bc.nodes)
			var pods []*corev1alpha1.Pod
			for i := range nodes {
				nodes[i] = MakeNode(fmt.Sprintf("node-%04d", i)).Cap("cpu", "32", "memory", "128Gi", "pods", "110").
					Labels(corev1.LabelTopologyZone, fmt.Sprintf("zone-%d", i%3)).Obj()
				for j := 0; j < podsPerNode; j++ {
					pods = append(pods, MakePod(fmt.Sprintf("run-%d-%d", i, j), "bench").Labels("app", "web").
						Req("cpu", "100m", "memory", "128Mi").Node(nodes[i].Name).Obj())
				}
			}
			c := cacheWith(nodes, pods)
			pb := MakePod("pending", "bench").Labels("app", "web").Req("cpu", "10m", "memory", "16Mi")
			if bc.spread {
				pb.Spread(1, corev1.LabelTopologyZone, corev1.DoNotSchedule, "app", "web")
			}
			pod := pb.Info()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, fe, _ := c.schedule(pod, volumeInfo{}, time.Now()); fe != nil {
					b.Fatal(fe)
				}
				c.Forget(pod.key)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pods/s")
		})
	}
}
