package batch

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func jobWith(f func(*batchv1alpha1.Job)) *batchv1alpha1.Job {
	j := &batchv1alpha1.Job{}
	f(j)
	return j
}

func indexedPod(idx int, phase corev1.PodPhase) *corev1alpha1.Pod {
	return &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p" + strconv.Itoa(idx), Annotations: map[string]string{AnnotationCompletionIndex: strconv.Itoa(idx)}},
		Status:     corev1alpha1.PodStatus{Phase: phase},
	}
}

func TestPlanPods(t *testing.T) {
	running := func(n int) []*corev1alpha1.Pod {
		var out []*corev1alpha1.Pod
		for i := 0; i < n; i++ {
			out = append(out, &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "r" + strconv.Itoa(i)}, Status: corev1alpha1.PodStatus{Phase: corev1.PodRunning}})
		}
		return out
	}
	indexed := func(completions, parallelism int32, done string) *batchv1alpha1.Job {
		return jobWith(func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = &completions, &parallelism
			j.Status.CompletedIndexes = done
		})
	}
	tests := map[string]struct {
		job        *batchv1alpha1.Job
		pods       []*corev1alpha1.Pod
		wantCreate []int
		wantRemove int
	}{
		"default parallelism 1": {job: jobWith(func(*batchv1alpha1.Job) {}), wantCreate: []int{-1}},
		"parallelism capped by remaining completions": {
			job: jobWith(func(j *batchv1alpha1.Job) {
				j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](5), ptr.To[int32](4)
				j.Status.Succeeded = 3
			}),
			wantCreate: []int{-1, -1},
		},
		"surplus is deleted after parallelism drops": {
			job:        jobWith(func(j *batchv1alpha1.Job) { j.Spec.Parallelism = ptr.To[int32](1) }),
			pods:       running(3),
			wantRemove: 2,
		},
		"work queue stops creating after a success": {
			job:  jobWith(func(j *batchv1alpha1.Job) { j.Spec.Parallelism = ptr.To[int32](3); j.Status.Succeeded = 1 }),
			pods: running(1),
		},
		"indexed fills the lowest free indexes": {
			job:        indexed(5, 2, "0"),
			pods:       []*corev1alpha1.Pod{indexedPod(2, corev1.PodRunning)},
			wantCreate: []int{1},
		},
		"indexed deletes a duplicate index": {
			job:        indexed(3, 3, ""),
			pods:       []*corev1alpha1.Pod{indexedPod(0, corev1.PodRunning), indexedPod(0, corev1.PodPending)},
			wantCreate: []int{1, 2},
			wantRemove: 1,
		},
		"indexed skips completed indexes": {
			job:        indexed(3, 3, "0-1"),
			wantCreate: []int{2},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			plan := planPods(tc.job, tc.pods, activePods(tc.job, tc.pods))
			if diff := cmp.Diff(tc.wantCreate, plan.create); diff != "" {
				t.Errorf("create (-want +got):\n%s", diff)
			}
			if len(plan.remove) != tc.wantRemove {
				t.Errorf("remove %d pods, want %d", len(plan.remove), tc.wantRemove)
			}
		})
	}
}

