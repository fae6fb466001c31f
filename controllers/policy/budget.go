package policy

import (
	"fmt"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
	"github.com/skiff-dev/skiff/internal/kstatus"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// DeletionTimeout is how long an eviction's entry in disruptedPods keeps its
// pod out of currentHealthy while the pod is not seen deleted, upstream's
// DeletionTimeout. After it the controller assumes the pod will not be
// deleted and counts it again.
const DeletionTimeout = 2 * time.Minute

// NeedsScale tells whether the budget is measured against the replicas of
// the selected pods' controllers: maxUnavailable, or a percentage
// minAvailable. An integer minAvailable counts the selected pods.
func NeedsScale(spec policyv1.PodDisruptionBudgetSpec) bool {
	if spec.MaxUnavailable != nil {
		return true
	}
	return spec.MinAvailable != nil && spec.MinAvailable.Type == intstr.String
}

// ExpectedAndDesired returns expectedPods and desiredHealthy, as upstream's
// getExpectedPodCount: selected is the number of selected pods, scale the
// summed replicas of their controllers (used only when NeedsScale).
// Percentages round up. A budget with neither field set desires nothing.
func ExpectedAndDesired(spec policyv1.PodDisruptionBudgetSpec, selected, scale int32) (expected, desired int32, err error) {
	switch {
	case spec.MaxUnavailable != nil:
		maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(spec.MaxUnavailable, int(scale), true)
		if err != nil {
			return 0, 0, fmt.Errorf("spec.maxUnavailable: %w", err)
		}
		return scale, max(scale-int32(maxUnavailable), 0), nil
	case spec.MinAvailable != nil && spec.MinAvailable.Type == intstr.Int:
		return selected, spec.MinAvailable.IntVal, nil
	case spec.MinAvailable != nil:
		minAvailable, err := intstr.GetScaledValueFromIntOrPercent(spec.MinAvailable, int(scale), true)
		if err != nil {
			return 0, 0, fmt.Errorf("spec.minAvailable: %w", err)
		}
		return scale, int32(minAvailable), nil
	}
	return 0, 0, nil
}

// DisruptionsAllowed is currentHealthy - desiredHealthy, never negative, and
// zero while the budget expects no pods: a budget whose first pods have
// appeared before the controller counted them must not allow anything.
func DisruptionsAllowed(current, desired, expected int32) int32 {
	if expected <= 0 || current <= desired {
		return 0
	}
	return current - desired
}

// PruneDisrupted keeps the disruptedPods entries of pods that still exist,
// are not being deleted and were evicted less than DeletionTimeout ago. It
// returns the kept entries, the pods whose entry expired (an eviction that
// did not lead to a deletion), and when the earliest kept entry expires.
func PruneDisrupted(pods []*corev1alpha1.Pod, disrupted map[string]metav1.Time, now time.Time) (kept map[string]metav1.Time, expired []string, recheck *time.Time) {
	kept = map[string]metav1.Time{}
	for _, pod := range pods {
		at, ok := disrupted[pod.Name]
		if !ok || pod.DeletionTimestamp != nil {
			continue
		}
		until := at.Add(DeletionTimeout)
		if until.Before(now) {
			expired = append(expired, pod.Name)
			continue
		}
		kept[pod.Name] = at
		if recheck == nil || until.Before(*recheck) {
			recheck = &until
		}
	}
	return kept, expired, recheck
}

// CountHealthy counts the pods that are ready, not being deleted and not
// recently evicted, upstream's countHealthyPods.
func CountHealthy(pods []*corev1alpha1.Pod, disrupted map[string]metav1.Time, now time.Time) int32 {
	var n int32
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if at, ok := disrupted[pod.Name]; ok && at.Add(DeletionTimeout).After(now) {
			continue
		}
		if podutil.IsReady(pod) {
			n++
		}
	}
	return n
}

