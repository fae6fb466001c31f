package scheduler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Reasons a node does not fit, worded as upstream's plugins word them so
// that messages read the same as kube-scheduler's.
const (
	reasonNodeName               = "node(s) didn't match the requested node name"
	reasonUnschedulable          = "node(s) were unschedulable"
	reasonNodeAffinity           = "node(s) didn't match Pod's node affinity/selector"
	reasonNodePorts              = "node(s) didn't have free ports for the requested pod ports"
	reasonTooManyPods            = "Too many pods"
	reasonPodAffinity            = "node(s) didn't match pod affinity rules"
	reasonPodAntiAffinity        = "node(s) didn't match pod anti-affinity rules"
	reasonExistingAntiAffinity   = "node(s) didn't satisfy existing pods anti-affinity rules"
	reasonSpread                 = "node(s) didn't match pod topology spread constraints"
	reasonSpreadMissingLabel     = "node(s) didn't match pod topology spread constraints (missing required label)"
	reasonVolumeNodeAffinity     = "node(s) had volume node affinity conflict"
	reasonUnboundImmediateClaims = "pod has unbound immediate PersistentVolumeClaims"
)

// filter is one of the default profile's filter plugins. It returns the
// reasons the node does not fit (none when it fits) and whether removing
// pods could never make it fit (upstream's UnschedulableAndUnresolvable),
// which rules the node out for preemption.
type filter struct {
	name string
	fn   func(cs *cycleState, ni *nodeInfo) (reasons []string, unresolvable bool)
}

// filters run in the order of upstream's default profile; a node's first
// failing filter gives its reasons.
var filters = []filter{
	{"NodeUnschedulable", filterUnschedulable},
	{"NodeName", filterNodeName},
	{"TaintToleration", filterTaints},
	{"NodeAffinity", filterNodeAffinity},
	{"NodePorts", filterNodePorts},
	{"NodeResourcesFit", filterResources},
	{"VolumeBinding", filterVolumeNodeAffinity},
	{"VolumeBinding", filterUnboundClaims},
	{"PodTopologySpread", filterTopologySpread},
	{"InterPodAffinity", filterInterPodAffinity},
}

// runFilters returns the reasons of the first filter the node fails.
func runFilters(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	for _, f := range filters {
		if reasons, unresolvable := f.fn(cs, ni); len(reasons) > 0 {
			return reasons, unresolvable
		}
	}
	return nil, false
}

// runFiltersWithNominated is upstream's RunFilterPluginsWithNominatedPods:
// pods nominated to the node (they preempted others there) with at least
// the pod's priority count as if they ran there, for every filter; and as
// they may yet land elsewhere, the pod must fit without them too.
func runFiltersWithNominated(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	var add []*podInfo
	for _, n := range cs.nominatedOn[ni.name] {
		if _, on := ni.pods[n.key]; !on {
			add = append(add, n)
		}
	}
	if len(add) > 0 {
		trial, st := ni.clone(), cs.clone()
		for _, n := range add {
			trial.addPod(n)
			st.updateWithPod(trial, n, 1)
		}
		if reasons, unresolvable := runFilters(st, trial); len(reasons) > 0 {
			return reasons, unresolvable
		}
	}
	return runFilters(cs, ni)
}

func filterUnschedulable(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	if !ni.core.Spec.Unschedulable {
		return nil, false
	}
	// A pod that tolerates the unschedulable taint may run on a cordoned node.
	taint := &corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}
	for i := range cs.pod.core.Spec.Tolerations {
		if cs.pod.core.Spec.Tolerations[i].ToleratesTaint(klog.Background(), taint, false) {
			return nil, false
		}
	}
	return []string{reasonUnschedulable}, true
}

func filterNodeName(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	if n := cs.pod.pod.Spec.NodeName; n != "" && n != ni.name {
		return []string{reasonNodeName}, true
	}
	return nil, false
}

func filterTaints(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	for i := range ni.core.Spec.Taints {
		t := &ni.core.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerated(cs.pod.core.Spec.Tolerations, t) {
			return []string{fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)}, true
		}
	}
	return nil, false
}

func tolerated(tolerations []corev1.Toleration, t *corev1.Taint) bool {
	for i := range tolerations {
		if tolerations[i].ToleratesTaint(klog.Background(), t, false) {
			return true
		}
	}
	return false
}

func filterNodeAffinity(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	if ok, _ := cs.requiredNode.Match(ni.core); !ok {
		return []string{reasonNodeAffinity}, true
	}
	return nil, false
}

func filterNodePorts(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	for _, want := range cs.pod.ports {
		for _, used := range ni.ports {
			if want.conflicts(used) {
				return []string{reasonNodePorts}, false
			}
		}
	}
	return nil, false
}

// filterResources is NodeResourcesFit: the pod's requests (the larger of the
// init containers' and the containers' sums, plus overhead, as upstream)
// must fit in what the node's allocatable leaves after the pods on it
// (nominated pods are added to the node by runFiltersWithNominated).
func filterResources(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	return insufficient(cs.pod, ni), false
}

