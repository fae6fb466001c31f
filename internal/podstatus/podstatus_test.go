package podstatus

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// setup stores a pod, takes a copy, then lets another writer add a
// condition: the copy is stale.
func setup(t *testing.T) (client.Client, *corev1alpha1.Pod) {
	t.Helper()
	pod := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithStatusSubresource(&corev1alpha1.Pod{}).WithObjects(pod).Build()
	ctx := context.Background()
	stale := &corev1alpha1.Pod{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(pod), stale); err != nil {
		t.Fatal(err)
	}
	other := stale.DeepCopy()
	meta.SetStatusCondition(&other.Status.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Agent"})
	if err := c.Status().Update(ctx, other); err != nil {
		t.Fatal(err)
	}
	return c, stale
}

func mark(p *corev1alpha1.Pod) {
	podutil.SetDisruptionTarget(p, podutil.ReasonDeletionByTaintManager, podutil.MessageDeletionByTaintManager)
}

func TestPatchRetriesOnConflictAndKeepsOtherWrites(t *testing.T) {
	c, stale := setup(t)
	ctx := context.Background()
	if err := Patch(ctx, c, c.Status(), stale, mark); err != nil {
		t.Fatal(err)
	}
	got := &corev1alpha1.Pod{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(stale), got); err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(got.Status.Conditions, string(corev1.DisruptionTarget)) {
		t.Errorf("DisruptionTarget missing: %+v", got.Status.Conditions)
	}
	if !meta.IsStatusConditionTrue(got.Status.Conditions, "Ready") {
		t.Errorf("the other writer's Ready was lost: %+v", got.Status.Conditions)
	}
	if stale.ResourceVersion != got.ResourceVersion {
		t.Errorf("the caller's pod has resourceVersion %s, the stored one %s", stale.ResourceVersion, got.ResourceVersion)
	}
}

func TestPatchOnceReturnsTheConflict(t *testing.T) {
	c, stale := setup(t)
	err := PatchOnce(context.Background(), c.Status(), stale, mark)
	if !apierrors.IsConflict(err) {
		t.Fatalf("want a conflict, got %v", err)
	}
}

func TestPatchWritesNothingWithoutChange(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	pod := &corev1alpha1.Pod{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "p"}, pod); err != nil {
		t.Fatal(err)
	}
	mark(pod)
	if err := c.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	rv := pod.ResourceVersion
	if err := Patch(ctx, c, c.Status(), pod, mark); err != nil {
		t.Fatal(err)
	}
	if pod.ResourceVersion != rv {
		t.Errorf("a write happened: resourceVersion %s -> %s", rv, pod.ResourceVersion)
	}
}
