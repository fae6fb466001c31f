package batch

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
)

func TestDefaultJob(t *testing.T) {
	tests := map[string]struct {
		job  func(*batchv1alpha1.Job)
		want func(*batchv1alpha1.Job)
	}{
		"a bare Job runs one pod to one success with backoffLimit 6": {
			job: func(*batchv1alpha1.Job) {},
			want: func(j *batchv1alpha1.Job) {
				j.Spec.Completions, j.Spec.Parallelism, j.Spec.BackoffLimit = ptr.To[int32](1), ptr.To[int32](1), ptr.To[int32](6)
			},
		},
		"backoffLimitPerIndex leaves no global limit": {
			job: func(j *batchv1alpha1.Job) {
				j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
				j.Spec.Completions, j.Spec.BackoffLimitPerIndex = ptr.To[int32](4), ptr.To[int32](1)
			},
			want: func(j *batchv1alpha1.Job) {
				j.Spec.Parallelism, j.Spec.BackoffLimit = ptr.To[int32](1), ptr.To[int32](math.MaxInt32)
			},
		},
		"an explicit backoffLimit stays, with backoffLimitPerIndex too": {
			job: func(j *batchv1alpha1.Job) {
				j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
				j.Spec.Completions, j.Spec.BackoffLimitPerIndex, j.Spec.BackoffLimit = ptr.To[int32](4), ptr.To[int32](1), ptr.To[int32](6)
			},
			want: func(j *batchv1alpha1.Job) { j.Spec.Parallelism = ptr.To[int32](1) },
		},
		"an explicit backoffLimit 0 stays": {
			job: func(j *batchv1alpha1.Job) {
				j.Spec.BackoffLimit = ptr.To[int32](0)
				j.Spec.Parallelism = ptr.To[int32](3)
			},
			want: func(*batchv1alpha1.Job) {},
		},
		"a work queue keeps completions unset": {
			job:  func(j *batchv1alpha1.Job) { j.Spec.Parallelism = ptr.To[int32](3) },
			want: func(j *batchv1alpha1.Job) { j.Spec.BackoffLimit = ptr.To[int32](6) },
		},
		"podFailurePolicy replaces only failed pods; condition patterns default to True": {
			job: func(j *batchv1alpha1.Job) {
				j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
					Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}},
				}}}
			},
			want: func(j *batchv1alpha1.Job) {
				j.Spec.Completions, j.Spec.Parallelism, j.Spec.BackoffLimit = ptr.To[int32](1), ptr.To[int32](1), ptr.To[int32](6)
				j.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
				j.Spec.PodFailurePolicy.Rules[0].OnPodConditions[0].Status = corev1.ConditionTrue
			},
		},
		"template labels become the Job's when it has none": {
			job: func(j *batchv1alpha1.Job) {
				j.Spec.Completions = ptr.To[int32](2)
				j.Spec.Template.Labels = map[string]string{"app": "x"}
			},
			want: func(j *batchv1alpha1.Job) {
				j.Labels = map[string]string{"app": "x"}
				j.Spec.Parallelism, j.Spec.BackoffLimit = ptr.To[int32](1), ptr.To[int32](6)
			},
		},
		"the Job's own labels stay": {
			job: func(j *batchv1alpha1.Job) {
				j.Labels = map[string]string{"team": "y"}
				j.Spec.Completions, j.Spec.Parallelism, j.Spec.BackoffLimit = ptr.To[int32](2), ptr.To[int32](2), ptr.To[int32](1)
				j.Spec.Template.Labels = map[string]string{"app": "x"}
			},
			want: func(*batchv1alpha1.Job) {},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			job := &batchv1alpha1.Job{}
			tc.job(job)
			want := job.DeepCopy()
			tc.want(want)
			// Fields every Job gets when unset.
			if want.Spec.CompletionMode == nil {
				want.Spec.CompletionMode = ptr.To(batchv1.NonIndexedCompletion)
			}
			if want.Spec.PodReplacementPolicy == nil {
				want.Spec.PodReplacementPolicy = ptr.To(batchv1.TerminatingOrFailed)
			}
			want.Spec.Suspend, want.Spec.ManualSelector = ptr.To(false), ptr.To(false)
			defaultJob(job)
			if diff := cmp.Diff(want, job); diff != "" {
				t.Errorf("defaulted Job (-want +got):\n%s", diff)
			}
		})
	}
}
