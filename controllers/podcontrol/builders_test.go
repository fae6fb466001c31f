package podcontrol

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type podBuilder struct{ p *corev1alpha1.Pod }

// makePod starts a pod created at t0, Pending and unscheduled.
func makePod(name string) *podBuilder {
	return &podBuilder{p: &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name),
		CreationTimestamp: metav1.NewTime(t0)}, Status: corev1alpha1.PodStatus{Phase: corev1.PodPending}}}
}

func (b *podBuilder) node(n string) *podBuilder { b.p.Spec.NodeName = n; return b }
func (b *podBuilder) phase(ph corev1.PodPhase) *podBuilder {
	b.p.Status.Phase = ph
	return b
}
func (b *podBuilder) readySince(t time.Time) *podBuilder {
	b.p.Status.Phase = corev1.PodRunning
	b.p.Status.Conditions = append(b.p.Status.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(t), Reason: "Test"})
	return b
}
func (b *podBuilder) created(t time.Time) *podBuilder {
	b.p.CreationTimestamp = metav1.NewTime(t)
	return b
}
func (b *podBuilder) restarts(n int32) *podBuilder {
	b.p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: n}}
	return b
}
func (b *podBuilder) annotation(k, v string) *podBuilder {
	if b.p.Annotations == nil {
		b.p.Annotations = map[string]string{}
	}
	b.p.Annotations[k] = v
	return b
}
func (b *podBuilder) labels(kv ...string) *podBuilder {
	b.p.Labels = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		b.p.Labels[kv[i]] = kv[i+1]
	}
	return b
}
func (b *podBuilder) ownedBy(ref metav1.OwnerReference) *podBuilder {
	b.p.OwnerReferences = append(b.p.OwnerReferences, ref)
	return b
}
func (b *podBuilder) obj() *corev1alpha1.Pod { return b.p }
