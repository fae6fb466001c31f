package batch

import (
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// matchFailurePolicy returns the action of the first rule of policy that
// matches the failed pod, and that rule's index; ok is false when no rule
// matches, and the failure then counts towards the backoff limit, as
// upstream's pod_failure_policy.go.
func matchFailurePolicy(policy *batchv1.PodFailurePolicy, pod *corev1alpha1.Pod) (action batchv1.PodFailurePolicyAction, rule int, ok bool) {
	if policy == nil {
		return "", 0, false
	}
	for i, r := range policy.Rules {
		switch {
		case r.OnExitCodes != nil && matchExitCodes(r.OnExitCodes, pod):
			return r.Action, i, true
		case len(r.OnPodConditions) > 0 && matchPodConditions(r.OnPodConditions, pod):
			return r.Action, i, true
		}
	}
	return "", 0, false
}

func matchExitCodes(req *batchv1.PodFailurePolicyOnExitCodesRequirement, pod *corev1alpha1.Pod) bool {
	statuses := append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if req.ContainerName != nil && *req.ContainerName != cs.Name {
			continue
		}
		if cs.State.Terminated == nil {
			continue
		}
		code := cs.State.Terminated.ExitCode
		in := slices.Contains(req.Values, code)
		switch req.Operator {
		case batchv1.PodFailurePolicyOnExitCodesOpIn:
			if in {
				return true
			}
		case batchv1.PodFailurePolicyOnExitCodesOpNotIn:
			// A container that succeeded is no failure to match, as upstream.
			if !in && code != 0 {
				return true
			}
		}
	}
	return false
}

func matchPodConditions(patterns []batchv1.PodFailurePolicyOnPodConditionsPattern, pod *corev1alpha1.Pod) bool {
	for _, p := range patterns {
		c := meta.FindStatusCondition(pod.Status.Conditions, string(p.Type))
		status := p.Status
		if status == "" {
			status = corev1.ConditionTrue
		}
		if c != nil && string(c.Status) == string(status) {
			return true
		}
	}
	return false
}
