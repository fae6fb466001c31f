package scheduler

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// clusterOf builds n nodes in three zones, each running a pod of priority
// i%7 that takes all its cpu, labelled app=web on every other node, and a
// pod with required anti-affinity to app=db on every fifth.
func clusterOf(n int) ([]*corev1alpha1.Node, []*corev1alpha1.Pod) {
	var nodes []*corev1alpha1.Node
	var pods []*corev1alpha1.Pod
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("n%03d", i)
		nodes = append(nodes, MakeNode(name).Cap("cpu", "2").Labels(corev1.LabelTopologyZone, fmt.Sprintf("z%d", i%3)).Obj())
		pb := MakePod(fmt.Sprintf("full-%d", i), "ns").Node(name).Priority(int32(i%7)).Req("cpu", "2")
		if i%2 == 0 {
			pb.Labels("app", "web")
		}
		pods = append(pods, pb.Obj())
		if i%5 == 0 {
			pods = append(pods, MakePod(fmt.Sprintf("loner-%d", i), "ns").Node(name).Priority(1000).
				PodAntiAffinity(term(corev1.LabelHostname, "app", "db")).Obj())
		}
	}
	return nodes, pods
}

// The parallel cycle must decide what the serial one decides: the counts
// merged from ranges of nodes, the reasons collected from workers, and the
// preemption candidate found by the parallel dry run.
func TestParallelCycleMatchesSerial(t *testing.T) {
	nodes, pods := clusterOf(100)
	serial, parallel := cacheWith(nodes, pods), cacheWith(nodes, pods)
	serial.SetParallelism(1)
	// Four workers whatever GOMAXPROCS is, so the comparison is never
	// serial against serial on a one-CPU runner.
	parallel.par = parallelizer{workers: 4}
	if parallel.par.workersFor(len(nodes)) < 2 {
		t.Fatalf("100 nodes must be split between workers")
	}
	now := time.Now()

	for name, pod := range map[string]*podInfo{
		"zone spread": MakePod("s", "ns").Labels("app", "web").Spread(1, corev1.LabelTopologyZone, corev1.DoNotSchedule, "app", "web").Info(),
		"anti-affinity and affinity": MakePod("a", "ns").Labels("app", "db").PodAntiAffinity(term(corev1.LabelTopologyZone, "app", "nothing")).
			PodAffinity(term(corev1.LabelTopologyZone, "app", "web")).Info(),
	} {
		if diff := cmp.Diff(filterResults(serial, pod, volumeInfo{}), filterResults(parallel, pod, volumeInfo{})); diff != "" {
			t.Errorf("%s: reasons per node, serial vs parallel (-serial +parallel):\n%s", name, diff)
		}
	}

	pod := MakePod("p", "ns").Priority(100).Req("cpu", "2").Info()
	_, feS, pS := serial.schedule(pod, volumeInfo{}, now)
	_, feP, pP := parallel.schedule(pod, volumeInfo{}, now)
	if feS == nil || feP == nil {
		t.Fatalf("want fit errors, got %v and %v", feS, feP)
	}
	if feS.Error() != feP.Error() {
		t.Errorf("fit error: serial %q, parallel %q", feS.Error(), feP.Error())
	}
	if diff := cmp.Diff(feS.resolvable, feP.resolvable); diff != "" {
		t.Errorf("nodes where preemption may help (-serial +parallel):\n%s", diff)
	}
	if pS.cand == nil || pP.cand == nil {
		t.Fatalf("want candidates, got %+v and %+v", pS, pP)
	}
	// Priority 0 victims on n000, n007, ...: the lowest name wins the tie.
	if pS.cand.node != "n000" || pP.cand.node != "n000" {
		t.Errorf("candidates: serial %s, parallel %s, want n000", pS.cand.node, pP.cand.node)
	}
}

// Over many nodes the cycle stops at numFeasibleNodesToFind feasible nodes
// and the next cycle starts where this one stopped.
func TestParallelCycleSamplesNodes(t *testing.T) {
	var nodes []*corev1alpha1.Node
	for i := 0; i < 1000; i++ {
		nodes = append(nodes, MakeNode(fmt.Sprintf("n%04d", i)).Obj())
	}
	c := cacheWith(nodes, nil)
	pod := MakePod("p", "ns").Req("cpu", "100m").Info()
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.prepareLocked(pod, volumeInfo{})
	feasible, fe := c.findFeasibleLocked(cs)
	if fe != nil {
		t.Fatal(fe)
	}
	if want := numFeasibleNodesToFind(1000); len(feasible) != want || want != 420 {
		t.Errorf("found %d feasible nodes, want %d (42%% of 1000)", len(feasible), want)
	}
	seen := map[string]bool{}
	for _, ni := range feasible {
		if ni == nil || seen[ni.name] {
			t.Fatalf("feasible list has a hole or a duplicate: %v", ni)
		}
		seen[ni.name] = true
	}
	if c.nextStart < 420 {
		t.Errorf("next cycle starts at %d, want at least 420", c.nextStart)
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	for nodes, want := range map[int]int{10: 10, 99: 99, 100: 100, 250: 120, 1000: 420, 5000: 500, 6000: 300, 20000: 1000} {
		if got := numFeasibleNodesToFind(nodes); got != want {
			t.Errorf("%d nodes: %d, want %d", nodes, got, want)
		}
	}
}

func TestParallelizerCoversEveryPieceOnce(t *testing.T) {
	for _, workers := range []int{1, 2, 16} {
		p := parallelizer{workers: workers}
		for _, pieces := range []int{0, 1, 31, 100, 1000, 5001} {
			var mu sync.Mutex
			seen := make([]int, pieces)
			p.until(context.Background(), pieces, func(i int) { mu.Lock(); seen[i]++; mu.Unlock() })
			inRanges := make([]int, pieces)
			n := p.ranges(pieces, func(r, lo, hi int) {
				if r >= p.workersFor(pieces) {
					t.Errorf("range %d of at most %d", r, p.workersFor(pieces))
				}
				mu.Lock()
				for i := lo; i < hi; i++ {
					inRanges[i]++
				}
				mu.Unlock()
			})
			if n > p.workersFor(pieces) {
				t.Errorf("%d workers, %d pieces: %d ranges", workers, pieces, n)
			}
			for i := range seen {
				if seen[i] != 1 || inRanges[i] != 1 {
					t.Fatalf("%d workers, %d pieces: piece %d ran %d times, in %d ranges", workers, pieces, i, seen[i], inRanges[i])
				}
			}
		}
	}
}

func TestParallelizerStopsWhenCancelled(t *testing.T) {
	p := parallelizer{workers: 2}
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Int64
	p.until(ctx, 10000, func(i int) {
		if ran.Add(1) == 50 {
			cancel()
		}
	})
	if n := ran.Load(); n < 50 || n > 50+2*100 {
		t.Errorf("ran %d pieces after cancelling at the 50th, want at most a chunk more per worker", n)
	}
}
