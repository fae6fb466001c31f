package scheduler

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	resourcehelper "k8s.io/component-helpers/resource"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Scheduler names this scheduler answers to.
const (
	// DefaultSchedulerName is upstream's default spec.schedulerName.
	DefaultSchedulerName = corev1.DefaultSchedulerName
	// SkiffSchedulerName may be set explicitly to ask for skiff's scheduler.
	SkiffSchedulerName = "skiff-scheduler"
)

// Defaults used for scoring pods that request nothing, as upstream
// (pkg/scheduler/util DefaultMilliCPURequest, DefaultMemoryRequest).
const (
	defaultMilliCPURequest = 100
	defaultMemoryRequest   = 200 * 1024 * 1024
)

// maxNodeScore is the score of the best node for one score function.
const maxNodeScore = 100

// resources is a ResourceList in integers: milli-CPU, bytes and counts.
type resources struct {
	milliCPU         int64
	memory           int64
	ephemeralStorage int64
	scalar           map[corev1.ResourceName]int64
}

func resourcesFrom(rl corev1.ResourceList) resources {
	var r resources
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.milliCPU += q.MilliValue()
		case corev1.ResourceMemory:
			r.memory += q.Value()
		case corev1.ResourceEphemeralStorage:
			r.ephemeralStorage += q.Value()
		case corev1.ResourcePods:
			// Counted separately, as allowed pods.
		default:
			if r.scalar == nil {
				r.scalar = map[corev1.ResourceName]int64{}
			}
			r.scalar[name] += q.Value()
		}
	}
	return r
}

func (r *resources) add(o resources, sign int64) {
	r.milliCPU += sign * o.milliCPU
	r.memory += sign * o.memory
	r.ephemeralStorage += sign * o.ephemeralStorage
	for name, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = map[corev1.ResourceName]int64{}
		}
		r.scalar[name] += sign * v
	}
}

func (r resources) isZero() bool {
	if r.milliCPU != 0 || r.memory != 0 || r.ephemeralStorage != 0 {
		return false
	}
	for _, v := range r.scalar {
		if v != 0 {
			return false
		}
	}
	return true
}

// hostPort is one host port a pod's container asks for.
type hostPort struct {
	ip       string
	protocol corev1.Protocol
	port     int32
}

// conflicts tells whether two host ports cannot be served on one node: the
// same protocol and port on the same address, or on the wildcard address.
func (p hostPort) conflicts(o hostPort) bool {
	if p.port != o.port || p.protocol != o.protocol {
		return false
	}
	return p.ip == o.ip || isWildcard(p.ip) || isWildcard(o.ip)
}

func isWildcard(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

// affinityTerm is a compiled PodAffinityTerm.
type affinityTerm struct {
	namespaces  sets.Set[string]
	nsSelector  labels.Selector // nil: only namespaces; Everything() for {}
	selector    labels.Selector
	topologyKey string
	weight      int32 // for preferred terms
}

// podInfo is a pod with what the scheduler computes from it once.
type podInfo struct {
	key      string
	pod      *corev1alpha1.Pod
	core     *corev1.Pod // ObjectMeta and Spec, for the component-helpers
	requests resources   // with init containers and overhead, as upstream
	nonZero  resources   // cpu and memory, with defaults for empty requests, for scoring
	priority int32
	ports    []hostPort
	// startTime is status.startTime; zero while the pod has not started,
	// which preemption reads as "now", as upstream's GetPodStartTime.
	startTime time.Time

	requiredAffinity      []affinityTerm
	requiredAntiAffinity  []affinityTerm
	preferredAffinity     []affinityTerm
	preferredAntiAffinity []affinityTerm
}

func podKey(namespace, name string) string { return namespace + "/" + name }

// newPodInfo computes a podInfo. Invalid label selectors in affinity terms
// match nothing, as upstream treats a term it cannot parse.
func newPodInfo(pod *corev1alpha1.Pod) *podInfo {
	core := &corev1.Pod{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}
	pi := &podInfo{
		key:      podKey(pod.Namespace, pod.Name),
		pod:      pod,
		core:     core,
		requests: resourcesFrom(resourcehelper.PodRequests(core, resourcehelper.PodResourcesOptions{})),
	}
	nz := resourcesFrom(resourcehelper.PodRequests(core, resourcehelper.PodResourcesOptions{
		NonMissingContainerRequests: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewMilliQuantity(defaultMilliCPURequest, resource.DecimalSI),
			corev1.ResourceMemory: *resource.NewQuantity(defaultMemoryRequest, resource.BinarySI),
		},
	}))
	pi.nonZero = resources{milliCPU: nz.milliCPU, memory: nz.memory}
	if pod.Spec.Priority != nil {
		pi.priority = *pod.Spec.Priority
	}
	if pod.Status.StartTime != nil {
		pi.startTime = pod.Status.StartTime.Time
	}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.HostPort <= 0 {
					continue
				}
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP // list-item defaults are not stored by skiff's CRDs
				}
				pi.ports = append(pi.ports, hostPort{ip: p.HostIP, protocol: proto, port: p.HostPort})
			}
		}
	}
	if a := pod.Spec.Affinity; a != nil {
		if pa := a.PodAffinity; pa != nil {
			pi.requiredAffinity = compileTerms(pod, pa.RequiredDuringSchedulingIgnoredDuringExecution, nil)
			pi.preferredAffinity = compileTerms(pod, nil, pa.PreferredDuringSchedulingIgnoredDuringExecution)
		}
		if pa := a.PodAntiAffinity; pa != nil {
			pi.requiredAntiAffinity = compileTerms(pod, pa.RequiredDuringSchedulingIgnoredDuringExecution, nil)
			pi.preferredAntiAffinity = compileTerms(pod, nil, pa.PreferredDuringSchedulingIgnoredDuringExecution)
		}
	}
	return pi
}

