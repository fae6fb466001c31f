package pods

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// TestStatusWriteBeforeTheCacheCatchesUp: a second status write that runs
// while the cache still holds the pod from before the first one starts
// from what the first one stored, so it is not refused with 409 for the
// agent's own write.
func TestStatusWriteBeforeTheCacheCatchesUp(t *testing.T) {
	ctx := context.Background()
	pod := MakePod("web").Containers("a").Obj()
	conflicts := 0
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithStatusSubresource(&corev1alpha1.Pod{}).WithObjects(pod).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			err := c.SubResource(sub).Patch(ctx, o, p, opts...)
			if apierrors.IsConflict(err) {
				conflicts++
			}
			return err
		}}).Build()
	cached := &corev1alpha1.Pod{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(pod), cached); err != nil {
		t.Fatal(err)
	}
	n := NewNode(Options{Client: c, Reader: c})
	ps := n.state(cached)

	for _, phase := range []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded} {
		base := cached.DeepCopy() // the cache never catches up
		if ps.status != nil {
			base = ps.base(cached)
		}
		st := *base.Status.DeepCopy()
		st.Phase = phase
		if err := n.patchStatus(ctx, base, ps, st); err != nil {
			t.Fatal(err)
		}
	}
	got := &corev1alpha1.Pod{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(pod), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodSucceeded || conflicts != 0 {
		t.Errorf("phase %s after %d conflicts, want Succeeded after none", got.Status.Phase, conflicts)
	}
}

// TestBaseFollowsTheCacheOnceItCaughtUp: once the cache holds a version
// other than the one the last write began from, the cached pod is the
// base again (with the agent's last status over it).
func TestBaseFollowsTheCacheOnceItCaughtUp(t *testing.T) {
	cached := MakePod("web").Containers("a").Obj()
	cached.ResourceVersion = "9"
	written := cached.DeepCopy()
	written.ResourceVersion = "8"
	ps := &podState{status: &corev1alpha1.PodStatus{Phase: corev1.PodRunning}, written: written, writtenOver: "7"}
	got := ps.base(cached)
	if got.ResourceVersion != "9" || got.Status.Phase != corev1.PodRunning {
		t.Errorf("resourceVersion %s, phase %s; want the cached 9 with the last status", got.ResourceVersion, got.Status.Phase)
	}
}
