package batch

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
	"github.com/skiff-dev/skiff/internal/kstatus"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// The pure decisions of the Job controller: what a pod's outcome is, when
// a Job has succeeded or failed, which pods to create or delete, and its
// status. Tested with tables in job_logic_test.go.

type batchv1alpha1UncountedPods = batchv1.UncountedTerminatedPods

type outcome int

const (
	outcomeNone outcome = iota
	outcomeSucceeded
	outcomeFailed
)

// podOutcome tells whether a pod has finished and how. A pod being deleted
// before it succeeded counts as failed, unless podReplacementPolicy Failed
// asks to wait until it has actually failed, as upstream; a deleted pod
// that its node has already let go of has stopped, whatever phase it
// shows (see releasedByNode).
func podOutcome(job *batchv1alpha1.Job, pod *corev1alpha1.Pod) outcome {
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return outcomeSucceeded
	case corev1.PodFailed:
		return outcomeFailed
	}
	if pod.DeletionTimestamp != nil && (!onlyReplaceFailed(job) || releasedByNode(pod)) {
		return outcomeFailed
	}
	return outcomeNone
}

// releasedByNode tells whether a pod being deleted is held by nothing but
// the Job's tracking finalizer: its node has stopped its containers and
// removed its own finalizer, or it never reached a node. Nobody will write
// a terminal phase on it any more, so podReplacementPolicy Failed must not
// wait for one: upstream's kubelet and pod garbage collector set Failed on
// such pods, and skiff's agent does not.
func releasedByNode(pod *corev1alpha1.Pod) bool {
	if pod.DeletionTimestamp == nil {
		return false
	}
	for _, f := range pod.Finalizers {
		if f != batchv1alpha1.JobTrackingFinalizer {
			return false
		}
	}
	return true
}

func onlyReplaceFailed(job *batchv1alpha1.Job) bool {
	return job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed
}

func hasTrackingFinalizer(pod *corev1alpha1.Pod) bool {
	return slices.Contains(pod.Finalizers, batchv1alpha1.JobTrackingFinalizer)
}

func podsWithFinalizer(pods []*corev1alpha1.Pod) []*corev1alpha1.Pod {
	var out []*corev1alpha1.Pod
	for _, p := range pods {
		if hasTrackingFinalizer(p) {
			out = append(out, p)
		}
	}
	return out
}

func isIndexed(job *batchv1alpha1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// completionIndex reads an Indexed Job pod's index from its annotation.
func completionIndex(pod *corev1alpha1.Pod) (int, bool) {
	v, ok := pod.Annotations[AnnotationCompletionIndex]
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	return i, err == nil && i >= 0
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func ptrTo[T any](v T) *T { return &v }

func setCondition(job *batchv1alpha1.Job, typ string, status metav1.ConditionStatus, reason, msg string, now time.Time) {
	meta.SetStatusCondition(&job.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: job.Generation, LastTransitionTime: metav1.NewTime(now),
	})
}

func setFailureTarget(job *batchv1alpha1.Job, reason, msg string, now time.Time) {
	if meta.IsStatusConditionTrue(job.Status.Conditions, batchv1alpha1.JobFailureTarget) {
		return // the first reason stands
	}
	setCondition(job, batchv1alpha1.JobFailureTarget, metav1.ConditionTrue, reason, msg, now)
}

// activePods are the pods that run or will run: not finished and not being
// deleted.
func activePods(job *batchv1alpha1.Job, pods []*corev1alpha1.Pod) []*corev1alpha1.Pod {
	var out []*corev1alpha1.Pod
	for _, p := range pods {
		if podutil.IsActive(p) && podOutcome(job, p) == outcomeNone {
			out = append(out, p)
		}
	}
	return out
}

// failureCriteria tells whether the Job has failed: too many failures
// (with restartPolicy OnFailure, container restarts count too), its
// deadline passed, or too many failed indexes. backoffLimit applies with
// backoffLimitPerIndex too, as upstream: it defaults to MaxInt32 then, so
// only a limit the user set can end the Job.
func failureCriteria(job *batchv1alpha1.Job, pods []*corev1alpha1.Pod, now time.Time) (reason, msg string) {
	spec := job.Spec
	if job.Status.Failed > backoffLimit(job) || pastBackoffLimitOnFailure(job, pods) {
		return batchv1alpha1.ReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"
	}
	if spec.MaxFailedIndexes != nil && job.Status.FailedIndexes != nil {
		failed := parseIndexes(*job.Status.FailedIndexes, int(ptrOr(spec.Completions, 0)))
		if int32(len(failed)) > *spec.MaxFailedIndexes {
			return batchv1alpha1.ReasonMaxFailedIndexesExceeded, "Job has exceeded the specified maximal number of failed indexes"
		}
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && job.Status.StartTime != nil &&
		!now.Before(job.Status.StartTime.Add(time.Duration(*d)*time.Second)) {
		return batchv1alpha1.ReasonDeadlineExceeded, "Job was active longer than specified deadline"
	}
	return "", ""
}

// pastBackoffLimitOnFailure tells whether the containers of the running
// and pending pods of a restartPolicy OnFailure Job have restarted
// backoffLimit times in all, as upstream: their failures never fail a pod.
func pastBackoffLimitOnFailure(job *batchv1alpha1.Job, pods []*corev1alpha1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending && p.Status.Phase != "" {
			continue
		}
		for _, cs := range p.Status.InitContainerStatuses {
			restarts += cs.RestartCount
		}
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
		}
	}
	limit := backoffLimit(job)
	if limit == 0 {
		return restarts > 0
	}
	return restarts >= limit
}

