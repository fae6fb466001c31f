package scheduler

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// BenchmarkScheduleCycle measures the scheduling cycle (prepare, filter,
// score, assume) over the in-memory cache, without the API server: the
// upper bound of the scheduler's throughput. Run with
//
//	go test -run '^$' -bench ScheduleCycle ./controllers/scheduler/
func BenchmarkScheduleCycle(b *testing.B) {
	for _, bc := range []struct {
		nodes  int
		spread bool
	}{{100, false}, {1000, false}, {1000, true}} {
		name := fmt.Sprintf("nodes=%d", bc.nodes)
		if bc.spread {
			name += "/zone-spread"
		}
		b.Run(name, func(b *testing.B) {
			nodes := make([]*corev1alpha1.Node, bc.nodes)
			for i := range nodes {
				nodes[i] = MakeNode(fmt.Sprintf("node-%04d", i)).Cap("cpu", "32", "memory", "128Gi", "pods", "1000").
					Labels(corev1.LabelTopologyZone, fmt.Sprintf("zone-%d", i%3)).Obj()
			}
			c := cacheWith(nodes, nil)
			pods := make([]*podInfo, b.N)
			for i := range pods {
				pb := MakePod(fmt.Sprintf("pod-%d", i), "bench").Labels("app", "web").Req("cpu", "10m", "memory", "16Mi")
				if bc.spread {
					pb.Spread(1, corev1.LabelTopologyZone, corev1.DoNotSchedule, "app", "web")
				}
				pods[i] = pb.Info()
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, fe, _ := c.schedule(pods[i], volumeInfo{}); fe != nil {
					b.Fatal(fe)
				}
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pods/s")
		})
	}
}
