package bench

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// result summarises one scenario run.
type result struct {
	pods       int
	throughput float64 // pods per second, first create to last bind
	p50, p99   time.Duration
	total      time.Duration
	created    time.Duration // first create to last create
	// firstBound and hundredth are first create to the first and the
	// 100th bind: how soon binding starts, and how the burst is used.
	firstBound, hundredth time.Duration
	// firstSeen is first create to the watch delivering the first pod.
	firstSeen time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("%d pods in %v: %.1f pods/s, create-to-bound p50 %v, p99 %v; last created at %v, first seen by a watch at %v, first bound at %v, 100th at %v",
		r.pods, r.total.Round(time.Millisecond), r.throughput, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.created.Round(time.Millisecond),
		r.firstSeen.Round(time.Millisecond), r.firstBound.Round(time.Millisecond), r.hundredth.Round(time.Millisecond))
}

// summarize computes the figures from when each pod was created and bound;
// pods never bound count as missing and fail the benchmark.
func summarize(b *testing.B, created, bound map[string]time.Time, firstSeen time.Time) result {
	b.Helper()
	var lat []time.Duration
	var binds []time.Time
	var first, lastCreated time.Time
	for name, c := range created {
		if c.After(lastCreated) {
			lastCreated = c
		}
		t, ok := bound[name]
		if !ok {
			b.Fatalf("pod %s was never bound (%d of %d bound)", name, len(bound), len(created))
		}
		lat = append(lat, t.Sub(c))
		binds = append(binds, t)
		if first.IsZero() || c.Before(first) {
			first = c
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(binds, func(i, j int) bool { return binds[i].Before(binds[j]) })
	total := binds[len(binds)-1].Sub(first)
	return result{
		pods: len(lat), total: total, created: lastCreated.Sub(first),
		throughput: float64(len(lat)) / total.Seconds(),
		p50:        lat[len(lat)*50/100], p99: lat[min(len(lat)-1, len(lat)*99/100)],
		firstBound: binds[0].Sub(first), firstSeen: firstSeen.Sub(first), hundredth: binds[min(len(binds)-1, 99)].Sub(first),
	}
}

func report(b *testing.B, prefix string, r result) {
	b.Helper()
	b.ReportMetric(r.throughput, prefix+"-pods/s")
	b.ReportMetric(float64(r.p50.Milliseconds()), prefix+"-p50-ms")
	b.ReportMetric(float64(r.p99.Milliseconds()), prefix+"-p99-ms")
	fmt.Printf("%-40s %s\n", b.Name()+" "+prefix+":", r)
}
