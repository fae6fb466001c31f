package podutil

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func readyPod(status metav1.ConditionStatus, since time.Time) *corev1alpha1.Pod {
	return &corev1alpha1.Pod{Status: corev1alpha1.PodStatus{Conditions: []metav1.Condition{{
		Type: conditions.Ready, Status: status, LastTransitionTime: metav1.NewTime(since),
	}}}}
}

func TestIsAvailable(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		pod      *corev1alpha1.Pod
		minReady int32
		want     bool
	}{
		"ready, no minReadySeconds":         {readyPod(metav1.ConditionTrue, now), 0, true},
		"ready long enough":                 {readyPod(metav1.ConditionTrue, now.Add(-11*time.Second)), 10, true},
		"ready, not long enough":            {readyPod(metav1.ConditionTrue, now.Add(-5*time.Second)), 10, false},
		"not ready":                         {readyPod(metav1.ConditionFalse, now.Add(-time.Hour)), 0, false},
		"no conditions":                     {&corev1alpha1.Pod{}, 0, false},
		"ready exactly minReadySeconds ago": {readyPod(metav1.ConditionTrue, now.Add(-10*time.Second)), 10, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := IsAvailable(tc.pod, tc.minReady, now); got != tc.want {
				t.Errorf("IsAvailable = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIsActive(t *testing.T) {
	deleted := metav1.Now()
	tests := map[string]struct {
		pod  *corev1alpha1.Pod
		want bool
	}{
		"pending":     {&corev1alpha1.Pod{}, true},
		"running":     {&corev1alpha1.Pod{Status: corev1alpha1.PodStatus{Phase: corev1.PodRunning}}, true},
		"succeeded":   {&corev1alpha1.Pod{Status: corev1alpha1.PodStatus{Phase: corev1.PodSucceeded}}, false},
		"failed":      {&corev1alpha1.Pod{Status: corev1alpha1.PodStatus{Phase: corev1.PodFailed}}, false},
		"terminating": {&corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted}}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := IsActive(tc.pod); got != tc.want {
				t.Errorf("IsActive = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSetDisruptionTarget(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	tests := map[string]struct {
		conds       []metav1.Condition
		wantChanged bool
		wantSince   bool // the transition time stays then
	}{
		"no condition": {nil, true, false},
		"already set":  {[]metav1.Condition{{Type: string(corev1.DisruptionTarget), Status: metav1.ConditionTrue, ObservedGeneration: 2, Reason: ReasonEvictionByEvictionAPI, Message: MessageEvictionByEvictionAPI, LastTransitionTime: then}}, false, true},
		"other reason": {[]metav1.Condition{{Type: string(corev1.DisruptionTarget), Status: metav1.ConditionTrue, ObservedGeneration: 2, Reason: "PreemptionByScheduler", LastTransitionTime: then}}, true, true},
		"was False":    {[]metav1.Condition{{Type: string(corev1.DisruptionTarget), Status: metav1.ConditionFalse, Reason: "X", LastTransitionTime: then}}, true, false},
		"keeps others": {[]metav1.Condition{{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: "R", LastTransitionTime: then}}, true, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := &corev1alpha1.Pod{}
			pod.Generation = 2
			pod.Status.Conditions = tc.conds
			if got := SetDisruptionTarget(pod, ReasonEvictionByEvictionAPI, MessageEvictionByEvictionAPI); got != tc.wantChanged {
				t.Errorf("changed = %v, want %v", got, tc.wantChanged)
			}
			var c *metav1.Condition
			for i := range pod.Status.Conditions {
				if pod.Status.Conditions[i].Type == string(corev1.DisruptionTarget) {
					c = &pod.Status.Conditions[i]
				}
			}
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonEvictionByEvictionAPI ||
				c.Message != MessageEvictionByEvictionAPI || c.ObservedGeneration != 2 {
				t.Fatalf("condition %+v", c)
			}
			if got := c.LastTransitionTime.Equal(&then); got != tc.wantSince {
				t.Errorf("transition time kept = %v, want %v (%v)", got, tc.wantSince, c.LastTransitionTime)
			}
			if name == "keeps others" && len(pod.Status.Conditions) != 2 {
				t.Errorf("conditions %+v", pod.Status.Conditions)
			}
		})
	}
}