func TestFailureAndSuccessCriteria(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	restarting := func(phase corev1.PodPhase, restarts int32) *corev1alpha1.Pod {
		return &corev1alpha1.Pod{Status: corev1alpha1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{Name: "main", RestartCount: restarts}}}}
	}
	onFailure := func(limit *int32) func(*batchv1alpha1.Job) {
		return func(j *batchv1alpha1.Job) {
			j.Spec.BackoffLimit = limit
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}
	}
	tests := map[string]struct {
		job         *batchv1alpha1.Job
		pods        []*corev1alpha1.Pod
		wantFailure string
		wantSuccess string
	}{
		"within the backoff limit": {job: jobWith(func(j *batchv1alpha1.Job) { j.Spec.BackoffLimit = ptr.To[int32](2); j.Status.Failed = 2 })},
		"beyond the backoff limit": {
			job:         jobWith(func(j *batchv1alpha1.Job) { j.Spec.BackoffLimit = ptr.To[int32](2); j.Status.Failed = 3 }),
			wantFailure: batchv1alpha1.ReasonBackoffLimitExceeded,
		},
		"default backoff limit is 6": {job: jobWith(func(j *batchv1alpha1.Job) { j.Status.Failed = 6 })},
		"beyond the default backoff limit": {
			job:         jobWith(func(j *batchv1alpha1.Job) { j.Status.Failed = 7 }),
			wantFailure: batchv1alpha1.ReasonBackoffLimitExceeded,
		},
		"no global limit by default with backoffLimitPerIndex": {
			job: jobWith(func(j *batchv1alpha1.Job) {
				j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
				j.Spec.Completions, j.Spec.BackoffLimitPerIndex = ptr.To[int32](5), ptr.To[int32](100)
				j.Status.Failed = 1000
			}),
		},
		"an explicit backoffLimit holds with backoffLimitPerIndex": {
			job: jobWith(func(j *batchv1alpha1.Job) {
				j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
				j.Spec.Completions, j.Spec.BackoffLimitPerIndex, j.Spec.BackoffLimit = ptr.To[int32](5), ptr.To[int32](100), ptr.To[int32](2)
				j.Status.Failed = 3
			}),
			wantFailure: batchv1alpha1.ReasonBackoffLimitExceeded,
		},
		"OnFailure restarts below the limit": {
			job:  jobWith(onFailure(ptr.To[int32](3))),
			pods: []*corev1alpha1.Pod{restarting(corev1.PodRunning, 1), restarting(corev1.PodPending, 1), restarting(corev1.PodFailed, 5)},
		},
		"OnFailure restarts reach the limit": {
			job:         jobWith(onFailure(ptr.To[int32](3))),
			pods:        []*corev1alpha1.Pod{restarting(corev1.PodRunning, 2), restarting(corev1.PodPending, 1)},
			wantFailure: batchv1alpha1.ReasonBackoffLimitExceeded,
		},
		"OnFailure with backoffLimit 0 fails on the first restart": {
			job:         jobWith(onFailure(ptr.To[int32](0))),
			pods:        []*corev1alpha1.Pod{restarting(corev1.PodRunning, 1)},
			wantFailure: batchv1alpha1.ReasonBackoffLimitExceeded,
		},
		"restarts do not count with restartPolicy Never": {
			job:  jobWith(func(j *batchv1alpha1.Job) { j.Spec.BackoffLimit = ptr.To[int32](1) }),
			pods: []*corev1alpha1.Pod{restarting(corev1.PodRunning, 4)},
		},
		"deadline passed": {
			job: jobWith(func(j *batchv1alpha1.Job) {
				j.Spec.ActiveDeadlineSeconds = ptr.To[int64](10)
				j.Status.StartTime = &metav1.Time{Time: now.Add(-10 * time.Second)}
			}),
			wantFailure: batchv1alpha1.ReasonDeadlineExceeded,
		},
		"too many failed indexes": {
			job: jobWith(func(j *batchv1alpha1.Job) {
				j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
				j.Spec.Completions, j.Spec.BackoffLimitPerIndex, j.Spec.MaxFailedIndexes = ptr.To[int32](5), ptr.To[int32](0), ptr.To[int32](1)
				j.Status.FailedIndexes = ptr.To("1,3")
			}),
			wantFailure: batchv1alpha1.ReasonMaxFailedIndexesExceeded,
		},
		"completions reached": {
			job:         jobWith(func(j *batchv1alpha1.Job) { j.Spec.Completions = ptr.To[int32](3); j.Status.Succeeded = 3 }),
			wantSuccess: batchv1alpha1.ReasonCompletionsReached,
		},
		"success policy by count": {
			job: jobWith(func(j *batchv1alpha1.Job) {
				j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
				j.Spec.Completions = ptr.To[int32](10)
				j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0-4"), SucceededCount: ptr.To[int32](2)}}}
				j.Status.CompletedIndexes = "3,4,8"
			}),
			wantSuccess: batchv1alpha1.ReasonSuccessPolicy,
		},
		"success policy not met": {
			job: jobWith(func(j *batchv1alpha1.Job) {
				j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
				j.Spec.Completions = ptr.To[int32](10)
				j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0")}}}
				j.Status.CompletedIndexes = "1-9"
			}),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got, _ := failureCriteria(tc.job, tc.pods, now); got != tc.wantFailure {
				t.Errorf("failure = %q, want %q", got, tc.wantFailure)
			}
			if got, _ := successCriteria(tc.job, nil); got != tc.wantSuccess {
				t.Errorf("success = %q, want %q", got, tc.wantSuccess)
			}
		})
	}
}

