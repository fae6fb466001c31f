package core

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func podNames(t *testing.T, c client.Client) []string {
	t.Helper()
	pods := &corev1alpha1.PodList{}
	if err := c.List(context.Background(), pods); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	return names
}

// TestReconcileOnInjectedClock drives the controller on a fake clock: the
// node goes unreachable exactly at the grace period, and evictions follow
// the rate limit.
func TestReconcileOnInjectedClock(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	node := nodeAt(t0, metav1.ConditionTrue)
	objs := []client.Object{node, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: NodeLeaseNamespace},
		Spec:       coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: t0}},
	}}
	for i := 0; i < 3; i++ {
		objs = append(objs, &corev1alpha1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "ns"},
			Spec: corev1.PodSpec{NodeName: "n1", Tolerations: []corev1.Toleration{{
				Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, TolerationSeconds: ptrTo(int64(0))}}},
		})
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).
		WithStatusSubresource(&corev1alpha1.Node{}, &corev1alpha1.Pod{}).
		WithIndex(&corev1alpha1.Pod{}, podcontrol.IndexPodNodeName, func(o client.Object) []string { return []string{o.(*corev1alpha1.Pod).Spec.NodeName} }).
		Build()
	r := NewNodeLifecycleReconciler(c, events.NewFakeRecorder(100), clk, 40*time.Second, rate.NewLimiter(1, 1))
	req := ctrl.Request{NamespacedName: types.NamespacedName{Name: "n1"}}

	clk.Step(39 * time.Second)
	res, err := r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter < time.Second || res.RequeueAfter > 2*time.Second {
		t.Errorf("before the grace period: requeue after %v, want about 1s", res.RequeueAfter)
	}
	if diff := cmp.Diff([]string{"p0", "p1", "p2"}, podNames(t, c)); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}

	clk.Step(time.Second)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	got := &corev1alpha1.Node{}
	if err := c.Get(ctx, req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, conditions.Ready); c == nil || c.Status != metav1.ConditionUnknown {
		t.Errorf("Ready = %+v, want Unknown", c)
	}
	if len(got.Spec.Taints) != 2 {
		t.Errorf("taints %v, want the two unreachable taints", got.Spec.Taints)
	}
	if n := len(podNames(t, c)); n != 2 {
		t.Errorf("%d pods left after the first eviction, want 2 (burst 1)", n)
	}

	res, err = r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(podNames(t, c)); n != 2 || res.RequeueAfter != time.Second {
		t.Errorf("at once: %d pods left and requeue after %v, want 2 and 1s (rate 1/s)", n, res.RequeueAfter)
	}
	clk.Step(time.Second)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := len(podNames(t, c)); n != 1 {
		t.Errorf("a second later: %d pods left, want 1", n)
	}
}
