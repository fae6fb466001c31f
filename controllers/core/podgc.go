package core

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// DefaultTerminatingPodGCDelay is how long after its grace period ended a
// terminating pod on a node that is not Ready is force-deleted.
const DefaultTerminatingPodGCDelay = time.Minute

// DefaultOrphanQuarantine is how long a pod bound to a Node that does not
// exist waits for the Node to appear before it is force-deleted, as
// upstream's podgc.
const DefaultOrphanQuarantine = 40 * time.Second

// defaultPodGracePeriod is the termination grace period of a pod that sets
// none, as upstream.
const defaultPodGracePeriod = 30 * time.Second

// gcReason says why a pod is force-deleted.
type gcReason string

const (
	gcNone gcReason = ""
	// gcOutOfService: terminating on a not-ready node that an
	// administrator tainted node.kubernetes.io/out-of-service.
	gcOutOfService gcReason = "OutOfService"
	// gcTerminatingOnNotReady: terminating on a not-ready node for longer
	// than its grace period and the configured delay.
	gcTerminatingOnNotReady gcReason = "NotReadyNode"
	// gcOrphaned: bound to a Node that no longer exists.
	gcOrphaned gcReason = "NodeGone"
)

// podGracePeriod is how long the agent gives a deleted pod's containers to
// stop: the deletion's grace period, else the pod's
// terminationGracePeriodSeconds, else 30 s (the agent's own rule).
func podGracePeriod(pod *corev1alpha1.Pod) time.Duration {
	if pod.DeletionGracePeriodSeconds != nil && *pod.DeletionGracePeriodSeconds > 0 {
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return defaultPodGracePeriod
}

// hasTaintKey tells whether a taint with the key is present, whatever its
// effect, as upstream checks the out-of-service taint.
func hasTaintKey(taints []corev1.Taint, key string) bool {
	for _, t := range taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// terminatingGC decides about a terminating pod on an existing node: it
// is force-deleted when the node is not Ready and either carries the
// node.kubernetes.io/out-of-service taint (at once, as upstream's podgc),
// or the pod's grace period has ended delay ago (skiff's addition: upstream
// leaves such a pod Terminating until someone force-deletes it). A
// negative delay turns the timed case off. wait > 0 says when to look
// again.
func terminatingGC(pod *corev1alpha1.Pod, node *corev1alpha1.Node, delay time.Duration, now time.Time) (reason gcReason, wait time.Duration) {
	if pod.DeletionTimestamp == nil {
		return gcNone, 0
	}
	if meta.IsStatusConditionTrue(node.Status.Conditions, conditions.Ready) {
		return gcNone, 0 // The agent is there to finish the deletion.
	}
	if hasTaintKey(node.Spec.Taints, corev1.TaintNodeOutOfService) {
		return gcOutOfService, 0
	}
	if delay < 0 {
		return gcNone, 0
	}
	due := pod.DeletionTimestamp.Add(podGracePeriod(pod) + delay)
	if now.Before(due) {
		return gcNone, due.Sub(now)
	}
	return gcTerminatingOnNotReady, 0
}

// orphanGC decides about a pod whose Node is not in the cache: it waits
// the quarantine from when the Node was first found missing, so that a
// Node about to register (or a cache behind the API) is not taken for a
// deleted one. The caller confirms with an uncached read before deleting.
func orphanGC(missingSince time.Time, quarantine time.Duration, now time.Time) (reason gcReason, wait time.Duration) {
	due := missingSince.Add(quarantine)
	if now.Before(due) {
		return gcNone, due.Sub(now)
	}
	return gcOrphaned, 0
}

// failedStatus returns the status a force-deleted pod is left with, as
// upstream's podgc: phase Failed unless it already finished, so a pod that
// no agent will report on again does not stay Running; an orphaned pod
// also gets the DisruptionTarget condition. nil: nothing to write.
func failedStatus(status corev1alpha1.PodStatus, reason gcReason, now time.Time) *corev1alpha1.PodStatus {
	if status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed {
		return nil
	}
	out := status.DeepCopy()
	out.Phase = corev1.PodFailed
	if reason == gcOrphaned {
		meta.SetStatusCondition(&out.Conditions, metav1.Condition{
			Type:               string(corev1.DisruptionTarget),
			Status:             metav1.ConditionTrue,
			Reason:             "DeletionByPodGC",
			Message:            "PodGC: node no longer exists",
			LastTransitionTime: metav1.NewTime(now),
		})
	}
	return out
}