func insufficient(pi *podInfo, ni *nodeInfo) []string {
	used := ni.requested
	pods := int64(len(ni.pods))
	var reasons []string
	if pods+1 > ni.allowedPods {
		reasons = append(reasons, reasonTooManyPods)
	}
	req := pi.requests
	if req.isZero() {
		return reasons
	}
	if req.milliCPU > 0 && req.milliCPU > ni.allocatable.milliCPU-used.milliCPU {
		reasons = append(reasons, "Insufficient cpu")
	}
	if req.memory > 0 && req.memory > ni.allocatable.memory-used.memory {
		reasons = append(reasons, "Insufficient memory")
	}
	if req.ephemeralStorage > 0 && req.ephemeralStorage > ni.allocatable.ephemeralStorage-used.ephemeralStorage {
		reasons = append(reasons, "Insufficient ephemeral-storage")
	}
	for _, name := range sortedKeys(req.scalar) {
		v := req.scalar[name]
		if v > 0 && v > ni.allocatable.scalar[name]-used.scalar[name] {
			reasons = append(reasons, fmt.Sprintf("Insufficient %s", name))
		}
	}
	return reasons
}

func filterVolumeNodeAffinity(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	for _, sel := range cs.volumeAffinity {
		if !sel.Match(ni.core) {
			return []string{reasonVolumeNodeAffinity}, true
		}
	}
	return nil, false
}

// filterTopologySpread is PodTopologySpread for DoNotSchedule constraints:
// placing the pod in the node's domain must not make that domain exceed
// the least populated domain by more than maxSkew.
func filterTopologySpread(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	for _, c := range cs.hardSpread {
		value, ok := ni.core.Labels[c.key]
		if !ok {
			return []string{reasonSpreadMissingLabel}, true
		}
		if int32(c.counts[value]+c.selfMatch-c.minCount) > c.maxSkew {
			return []string{reasonSpread}, false
		}
	}
	return nil, false
}

// filterInterPodAffinity is InterPodAffinity: the pod's required affinity
// and anti-affinity terms, and the required anti-affinity terms of the
// pods already placed, evaluated per topology domain.
func filterInterPodAffinity(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	nodeLabels := ni.core.Labels
	// Walk the smaller of the node's labels and the rejected domains.
	if len(cs.existingAnti) > len(nodeLabels) {
		for k, v := range nodeLabels {
			if cs.existingAnti[topoPair{k, v}] > 0 {
				return []string{reasonExistingAntiAffinity}, false
			}
		}
	} else {
		for p, n := range cs.existingAnti {
			if v, ok := nodeLabels[p.key]; ok && v == p.value && n > 0 {
				return []string{reasonExistingAntiAffinity}, false
			}
		}
	}
	for _, t := range cs.pod.requiredAntiAffinity {
		if v, ok := nodeLabels[t.topologyKey]; ok && cs.antiCounts[topoPair{t.topologyKey, v}] > 0 {
			return []string{reasonPodAntiAffinity}, false
		}
	}
	if len(cs.pod.requiredAffinity) == 0 {
		return nil, false
	}
	all := true
	for _, t := range cs.pod.requiredAffinity {
		v, ok := nodeLabels[t.topologyKey]
		if !ok {
			return []string{reasonPodAffinity}, true
		}
		if cs.affinityCounts[topoPair{t.topologyKey, v}] == 0 {
			all = false
		}
	}
	// The first pod of a group that selects itself may go anywhere that has
	// the topology keys, as upstream.
	if !all && !(len(cs.affinityCounts) == 0 && cs.selfAffine) {
		return []string{reasonPodAffinity}, true
	}
	return nil, false
}

// topoPair is a topology domain: a node label key and value.
type topoPair struct{ key, value string }

// spreadConstraint is a compiled topology spread constraint with the
// matching pods counted per domain over the eligible nodes.
type spreadConstraint struct {
	maxSkew       int32
	key           string
	selector      labels.Selector
	minDomains    int32
	honorAffinity bool
	honorTaints   bool
	counts        map[string]int
	selfMatch     int
	// minCount is the count of the least populated domain, or 0 while there
	// are fewer domains than minDomains (refreshMin keeps it current).
	minCount int
}

func (c *spreadConstraint) refreshMin() {
	c.minCount = 0
	if int32(len(c.counts)) < c.minDomains || len(c.counts) == 0 {
		return
	}
	m := -1
	for _, n := range c.counts {
		if m < 0 || n < m {
			m = n
		}
	}
	c.minCount = m
}

// cycleState is what one scheduling attempt computes for its pod before
// looking at nodes one by one (upstream's PreFilter and PreScore).
type cycleState struct {
	pod            *podInfo
	requiredNode   nodeaffinity.RequiredNodeAffinity
	preferredNode  *nodeaffinity.PreferredSchedulingTerms
	volumeAffinity []*nodeaffinity.NodeSelector
	unboundClaims  []*nodeaffinity.NodeSelector
	// nominatedOn are, per node, the pods nominated there with at least
	// this pod's priority.
	nominatedOn map[string][]*podInfo
	// nsLabels gives a namespace's labels, for namespace selectors.
	nsLabels func(string) labels.Set

	existingAnti   map[topoPair]int
	affinityCounts map[topoPair]int
	antiCounts     map[topoPair]int
	selfAffine     bool

	hardSpread []*spreadConstraint
	softSpread []*spreadConstraint

	// preferred inter-pod affinity score per domain
	affinityScore map[topoPair]int64
}

// isTerminal tells whether a pod no longer holds node resources.
func isTerminal(pod *corev1alpha1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}
