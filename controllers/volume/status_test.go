package volume

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestApplyClaimStatus(t *testing.T) {
	vol := makePV("v", "5Gi", rwo, rox).obj()
	cases := map[string]struct {
		st                     claimState
		phase                  corev1.PersistentVolumeClaimPhase
		ready, stalled         metav1.ConditionStatus
		reconciling            bool
		reason                 string
		wantCapacity, wantMode bool
	}{
		"bound reports the volume's capacity and modes": {
			st: claimState{phase: corev1.ClaimBound, volume: &vol}, phase: corev1.ClaimBound,
			ready: metav1.ConditionTrue, reason: corev1alpha1.ReasonBound, wantCapacity: true, wantMode: true,
		},
		"pending says why": {
			st:    claimState{phase: corev1.ClaimPending, reason: corev1alpha1.ReasonWaitForFirstConsumer, message: "waiting"},
			phase: corev1.ClaimPending, ready: metav1.ConditionFalse, reconciling: true, reason: corev1alpha1.ReasonWaitForFirstConsumer,
		},
		"lost is stalled": {
			st:    claimState{phase: corev1.ClaimLost, reason: ReasonClaimLost, message: "gone"},
			phase: corev1.ClaimLost, ready: metav1.ConditionFalse, stalled: metav1.ConditionTrue, reason: ReasonClaimLost,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := makePVC("c", "1Gi", rwo).obj()
			c.Generation = 3
			c.Spec.VolumeName = "v"
			// A claim that was Bound before keeps nothing of it when it is not.
			c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: capacity(&vol)}
			applyClaimStatus(c, tc.st)
			if c.Status.Phase != tc.phase || c.Status.ObservedGeneration != 3 {
				t.Errorf("phase %s generation %d", c.Status.Phase, c.Status.ObservedGeneration)
			}
			r := meta.FindStatusCondition(c.Status.Conditions, conditions.Ready)
			if r == nil || r.Status != tc.ready || r.Reason != tc.reason {
				t.Errorf("Ready = %+v", r)
			}
			s := meta.FindStatusCondition(c.Status.Conditions, conditions.Stalled)
			if (tc.stalled == "") != (s == nil) {
				t.Errorf("Stalled = %+v", s)
			}
			if got := meta.IsStatusConditionTrue(c.Status.Conditions, conditions.Reconciling); got != tc.reconciling {
				t.Errorf("Reconciling = %v", got)
			}
			if (len(c.Status.Capacity) > 0) != tc.wantCapacity || (len(c.Status.AccessModes) > 0) != tc.wantMode {
				t.Errorf("capacity %v modes %v", c.Status.Capacity, c.Status.AccessModes)
			}
		})
	}
}

func TestApplyVolumeStatus(t *testing.T) {
	t0 := metav1.Unix(100, 0)
	t1 := metav1.Unix(200, 0)
	cases := map[string]struct {
		from, to             corev1.PersistentVolumePhase
		retain               bool
		ready                metav1.ConditionStatus
		stalled, reconciling bool
		transitionedAt       metav1.Time
	}{
		"available is ready":                   {from: "", to: corev1.VolumeAvailable, ready: metav1.ConditionTrue, transitionedAt: t1},
		"bound is ready":                       {from: corev1.VolumeAvailable, to: corev1.VolumeBound, ready: metav1.ConditionTrue, transitionedAt: t1},
		"released for deletion is reconciling": {from: corev1.VolumeBound, to: corev1.VolumeReleased, ready: metav1.ConditionFalse, reconciling: true, transitionedAt: t1},
		"released and retained is stalled":     {from: corev1.VolumeBound, to: corev1.VolumeReleased, retain: true, ready: metav1.ConditionFalse, stalled: true, transitionedAt: t1},
		"pending is reconciling":               {from: "", to: corev1.VolumePending, ready: metav1.ConditionFalse, reconciling: true, transitionedAt: t1},
		"failed is stalled":                    {from: corev1.VolumeReleased, to: corev1.VolumeFailed, ready: metav1.ConditionFalse, stalled: true, transitionedAt: t1},
		"the same phase keeps its time":        {from: corev1.VolumeBound, to: corev1.VolumeBound, ready: metav1.ConditionTrue, transitionedAt: t0},
		"released again keeps its time too":    {from: corev1.VolumeReleased, to: corev1.VolumeReleased, ready: metav1.ConditionFalse, reconciling: true, transitionedAt: t0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := makePV("v", "1Gi", rwo).claimRef("ns", "c", "u").obj()
			v.Status.Phase = tc.from
			v.Status.LastPhaseTransitionTime = &t0
			v.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
			if tc.retain {
				v.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
			}
			applyVolumeStatus(&v, tc.to, "Why", "because", t1)
			if v.Status.Phase != tc.to || !v.Status.LastPhaseTransitionTime.Equal(&tc.transitionedAt) {
				t.Errorf("phase %s at %v", v.Status.Phase, v.Status.LastPhaseTransitionTime)
			}
			r := meta.FindStatusCondition(v.Status.Conditions, conditions.Ready)
			if r == nil || r.Status != tc.ready {
				t.Errorf("Ready = %+v", r)
			}
			if got := meta.IsStatusConditionTrue(v.Status.Conditions, conditions.Stalled); got != tc.stalled {
				t.Errorf("Stalled = %v", got)
			}
			if got := meta.IsStatusConditionTrue(v.Status.Conditions, conditions.Reconciling); got != tc.reconciling {
				t.Errorf("Reconciling = %v", got)
			}
		})
	}
}
