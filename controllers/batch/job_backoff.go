package batch

import (
	"slices"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// The delay before a Job recreates pods after failures, as upstream's job
// controller (backoff_utils.go): 10 s after the first failure, doubling
// with each further one, at most 10 minutes. A Job without
// backoffLimitPerIndex counts its failures since the last success in a
// back-off record that outlives the pods; a Job with it counts each
// index's failures in the failure-count annotations of that index's pods.
const (
	backoffBase = 10 * time.Second
	backoffMax  = 10 * time.Minute
)

// AnnotationIndexIgnoredFailureCount counts the failures of an index that
// the pod failure policy ignored, as upstream: they do not use up
// backoffLimitPerIndex but still lengthen the index's back-off.
const AnnotationIndexIgnoredFailureCount = "batch.kubernetes.io/job-index-ignored-failure-count"

// backoffRecord is what the back-off of a Job without backoffLimitPerIndex
// depends on: how many pods failed since the last success, and when the
// last of them failed (zero when no failed pod is left to tell).
type backoffRecord struct {
	uid                      types.UID
	failuresAfterLastSuccess int32
	lastFailureTime          time.Time
}

// backoffStore keeps the back-off record of every Job in memory, as
// upstream does, so that deleting failed pods does not shorten the delay.
// After a manager restart a Job's record is rebuilt from its status and
// the pods left (seedBackoffRecord).
type backoffStore struct {
	mu      sync.Mutex
	records map[types.NamespacedName]backoffRecord
}

func newBackoffStore() *backoffStore {
	return &backoffStore{records: map[types.NamespacedName]backoffRecord{}}
}

// get returns the Job's record, if the store holds one for this very Job
// (not an earlier Job of the same name).
func (s *backoffStore) get(job *batchv1alpha1.Job) (backoffRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[types.NamespacedName{Namespace: job.Namespace, Name: job.Name}]
	return rec, ok && rec.uid == job.UID
}

func (s *backoffStore) set(job *batchv1alpha1.Job, rec backoffRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.uid = job.UID
	s.records[types.NamespacedName{Namespace: job.Namespace, Name: job.Name}] = rec
}

// remove forgets a Job that finished or is gone.
func (s *backoffStore) remove(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, key)
}

// withOutcomes returns the record after the pods that newly succeeded and
// failed, as upstream's newBackoffRecord: failures alone add to the count;
// a success resets it to the failures that finished after the latest
// success.
func (r backoffRecord) withOutcomes(succeeded, failed []*corev1alpha1.Pod) backoffRecord {
	if len(failed) == 0 && len(succeeded) == 0 {
		return r
	}
	failedAt := finishTimes(failed)
	if len(succeeded) == 0 {
		r.failuresAfterLastSuccess += int32(len(failedAt))
		r.lastFailureTime = failedAt[len(failedAt)-1]
		return r
	}
	lastSuccess := latestFinish(succeeded)
	r.failuresAfterLastSuccess, r.lastFailureTime = 0, time.Time{}
	for _, t := range failedAt {
		if t.After(lastSuccess) {
			r.failuresAfterLastSuccess++
			r.lastFailureTime = t
		}
	}
	return r
}

// seedBackoffRecord rebuilds the record of a Job that the store does not
// hold, after a manager restart, from what outlives the manager: status
// and the pods left. The pods whose outcome is not in status yet (new) are
// left out; withOutcomes adds them as it does in any sync. Without any
// success, every counted failure came after the last one, so the count is
// exact; otherwise it counts the failed pods left that finished after the
// latest succeeded pod left. The time of the last failure is the latest
// finish of a failed pod left; when none is left it is unknown, and the
// next creation does not wait, though the count carries on.
func seedBackoffRecord(job *batchv1alpha1.Job, pods []*corev1alpha1.Pod, isNew func(*corev1alpha1.Pod) bool) backoffRecord {
	var succeeded, failed []*corev1alpha1.Pod
	for _, p := range pods {
		if isNew(p) {
			continue
		}
		switch podOutcome(job, p) {
		case outcomeSucceeded:
			succeeded = append(succeeded, p)
		case outcomeFailed:
			failed = append(failed, p)
		}
	}
	uncounted := ptrOr(job.Status.UncountedTerminatedPods, batchv1.UncountedTerminatedPods{})
	anySuccess := job.Status.Succeeded > 0 || len(uncounted.Succeeded) > 0 || job.Status.CompletedIndexes != "" || len(succeeded) > 0
	var rec backoffRecord
	if !anySuccess {
		rec.failuresAfterLastSuccess = job.Status.Failed + int32(len(uncounted.Failed))
		if ts := finishTimes(failed); len(ts) > 0 {
			rec.lastFailureTime = ts[len(ts)-1]
		}
		return rec
	}
	var lastSuccess time.Time
	if len(succeeded) > 0 {
		lastSuccess = latestFinish(succeeded)
	}
	for _, t := range finishTimes(failed) {
		if t.After(lastSuccess) {
			rec.failuresAfterLastSuccess++
			rec.lastFailureTime = t
		}
	}
	return rec
}

