package apps

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Builders for the table tests of the pure decisions.

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func makeDeployment(replicas int32, surge, unavailable string) *appsv1alpha1.Deployment {
	d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: 1}}
	d.Spec.Replicas = &replicas
	if surge != "" || unavailable != "" {
		s, u := intstr.Parse(surge), intstr.Parse(unavailable)
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &s, MaxUnavailable: &u}}
	}
	return d
}

// makeRS is a ReplicaSet of size spec with available pods, created age before t0.
func makeRS(name string, spec, available int32, age time.Duration) *appsv1alpha1.ReplicaSet {
	rs := &appsv1alpha1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name),
		CreationTimestamp: metav1.NewTime(t0.Add(-age))}}
	rs.Spec.Replicas = &spec
	rs.Status.Replicas = spec
	rs.Status.AvailableReplicas = available
	rs.Status.ReadyReplicas = available
	return rs
}

func withAnnotations(rs *appsv1alpha1.ReplicaSet, kv ...string) *appsv1alpha1.ReplicaSet {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		rs.Annotations[kv[i]] = kv[i+1]
	}
	return rs
}

type podB struct{ p *corev1alpha1.Pod }

func makePod(name string) *podB {
	return &podB{p: &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name),
		CreationTimestamp: metav1.NewTime(t0), Labels: map[string]string{}}}}
}
func (b *podB) node(n string) *podB { b.p.Spec.NodeName = n; return b }
func (b *podB) label(k, v string) *podB {
	b.p.Labels[k] = v
	return b
}
func (b *podB) created(t time.Time) *podB { b.p.CreationTimestamp = metav1.NewTime(t); return b }
func (b *podB) readySince(t time.Time) *podB {
	b.p.Status.Phase = corev1.PodRunning
	b.p.Status.Conditions = []metav1.Condition{{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: "Test", LastTransitionTime: metav1.NewTime(t)}}
	return b
}
func (b *podB) running() *podB         { b.p.Status.Phase = corev1.PodRunning; return b }
func (b *podB) failed() *podB          { b.p.Status.Phase = corev1.PodFailed; return b }
func (b *podB) obj() *corev1alpha1.Pod { return b.p }

func makeNode(name string, labels map[string]string, taints ...corev1.Taint) *corev1alpha1.Node {
	n := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	n.Spec.Taints = taints
	return n
}

func podNames(pods []*corev1alpha1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}
