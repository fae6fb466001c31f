package scheduler

import (
	"math"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// candidate is a node where deleting victims makes room for a pod.
type candidate struct {
	node    string
	victims []*podInfo
}

// findPreemptionLocked is upstream's DefaultPreemption without disruption
// budgets: on each node that failed for reasons removing pods can fix, it
// removes every pod of lower priority, checks that the pod then fits, and
// reprieves as many victims as it can, most important first. Of the
// candidates it picks the one whose most important victim has the lowest
// priority, then the lowest sum of priorities, then the fewest victims.
//
// Filters that depend on other pods' labels (inter-pod affinity, topology
// spread) are evaluated as they were before removing victims, so a pod that
// only an anti-affinity conflict keeps out is not helped by preemption.
func (c *Cache) findPreemptionLocked(cs *cycleState, fe *fitError) *candidate {
	pi := cs.pod
	if p := pi.pod.Spec.PreemptionPolicy; p != nil && *p == corev1.PreemptNever {
		return nil
	}
	// A pod that already preempted waits for its victims to go, as upstream.
	if nom := pi.pod.Status.NominatedNodeName; nom != "" {
		if ni := c.nodes[nom]; ni != nil {
			for _, p := range ni.pods {
				if p.pod.DeletionTimestamp != nil && p.priority < pi.priority {
					return nil
				}
			}
		}
	}
	var best *candidate
	for _, name := range fe.resolvable {
		ni := c.nodes[name]
		if ni == nil || ni.node == nil {
			continue
		}
		cand := victimsOn(cs, ni)
		if cand != nil && (best == nil || betterCandidate(cand, best)) {
			best = cand
		}
	}
	return best
}

func victimsOn(cs *cycleState, ni *nodeInfo) *candidate {
	trial := ni.clone()
	var potential []*podInfo
	for _, p := range ni.pods {
		if p.priority < cs.pod.priority {
			potential = append(potential, p)
			trial.removePod(p.key)
		}
	}
	if len(potential) == 0 {
		return nil
	}
	if reasons, _ := runFilters(cs, trial); len(reasons) > 0 {
		return nil
	}
	// Most important first: higher priority, then older.
	sort.Slice(potential, func(i, j int) bool {
		a, b := potential[i], potential[j]
		if a.priority != b.priority {
			return a.priority > b.priority
		}
		ta, tb := a.pod.CreationTimestamp, b.pod.CreationTimestamp
		if !ta.Equal(&tb) {
			return ta.Before(&tb)
		}
		return a.key < b.key
	})
	cand := &candidate{node: ni.name}
	for _, p := range potential {
		trial.addPod(p)
		if reasons, _ := runFilters(cs, trial); len(reasons) > 0 {
			trial.removePod(p.key)
			cand.victims = append(cand.victims, p)
		}
	}
	if len(cand.victims) == 0 {
		return nil
	}
	return cand
}

// betterCandidate orders candidates as upstream's pickOneNodeForPreemption.
func betterCandidate(a, b *candidate) bool {
	if ha, hb := highestPriority(a), highestPriority(b); ha != hb {
		return ha < hb
	}
	if sa, sb := prioritySum(a), prioritySum(b); sa != sb {
		return sa < sb
	}
	if len(a.victims) != len(b.victims) {
		return len(a.victims) < len(b.victims)
	}
	return a.node < b.node
}

func highestPriority(c *candidate) int32 {
	h := int32(math.MinInt32)
	for _, v := range c.victims {
		if v.priority > h {
			h = v.priority
		}
	}
	return h
}

// prioritySum adds priorities shifted to be positive, as upstream.
func prioritySum(c *candidate) int64 {
	var s int64
	for _, v := range c.victims {
		s += int64(v.priority) + math.MaxInt32 + 1
	}
	return s
}
