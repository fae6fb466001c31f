package batch

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// finished is a pod whose container ended with code at t0+at.
func finished(name string, code int32, at time.Duration) *corev1alpha1.Pod {
	phase := corev1.PodSucceeded
	if code != 0 {
		phase = corev1.PodFailed
	}
	return &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), Annotations: map[string]string{}},
		Status: corev1alpha1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(t0.Add(at))}}}}},
	}
}

func tracked(p *corev1alpha1.Pod) *corev1alpha1.Pod {
	p.Finalizers = append(p.Finalizers, batchv1alpha1.JobTrackingFinalizer)
	return p
}

func withIndex(p *corev1alpha1.Pod, idx int, failures, ignored string) *corev1alpha1.Pod {
	p.Annotations[AnnotationCompletionIndex] = strconv.Itoa(idx)
	if failures != "" {
		p.Annotations[AnnotationIndexFailureCount] = failures
	}
	if ignored != "" {
		p.Annotations[AnnotationIndexIgnoredFailureCount] = ignored
	}
	return p
}

func pods(ps ...*corev1alpha1.Pod) []*corev1alpha1.Pod { return ps }

func TestBackoffRecordWithOutcomes(t *testing.T) {
	rec := func(n int32, last time.Duration) backoffRecord {
		return backoffRecord{failuresAfterLastSuccess: n, lastFailureTime: t0.Add(last)}
	}
	tests := map[string]struct {
		start             backoffRecord
		succeeded, failed []*corev1alpha1.Pod
		want              backoffRecord
	}{
		"nothing new keeps the record": {start: rec(3, 5*time.Second), want: rec(3, 5*time.Second)},
		"failures add up, the latest sets the time": {
			start:  rec(2, 0),
			failed: pods(finished("a", 1, 30*time.Second), finished("b", 1, 10*time.Second)),
			want:   rec(4, 30*time.Second),
		},
		"a success alone resets the count": {
			start:     rec(5, 0),
			succeeded: pods(finished("s", 0, time.Minute)),
			want:      backoffRecord{},
		},
		"a success keeps only the failures after it": {
			start:     rec(5, 0),
			succeeded: pods(finished("s", 0, 20*time.Second)),
			failed:    pods(finished("a", 1, 10*time.Second), finished("b", 1, 30*time.Second), finished("c", 1, 40*time.Second)),
			want:      rec(2, 40*time.Second),
		},
		"failures at the success's time do not count": {
			start:     rec(1, 0),
			succeeded: pods(finished("s", 0, 20*time.Second)),
			failed:    pods(finished("a", 1, 20*time.Second)),
			want:      backoffRecord{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.start.withOutcomes(tc.succeeded, tc.failed)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(backoffRecord{})); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSeedBackoffRecord(t *testing.T) {
	status := func(succeeded, failed int32, uncountedFailed ...types.UID) func(*batchv1alpha1.Job) {
		return func(j *batchv1alpha1.Job) {
			j.Status.Succeeded, j.Status.Failed = succeeded, failed
			if len(uncountedFailed) > 0 {
				j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{Failed: uncountedFailed}
			}
		}
	}
	tests := map[string]struct {
		job  *batchv1alpha1.Job
		pods []*corev1alpha1.Pod
		want backoffRecord
	}{
		"a new Job": {job: jobWith(status(0, 0))},
		"without a success every counted failure counts, even of pods deleted since": {
			job:  jobWith(status(0, 4, "u")),
			pods: pods(finished("a", 1, 10*time.Second), tracked(finished("u", 1, 20*time.Second))),
			want: backoffRecord{failuresAfterLastSuccess: 5, lastFailureTime: t0.Add(20 * time.Second)},
		},
		"no failed pod left: the count without a time": {
			job:  jobWith(status(0, 3)),
			want: backoffRecord{failuresAfterLastSuccess: 3},
		},
		"pods not yet in status are left for the sync to add": {
			job:  jobWith(status(0, 1)),
			pods: pods(finished("a", 1, 10*time.Second), tracked(finished("new", 1, 50*time.Second))),
			want: backoffRecord{failuresAfterLastSuccess: 1, lastFailureTime: t0.Add(10 * time.Second)},
		},
		"after a success, the failed pods left that finished after it": {
			job:  jobWith(status(1, 6)),
			pods: pods(finished("a", 1, 10*time.Second), finished("s", 0, 20*time.Second), finished("b", 1, 30*time.Second)),
			want: backoffRecord{failuresAfterLastSuccess: 1, lastFailureTime: t0.Add(30 * time.Second)},
		},
		"a success known from status only: every failed pod left": {
			job:  jobWith(status(1, 6)),
			pods: pods(finished("a", 1, 10*time.Second), finished("b", 1, 30*time.Second)),
			want: backoffRecord{failuresAfterLastSuccess: 2, lastFailureTime: t0.Add(30 * time.Second)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			recorded := func(p *corev1alpha1.Pod) bool {
				u := ptrOr(tc.job.Status.UncountedTerminatedPods, batchv1.UncountedTerminatedPods{})
				for _, uid := range append(u.Succeeded, u.Failed...) {
					if uid == p.UID {
						return true
					}
				}
				return false
			}
			isNew := func(p *corev1alpha1.Pod) bool { return hasTrackingFinalizer(p) && !recorded(p) }
			got := seedBackoffRecord(tc.job, tc.pods, isNew)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(backoffRecord{})); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoffRemainingFor(t *testing.T) {
	tests := map[string]struct {
		failures int32
		since    time.Duration
		want     time.Duration
	}{
		"no failures":              {0, 0, 0},
		"first failure waits 10s":  {1, 4 * time.Second, 6 * time.Second},
		"second waits 20s":         {2, 0, 20 * time.Second},
		"sixth waits 320s":         {6, 0, 320 * time.Second},
		"capped at ten minutes":    {7, 0, 10 * time.Minute},
		"far beyond, still capped": {40, time.Minute, 9 * time.Minute},
		"back-off over":            {1, time.Minute, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := backoffRemainingFor(tc.failures, t0, t0.Add(tc.since)); got != tc.want {
				t.Errorf("remaining = %v, want %v", got, tc.want)
			}
		})
	}
	if got := backoffRemainingFor(3, time.Time{}, t0); got != 0 {
		t.Errorf("an unknown failure time imposes no wait, got %v", got)
	}
}

func TestBackoffStore(t *testing.T) {
	s := newBackoffStore()
	job := &batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "j", UID: "1"}}
	s.set(job, backoffRecord{failuresAfterLastSuccess: 2})
	if got, ok := s.get(job); !ok || got.failuresAfterLastSuccess != 2 {
		t.Fatalf("get = %+v, %v", got, ok)
	}
	again := job.DeepCopy()
	again.UID = "2"
	if _, ok := s.get(again); ok {
		t.Error("a new Job of the same name got the old one's record")
	}
	s.remove(types.NamespacedName{Namespace: "ns", Name: "j"})
	if _, ok := s.get(job); ok {
		t.Error("removed record still there")
	}
}

func perIndexJob(limit int32, rules ...batchv1.PodFailurePolicyRule) *batchv1alpha1.Job {
	return jobWith(func(j *batchv1alpha1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](4), ptr.To[int32](4)
		j.Spec.BackoffLimitPerIndex = ptr.To(limit)
		if len(rules) > 0 {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: rules}
		}
		j.Status.Failed = 30 // many failures elsewhere: no index may wait for them
	})
}

var ignoreExit3 = batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionIgnore,
	OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}}}

