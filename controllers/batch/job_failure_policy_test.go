package batch

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func failedPod(exitCodes map[string]int32, conds ...string) *corev1alpha1.Pod {
	p := &corev1alpha1.Pod{Status: corev1alpha1.PodStatus{Phase: corev1.PodFailed}}
	for _, name := range []string{"main", "sidecar"} {
		if code, ok := exitCodes[name]; ok {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}},
			})
		}
	}
	for _, c := range conds {
		p.Status.Conditions = append(p.Status.Conditions, metav1.Condition{Type: c, Status: metav1.ConditionTrue})
	}
	return p
}

func TestMatchFailurePolicy(t *testing.T) {
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: ptr.To("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
			{Type: corev1.DisruptionTarget}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1, 2}}},
	}}
	tests := map[string]struct {
		pod        *corev1alpha1.Pod
		wantAction batchv1.PodFailurePolicyAction
		wantRule   int
		wantOK     bool
	}{
		"exit code 42 in main fails the job":     {failedPod(map[string]int32{"main": 42}), batchv1.PodFailurePolicyActionFailJob, 0, true},
		"exit code 42 in another container":      {failedPod(map[string]int32{"sidecar": 42}), batchv1.PodFailurePolicyActionCount, 2, true},
		"disruption is ignored":                  {failedPod(map[string]int32{"main": 1}, string(corev1.DisruptionTarget)), batchv1.PodFailurePolicyActionIgnore, 1, true},
		"exit code 1 matches no rule":            {failedPod(map[string]int32{"main": 1}), "", 0, false},
		"NotIn never matches a successful exit":  {failedPod(map[string]int32{"main": 0, "sidecar": 2}), "", 0, false},
		"first matching rule wins":               {failedPod(map[string]int32{"main": 42}, string(corev1.DisruptionTarget)), batchv1.PodFailurePolicyActionFailJob, 0, true},
		"a pod with no statuses matches nothing": {failedPod(nil), "", 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			action, rule, ok := matchFailurePolicy(policy, tc.pod)
			if action != tc.wantAction || rule != tc.wantRule || ok != tc.wantOK {
				t.Errorf("got (%q, %d, %v), want (%q, %d, %v)", action, rule, ok, tc.wantAction, tc.wantRule, tc.wantOK)
			}
		})
	}
}