// SetDisruptionAllowed writes upstream's DisruptionAllowed condition from
// status.disruptionsAllowed (pdbhelper.UpdateDisruptionAllowedCondition).
// Evictions call it after spending the last allowed disruption.
func SetDisruptionAllowed(pdb *policyv1alpha1.PodDisruptionBudget) {
	c := metav1.Condition{
		Type: policyv1alpha1.DisruptionAllowed, Status: metav1.ConditionTrue,
		Reason: policyv1.SufficientPodsReason, ObservedGeneration: pdb.Status.ObservedGeneration,
	}
	if pdb.Status.DisruptionsAllowed <= 0 {
		c.Status, c.Reason = metav1.ConditionFalse, policyv1.InsufficientPodsReason
	}
	meta.SetStatusCondition(&pdb.Status.Conditions, c)
}

// SetReady writes the summarising Ready condition and its kstatus
// companions: Ready once the budget is observed and met (currentHealthy at
// least desiredHealthy), as kstatus judges policy/v1 budgets; Reconciling
// while it is not met; Stalled when the status cannot be computed.
func SetReady(pdb *policyv1alpha1.PodDisruptionBudget, syncErr error) {
	st := &pdb.Status
	ready := metav1.Condition{Type: conditions.Ready, ObservedGeneration: pdb.Generation}
	switch {
	case syncErr != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, policyv1.SyncFailedReason, syncErr.Error()
	case st.CurrentHealthy < st.DesiredHealthy:
		ready.Status, ready.Reason = metav1.ConditionFalse, policyv1.InsufficientPodsReason
		ready.Message = fmt.Sprintf("Budget not met: %d healthy pods of %d desired", st.CurrentHealthy, st.DesiredHealthy)
	default:
		ready.Status, ready.Reason = metav1.ConditionTrue, policyv1.SufficientPodsReason
		ready.Message = fmt.Sprintf("Budget met: %d healthy pods of %d desired, %d disruptions allowed", st.CurrentHealthy, st.DesiredHealthy, st.DisruptionsAllowed)
	}
	kstatus.SetReady(&st.Conditions, ready, kstatus.FromReady(ready, policyv1.SyncFailedReason))
}

// ComputeStatus writes the budget's status for the selected pods at now:
// scale is the summed replicas of their controllers, used when NeedsScale.
// It returns when the status must be computed again (an entry of
// disruptedPods expires) and the pods whose eviction expired.
func ComputeStatus(pdb *policyv1alpha1.PodDisruptionBudget, pods []*corev1alpha1.Pod, scale int32, now time.Time) (recheck *time.Time, expired []string, err error) {
	expected, desired, err := ExpectedAndDesired(pdb.Spec, int32(len(pods)), scale)
	if err != nil {
		return nil, nil, err
	}
	kept, expired, recheck := PruneDisrupted(pods, pdb.Status.DisruptedPods, now)
	current := CountHealthy(pods, kept, now)
	if len(kept) == 0 {
		kept = nil
	}
	pdb.Status.CurrentHealthy = current
	pdb.Status.DesiredHealthy = desired
	pdb.Status.ExpectedPods = expected
	pdb.Status.DisruptionsAllowed = DisruptionsAllowed(current, desired, expected)
	pdb.Status.DisruptedPods = kept
	pdb.Status.ObservedGeneration = pdb.Generation
	SetDisruptionAllowed(pdb)
	SetReady(pdb, nil)
	return recheck, expired, nil
}

// FailSafe is the status of a budget that could not be computed, upstream's
// failSafe: no disruption allowed, DisruptionAllowed False with reason
// SyncFailed and the error as message. The counts stay as they were.
// Unlike upstream it marks the generation observed, so that kstatus and
// Argo CD see Stalled rather than a controller that has not looked yet;
// evictions are refused all the same, since none is allowed.
func FailSafe(pdb *policyv1alpha1.PodDisruptionBudget, err error) {
	pdb.Status.DisruptionsAllowed = 0
	pdb.Status.ObservedGeneration = pdb.Generation
	meta.SetStatusCondition(&pdb.Status.Conditions, metav1.Condition{
		Type: policyv1alpha1.DisruptionAllowed, Status: metav1.ConditionFalse,
		Reason: policyv1.SyncFailedReason, Message: err.Error(), ObservedGeneration: pdb.Status.ObservedGeneration,
	})
	SetReady(pdb, err)
}