// successCriteria tells whether the Job has succeeded: enough completions,
// every index done, or a success policy rule met.
func successCriteria(job *batchv1alpha1.Job, active []*corev1alpha1.Pod) (reason, msg string) {
	spec := job.Spec
	if isIndexed(job) {
		completions := int(ptrOr(spec.Completions, 0))
		done := parseIndexes(job.Status.CompletedIndexes, completions)
		if sp := spec.SuccessPolicy; sp != nil {
			for i, rule := range sp.Rules {
				if successRuleMet(rule, done, completions) {
					return batchv1alpha1.ReasonSuccessPolicy, fmt.Sprintf("Matched rule %d of the success policy", i)
				}
			}
		}
		failed := parseIndexes(ptrOr(job.Status.FailedIndexes, ""), completions)
		if len(done) == completions && len(failed) == 0 {
			return batchv1alpha1.ReasonCompletionsReached, "Reached expected number of succeeded pods"
		}
		return "", ""
	}
	if spec.Completions == nil {
		// Work-queue Jobs: one success, and every other pod ended.
		if job.Status.Succeeded > 0 && len(active) == 0 {
			return batchv1alpha1.ReasonCompletionsReached, "Reached expected number of succeeded pods"
		}
		return "", ""
	}
	if job.Status.Succeeded >= *spec.Completions {
		return batchv1alpha1.ReasonCompletionsReached, "Reached expected number of succeeded pods"
	}
	return "", ""
}

func successRuleMet(rule batchv1.SuccessPolicyRule, done indexSet, completions int) bool {
	if rule.SucceededIndexes == nil {
		return rule.SucceededCount != nil && int32(len(done)) >= *rule.SucceededCount
	}
	want := parseIndexes(*rule.SucceededIndexes, completions)
	n := 0
	for i := range want {
		if done[i] {
			n++
		}
	}
	if rule.SucceededCount != nil {
		return int32(n) >= *rule.SucceededCount
	}
	return n == len(want) && n > 0
}

// jobEnd names the final condition a Job is headed for, if any: Failed
// once it is a failure target or every index ended with some failed,
// Complete once its success criteria are met.
func jobEnd(job *batchv1alpha1.Job) (end, reason, msg string) {
	if c := meta.FindStatusCondition(job.Status.Conditions, batchv1alpha1.JobFailureTarget); c != nil && c.Status == metav1.ConditionTrue {
		return batchv1alpha1.JobFailed, c.Reason, c.Message
	}
	if c := meta.FindStatusCondition(job.Status.Conditions, batchv1alpha1.JobSuccessCriteriaMet); c != nil && c.Status == metav1.ConditionTrue {
		return batchv1alpha1.JobComplete, c.Reason, c.Message
	}
	if isIndexed(job) && job.Status.FailedIndexes != nil && *job.Status.FailedIndexes != "" {
		completions := int(ptrOr(job.Spec.Completions, 0))
		done := parseIndexes(job.Status.CompletedIndexes, completions)
		failed := parseIndexes(*job.Status.FailedIndexes, completions)
		if len(done)+len(failed) >= completions {
			return batchv1alpha1.JobFailed, "FailedIndexes", "Job has failed indexes"
		}
	}
	return "", "", ""
}

