package scheduler

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// podBuilder builds test pods: MakePod("web", "ns").Req("cpu", "1").Obj().
type podBuilder struct{ p *corev1alpha1.Pod }

func MakePod(name, ns string) *podBuilder {
	return &podBuilder{p: &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + ns + "-" + name)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}}
}

func (b *podBuilder) Obj() *corev1alpha1.Pod { return b.p }
func (b *podBuilder) Info() *podInfo         { return newPodInfo(b.p) }

func (b *podBuilder) Req(kv ...string) *podBuilder {
	c := &b.p.Spec.Containers[0]
	if c.Resources.Requests == nil {
		c.Resources.Requests = corev1.ResourceList{}
	}
	for i := 0; i < len(kv); i += 2 {
		c.Resources.Requests[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return b
}

func (b *podBuilder) InitReq(kv ...string) *podBuilder {
	ic := corev1.Container{Name: "init", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{}}}
	for i := 0; i < len(kv); i += 2 {
		ic.Resources.Requests[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, ic)
	return b
}

func (b *podBuilder) Overhead(kv ...string) *podBuilder {
	b.p.Spec.Overhead = corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		b.p.Spec.Overhead[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return b
}

func (b *podBuilder) Labels(kv ...string) *podBuilder {
	if b.p.Labels == nil {
		b.p.Labels = map[string]string{}
	}
	for i := 0; i < len(kv); i += 2 {
		b.p.Labels[kv[i]] = kv[i+1]
	}
	return b
}

func (b *podBuilder) Priority(p int32) *podBuilder { b.p.Spec.Priority = &p; return b }
func (b *podBuilder) Node(n string) *podBuilder    { b.p.Spec.NodeName = n; return b }
func (b *podBuilder) Created(t time.Time) *podBuilder {
	b.p.CreationTimestamp = metav1.Time{Time: t}
	return b
}

// Started sets status.startTime.
func (b *podBuilder) Started(t time.Time) *podBuilder {
	b.p.Status.StartTime = &metav1.Time{Time: t}
	return b
}

// Nominated sets status.nominatedNodeName.
func (b *podBuilder) Nominated(node string) *podBuilder {
	b.p.Status.NominatedNodeName = node
	return b
}

// PreemptedAt marks the pod as deleted by the scheduler's preemption.
func (b *podBuilder) PreemptedAt(t time.Time) *podBuilder {
	b.p.DeletionTimestamp = &metav1.Time{Time: t}
	b.p.Status.Conditions = append(b.p.Status.Conditions, metav1.Condition{Type: string(corev1.DisruptionTarget),
		Status: metav1.ConditionTrue, Reason: corev1.PodReasonPreemptionByScheduler})
	return b
}

func (b *podBuilder) HostPort(port int32, proto corev1.Protocol, ip string) *podBuilder {
	c := &b.p.Spec.Containers[0]
	c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: proto, HostIP: ip})
	return b
}

func (b *podBuilder) NodeSelector(kv ...string) *podBuilder {
	b.p.Spec.NodeSelector = map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		b.p.Spec.NodeSelector[kv[i]] = kv[i+1]
	}
	return b
}

func (b *podBuilder) Toleration(t corev1.Toleration) *podBuilder {
	b.p.Spec.Tolerations = append(b.p.Spec.Tolerations, t)
	return b
}

func (b *podBuilder) affinity() *corev1.Affinity {
	if b.p.Spec.Affinity == nil {
		b.p.Spec.Affinity = &corev1.Affinity{}
	}
	return b.p.Spec.Affinity
}

func (b *podBuilder) RequiredNodeAffinity(key string, op corev1.NodeSelectorOperator, values ...string) *podBuilder {
	a := b.affinity()
	a.NodeAffinity = &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}},
	}}
	return b
}

