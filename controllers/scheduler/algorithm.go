package scheduler

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// hardPodAffinityWeight is upstream's default weight of existing pods'
// required affinity terms in the preferred inter-pod affinity score.
const hardPodAffinityWeight = 1

// minFeasibleNodesToFind and the adaptive percentage follow upstream's
// percentageOfNodesToScore default: in large clusters a cycle stops
// filtering once it has found enough feasible nodes.
const minFeasibleNodesToFind = 100

// volumeInfo is what the scheduler learned about the pod's claims before
// the cycle: a message when the pod cannot be scheduled anywhere, and the
// node affinities of its bound volumes.
type volumeInfo struct {
	preFilterMsg string
	affinity     []*corev1.NodeSelector
	// unbound are where the unbound WaitForFirstConsumer claims can get
	// a volume (volume_filter.go).
	unbound []claimPlacement
}

// fitError says why no node fits a pod.
type fitError struct {
	numAllNodes  int
	preFilterMsg string
	// reasons counts, per reason, the nodes that failed with it.
	reasons map[string]int
	// resolvable are the nodes where removing pods might make room.
	resolvable []string
}

// Error is upstream's FitError message: "0/3 nodes are available: 1
// node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
// The reasons are sorted as strings, as upstream sorts them.
func (e *fitError) Error() string {
	msg := fmt.Sprintf("0/%d nodes are available:", e.numAllNodes)
	if e.preFilterMsg != "" {
		return msg + " " + e.preFilterMsg + "."
	}
	parts := make([]string, 0, len(e.reasons))
	for reason, n := range e.reasons {
		parts = append(parts, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(parts)
	return msg + " " + strings.Join(parts, ", ") + "."
}

// numFeasibleNodesToFind is upstream's adaptive percentage of nodes to score.
func numFeasibleNodesToFind(n int) int {
	if n < minFeasibleNodesToFind {
		return n
	}
	pct := 50 - n/125
	if pct < 5 {
		pct = 5
	}
	num := n * pct / 100
	if num < minFeasibleNodesToFind {
		return minFeasibleNodesToFind
	}
	return num
}

// prepareLocked computes the pod's cycle state over the cached nodes
// (upstream's PreFilter and PreScore). The cache lock is held.
func (c *Cache) prepareLocked(pi *podInfo, vol volumeInfo) *cycleState {
	cs := &cycleState{
		pod:          pi,
		requiredNode: nodeaffinity.GetRequiredNodeAffinity(pi.core),
		nsLabels:     c.nsLabels,
	}
	if a := pi.pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
		cs.preferredNode, _ = nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	for _, ns := range vol.affinity {
		sel, err := nodeaffinity.NewNodeSelector(ns)
		if err != nil {
			sel, _ = nodeaffinity.NewNodeSelector(&corev1.NodeSelector{}) // matches nothing, as an invalid selector
		}
		cs.volumeAffinity = append(cs.volumeAffinity, sel)
	}
	cs.unboundClaims = compilePlacements(vol.unbound)
	for _, n := range c.nominated {
		if n.info.key != pi.key && n.info.priority >= pi.priority {
			if cs.nominatedOn == nil {
				cs.nominatedOn = map[string][]*podInfo{}
			}
			cs.nominatedOn[n.node] = append(cs.nominatedOn[n.node], n.info)
		}
	}
	c.prepareSpreadLocked(cs)
	c.prepareInterPodLocked(cs)
	return cs
}

func (c *Cache) prepareSpreadLocked(cs *cycleState) {
	pod := cs.pod.pod
	for _, tsc := range pod.Spec.TopologySpreadConstraints {
		sel, err := selectorWithKeys(tsc.LabelSelector, pod.Labels, tsc.MatchLabelKeys, nil)
		if err != nil {
			sel = labels.Nothing()
		}
		sc := &spreadConstraint{
			maxSkew:       tsc.MaxSkew,
			key:           tsc.TopologyKey,
			selector:      sel,
			minDomains:    1,
			honorAffinity: tsc.NodeAffinityPolicy == nil || *tsc.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor,
			honorTaints:   tsc.NodeTaintsPolicy != nil && *tsc.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor,
			counts:        map[string]int{},
		}
		if tsc.MinDomains != nil && tsc.WhenUnsatisfiable == corev1.DoNotSchedule {
			sc.minDomains = *tsc.MinDomains
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			sc.selfMatch = 1
		}
		if tsc.WhenUnsatisfiable == corev1.ScheduleAnyway {
			cs.softSpread = append(cs.softSpread, sc)
		} else {
			cs.hardSpread = append(cs.hardSpread, sc)
		}
	}
	for _, group := range [][]*spreadConstraint{cs.hardSpread, cs.softSpread} {
		if len(group) == 0 {
			continue
		}
		// Each range of nodes counts into maps of its own; merged below.
		partial := make([][]map[string]int, c.par.workersFor(len(c.order)))
		c.par.ranges(len(c.order), func(r, lo, hi int) {
			local := make([]map[string]int, len(group))
			for i := range local {
				local[i] = map[string]int{}
			}
			eligible := make([]bool, len(group))
			for _, ni := range c.order[lo:hi] {
				if !cs.spreadNode(group, ni, eligible) {
					continue
				}
				for i, sc := range group {
					if !eligible[i] {
						continue
					}
					n := 0
					for _, p := range ni.pods {
						if cs.spreadMatches(sc, p) {
							n++
						}
					}
					local[i][ni.core.Labels[sc.key]] += n
				}
			}
			partial[r] = local
		})
		for _, local := range partial {
			for i := range local {
				for domain, n := range local[i] {
					group[i].counts[domain] += n
				}
			}
		}
		for _, sc := range group {
			sc.refreshMin()
		}
	}
}

func untoleratedHardTaint(pi *podInfo, ni *nodeInfo) bool {
	for i := range ni.core.Spec.Taints {
		t := &ni.core.Spec.Taints[i]
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !tolerated(pi.core.Spec.Tolerations, t) {
			return true
		}
	}
	return false
}

// prepareInterPodLocked counts what inter-pod affinity needs per topology
// domain (updateInterPod, addAffinityScore). A pod without affinity terms
// only meets the terms of existing pods, so only pods with terms are read.
func (c *Cache) prepareInterPodLocked(cs *cycleState) {
	pi := cs.pod
	cs.selfAffine = len(pi.requiredAffinity) > 0
	for i := range pi.requiredAffinity {
		if !pi.requiredAffinity[i].matches(pi, c.nsLabels) {
			cs.selfAffine = false
		}
	}
	cs.existingAnti = map[topoPair]int{}
	cs.affinityCounts = map[topoPair]int{}
	cs.antiCounts = map[topoPair]int{}
	cs.affinityScore = map[topoPair]int64{}
	if !pi.hasAffinity() {
		for _, ni := range c.order {
			if ni.affinityPods == 0 {
				continue
			}
			for _, e := range ni.pods {
				if e.hasAffinity() {
					cs.updateInterPod(ni, e, 1)
					cs.addAffinityScore(ni, e)
				}
			}
		}
		return
	}
	// Every pod may match the pod's terms: count in ranges, then merge.
	partial := make([]*cycleState, c.par.workersFor(len(c.order)))
	c.par.ranges(len(c.order), func(r, lo, hi int) {
		local := &cycleState{pod: pi, nsLabels: cs.nsLabels, existingAnti: map[topoPair]int{},
			affinityCounts: map[topoPair]int{}, antiCounts: map[topoPair]int{}, affinityScore: map[topoPair]int64{}}
		for _, ni := range c.order[lo:hi] {
			for _, e := range ni.pods {
				local.updateInterPod(ni, e, 1)
				local.addAffinityScore(ni, e)
			}
		}
		partial[r] = local
	})
	for _, local := range partial {
		if local == nil {
			continue
		}
		for _, m := range []struct{ from, into map[topoPair]int }{
			{local.existingAnti, cs.existingAnti}, {local.affinityCounts, cs.affinityCounts}, {local.antiCounts, cs.antiCounts}} {
			for p, n := range m.from {
				m.into[p] += n
			}
		}
		for p, w := range local.affinityScore {
			cs.affinityScore[p] += w
		}
	}
}

// scorer is one of the default profile's score plugins with its weight.
// skip tells, before any node is scored, that the plugin would give every
// node the same score (upstream's PreScore Skip), which cannot change the
// choice.
type scorer struct {
	name      string
	weight    int64
	score     func(cs *cycleState, ni *nodeInfo) int64
	normalize func(scores []int64)
	skip      func(cs *cycleState) bool
}

var scorers = []scorer{
	{"NodeResourcesFit", 1, scoreLeastAllocated, nil, nil},
	{"NodeResourcesBalancedAllocation", 1, scoreBalancedAllocation, nil, nil},
	{"NodeAffinity", 2, scoreNodeAffinity, func(s []int64) { normalizeScores(s, false) },
		func(cs *cycleState) bool { return cs.preferredNode == nil }},
	{"InterPodAffinity", 2, scoreInterPodAffinity, normalizeMinMax,
		func(cs *cycleState) bool { return len(cs.affinityScore) == 0 }},
	{"PodTopologySpread", 2, scoreTopologySpread, normalizeSpread,
		func(cs *cycleState) bool { return len(cs.softSpread) == 0 }},
	{"TaintToleration", 3, scoreTaints, func(s []int64) { normalizeScores(s, true) }, nil},
}

// nodeFailure is why one node does not fit.
type nodeFailure struct {
	node         string
	reasons      []string
	unresolvable bool
}

// findFeasibleLocked filters nodes in parallel, from a rotating start,
// until it has found numFeasibleNodesToFind feasible ones, as upstream's
// findNodesThatPassFilters. It returns them, or a fitError.
func (c *Cache) findFeasibleLocked(cs *cycleState) ([]*nodeInfo, *fitError) {
	n := len(c.order)
	want := numFeasibleNodesToFind(n)
	fe := &fitError{numAllNodes: n, reasons: map[string]int{}}
	// A pod that preempted on a node tries that node first, as upstream.
	if nom := cs.pod.pod.Status.NominatedNodeName; nom != "" {
		if ni := c.nodes[nom]; ni != nil && ni.node != nil {
			if reasons, _ := runFiltersWithNominated(cs, ni); len(reasons) == 0 {
				return []*nodeInfo{ni}, nil
			}
		}
	}
	if n == 0 {
		return nil, fe
	}
	feasible := make([]*nodeInfo, want)
	var found atomic.Int32
	var mu sync.Mutex
	var failed []nodeFailure
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := c.nextStart
	c.par.until(ctx, n, func(i int) {
		ni := c.order[(start+i)%n]
		reasons, unresolvable := runFiltersWithNominated(cs, ni)
		if len(reasons) == 0 {
			// Enough found: stop handing out nodes, and do not count this one.
			if k := int(found.Add(1)); k > want {
				cancel()
				found.Add(-1)
			} else {
				feasible[k-1] = ni
			}
			return
		}
		mu.Lock()
		failed = append(failed, nodeFailure{node: ni.name, reasons: reasons, unresolvable: unresolvable})
		mu.Unlock()
	})
	k := int(found.Load())
	c.nextStart = (start + k + len(failed)) % n
	if k > 0 {
		return feasible[:k], nil
	}
	for _, f := range failed {
		for _, r := range f.reasons {
			fe.reasons[r]++
		}
		if !f.unresolvable {
			fe.resolvable = append(fe.resolvable, f.node)
		}
	}
	sort.Strings(fe.resolvable)
	return nil, fe
}

// selectHost scores the feasible nodes, in parallel, and returns the best,
// picking at random among equals.
func selectHost(par parallelizer, cs *cycleState, feasible []*nodeInfo) string {
	if len(feasible) == 1 {
		return feasible[0].name
	}
	var active []*scorer
	for i := range scorers {
		if s := &scorers[i]; s.skip == nil || !s.skip(cs) {
			active = append(active, s)
		}
	}
	scores := make([][]int64, len(active))
	for i := range scores {
		scores[i] = make([]int64, len(feasible))
	}
	par.until(context.Background(), len(feasible), func(n int) {
		for i, s := range active {
			scores[i][n] = s.score(cs, feasible[n])
		}
	})
	total := make([]int64, len(feasible))
	for i, s := range active {
		if s.normalize != nil {
			s.normalize(scores[i])
		}
		for n := range total {
			total[n] += s.weight * scores[i][n]
		}
	}
	best, ties := 0, 1
	for i := 1; i < len(total); i++ {
		switch {
		case total[i] > total[best]:
			best, ties = i, 1
		case total[i] == total[best]:
			ties++
			if rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return feasible[best].name
}

// scoreLeastAllocated prefers nodes with more free cpu and memory, counting
// requests as upstream does for scoring (100m cpu and 200Mi memory for
// containers without requests).
func scoreLeastAllocated(cs *cycleState, ni *nodeInfo) int64 {
	least := func(requested, capacity int64) int64 {
		if capacity == 0 || requested > capacity {
			return 0
		}
		return (capacity - requested) * maxNodeScore / capacity
	}
	cpu := least(ni.nonZero.milliCPU+cs.pod.nonZero.milliCPU, ni.allocatable.milliCPU)
	mem := least(ni.nonZero.memory+cs.pod.nonZero.memory, ni.allocatable.memory)
	return (cpu + mem) / 2
}

// scoreBalancedAllocation prefers nodes whose cpu and memory use stay
// close to each other: (1 - standard deviation of the fractions) * 100.
func scoreBalancedAllocation(cs *cycleState, ni *nodeInfo) int64 {
	frac := func(requested, capacity int64) float64 {
		if capacity == 0 {
			return 1
		}
		return math.Min(1, float64(requested)/float64(capacity))
	}
	cpu := frac(ni.requested.milliCPU+cs.pod.requests.milliCPU, ni.allocatable.milliCPU)
	mem := frac(ni.requested.memory+cs.pod.requests.memory, ni.allocatable.memory)
	std := math.Abs(cpu-mem) / 2
	return int64((1 - std) * maxNodeScore)
}

func scoreNodeAffinity(cs *cycleState, ni *nodeInfo) int64 {
	if cs.preferredNode == nil {
		return 0
	}
	return cs.preferredNode.Score(ni.core)
}

func scoreInterPodAffinity(cs *cycleState, ni *nodeInfo) int64 {
	var s int64
	for p, w := range cs.affinityScore {
		if v, ok := ni.core.Labels[p.key]; ok && v == p.value {
			s += w
		}
	}
	return s
}

// scoreTopologySpread counts, for ScheduleAnyway constraints, the matching
// pods in the node's domains, weighted by the number of domains; fewer is
// better. Nodes missing a key score -1 and end up with 0.
func scoreTopologySpread(cs *cycleState, ni *nodeInfo) int64 {
	if len(cs.softSpread) == 0 {
		return 0
	}
	var s float64
	for _, c := range cs.softSpread {
		v, ok := ni.core.Labels[c.key]
		if !ok {
			return -1
		}
		w := math.Log(float64(len(c.counts) + 2))
		s += float64(c.counts[v]+int(c.maxSkew)-1) * w
	}
	return int64(math.Round(s))
}

func scoreTaints(cs *cycleState, ni *nodeInfo) int64 {
	var n int64
	for i := range ni.core.Spec.Taints {
		t := &ni.core.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectPreferNoSchedule {
			continue
		}
		ok := false
		for _, tol := range cs.pod.core.Spec.Tolerations {
			if (tol.Effect == "" || tol.Effect == corev1.TaintEffectPreferNoSchedule) && tol.ToleratesTaint(klog.Background(), t, false) {
				ok = true
				break
			}
		}
		if !ok {
			n++
		}
	}
	return n
}

// normalizeScores is upstream's DefaultNormalizeScore: scale to 0..100 by
// the maximum, reversed for scores where less is better.
func normalizeScores(s []int64, reverse bool) {
	var max int64
	for _, v := range s {
		if v > max {
			max = v
		}
	}
	for i, v := range s {
		switch {
		case max == 0 && reverse:
			s[i] = maxNodeScore
		case max == 0:
			s[i] = 0
		case reverse:
			s[i] = maxNodeScore - v*maxNodeScore/max
		default:
			s[i] = v * maxNodeScore / max
		}
	}
}

// normalizeMinMax scales to 0..100 between the minimum and the maximum.
func normalizeMinMax(s []int64) {
	if len(s) == 0 {
		return
	}
	min, max := s[0], s[0]
	for _, v := range s {
		min, max = minInt(min, v), maxInt(max, v)
	}
	for i, v := range s {
		if max > min {
			s[i] = (v - min) * maxNodeScore / (max - min)
		} else {
			s[i] = 0
		}
	}
}

// normalizeSpread is PodTopologySpread's normalization: fewer matching pods
// score higher; nodes that were ignored (-1) score 0.
func normalizeSpread(s []int64) {
	min, max := int64(math.MaxInt64), int64(0)
	for _, v := range s {
		if v < 0 {
			continue
		}
		min, max = minInt(min, v), maxInt(max, v)
	}
	for i, v := range s {
		switch {
		case v < 0:
			s[i] = 0
		case max == 0:
			s[i] = maxNodeScore
		default:
			s[i] = maxNodeScore * (max + min - v) / max
		}
	}
}

func minInt(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
