package scheduler

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Upstream's DefaultPreemptionArgs defaults: a dry run looks for candidates
// on at least this share of the nodes where preemption may help, and on at
// least this many.
const (
	minCandidateNodesPercentage = 10
	minCandidateNodesAbsolute   = 100
)

// candidate is a node where deleting victims makes room for a pod.
type candidate struct {
	node string
	// victims are the pods to delete, most important first.
	victims []*podInfo
	// pdbViolations counts the victims whose deletion violates a
	// PodDisruptionBudget.
	pdbViolations int
}

// preemption is what a failed cycle decided about preempting.
type preemption struct {
	// cand is where the pod preempts, nil when it does not.
	cand *candidate
	// lowerNominated are pods of lower priority nominated to cand's node:
	// they may no longer fit there and lose their nomination, as upstream.
	lowerNominated []*podInfo
	// clearNomination is set when preemption cannot help the pod at all:
	// a nomination it holds is stale.
	clearNomination bool
}

// findPreemptionLocked is upstream's DefaultPreemption PostFilter: on the
// nodes that failed for reasons removing pods can fix, starting at a random
// one, it dry-runs preemption in parallel until it has enough candidates,
// reading the PodDisruptionBudgets, and picks one as
// pickOneNodeForPreemption does.
func (c *Cache) findPreemptionLocked(cs *cycleState, fe *fitError, now time.Time) preemption {
	pi := cs.pod
	if !c.eligibleToPreemptLocked(pi, fe) {
		return preemption{}
	}
	potential := make([]*nodeInfo, 0, len(fe.resolvable))
	for _, name := range fe.resolvable {
		if ni := c.nodes[name]; ni != nil && ni.node != nil {
			potential = append(potential, ni)
		}
	}
	if len(potential) == 0 {
		return preemption{clearNomination: true}
	}
	offset, want := rand.IntN(len(potential)), numCandidates(len(potential))
	budgets := c.budgetsLocked()
	var mu sync.Mutex
	var cands []*candidate
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.par.until(ctx, len(potential), func(i int) {
		cand := selectVictims(cs, potential[(offset+i)%len(potential)], budgets, now)
		if cand == nil {
			return
		}
		mu.Lock()
		cands = append(cands, cand)
		if len(cands) >= want {
			cancel()
		}
		mu.Unlock()
	})
	if len(cands) == 0 {
		return preemption{clearNomination: true}
	}
	best := cands[0]
	for _, cand := range cands[1:] {
		if betterCandidate(cand, best, now) {
			best = cand
		}
	}
	p := preemption{cand: best}
	for _, n := range c.nominated {
		if n.node == best.node && n.info.key != pi.key && n.info.priority < pi.priority {
			p.lowerNominated = append(p.lowerNominated, n.info)
		}
	}
	sort.Slice(p.lowerNominated, func(i, j int) bool { return p.lowerNominated[i].key < p.lowerNominated[j].key })
	return p
}

// eligibleToPreemptLocked is upstream's PodEligibleToPreemptOthers: not with
// preemptionPolicy Never, and not while pods it preempted on its nominated
// node are still terminating, unless that node cannot take it any more.
func (c *Cache) eligibleToPreemptLocked(pi *podInfo, fe *fitError) bool {
	if p := pi.pod.Spec.PreemptionPolicy; p != nil && *p == corev1.PreemptNever {
		return false
	}
	nom := pi.pod.Status.NominatedNodeName
	ni := c.nodes[nom]
	if nom == "" || ni == nil || ni.node == nil {
		return true
	}
	if i := sort.SearchStrings(fe.resolvable, nom); i == len(fe.resolvable) || fe.resolvable[i] != nom {
		return true // the nominated node is out for reasons preemption cannot fix
	}
	for _, p := range ni.pods {
		if p.priority < pi.priority && terminatingByPreemption(p) {
			return false
		}
	}
	return true
}

// terminatingByPreemption tells whether a pod is going away because the
// scheduler preempted it (its DisruptionTarget condition says so).
func terminatingByPreemption(p *podInfo) bool {
	if p.pod.DeletionTimestamp == nil {
		return false
	}
	cond := meta.FindStatusCondition(p.pod.Status.Conditions, string(corev1.DisruptionTarget))
	return cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == corev1.PodReasonPreemptionByScheduler
}

