package volume

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/kstatus"
)

// Reasons of events and of the Ready condition, upstream's where upstream
// has one.
const (
	ReasonFailedBinding        = "FailedBinding"
	ReasonVolumeMismatch       = "VolumeMismatch"
	ReasonClaimLost            = "ClaimLost"
	ReasonClaimMisbound        = "ClaimMisbound"
	ReasonProvisioningFailed   = "ProvisioningFailed"
	ReasonExternalProvisioning = "ExternalProvisioning"
	ReasonVolumeFailedDelete   = "VolumeFailedDelete"
	ReasonExternalDeleting     = "ExternalDeleting"
	ReasonVolumeReleased       = "Released"
	ReasonVolumeAvailable      = "Available"
	ReasonVolumeResizeFailed   = "VolumeResizeFailed"
	ReasonVolumeResized        = "VolumeResizeSuccessful"
)

// claimState is what one sync decided about a claim.
type claimState struct {
	phase corev1.PersistentVolumeClaimPhase
	// volume is the bound volume (phase Bound).
	volume *corev1alpha1.PersistentVolume
	// reason and message explain a phase other than Bound.
	reason, message string
}

// applyClaimStatus writes st into the claim's status: the phase, the bound
// volume's access modes and capacity, and the Ready and Stalled conditions
// (Lost is Stalled: the data is gone and only a person can help).
func applyClaimStatus(c *corev1alpha1.PersistentVolumeClaim, st claimState) {
	s := &c.Status
	s.Phase = st.phase
	s.ObservedGeneration = c.Generation
	gen := c.Generation
	switch st.phase {
	case corev1.ClaimBound:
		if st.volume != nil {
			s.AccessModes = st.volume.Spec.AccessModes
			s.Capacity = corev1.ResourceList{corev1.ResourceStorage: capacity(st.volume)}
		}
		kstatus.SetReady(&s.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue,
			Reason: corev1alpha1.ReasonBound, Message: "Bound to volume " + c.Spec.VolumeName, ObservedGeneration: gen}, kstatus.Done)
	case corev1.ClaimLost:
		s.AccessModes, s.Capacity = nil, nil
		kstatus.SetReady(&s.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionFalse,
			Reason: st.reason, Message: st.message, ObservedGeneration: gen}, kstatus.Stalled)
	default:
		// Pending: a claim that waits is still in progress, as kstatus and
		// Argo CD judge a policy/v1 claim that is not Bound.
		s.AccessModes, s.Capacity = nil, nil
		kstatus.SetReady(&s.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionFalse,
			Reason: st.reason, Message: st.message, ObservedGeneration: gen}, kstatus.InProgress)
	}
}

// applyVolumeStatus writes the phase into the volume's status, with the
// transition time, and the Ready condition: True while Available or Bound.
// A Failed volume is Stalled, and so is a Released volume that its reclaim
// policy retains: only a person can make it Available again. Pending and a
// Released volume on its way to deletion are in progress.
func applyVolumeStatus(v *corev1alpha1.PersistentVolume, phase corev1.PersistentVolumePhase, reason, message string, now metav1.Time) {
	s := &v.Status
	if s.Phase != phase {
		s.LastPhaseTransitionTime = &now
	}
	s.Phase, s.Reason, s.Message = phase, reason, message
	s.ObservedGeneration = v.Generation
	ready := metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionFalse, Reason: reason, Message: message, ObservedGeneration: v.Generation}
	switch phase {
	case corev1.VolumeAvailable:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, ReasonVolumeAvailable, "The volume is available for a claim"
		s.Reason, s.Message = "", ""
	case corev1.VolumeBound:
		ready.Status, ready.Reason = metav1.ConditionTrue, corev1alpha1.ReasonBound
		ready.Message = "Bound to claim " + v.Spec.ClaimRef.Namespace + "/" + v.Spec.ClaimRef.Name
		s.Reason, s.Message = "", ""
	}
	if ready.Reason == "" {
		ready.Reason = string(phase)
	}
	if ready.Message == "" {
		ready.Message = "The volume is " + string(phase)
	}
	progress := kstatus.InProgress
	switch {
	case ready.Status == metav1.ConditionTrue:
		progress = kstatus.Done
	case phase == corev1.VolumeFailed,
		phase == corev1.VolumeReleased && v.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimRetain:
		progress = kstatus.Stalled
	}
	kstatus.SetReady(&s.Conditions, ready, progress)
}
