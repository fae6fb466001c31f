package volume

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// A claim that was bound is Lost when its volume is gone or taken, and
// rebinds a volume that lost only its claimRef, as upstream's syncBoundClaim.
func TestSyncBoundClaim(t *testing.T) {
	bound := func() *corev1alpha1.PersistentVolumeClaim {
		c := makePVC("c", "1Gi", rwo).obj()
		c.Spec.VolumeName = "v"
		c.Annotations = map[string]string{AnnBindCompleted: "yes"}
		return c
	}
	cases := map[string]struct {
		volume       *corev1alpha1.PersistentVolume
		volumeName   string
		phase        corev1.PersistentVolumeClaimPhase
		reason       string
		wantClaimRef bool
	}{
		"the volume is gone": {
			volumeName: "v", phase: corev1.ClaimLost, reason: ReasonClaimLost,
		},
		"the claim lost its volumeName": {
			volumeName: "", phase: corev1.ClaimLost, reason: ReasonClaimLost,
		},
		"the volume is bound to another claim": {
			volume:     ptr(makePV("v", "1Gi", rwo).claimRef("ns", "other", "uid-other").obj()),
			volumeName: "v", phase: corev1.ClaimLost, reason: ReasonClaimMisbound,
		},
		"the volume lost its claimRef: bind it again": {
			volume:     ptr(makePV("v", "1Gi", rwo).obj()),
			volumeName: "v", phase: corev1.ClaimBound, reason: corev1alpha1.ReasonBound, wantClaimRef: true,
		},
		"both sides bound": {
			volume:     ptr(makePV("v", "1Gi", rwo).claimRef("ns", "c", "uid-c").phase(corev1.VolumeBound).obj()),
			volumeName: "v", phase: corev1.ClaimBound, reason: corev1alpha1.ReasonBound, wantClaimRef: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			claim := bound()
			claim.Spec.VolumeName = tc.volumeName
			objs := []client.Object{claim}
			if tc.volume != nil {
				objs = append(objs, tc.volume)
			}
			c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).
				WithStatusSubresource(&corev1alpha1.PersistentVolumeClaim{}, &corev1alpha1.PersistentVolume{}).Build()
			r := NewClaimReconciler(c, c, events.NewFakeRecorder(10))
			if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(claim)}); err != nil {
				t.Fatal(err)
			}
			got := &corev1alpha1.PersistentVolumeClaim{}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(claim), got); err != nil {
				t.Fatal(err)
			}
			ready := meta.FindStatusCondition(got.Status.Conditions, conditions.Ready)
			if got.Status.Phase != tc.phase || ready == nil || ready.Reason != tc.reason {
				t.Errorf("phase %s, Ready %+v; want %s %s", got.Status.Phase, ready, tc.phase, tc.reason)
			}
			if tc.wantClaimRef {
				pv := &corev1alpha1.PersistentVolume{}
				if err := c.Get(context.Background(), client.ObjectKey{Name: "v"}, pv); err != nil {
					t.Fatal(err)
				}
				if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claim.UID || pv.Status.Phase != corev1.VolumeBound {
					t.Errorf("volume claimRef %+v phase %s", pv.Spec.ClaimRef, pv.Status.Phase)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
