package apps

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
)

// deploymentStatus computes the counters and the Available condition from
// the ReplicaSets, as upstream's calculateStatus. Other conditions are
// carried over from the stored status.
func deploymentStatus(d *appsv1alpha1.Deployment, all []*appsv1alpha1.ReplicaSet, newRS *appsv1alpha1.ReplicaSet, now time.Time) appsv1alpha1.DeploymentStatus {
	st := *d.Status.DeepCopy()
	available := statusReplicas(all, func(s *appsv1alpha1.ReplicaSetStatus) int32 { return s.AvailableReplicas })
	st.ObservedGeneration = d.Generation
	st.Replicas = statusReplicas(all, func(s *appsv1alpha1.ReplicaSetStatus) int32 { return s.Replicas })
	st.UpdatedReplicas = statusReplicas([]*appsv1alpha1.ReplicaSet{newRS}, func(s *appsv1alpha1.ReplicaSetStatus) int32 { return s.Replicas })
	st.ReadyReplicas = statusReplicas(all, func(s *appsv1alpha1.ReplicaSetStatus) int32 { return s.ReadyReplicas })
	st.AvailableReplicas = available
	st.UnavailableReplicas = max(specReplicas(all)-available, 0)
	st.TerminatingReplicas = int32Ptr(statusReplicas(all, func(s *appsv1alpha1.ReplicaSetStatus) int32 { return derefInt32(s.TerminatingReplicas, 0) }))
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		st.Selector = sel.String()
	}
	st.Ready = readyString(st.ReadyReplicas, deploymentReplicas(d))
	if available >= deploymentReplicas(d)-maxUnavailable(d) {
		setCondition(&st.Conditions, metav1.Condition{Type: appsv1alpha1.DeploymentAvailable, Status: metav1.ConditionTrue,
			Reason: appsv1alpha1.ReasonMinimumReplicasAvailable, Message: "Deployment has minimum availability.", ObservedGeneration: d.Generation}, now)
	} else {
		setCondition(&st.Conditions, metav1.Condition{Type: appsv1alpha1.DeploymentAvailable, Status: metav1.ConditionFalse,
			Reason: appsv1alpha1.ReasonMinimumReplicasUnavailable, Message: "Deployment does not have minimum availability.", ObservedGeneration: d.Generation}, now)
	}
	return st
}

// rolloutConditions updates the Progressing and ReplicaFailure conditions
// of st after a rollout step, as upstream's syncRolloutStatus. It returns
// how long until the progress deadline must be checked again (0: never).
func rolloutConditions(d *appsv1alpha1.Deployment, st *appsv1alpha1.DeploymentStatus, all []*appsv1alpha1.ReplicaSet, newRS *appsv1alpha1.ReplicaSet, now time.Time) time.Duration {
	if !hasProgressDeadline(d) {
		meta.RemoveStatusCondition(&st.Conditions, appsv1alpha1.DeploymentProgressing)
	}
	cur := meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing)
	complete := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == appsv1alpha1.ReasonNewReplicaSetAvailable
	name := ""
	if newRS != nil {
		name = newRS.Name
	}
	if hasProgressDeadline(d) && !complete {
		progressing := metav1.Condition{Type: appsv1alpha1.DeploymentProgressing, ObservedGeneration: d.Generation}
		switch {
		case deploymentComplete(d, st):
			progressing.Status, progressing.Reason = metav1.ConditionTrue, appsv1alpha1.ReasonNewReplicaSetAvailable
			progressing.Message = fmt.Sprintf("ReplicaSet %q has successfully progressed.", name)
			setCondition(&st.Conditions, progressing, now)
		case deploymentProgressing(d, st),
			// A rollout that was complete has started again (a new template,
			// or a scale-up): it progresses from now, whether or not this
			// sync's counts differ from the stored ones, which may already
			// hold the new ReplicaSet when the write that created it was lost.
			cur != nil && cur.Reason == appsv1alpha1.ReasonNewReplicaSetAvailable:
			progressing.Status, progressing.Reason = metav1.ConditionTrue, appsv1alpha1.ReasonReplicaSetUpdated
			progressing.Message = fmt.Sprintf("ReplicaSet %q is progressing.", name)
			refreshCondition(&st.Conditions, progressing, now)
		case deploymentTimedOut(d, st, now):
			progressing.Status, progressing.Reason = metav1.ConditionFalse, appsv1alpha1.ReasonProgressDeadlineExceeded
			progressing.Message = fmt.Sprintf("ReplicaSet %q has timed out progressing.", name)
			setCondition(&st.Conditions, progressing, now)
		}
	}
	var failure *metav1.Condition
	for _, rs := range all {
		if c := meta.FindStatusCondition(rs.Status.Conditions, appsv1alpha1.ReplicaFailure); c != nil && c.Status == metav1.ConditionTrue {
			failure = c
			break
		}
	}
	if failure != nil {
		setCondition(&st.Conditions, metav1.Condition{Type: appsv1alpha1.ReplicaFailure, Status: metav1.ConditionTrue,
			Reason: failure.Reason, Message: failure.Message, ObservedGeneration: d.Generation}, now)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, appsv1alpha1.ReplicaFailure)
	}

	// Check the deadline again when it would pass, as upstream's requeueStuckDeployment.
	c := meta.FindStatusCondition(st.Conditions, appsv1alpha1.DeploymentProgressing)
	if !hasProgressDeadline(d) || c == nil || deploymentComplete(d, st) || c.Reason == appsv1alpha1.ReasonProgressDeadlineExceeded {
		return 0
	}
	after := c.LastTransitionTime.Add(progressDeadline(d)).Sub(now)
	return max(after, 0) + time.Second
}

// deploymentSummary is the Ready summary of a Deployment: Ready once the
// rollout is complete, Stalled once the progress deadline is exceeded.
func deploymentSummary(d *appsv1alpha1.Deployment, st *appsv1alpha1.DeploymentStatus) summary {
	replicas := deploymentReplicas(d)
	if c := meta.FindStatusCondition(st.Conditions, appsv1alpha1.DeploymentProgressing); c != nil && c.Status == metav1.ConditionFalse && c.Reason == appsv1alpha1.ReasonProgressDeadlineExceeded {
		return summary{stalled: true, reason: c.Reason, message: c.Message}
	}
	if deploymentComplete(d, st) && st.ReadyReplicas >= replicas {
		return summary{ready: true, message: fmt.Sprintf("Deployment has %s available at the latest revision.", plural(replicas, "replica"))}
	}
	if d.Spec.Paused {
		return summary{reason: appsv1alpha1.ReasonDeploymentPaused, message: "Deployment is paused."}
	}
	switch {
	case st.UpdatedReplicas < replicas:
		return summary{message: fmt.Sprintf("Waiting for rollout to finish: %d out of %d new replicas have been updated.", st.UpdatedReplicas, replicas)}
	case st.Replicas > st.UpdatedReplicas:
		return summary{message: fmt.Sprintf("Waiting for rollout to finish: %d old replicas are pending termination.", st.Replicas-st.UpdatedReplicas)}
	default:
		return summary{message: fmt.Sprintf("Waiting for rollout to finish: %d of %d updated replicas are available.", st.AvailableReplicas, st.UpdatedReplicas)}
	}
}