func (b *podBuilder) PreferredNodeAffinity(weight int32, key string, values ...string) *podBuilder {
	a := b.affinity()
	if a.NodeAffinity == nil {
		a.NodeAffinity = &corev1.NodeAffinity{}
	}
	a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution,
		corev1.PreferredSchedulingTerm{Weight: weight, Preference: corev1.NodeSelectorTerm{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: corev1.NodeSelectorOpIn, Values: values}},
		}})
	return b
}

func term(topologyKey string, kv ...string) corev1.PodAffinityTerm {
	ml := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		ml[kv[i]] = kv[i+1]
	}
	return corev1.PodAffinityTerm{TopologyKey: topologyKey, LabelSelector: &metav1.LabelSelector{MatchLabels: ml}}
}

func (b *podBuilder) PodAffinity(t corev1.PodAffinityTerm) *podBuilder {
	a := b.affinity()
	if a.PodAffinity == nil {
		a.PodAffinity = &corev1.PodAffinity{}
	}
	a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, t)
	return b
}

func (b *podBuilder) PodAntiAffinity(t corev1.PodAffinityTerm) *podBuilder {
	a := b.affinity()
	if a.PodAntiAffinity == nil {
		a.PodAntiAffinity = &corev1.PodAntiAffinity{}
	}
	a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, t)
	return b
}

func (b *podBuilder) PreferredPodAffinity(weight int32, t corev1.PodAffinityTerm) *podBuilder {
	a := b.affinity()
	if a.PodAffinity == nil {
		a.PodAffinity = &corev1.PodAffinity{}
	}
	a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution,
		corev1.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: t})
	return b
}

func (b *podBuilder) PreferredPodAntiAffinity(weight int32, t corev1.PodAffinityTerm) *podBuilder {
	a := b.affinity()
	if a.PodAntiAffinity == nil {
		a.PodAntiAffinity = &corev1.PodAntiAffinity{}
	}
	a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution,
		corev1.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: t})
	return b
}

func (b *podBuilder) Spread(maxSkew int32, key string, when corev1.UnsatisfiableConstraintAction, kv ...string) *podBuilder {
	ml := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		ml[kv[i]] = kv[i+1]
	}
	b.p.Spec.TopologySpreadConstraints = append(b.p.Spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
		MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: when, LabelSelector: &metav1.LabelSelector{MatchLabels: ml},
	})
	return b
}

// nodeBuilder builds test nodes: MakeNode("n1").Cap("cpu", "4").Obj().
type nodeBuilder struct{ n *corev1alpha1.Node }

func MakeNode(name string) *nodeBuilder {
	return &nodeBuilder{n: &corev1alpha1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Status: corev1alpha1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("4"),
			corev1.ResourceMemory: resource.MustParse("8Gi"),
			corev1.ResourcePods:   resource.MustParse("110"),
		}},
	}}
}

func (b *nodeBuilder) Obj() *corev1alpha1.Node { return b.n }

func (b *nodeBuilder) Cap(kv ...string) *nodeBuilder {
	for i := 0; i < len(kv); i += 2 {
		b.n.Status.Allocatable[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return b
}

func (b *nodeBuilder) Labels(kv ...string) *nodeBuilder {
	for i := 0; i < len(kv); i += 2 {
		b.n.Labels[kv[i]] = kv[i+1]
	}
	return b
}

func (b *nodeBuilder) Taint(key, value string, effect corev1.TaintEffect) *nodeBuilder {
	b.n.Spec.Taints = append(b.n.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	return b
}

func (b *nodeBuilder) Cordon() *nodeBuilder { b.n.Spec.Unschedulable = true; return b }

// cacheWith returns a cache holding the nodes and bound pods.
func cacheWith(nodes []*corev1alpha1.Node, pods []*corev1alpha1.Pod) *Cache {
	c := NewCache()
	for _, n := range nodes {
		c.UpsertNode(n)
	}
	for _, p := range pods {
		c.UpsertPod(p)
	}
	return c
}
