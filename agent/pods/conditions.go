package pods

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// AgentOwnsCondition tells whether the agent writes pod conditions of type
// t: upstream's kubelet-owned types (PodReadyToStartContainers,
// Initialized, ContainersReady, Ready) plus skiff's progress conditions
// (Reconciling, Stalled) that the agent derives from Ready. PodScheduled is
// the scheduler's; the agent only adds it when a pod has none (a pod
// created with spec.nodeName). Every other type (DisruptionTarget, ...)
// belongs to other writers.
func AgentOwnsCondition(t string) bool {
	switch t {
	case string(corev1.PodReadyToStartContainers), corev1alpha1.PodInitialized, corev1alpha1.ContainersReady,
		conditions.Ready, conditions.Reconciling, conditions.Stalled:
		return true
	}
	return false
}

// MergeConditions returns the pod conditions the agent writes, as
// upstream's status manager merges before it patches: the agent-owned
// types from computed, PodScheduled from current (from computed only when
// current has none), every other type from current, unchanged. current is
// the pod as the API server last returned it. Neither input is modified.
func MergeConditions(current, computed []metav1.Condition) []metav1.Condition {
	var out []metav1.Condition
	for _, c := range computed {
		if AgentOwnsCondition(c.Type) {
			out = append(out, c)
		}
	}
	if s := meta.FindStatusCondition(current, corev1alpha1.PodScheduled); s != nil {
		out = append(out, *s)
	} else if s := meta.FindStatusCondition(computed, corev1alpha1.PodScheduled); s != nil {
		out = append(out, *s)
	}
	for _, c := range current {
		if c.Type != corev1alpha1.PodScheduled && !AgentOwnsCondition(c.Type) {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return conditionOrder(out[i].Type) < conditionOrder(out[j].Type) })
	return out
}

// withLastStatus is pod with the status the agent posted last (the cache
// may not hold it yet), keeping the conditions other writers set on the
// cached pod.
func withLastStatus(pod *corev1alpha1.Pod, last *corev1alpha1.PodStatus) *corev1alpha1.Pod {
	out := pod.DeepCopy()
	out.Status = *last.DeepCopy()
	out.Status.Conditions = MergeConditions(pod.Status.Conditions, last.Conditions)
	return out
}