func TestIndexBackoff(t *testing.T) {
	now := t0.Add(time.Minute)
	tests := map[string]struct {
		pods      []*corev1alpha1.Pod
		indexes   []int
		wantReady []int
		wantWait  time.Duration
	}{
		"indexes that never failed start at once": {indexes: []int{0, 1}, wantReady: []int{0, 1}},
		"an index waits by its own count, not the Job's": {
			// Index 0 failed once (count 0 on the pod) 55 s ago: 10 s are over.
			pods:      pods(withIndex(finished("a", 1, 5*time.Second), 0, "0", "")),
			indexes:   []int{0},
			wantReady: []int{0},
		},
		"a third failure of an index waits 40 s": {
			pods:     pods(withIndex(finished("a", 1, 50*time.Second), 0, "2", "")),
			indexes:  []int{0},
			wantWait: 30 * time.Second,
		},
		"ignored failures lengthen the wait": {
			pods:     pods(withIndex(finished("a", 1, 50*time.Second), 0, "1", "1")),
			indexes:  []int{0},
			wantWait: 30 * time.Second,
		},
		"the index's latest pod counts": {
			pods: pods(withIndex(finished("old", 1, 0), 1, "0", ""), withIndex(finished("new", 1, 55*time.Second), 1, "1", "")),
			// Count 1 on the pod: the second failure, 20 s from 55 s.
			indexes:  []int{1},
			wantWait: 15 * time.Second,
		},
		"ready indexes go, waiting ones stay": {
			pods:      pods(withIndex(finished("a", 1, 55*time.Second), 0, "0", "")),
			indexes:   []int{0, 2},
			wantReady: []int{2},
		},
		"none ready: the shortest wait": {
			pods:     pods(withIndex(finished("a", 1, 55*time.Second), 0, "0", ""), withIndex(finished("b", 1, 58*time.Second), 1, "0", "")),
			indexes:  []int{0, 1},
			wantWait: 5 * time.Second,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ready, wait := indexBackoff(perIndexJob(5), tc.pods, tc.indexes, now)
			if diff := cmp.Diff(tc.wantReady, ready); diff != "" || wait != tc.wantWait {
				t.Errorf("ready (-want +got):\n%s wait = %v, want %v", diff, wait, tc.wantWait)
			}
		})
	}
}