// podPlan is what manageActive does: create pods (by completion index, or
// -1 for a NonIndexed Job) and delete surplus ones.
type podPlan struct {
	create []int
	remove []*corev1alpha1.Pod
}

// planPods computes the pods to create and delete to keep
// min(parallelism, remaining completions) pods active. Pods being deleted
// still occupy their slot under podReplacementPolicy Failed.
func planPods(job *batchv1alpha1.Job, pods, active []*corev1alpha1.Pod) podPlan {
	parallelism := int(ptrOr(job.Spec.Parallelism, 1))
	occupying := active
	if onlyReplaceFailed(job) {
		occupying = nil
		for _, p := range pods {
			if podutil.IsActive(p) || (p.DeletionTimestamp != nil && !podutil.IsTerminal(p) && !releasedByNode(p)) {
				occupying = append(occupying, p)
			}
		}
	}
	if !isIndexed(job) {
		want := parallelism
		if c := job.Spec.Completions; c != nil {
			want = min(want, int(*c-job.Status.Succeeded))
		} else if job.Status.Succeeded > 0 {
			// A work queue is done once a pod succeeded: create no more,
			// and let the others finish their work.
			return podPlan{}
		}
		var plan podPlan
		if diff := want - len(occupying); diff > 0 {
			for range diff {
				plan.create = append(plan.create, -1)
			}
		} else if diff < 0 && len(active) > 0 {
			surplus := slices.Clone(active)
			podcontrol.SortForDeletion(surplus, nil, time.Time{})
			plan.remove = surplus[:min(-diff, len(surplus))]
		}
		return plan
	}

	completions := int(ptrOr(job.Spec.Completions, 0))
	done := parseIndexes(job.Status.CompletedIndexes, completions)
	failed := parseIndexes(ptrOr(job.Status.FailedIndexes, ""), completions)
	var plan podPlan
	running := map[int]bool{}
	for _, p := range occupying {
		idx, ok := completionIndex(p)
		switch {
		case !ok || idx >= completions || done[idx] || failed[idx] || running[idx]:
			// No place for it: a bad index, one already done, or a duplicate.
			if podutil.IsActive(p) {
				plan.remove = append(plan.remove, p)
			}
		default:
			running[idx] = true
		}
	}
	slots := parallelism - len(running)
	for i := 0; i < completions && slots > 0; i++ {
		if !done[i] && !failed[i] && !running[i] {
			plan.create = append(plan.create, i)
			slots--
		}
	}
	return plan
}

// newSuccess tells whether a succeeded pod adds a success, and for an
// Indexed Job which index it completes. An Indexed Job counts completed
// indexes, as upstream: a second pod of an index already done (a
// replacement that raced its predecessor) or a pod without a valid index
// is released without being counted, so succeeded never exceeds
// completions.
func newSuccess(job *batchv1alpha1.Job, pod *corev1alpha1.Pod) (index int, counts bool) {
	if !isIndexed(job) {
		return -1, true
	}
	completions := int(ptrOr(job.Spec.Completions, 0))
	idx, ok := completionIndex(pod)
	if !ok || idx >= completions || parseIndexes(job.Status.CompletedIndexes, completions)[idx] {
		return -1, false
	}
	return idx, true
}

// indexFailed tells whether a counted failure of an Indexed Job's pod
// fails the pod's index, as upstream's isIndexFailed: a FailIndex rule of
// the pod failure policy matched it, or the index has used up
// backoffLimitPerIndex (the pod's failure-count annotation says how often
// the index failed before it).
func indexFailed(job *batchv1alpha1.Job, pod *corev1alpha1.Pod, action batchv1.PodFailurePolicyAction, matched bool) bool {
	if !isIndexed(job) {
		return false
	}
	if matched && action == batchv1.PodFailurePolicyActionFailIndex {
		return true
	}
	limit := job.Spec.BackoffLimitPerIndex
	if limit == nil {
		return false
	}
	n, err := strconv.Atoi(pod.Annotations[AnnotationIndexFailureCount])
	if err != nil {
		n = 0
	}
	return int32(n) >= *limit
}