// numCandidates is upstream's calculateNumCandidates.
func numCandidates(nodes int) int {
	n := nodes * minCandidateNodesPercentage / 100
	n = max(n, minCandidateNodesAbsolute)
	return min(n, nodes)
}

// selectVictims is upstream's SelectVictimsOnNode on a copy of the node and
// of the cycle state: remove every pod of lower priority, check that every
// filter then passes (with the nominated pods), and add the pods back,
// keeping each that still lets every filter pass: first those whose
// deletion would violate a PodDisruptionBudget, then the others, each group
// most important first. The others are the victims, counted as violations
// when they are of the first group. It returns nil when preemption cannot
// help.
func selectVictims(cs *cycleState, ni *nodeInfo, budgets []*budgetInfo, now time.Time) *candidate {
	trial, st := ni.clone(), cs.clone()
	var potential []*podInfo
	for _, p := range ni.pods {
		if p.priority < cs.pod.priority {
			potential = append(potential, p)
			trial.removePod(p.key)
			st.updateWithPod(trial, p, -1)
		}
	}
	if len(potential) == 0 {
		return nil
	}
	if reasons, _ := runFiltersWithNominated(st, trial); len(reasons) > 0 {
		return nil
	}
	sort.Slice(potential, func(i, j int) bool { return moreImportant(potential[i], potential[j], now) })
	violating, nonViolating := splitByBudgetViolation(potential, budgets)
	cand := &candidate{node: ni.name}
	reprieve := func(p *podInfo) bool {
		trial.addPod(p)
		st.updateWithPod(trial, p, 1)
		if reasons, _ := runFiltersWithNominated(st, trial); len(reasons) > 0 {
			trial.removePod(p.key)
			st.updateWithPod(trial, p, -1)
			cand.victims = append(cand.victims, p)
			return false
		}
		return true
	}
	for _, p := range violating {
		if !reprieve(p) {
			cand.pdbViolations++
		}
	}
	for _, p := range nonViolating {
		reprieve(p)
	}
	if len(cand.victims) == 0 {
		return nil
	}
	if len(violating) > 0 && len(nonViolating) > 0 {
		sort.Slice(cand.victims, func(i, j int) bool { return moreImportant(cand.victims[i], cand.victims[j], now) })
	}
	return cand
}

// moreImportant is upstream's MoreImportantPod: higher priority, then the
// one that started earlier (a pod not started yet counts as starting now).
func moreImportant(a, b *podInfo, now time.Time) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if sa, sb := a.started(now), b.started(now); !sa.Equal(sb) {
		return sa.Before(sb)
	}
	return a.key < b.key
}

func (pi *podInfo) started(now time.Time) time.Time {
	if pi.startTime.IsZero() {
		return now
	}
	return pi.startTime
}

// betterCandidate orders candidates as upstream's pickOneNodeForPreemption:
// the fewest PodDisruptionBudget violations, then the lowest priority of
// the most important victim, then the lowest sum of priorities, then the fewest victims, then
// the latest start among the victims of the highest priority; the node name
// breaks the remaining ties, so the choice does not depend on the order the
// dry run found candidates in.
func betterCandidate(a, b *candidate, now time.Time) bool {
	if a.pdbViolations != b.pdbViolations {
		return a.pdbViolations < b.pdbViolations
	}
	if ha, hb := a.victims[0].priority, b.victims[0].priority; ha != hb {
		return ha < hb
	}
	if sa, sb := prioritySum(a), prioritySum(b); sa != sb {
		return sa < sb
	}
	if len(a.victims) != len(b.victims) {
		return len(a.victims) < len(b.victims)
	}
	if ea, eb := earliestStart(a, now), earliestStart(b, now); !ea.Equal(eb) {
		return ea.After(eb)
	}
	return a.node < b.node
}

// earliestStart is upstream's GetEarliestPodStartTime: the earliest start
// among the victims of the highest priority.
func earliestStart(c *candidate, now time.Time) time.Time {
	top := c.victims[0].priority
	earliest := c.victims[0].started(now)
	for _, v := range c.victims[1:] {
		if v.priority == top && v.started(now).Before(earliest) {
			earliest = v.started(now)
		}
	}
	return earliest
}

// prioritySum adds priorities shifted to be positive, as upstream.
func prioritySum(c *candidate) int64 {
	var s int64
	for _, v := range c.victims {
		s += int64(v.priority) + math.MaxInt32 + 1
	}
	return s
}
