package scheduler

import (
	"maps"

	"k8s.io/apimachinery/pkg/labels"
)

// clone copies the counts that updateWithPod changes, so that preemption
// and nominated pods can try a node without touching the cycle's state.
func (cs *cycleState) clone() *cycleState {
	c := *cs
	c.hardSpread = make([]*spreadConstraint, len(cs.hardSpread))
	for i, sc := range cs.hardSpread {
		cp := *sc
		cp.counts = maps.Clone(sc.counts)
		c.hardSpread[i] = &cp
	}
	c.existingAnti = maps.Clone(cs.existingAnti)
	c.affinityCounts = maps.Clone(cs.affinityCounts)
	c.antiCounts = maps.Clone(cs.antiCounts)
	return &c
}

// updateWithPod accounts pod e on node ni (sign 1) or takes it away
// (sign -1) in the counts the filters read: upstream's PreFilter AddPod and
// RemovePod extensions of PodTopologySpread and InterPodAffinity. ni
// supplies the node's labels and taints; its pods are not read.
func (cs *cycleState) updateWithPod(ni *nodeInfo, e *podInfo, sign int) {
	cs.updateSpread(cs.hardSpread, ni, e, sign)
	cs.updateInterPod(ni, e, sign)
}

// spreadNode tells whether a node's domains count for a group of spread
// constraints: the node has every key of the group. It then fills
// eligible with whether each constraint counts the node under its
// node-affinity and taint inclusion policies.
func (cs *cycleState) spreadNode(group []*spreadConstraint, ni *nodeInfo, eligible []bool) bool {
	for _, sc := range group {
		if _, has := ni.core.Labels[sc.key]; !has {
			return false
		}
	}
	for i, sc := range group {
		eligible[i] = true
		if sc.honorAffinity {
			if match, _ := cs.requiredNode.Match(ni.core); !match {
				eligible[i] = false
				continue
			}
		}
		if sc.honorTaints && untoleratedHardTaint(cs.pod, ni) {
			eligible[i] = false
		}
	}
	return true
}

// spreadMatches tells whether an existing pod counts for a constraint: same
// namespace as the incoming pod, not terminating, selected.
func (cs *cycleState) spreadMatches(sc *spreadConstraint, e *podInfo) bool {
	return e.pod.Namespace == cs.pod.pod.Namespace && e.pod.DeletionTimestamp == nil && sc.selector.Matches(labels.Set(e.pod.Labels))
}

func (cs *cycleState) updateSpread(group []*spreadConstraint, ni *nodeInfo, e *podInfo, sign int) {
	if len(group) == 0 {
		return
	}
	eligible := make([]bool, len(group))
	if !cs.spreadNode(group, ni, eligible) {
		return
	}
	for i, sc := range group {
		if eligible[i] && cs.spreadMatches(sc, e) {
			sc.counts[ni.core.Labels[sc.key]] += sign
			sc.refreshMin() // only a constraint whose counts moved
		}
	}
}

// updateInterPod counts, per topology domain, the existing pods the
// incoming pod's required (anti-)affinity terms select, and the existing
// pods whose required anti-affinity terms select the incoming pod. A count
// that drops to zero is removed: an empty affinityCounts means no pod
// anywhere matches, which lets the first pod of a self-affine group in.
func (cs *cycleState) updateInterPod(ni *nodeInfo, e *podInfo, sign int) {
	nl := ni.core.Labels
	bump := func(m map[topoPair]int, p topoPair) {
		m[p] += sign
		if m[p] == 0 {
			delete(m, p)
		}
	}
	for _, set := range []struct {
		terms []affinityTerm
		into  map[topoPair]int
	}{{cs.pod.requiredAffinity, cs.affinityCounts}, {cs.pod.requiredAntiAffinity, cs.antiCounts}} {
		for i := range set.terms {
			t := &set.terms[i]
			if v, ok := nl[t.topologyKey]; ok && t.matches(e, cs.nsLabels) {
				bump(set.into, topoPair{t.topologyKey, v})
			}
		}
	}
	for i := range e.requiredAntiAffinity {
		t := &e.requiredAntiAffinity[i]
		if v, ok := nl[t.topologyKey]; ok && t.matches(cs.pod, cs.nsLabels) {
			bump(cs.existingAnti, topoPair{t.topologyKey, v})
		}
	}
}

// addAffinityScore adds what an existing pod contributes to the preferred
// inter-pod affinity score of its domains: the incoming pod's preferred
// terms that select it, and, for symmetry as upstream, its own required
// affinity (hardPodAffinityWeight) and preferred terms that select the
// incoming pod.
func (cs *cycleState) addAffinityScore(ni *nodeInfo, e *podInfo) {
	nl := ni.core.Labels
	add := func(terms []affinityTerm, target *podInfo, weight func(*affinityTerm) int64) {
		for i := range terms {
			t := &terms[i]
			if v, ok := nl[t.topologyKey]; ok && t.matches(target, cs.nsLabels) {
				cs.affinityScore[topoPair{t.topologyKey, v}] += weight(t)
			}
		}
	}
	plus := func(t *affinityTerm) int64 { return int64(t.weight) }
	minus := func(t *affinityTerm) int64 { return -int64(t.weight) }
	add(cs.pod.preferredAffinity, e, plus)
	add(cs.pod.preferredAntiAffinity, e, minus)
	add(e.requiredAffinity, cs.pod, func(*affinityTerm) int64 { return hardPodAffinityWeight })
	add(e.preferredAffinity, cs.pod, plus)
	add(e.preferredAntiAffinity, cs.pod, minus)
}
