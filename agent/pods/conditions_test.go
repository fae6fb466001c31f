package pods

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func cond(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(time.Unix(1000, 0))}
}

func TestMergeConditions(t *testing.T) {
	const T, F = metav1.ConditionTrue, metav1.ConditionFalse
	disruption := cond(string(corev1.DisruptionTarget), T, "PreemptionByScheduler")
	scheduled := cond(corev1alpha1.PodScheduled, T, corev1alpha1.ReasonScheduled)
	tests := map[string]struct {
		current, computed, want []metav1.Condition
	}{
		"first write takes everything computed": {
			computed: []metav1.Condition{scheduled, cond(conditions.Ready, F, ReasonContainersNotReady)},
			want:     []metav1.Condition{scheduled, cond(conditions.Ready, F, ReasonContainersNotReady)},
		},
		"a DisruptionTarget the computed status never saw is kept": {
			current:  []metav1.Condition{scheduled, cond(conditions.Ready, T, ReasonPodReady), disruption},
			computed: []metav1.Condition{scheduled, cond(conditions.Ready, T, ReasonPodReady)},
			want:     []metav1.Condition{scheduled, cond(conditions.Ready, T, ReasonPodReady), disruption},
		},
		"agent-owned types come from the computed status": {
			current: []metav1.Condition{scheduled, cond(corev1alpha1.PodInitialized, F, ReasonContainersNotInitialized),
				cond(conditions.Ready, F, corev1alpha1.ReasonNodeUnreachable), cond(conditions.Reconciling, T, "Progressing")},
			computed: []metav1.Condition{cond(corev1alpha1.PodInitialized, T, ReasonInitialized), cond(conditions.Ready, T, ReasonPodReady)},
			want: []metav1.Condition{scheduled, cond(corev1alpha1.PodInitialized, T, ReasonInitialized),
				cond(conditions.Ready, T, ReasonPodReady)},
		},
		"PodScheduled of the scheduler wins over the computed one": {
			current:  []metav1.Condition{cond(corev1alpha1.PodScheduled, T, "SchedulerReason")},
			computed: []metav1.Condition{scheduled},
			want:     []metav1.Condition{cond(corev1alpha1.PodScheduled, T, "SchedulerReason")},
		},
		"foreign conditions the computed status carries stale are taken from current": {
			current:  []metav1.Condition{scheduled, cond(string(corev1.DisruptionTarget), F, "Gone")},
			computed: []metav1.Condition{scheduled, disruption, cond(corev1alpha1.ContainersReady, T, ReasonContainersReady)},
			want: []metav1.Condition{scheduled, cond(corev1alpha1.ContainersReady, T, ReasonContainersReady),
				cond(string(corev1.DisruptionTarget), F, "Gone")},
		},
		"PodReadyToStartContainers is the agent's": {
			current:  []metav1.Condition{cond(string(corev1.PodReadyToStartContainers), F, "x")},
			computed: []metav1.Condition{cond(string(corev1.PodReadyToStartContainers), T, "y")},
			want:     []metav1.Condition{cond(string(corev1.PodReadyToStartContainers), T, "y")},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cur := append([]metav1.Condition(nil), tc.current...)
			got := MergeConditions(tc.current, tc.computed)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("MergeConditions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(cur, tc.current); diff != "" {
				t.Errorf("current was modified:\n%s", diff)
			}
		})
	}
}

func TestWithLastStatusKeepsForeignConditions(t *testing.T) {
	pod := MakePod("web").Containers("a").Obj()
	disruption := cond(string(corev1.DisruptionTarget), metav1.ConditionTrue, "EvictionByEvictionAPI")
	pod.Status.Conditions = []metav1.Condition{disruption}
	last := &corev1alpha1.PodStatus{Phase: corev1.PodRunning, Conditions: []metav1.Condition{
		cond(corev1alpha1.PodScheduled, metav1.ConditionTrue, corev1alpha1.ReasonScheduled),
		cond(conditions.Ready, metav1.ConditionTrue, ReasonPodReady)}}
	got := withLastStatus(pod, last)
	want := []metav1.Condition{last.Conditions[0], last.Conditions[1], disruption}
	if diff := cmp.Diff(want, got.Status.Conditions); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if got.Status.Phase != corev1.PodRunning || len(pod.Status.Conditions) != 1 {
		t.Errorf("phase %q, input conditions %d", got.Status.Phase, len(pod.Status.Conditions))
	}
}

func TestComputePodStatusKeepsForeignConditions(t *testing.T) {
	pod := MakePod("web").Containers("a").Obj()
	disruption := cond(string(corev1.DisruptionTarget), metav1.ConditionTrue, "DeletionByPodGC")
	scheduled := cond(corev1alpha1.PodScheduled, metav1.ConditionTrue, "SchedulerReason")
	pod.Status.Conditions = []metav1.Condition{disruption, scheduled}
	st := ComputePodStatus(StatusInput{Pod: pod, Runtime: MakeRuntime().Sandbox(true).Running("a", 0).Obj(), Now: t0})
	var types []string
	for _, c := range st.Conditions {
		types = append(types, c.Type)
	}
	want := []string{corev1alpha1.PodScheduled, corev1alpha1.PodInitialized, corev1alpha1.ContainersReady, conditions.Ready, string(corev1.DisruptionTarget)}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("condition types (-want +got):\n%s", diff)
	}
	if got := st.Conditions[0]; got.Reason != "SchedulerReason" {
		t.Errorf("PodScheduled was overwritten: %+v", got)
	}
	if got := st.Conditions[4]; got != disruption {
		t.Errorf("DisruptionTarget changed: %+v", got)
	}
}