func TestIndexFailureCounts(t *testing.T) {
	failed := func(name string, idx int, failures, ignored string, code int32, at time.Duration) *corev1alpha1.Pod {
		return withIndex(finished(name, code, at), idx, failures, ignored)
	}
	tests := map[string]struct {
		pods        []*corev1alpha1.Pod
		wantFailed  int32
		wantIgnored int32
	}{
		"no failure yet":                               {pods: pods(indexedPod(1, corev1.PodRunning))},
		"one after the latest failure":                 {pods: pods(failed("a", 1, "0", "", 1, 0), failed("b", 1, "1", "", 1, time.Second)), wantFailed: 2},
		"other indexes do not count":                   {pods: pods(failed("a", 2, "4", "", 1, 0))},
		"an ignored failure adds to the ignored count": {pods: pods(failed("a", 1, "0", "", 1, 0), failed("b", 1, "1", "", 3, time.Second)), wantFailed: 1, wantIgnored: 1},
		"an ignored first failure is free":             {pods: pods(failed("a", 1, "0", "", 3, 0)), wantIgnored: 1},
		"both counts carry on":                         {pods: pods(failed("a", 1, "2", "3", 1, 0)), wantFailed: 3, wantIgnored: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, i := indexFailureCounts(perIndexJob(5, ignoreExit3), tc.pods, 1)
			if f != tc.wantFailed || i != tc.wantIgnored {
				t.Errorf("counts = %d, %d; want %d, %d", f, i, tc.wantFailed, tc.wantIgnored)
			}
		})
	}
}

func TestPodFinishTime(t *testing.T) {
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }
	term := func(name string, d time.Duration) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: at(d)}}}
	}
	run := func(name string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	}
	deleted := at(time.Hour)
	tests := map[string]struct {
		pod  corev1alpha1.Pod
		want time.Duration
	}{
		"the last container to end": {
			pod:  corev1alpha1.Pod{Status: corev1alpha1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{term("a", 5*time.Second), term("b", 9*time.Second)}}},
			want: 9 * time.Second,
		},
		"a container still running: when the pod turned not Ready": {
			pod: corev1alpha1.Pod{Status: corev1alpha1.PodStatus{
				ContainerStatuses: []corev1.ContainerStatus{term("a", 5*time.Second), run("b")},
				Conditions:        []metav1.Condition{{Type: conditions.Ready, Status: metav1.ConditionFalse, LastTransitionTime: at(7 * time.Second)}},
			}},
			want: 7 * time.Second,
		},
		"a sidecar ends the pod last": {
			pod: corev1alpha1.Pod{
				Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}},
				Status: corev1alpha1.PodStatus{
					InitContainerStatuses: []corev1.ContainerStatus{term("side", 12*time.Second)},
					ContainerStatuses:     []corev1.ContainerStatus{term("a", 5*time.Second)},
				}},
			want: 12 * time.Second,
		},
		"deleted before it ran: the deletion less its grace period": {
			pod:  corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted, DeletionGracePeriodSeconds: ptr.To[int64](30)}},
			want: time.Hour - 30*time.Second,
		},
		"nothing else: its creation": {
			pod:  corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: at(3 * time.Second)}},
			want: 3 * time.Second,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := podFinishTime(&tc.pod); !got.Equal(t0.Add(tc.want)) {
				t.Errorf("finish = %v, want %v", got.Sub(t0), tc.want)
			}
		})
	}
}