func finishTime(job *batchv1alpha1.Job) time.Time {
	for _, typ := range []string{batchv1alpha1.JobComplete, batchv1alpha1.JobFailed} {
		if c := meta.FindStatusCondition(job.Status.Conditions, typ); c != nil && c.Status == metav1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// computeJobStatus fills the status fields derived from the pods: active,
// ready, terminating, the display columns and the summarising Ready
// condition. Counters, indexes and the other conditions are kept.
func computeJobStatus(job *batchv1alpha1.Job, pods []*corev1alpha1.Pod, now time.Time) batchv1alpha1.JobStatus {
	st := *job.Status.DeepCopy()
	st.ObservedGeneration = job.Generation
	var active, ready, terminating int32
	for _, p := range activePods(job, pods) {
		active++
		if podutil.IsReady(p) {
			ready++
		}
	}
	for _, p := range pods {
		if p.DeletionTimestamp != nil && !podutil.IsTerminal(p) {
			terminating++
		}
	}
	st.Active, st.Ready, st.Terminating = active, &ready, &terminating

	completions := "?"
	if c := job.Spec.Completions; c != nil {
		completions = strconv.Itoa(int(*c))
	}
	st.Completions = fmt.Sprintf("%d/%s", st.Succeeded, completions)
	if isIndexed(job) {
		st.Completions = fmt.Sprintf("%d/%s", len(parseIndexes(st.CompletedIndexes, int(ptrOr(job.Spec.Completions, 0)))), completions)
	}

	summary := metav1.Condition{Type: conditions.Ready, ObservedGeneration: job.Generation, LastTransitionTime: metav1.NewTime(now)}
	switch {
	case meta.IsStatusConditionTrue(st.Conditions, batchv1alpha1.JobComplete):
		st.DisplayStatus = "Complete"
		summary.Status, summary.Reason, summary.Message = metav1.ConditionTrue, batchv1alpha1.ReasonCompletionsReached, "The Job completed"
	case meta.IsStatusConditionTrue(st.Conditions, batchv1alpha1.JobFailed):
		st.DisplayStatus = "Failed"
		c := meta.FindStatusCondition(st.Conditions, batchv1alpha1.JobFailed)
		summary.Status, summary.Reason, summary.Message = metav1.ConditionFalse, c.Reason, c.Message
	case meta.IsStatusConditionTrue(st.Conditions, batchv1alpha1.JobFailureTarget):
		st.DisplayStatus = "FailureTarget"
		summary.Status, summary.Reason, summary.Message = metav1.ConditionFalse, conditions.ReasonProgressing, "Terminating the pods of a failed Job"
	case meta.IsStatusConditionTrue(st.Conditions, batchv1alpha1.JobSuccessCriteriaMet):
		st.DisplayStatus = "SuccessCriteriaMet"
		summary.Status, summary.Reason, summary.Message = metav1.ConditionFalse, conditions.ReasonProgressing, "Terminating the remaining pods of a successful Job"
	case meta.IsStatusConditionTrue(st.Conditions, batchv1alpha1.JobSuspended):
		st.DisplayStatus = "Suspended"
		summary.Status, summary.Reason, summary.Message = metav1.ConditionFalse, batchv1alpha1.ReasonJobSuspended, "The Job is suspended"
	default:
		st.DisplayStatus = "Running"
		summary.Status, summary.Reason, summary.Message = metav1.ConditionFalse, conditions.ReasonProgressing, fmt.Sprintf("%d active, %d succeeded, %d failed", active, st.Succeeded, st.Failed)
	}
	kstatus.SetReady(&st.Conditions, summary, jobProgress[st.DisplayStatus])
	return st
}

// jobProgress is what a display status means to kstatus; any other state
// is in progress (the zero value).
var jobProgress = map[string]kstatus.Progress{"Complete": kstatus.Done, "Suspended": kstatus.Done, "Failed": kstatus.Stalled}