// remaining is how long pod creation must still wait.
func (r backoffRecord) remaining(now time.Time) time.Duration {
	return backoffRemainingFor(r.failuresAfterLastSuccess, r.lastFailureTime, now)
}

// backoffRemainingFor is the wait left after failures, the last at last.
func backoffRemainingFor(failures int32, last time.Time, now time.Time) time.Duration {
	if failures <= 0 || last.IsZero() {
		return 0
	}
	delay := backoffBase
	for i := int32(1); i < failures && delay < backoffMax; i++ {
		delay *= 2
	}
	delay = min(delay, backoffMax)
	if elapsed := now.Sub(last); elapsed < delay {
		return delay - elapsed
	}
	return 0
}

// indexBackoff splits the indexes to create of a Job with
// backoffLimitPerIndex into those whose back-off is over and, when none
// is, the shortest wait of the others, as upstream's
// getPodCreationInfoForIndependentIndexes: each index waits after its own
// last failed pod, by its own failure count (counted and ignored).
func indexBackoff(job *batchv1alpha1.Job, pods []*corev1alpha1.Pod, indexes []int, now time.Time) (ready []int, wait time.Duration) {
	for _, idx := range indexes {
		var left time.Duration
		if last := lastFailedPod(job, pods, idx); last != nil {
			failures, ignored := indexFailureAnnotations(last)
			left = backoffRemainingFor(failures+ignored+1, podFinishTime(last), now)
		}
		switch {
		case left <= 0:
			ready = append(ready, idx)
		case wait == 0 || left < wait:
			wait = left
		}
	}
	if len(ready) > 0 {
		return ready, 0
	}
	return nil, wait
}

// lastFailedPod is the pod an index's next pod replaces: of the index's
// failed pods, the one with the highest failure count, the latest to
// finish among equals, as upstream.
func lastFailedPod(job *batchv1alpha1.Job, pods []*corev1alpha1.Pod, index int) *corev1alpha1.Pod {
	var last *corev1alpha1.Pod
	var lastCount int32
	for _, p := range pods {
		if idx, ok := completionIndex(p); !ok || idx != index || podOutcome(job, p) != outcomeFailed {
			continue
		}
		failures, ignored := indexFailureAnnotations(p)
		if last == nil || failures+ignored > lastCount ||
			(failures+ignored == lastCount && !podFinishTime(p).Before(podFinishTime(last))) {
			last, lastCount = p, failures+ignored
		}
	}
	return last
}

// delayedReleases are the failed pods of a Job with backoffLimitPerIndex
// whose tracking finalizer must stay until their index has a replacement,
// as upstream's getPodsWithDelayedDeletionPerIndex: the replacement's
// failure-count annotations are read from the pod it replaces, so that pod
// must not be deleted before then, or the index would start counting
// again from 0. Such a pod is neither counted nor released yet; once the
// replacement is active it is counted and released as any other. Only an
// index that will be retried holds a pod back: not one done, failed, or
// failed by this very pod, and nothing is held once the Job has reached
// its end.
func delayedReleases(job *batchv1alpha1.Job, pods, active []*corev1alpha1.Pod) map[types.UID]bool {
	if job.Spec.BackoffLimitPerIndex == nil || !isIndexed(job) {
		return nil
	}
	if end, _, _ := jobEnd(job); end != "" {
		return nil
	}
	completions := int(ptrOr(job.Spec.Completions, 0))
	done := parseIndexes(job.Status.CompletedIndexes, completions)
	failed := parseIndexes(ptrOr(job.Status.FailedIndexes, ""), completions)
	running := map[int]bool{}
	for _, p := range active {
		if idx, ok := completionIndex(p); ok {
			running[idx] = true
		}
	}
	waiting := map[int][]*corev1alpha1.Pod{} // failed pods of the indexes to retry
	for _, p := range pods {
		idx, ok := completionIndex(p)
		if ok && idx < completions && !done[idx] && !failed[idx] && !running[idx] && podOutcome(job, p) == outcomeFailed {
			waiting[idx] = append(waiting[idx], p)
		}
	}
	var delayed map[types.UID]bool
	for idx, group := range waiting {
		last := lastFailedPod(job, group, idx)
		if !hasTrackingFinalizer(last) {
			continue
		}
		action, _, matched := matchFailurePolicy(job.Spec.PodFailurePolicy, last)
		if (matched && action == batchv1.PodFailurePolicyActionFailJob) || indexFailed(job, last, action, matched) {
			continue // its failure ends the index or the Job: no replacement comes
		}
		if delayed == nil {
			delayed = map[types.UID]bool{}
		}
		delayed[last.UID] = true
	}
	return delayed
}

