// Package podutil answers the questions about skiff Pods that every
// controller asks: is it ready, available, active, terminal? It mirrors the
// upstream helpers (k8s.io/kubernetes/pkg/api/v1/pod, controller_utils.go)
// for skiff's Pod type, whose conditions are metav1.Conditions. It holds
// pure functions only.
package podutil

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// IsReady tells whether the pod's Ready condition is True.
func IsReady(pod *corev1alpha1.Pod) bool {
	return meta.IsStatusConditionTrue(pod.Status.Conditions, conditions.Ready)
}

// IsAvailable tells whether the pod has been ready for at least
// minReadySeconds at now, as upstream's IsPodAvailable.
func IsAvailable(pod *corev1alpha1.Pod, minReadySeconds int32, now time.Time) bool {
	c := meta.FindStatusCondition(pod.Status.Conditions, conditions.Ready)
	if c == nil || c.Status != metav1.ConditionTrue {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	minReady := time.Duration(minReadySeconds) * time.Second
	return !c.LastTransitionTime.IsZero() && c.LastTransitionTime.Add(minReady).Before(now)
}

// IsTerminal tells whether the pod has Succeeded or Failed.
func IsTerminal(pod *corev1alpha1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// IsTerminating tells whether the pod is being deleted.
func IsTerminating(pod *corev1alpha1.Pod) bool {
	return pod.DeletionTimestamp != nil
}

// IsActive tells whether the pod counts towards a controller's replicas:
// not terminal and not being deleted, as upstream's IsPodActive.
func IsActive(pod *corev1alpha1.Pod) bool {
	return !IsTerminal(pod) && !IsTerminating(pod)
}

// IsScheduled tells whether the pod is bound to a node.
func IsScheduled(pod *corev1alpha1.Pod) bool {
	return pod.Spec.NodeName != ""
}

// Reasons and messages of the DisruptionTarget condition, upstream's: the
// eviction API's and the taint eviction's.
const (
	ReasonEvictionByEvictionAPI   = "EvictionByEvictionAPI"
	MessageEvictionByEvictionAPI  = "Eviction API: evicting"
	ReasonDeletionByTaintManager  = "DeletionByTaintManager"
	MessageDeletionByTaintManager = "Taint manager: deleting due to NoExecute taint"
)

// SetDisruptionTarget sets DisruptionTarget=True with reason and message
// on the pod's status, as a writer does just before it deletes the pod for
// a disruption, so a Job's pod failure policy can tell why it went. The
// transition time stays when the condition was already True. It tells
// whether the status changed.
func SetDisruptionTarget(pod *corev1alpha1.Pod, reason, message string) bool {
	return meta.SetStatusCondition(&pod.Status.Conditions, metav1.Condition{
		Type:               string(corev1.DisruptionTarget),
		Status:             metav1.ConditionTrue,
		ObservedGeneration: pod.Generation,
		Reason:             reason,
		Message:            message,
	})
}