func TestReleaseExpectations(t *testing.T) {
	e := newReleaseExpectations()
	a, b := tracked(finished("a", 1, 0)), tracked(finished("b", 0, 0))
	e.released("ns/j", "a")
	e.released("ns/j", "b")
	// The cache still shows a with its finalizer, b without.
	bGone := b.DeepCopy()
	bGone.Finalizers = nil
	if got := e.pending("ns/j", pods(a, bGone)); !got["a"] || got["b"] {
		t.Fatalf("pending = %v, want only a", got)
	}
	// Once the cache shows a released (or gone), nothing is pending.
	if got := e.pending("ns/j", pods(bGone)); len(got) != 0 {
		t.Fatalf("pending = %v, want none", got)
	}
	// A pod whose removal was not seen stays pending; b came back with a
	// finalizer after its expectation was dropped and is not pending.
	e.released("ns/j", "a")
	if got := e.pending("ns/j", pods(a, b)); !got["a"] || got["b"] {
		t.Fatalf("pending = %v, want only a", got)
	}
	e.forget("ns/j")
	if got := e.pending("ns/j", pods(a)); len(got) != 0 {
		t.Fatalf("pending after forget = %v", got)
	}
}

func TestDelayedReleases(t *testing.T) {
	failed := func(name string, idx int, failures string, code int32, at time.Duration) *corev1alpha1.Pod {
		return tracked(withIndex(finished(name, code, at), idx, failures, ""))
	}
	running := func(name string, idx int) *corev1alpha1.Pod {
		p := tracked(indexedPod(idx, corev1.PodRunning))
		p.Name, p.UID = name, types.UID(name)
		return p
	}
	failJobOn4 := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionFailJob,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{4}}}
	failIndexOn5 := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionFailIndex,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{5}}}
	tests := map[string]struct {
		job  *batchv1alpha1.Job
		pods []*corev1alpha1.Pod
		want []string
	}{
		"the failed pod of an index to retry stays": {
			job: perIndexJob(2), pods: pods(failed("a", 0, "0", 1, 0)), want: []string{"a"},
		},
		"once its replacement runs it goes": {
			job: perIndexJob(2), pods: pods(failed("a", 0, "0", 1, 0), running("b", 0)),
		},
		"only the index's latest failure stays": {
			job:  perIndexJob(3),
			pods: pods(failed("old", 1, "0", 1, 0), failed("new", 1, "1", 1, time.Second), tracked(finished("other", 0, 0))),
			want: []string{"new"},
		},
		"a pod that used up the index's limit goes: the index has failed": {
			job: perIndexJob(1), pods: pods(failed("a", 2, "1", 1, 0)),
		},
		"a FailIndex match goes": {
			job: perIndexJob(3, failIndexOn5), pods: pods(failed("a", 2, "0", 5, 0)),
		},
		"a FailJob match goes": {
			job: perIndexJob(3, failJobOn4), pods: pods(failed("a", 2, "0", 4, 0)),
		},
		"an ignored failure stays: its count moves on too": {
			job: perIndexJob(3, ignoreExit3), pods: pods(failed("a", 3, "0", 3, 0)), want: []string{"a"},
		},
		"a released pod holds nothing back": {
			job: perIndexJob(3), pods: pods(withIndex(finished("a", 1, 0), 0, "0", "")),
		},
		"indexes done or failed in status hold nothing back": {
			job: func() *batchv1alpha1.Job {
				j := perIndexJob(3)
				j.Status.CompletedIndexes, j.Status.FailedIndexes = "0", ptr.To("1")
				return j
			}(),
			pods: pods(failed("a", 0, "0", 1, 0), failed("b", 1, "0", 1, 0)),
		},
		"nothing is held once the Job is headed for its end": {
			job: func() *batchv1alpha1.Job {
				j := perIndexJob(3)
				j.Status.Conditions = []metav1.Condition{{Type: batchv1alpha1.JobFailureTarget, Status: metav1.ConditionTrue}}
				return j
			}(),
			pods: pods(failed("a", 0, "0", 1, 0)),
		},
		"nothing without backoffLimitPerIndex": {
			job: jobWith(func(j *batchv1alpha1.Job) {
				j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
				j.Spec.Completions = ptr.To[int32](4)
			}),
			pods: pods(failed("a", 0, "0", 1, 0)),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := delayedReleases(tc.job, tc.pods, activePods(tc.job, tc.pods))
			var names []string
			for _, p := range tc.pods {
				if got[p.UID] {
					names = append(names, p.Name)
				}
			}
			if diff := cmp.Diff(tc.want, names); diff != "" {
				t.Errorf("delayed (-want +got):\n%s", diff)
			}
		})
	}
}