// indexFailureCounts are the failure-count annotations of an index's next
// pod: those of the pod it replaces, plus that pod's own failure, counted
// or, when the pod failure policy ignored it, ignored.
func indexFailureCounts(job *batchv1alpha1.Job, pods []*corev1alpha1.Pod, index int) (failures, ignored int32) {
	if index < 0 {
		return 0, 0
	}
	last := lastFailedPod(job, pods, index)
	if last == nil {
		return 0, 0
	}
	failures, ignored = indexFailureAnnotations(last)
	if action, _, ok := matchFailurePolicy(job.Spec.PodFailurePolicy, last); ok && action == batchv1.PodFailurePolicyActionIgnore {
		return failures, ignored + 1
	}
	return failures + 1, ignored
}

// indexFailureAnnotations reads a pod's failure counts; a missing,
// malformed or negative value counts as 0, as upstream.
func indexFailureAnnotations(p *corev1alpha1.Pod) (failures, ignored int32) {
	read := func(key string) int32 {
		n, err := strconv.ParseInt(p.Annotations[key], 10, 32)
		if err != nil || n < 0 {
			return 0
		}
		return int32(n)
	}
	return read(AnnotationIndexFailureCount), read(AnnotationIndexIgnoredFailureCount)
}

// finishTimes returns the pods' finish times in order.
func finishTimes(pods []*corev1alpha1.Pod) []time.Time {
	ts := make([]time.Time, 0, len(pods))
	for _, p := range pods {
		ts = append(ts, podFinishTime(p))
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts
}

// latestFinish is the latest finish time of the pods, zero for none.
func latestFinish(pods []*corev1alpha1.Pod) time.Time {
	ts := finishTimes(pods)
	if len(ts) == 0 {
		return time.Time{}
	}
	return ts[len(ts)-1]
}

// podFinishTime is when a finished pod finished, as upstream's
// getFinishedTime: when its last container ended, once every container
// (and sidecar) has; else when it turned not Ready; else when its
// deletion was asked for, less the grace period; else its creation.
func podFinishTime(p *corev1alpha1.Pod) time.Time {
	if t, ok := containersFinishTime(p); ok {
		return t
	}
	if c := meta.FindStatusCondition(p.Status.Conditions, conditions.Ready); c != nil && c.Status == "False" && !c.LastTransitionTime.IsZero() {
		return c.LastTransitionTime.Time
	}
	if p.DeletionTimestamp != nil {
		return p.DeletionTimestamp.Add(-time.Duration(ptrOr(p.DeletionGracePeriodSeconds, 0)) * time.Second)
	}
	return p.CreationTimestamp.Time
}

func containersFinishTime(p *corev1alpha1.Pod) (time.Time, bool) {
	sidecars := map[string]bool{}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
		}
	}
	statuses := slices.Clone(p.Status.ContainerStatuses)
	for _, cs := range p.Status.InitContainerStatuses {
		if sidecars[cs.Name] {
			statuses = append(statuses, cs)
		}
	}
	if len(statuses) == 0 {
		return time.Time{}, false
	}
	var last time.Time
	for _, cs := range statuses {
		term := cs.State.Terminated
		if term == nil || term.FinishedAt.IsZero() {
			return time.Time{}, false
		}
		if term.FinishedAt.After(last) {
			last = term.FinishedAt.Time
		}
	}
	return last, true
}