func TestIndexFailed(t *testing.T) {
	failedPod := func(failures string, exitCode int32) *corev1alpha1.Pod {
		p := indexedPod(1, corev1.PodFailed)
		if failures != "" {
			p.Annotations[AnnotationIndexFailureCount] = failures
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode}}}}
		return p
	}
	indexed := func(perIndex *int32, rules ...batchv1.PodFailurePolicyRule) *batchv1alpha1.Job {
		return jobWith(func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions = ptr.To[int32](3)
			j.Spec.BackoffLimitPerIndex = perIndex
			if len(rules) > 0 {
				j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: rules}
			}
		})
	}
	failIndexOn42 := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionFailIndex,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}}
	tests := map[string]struct {
		job  *batchv1alpha1.Job
		pod  *corev1alpha1.Pod
		want bool
	}{
		"backoffLimitPerIndex 0: the first failure fails the index":  {job: indexed(ptr.To[int32](0)), pod: failedPod("0", 1), want: true},
		"backoffLimitPerIndex 1: the first failure is retried":       {job: indexed(ptr.To[int32](1)), pod: failedPod("0", 1), want: false},
		"backoffLimitPerIndex 1: the second failure fails the index": {job: indexed(ptr.To[int32](1)), pod: failedPod("1", 1), want: true},
		"a pod without the annotation is its index's first try":      {job: indexed(ptr.To[int32](1)), pod: failedPod("", 1), want: false},
		"no backoffLimitPerIndex: indexes never fail by count":       {job: indexed(nil), pod: failedPod("7", 1), want: false},
		"a FailIndex rule fails the index at once":                   {job: indexed(ptr.To[int32](5), failIndexOn42), pod: failedPod("0", 42), want: true},
		"a FailIndex rule that does not match leaves the count":      {job: indexed(ptr.To[int32](5), failIndexOn42), pod: failedPod("0", 1), want: false},
		"a NonIndexed Job has no indexes to fail": {job: jobWith(func(j *batchv1alpha1.Job) { j.Spec.BackoffLimitPerIndex = ptr.To[int32](0) }),
			pod: failedPod("0", 1), want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			action, _, matched := matchFailurePolicy(tc.job.Spec.PodFailurePolicy, tc.pod)
			if got := indexFailed(tc.job, tc.pod, action, matched); got != tc.want {
				t.Errorf("indexFailed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPodOutcome(t *testing.T) {
	deleted := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	pod := func(phase corev1.PodPhase, deleting bool, finalizers ...string) *corev1alpha1.Pod {
		p := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Finalizers: finalizers}, Status: corev1alpha1.PodStatus{Phase: phase}}
		if deleting {
			p.DeletionTimestamp = &deleted
		}
		return p
	}
	byDefault := jobWith(func(*batchv1alpha1.Job) {})
	onlyFailed := jobWith(func(j *batchv1alpha1.Job) { j.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed) })
	const agent = "skiff.dev/agent"
	tests := map[string]struct {
		job  *batchv1alpha1.Job
		pod  *corev1alpha1.Pod
		want outcome
	}{
		"running":                          {job: byDefault, pod: pod(corev1.PodRunning, false), want: outcomeNone},
		"succeeded":                        {job: byDefault, pod: pod(corev1.PodSucceeded, false), want: outcomeSucceeded},
		"succeeded, then deleted":          {job: byDefault, pod: pod(corev1.PodSucceeded, true), want: outcomeSucceeded},
		"failed":                           {job: onlyFailed, pod: pod(corev1.PodFailed, false), want: outcomeFailed},
		"deleted while running":            {job: byDefault, pod: pod(corev1.PodRunning, true, agent, batchv1alpha1.JobTrackingFinalizer), want: outcomeFailed},
		"replace only failed: stopping":    {job: onlyFailed, pod: pod(corev1.PodRunning, true, agent, batchv1alpha1.JobTrackingFinalizer), want: outcomeNone},
		"replace only failed: node let go": {job: onlyFailed, pod: pod(corev1.PodRunning, true, batchv1alpha1.JobTrackingFinalizer), want: outcomeFailed},
		"replace only failed: never bound": {job: onlyFailed, pod: pod(corev1.PodPending, true, batchv1alpha1.JobTrackingFinalizer), want: outcomeFailed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := podOutcome(tc.job, tc.pod); got != tc.want {
				t.Errorf("podOutcome = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewSuccess(t *testing.T) {
	indexed := func(done string) *batchv1alpha1.Job {
		return jobWith(func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions = ptr.To[int32](3)
			j.Status.CompletedIndexes = done
		})
	}
	noIndex := indexedPod(0, corev1.PodSucceeded)
	delete(noIndex.Annotations, AnnotationCompletionIndex)
	tests := map[string]struct {
		job       *batchv1alpha1.Job
		pod       *corev1alpha1.Pod
		wantIndex int
		wantCount bool
	}{
		"NonIndexed: every success counts":              {job: jobWith(func(*batchv1alpha1.Job) {}), pod: noIndex, wantIndex: -1, wantCount: true},
		"Indexed: a new index counts":                   {job: indexed("0"), pod: indexedPod(1, corev1.PodSucceeded), wantIndex: 1, wantCount: true},
		"Indexed: an index done already does not count": {job: indexed("0-2"), pod: indexedPod(1, corev1.PodSucceeded), wantIndex: -1},
		"Indexed: beyond completions":                   {job: indexed(""), pod: indexedPod(5, corev1.PodSucceeded), wantIndex: -1},
		"Indexed: no index":                             {job: indexed(""), pod: noIndex, wantIndex: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			idx, counts := newSuccess(tc.job, tc.pod)
			if idx != tc.wantIndex || counts != tc.wantCount {
				t.Errorf("newSuccess = %d, %v; want %d, %v", idx, counts, tc.wantIndex, tc.wantCount)
			}
		})
	}
}