func compileTerms(pod *corev1alpha1.Pod, required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm) []affinityTerm {
	var out []affinityTerm
	add := func(t corev1.PodAffinityTerm, weight int32) {
		sel, err := selectorWithKeys(t.LabelSelector, pod.Labels, t.MatchLabelKeys, t.MismatchLabelKeys)
		if err != nil {
			sel = labels.Nothing()
		}
		at := affinityTerm{namespaces: sets.New(t.Namespaces...), selector: sel, topologyKey: t.TopologyKey, weight: weight}
		if t.NamespaceSelector != nil {
			if at.nsSelector, err = metav1LabelSelectorAsSelector(t.NamespaceSelector); err != nil {
				at.nsSelector = labels.Nothing()
			}
		}
		if len(t.Namespaces) == 0 && t.NamespaceSelector == nil {
			at.namespaces.Insert(pod.Namespace)
		}
		out = append(out, at)
	}
	for _, t := range required {
		add(t, 0)
	}
	for _, w := range preferred {
		add(w.PodAffinityTerm, w.Weight)
	}
	return out
}

// matches tells whether the term selects the pod; nsLabels gives the labels
// of a namespace, for namespace selectors.
func (t *affinityTerm) matches(pi *podInfo, nsLabels func(string) labels.Set) bool {
	if !t.namespaces.Has(pi.pod.Namespace) {
		if t.nsSelector == nil || !t.nsSelector.Matches(nsLabels(pi.pod.Namespace)) {
			return false
		}
	}
	return t.selector.Matches(labels.Set(pi.pod.Labels))
}

func (pi *podInfo) hasAffinity() bool {
	return len(pi.requiredAffinity)+len(pi.requiredAntiAffinity)+len(pi.preferredAffinity)+len(pi.preferredAntiAffinity) > 0
}

// nodeInfo is a node with the pods bound or assumed on it.
type nodeInfo struct {
	name         string
	node         *corev1alpha1.Node // nil while only pods name the node
	core         *corev1.Node       // ObjectMeta and Spec, for the component-helpers
	allocatable  resources
	allowedPods  int64
	requested    resources
	nonZero      resources
	pods         map[string]*podInfo
	ports        []hostPort
	affinityPods int // pods with any affinity term, for inter-pod affinity
}

func newNodeInfo(name string) *nodeInfo {
	return &nodeInfo{name: name, pods: map[string]*podInfo{}}
}

func (ni *nodeInfo) setNode(node *corev1alpha1.Node) {
	ni.node = node
	ni.core = &corev1.Node{ObjectMeta: node.ObjectMeta, Spec: node.Spec}
	ni.allocatable = resourcesFrom(node.Status.Allocatable)
	ni.allowedPods = node.Status.Allocatable.Pods().Value()
}

func (ni *nodeInfo) addPod(pi *podInfo) {
	ni.pods[pi.key] = pi
	ni.requested.add(pi.requests, 1)
	ni.nonZero.add(pi.nonZero, 1)
	ni.ports = append(ni.ports, pi.ports...)
	if pi.hasAffinity() {
		ni.affinityPods++
	}
}

func (ni *nodeInfo) removePod(key string) bool {
	pi, ok := ni.pods[key]
	if !ok {
		return false
	}
	delete(ni.pods, key)
	ni.requested.add(pi.requests, -1)
	ni.nonZero.add(pi.nonZero, -1)
	if len(pi.ports) > 0 {
		ni.ports = ni.ports[:0]
		for _, p := range ni.pods {
			ni.ports = append(ni.ports, p.ports...)
		}
	}
	if pi.hasAffinity() {
		ni.affinityPods--
	}
	return true
}

// clone copies the node's accounting, so preemption can remove pods from it.
func (ni *nodeInfo) clone() *nodeInfo {
	c := &nodeInfo{name: ni.name, node: ni.node, core: ni.core, allocatable: ni.allocatable,
		allowedPods: ni.allowedPods, pods: make(map[string]*podInfo, len(ni.pods)), affinityPods: ni.affinityPods}
	c.requested.add(ni.requested, 1)
	c.nonZero.add(ni.nonZero, 1)
	c.ports = append([]hostPort(nil), ni.ports...)
	for k, p := range ni.pods {
		c.pods[k] = p
	}
	return c
}
