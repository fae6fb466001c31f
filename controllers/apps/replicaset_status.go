package apps

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// replicaSetDiff is how many pods to create (negative) or delete
// (positive), capped at burst, as upstream's manageReplicas.
func replicaSetDiff(active int, replicas int32, burst int) int {
	diff := active - int(replicas)
	if diff < 0 {
		return max(diff, -burst)
	}
	return min(diff, burst)
}

// replicaSetStatus computes a ReplicaSet's status from its active pods and
// the number of its terminating pods, as upstream's
// calculateReplicaSetStatus, plus the ReplicaFailure condition from the
// error of the last create or delete (manageErr, with diff telling which it
// was) and skiff's summarising conditions.
func replicaSetStatus(rs *appsv1alpha1.ReplicaSet, pods []*corev1alpha1.Pod, terminating int32, manageErr error, diff int, now time.Time) appsv1alpha1.ReplicaSetStatus {
	st := *rs.Status.DeepCopy()
	templateLabels := labels.Set(rs.Spec.Template.Labels).AsSelectorPreValidated()
	var fully, ready, available int32
	for _, p := range pods {
		if templateLabels.Matches(labels.Set(p.Labels)) {
			fully++
		}
		if podutil.IsReady(p) {
			ready++
			if podutil.IsAvailable(p, rs.Spec.MinReadySeconds, now) {
				available++
			}
		}
	}
	st.Replicas = int32(len(pods))
	st.FullyLabeledReplicas = fully
	st.ReadyReplicas = ready
	st.AvailableReplicas = available
	st.TerminatingReplicas = int32Ptr(terminating)
	st.ObservedGeneration = rs.Generation
	if sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector); err == nil {
		st.Selector = sel.String()
	}

	switch {
	case manageErr != nil:
		reason, verb := appsv1alpha1.ReasonFailedCreate, "create"
		if diff > 0 {
			reason, verb = appsv1alpha1.ReasonFailedDelete, "delete"
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: appsv1alpha1.ReplicaFailure, Status: metav1.ConditionTrue,
			Reason: reason, Message: fmt.Sprintf("Failed to %s pods: %v", verb, manageErr), ObservedGeneration: rs.Generation})
	default:
		meta.RemoveStatusCondition(&st.Conditions, appsv1alpha1.ReplicaFailure)
	}

	desired := derefInt32(rs.Spec.Replicas, 1)
	s := summary{ready: st.Replicas == desired && available == desired && terminating == 0,
		message: fmt.Sprintf("%d of %d replicas available", available, desired)}
	if c := meta.FindStatusCondition(st.Conditions, appsv1alpha1.ReplicaFailure); c != nil {
		s = summary{stalled: true, reason: c.Reason, message: c.Message}
	}
	setSummary(&st.Conditions, rs.Generation, s)
	return st
}

// nextAvailableCheck returns how long until the first ready pod that is not
// yet available becomes available, or 0 when none waits.
func nextAvailableCheck(pods []*corev1alpha1.Pod, minReadySeconds int32, now time.Time) time.Duration {
	if minReadySeconds == 0 {
		return 0
	}
	var next time.Duration
	for _, p := range pods {
		if !podutil.IsReady(p) || podutil.IsAvailable(p, minReadySeconds, now) {
			continue
		}
		c := meta.FindStatusCondition(p.Status.Conditions, "Ready")
		wait := c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Sub(now) + time.Second
		if wait < time.Second {
			wait = time.Second
		}
		if next == 0 || wait < next {
			next = wait
		}
	}
	return next
}
