package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
)

// Labels and annotations of Job pods, as upstream.
const (
	LabelJobName                = "batch.kubernetes.io/job-name"
	LabelControllerUID          = "batch.kubernetes.io/controller-uid"
	AnnotationCompletionIndex   = "batch.kubernetes.io/job-completion-index"
	AnnotationIndexFailureCount = "batch.kubernetes.io/job-index-failure-count"
	// EnvCompletionIndex carries an Indexed Job pod's index to its containers.
	EnvCompletionIndex = "JOB_COMPLETION_INDEX"
)

var jobGK = schema.GroupKind{Group: batchv1alpha1.GroupVersion.Group, Kind: "Job"}

// JobReconciler runs a Job's pods until enough of them succeed, as
// upstream's job controller. Every pod carries a tracking finalizer, removed
// only after its outcome is recorded in status.uncountedTerminatedPods, and
// counted from there exactly once: deleting pods never loses or
// double-counts a success or a failure.
type JobReconciler struct {
	client       client.Client
	clock        clock.PassiveClock
	recorder     events.EventRecorder
	pods         podcontrol.PodControl
	expectations *podcontrol.Expectations
	backoff      *backoffStore
	releases     *releaseExpectations
}

var _ reconcile.Reconciler = (*JobReconciler)(nil)

// NewJobReconciler returns a Job reconciler that reads time from clk.
func NewJobReconciler(c client.Client, clk clock.PassiveClock, recorder events.EventRecorder) *JobReconciler {
	return &JobReconciler{
		client:       c,
		clock:        clk,
		recorder:     recorder,
		pods:         podcontrol.PodControl{Client: c, Recorder: recorder},
		expectations: podcontrol.NewExpectations(clk),
		backoff:      newBackoffStore(),
		releases:     newReleaseExpectations(),
	}
}

// SetupWithManager registers the reconciler, its pod index and pod watch.
func (r *JobReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := podcontrol.IndexByController(ctx, mgr.GetFieldIndexer(), &corev1alpha1.Pod{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&batchv1alpha1.Job{}).
		Watches(&corev1alpha1.Pod{}, podcontrol.ChildEventHandler(jobGK, r.expectations, nil)).
		Named("job").
		Complete(r)
}

// jobScope is what the steps of one reconcile share.
type jobScope struct {
	job  *batchv1alpha1.Job
	pods []*corev1alpha1.Pod
	// active are the pods that run or will run (activePods of pods).
	active []*corev1alpha1.Pod
	now    time.Time
	// backoff is the Job's back-off record once its finished pods are recorded.
	backoff backoffRecord
	// satisfied tells whether the pods listed include every pod this
	// controller created or deleted: only then may it create or delete more.
	satisfied bool
}

// +kubebuilder:rbac:groups=batch.skiff.dev,resources=jobs,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=batch.skiff.dev,resources=jobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;create;update;patch;delete

// Reconcile moves a Job one step towards its end: it records finished
// pods, decides whether the Job succeeded or failed, and creates or deletes
// pods to keep parallelism.
func (r *JobReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	job := &batchv1alpha1.Job{}
	if err := r.client.Get(ctx, req.NamespacedName, job); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
		r.expectations.Forget(req.String())
		r.backoff.remove(req.NamespacedName)
		r.releases.forget(req.String())
		return ctrl.Result{}, r.releaseOrphans(ctx, req.NamespacedName, "")
	}
	log := ctrl.LoggerFrom(ctx).WithValues("job", klog.KObj(job))
	ctx = ctrl.LoggerInto(ctx, log)
	if !job.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.releaseOrphans(ctx, req.NamespacedName, job.UID)
	}

	// Read the expectations before the cache, as upstream: a pod event
	// that lands in between is then in the list. Read after, an event
	// could satisfy them while the list still misses its pod, and the
	// index or slot would get a second pod.
	s := &jobScope{job: job, now: r.clock.Now(), satisfied: r.expectations.Satisfied(podcontrol.Key(job))}
	if err := r.listPods(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if _, done := jobFinished(job); done {
		r.backoff.remove(req.NamespacedName)
		return r.finishedJob(ctx, s)
	}

	// 1. Record the outcome of finished pods and release them.
	if err := r.trackFinishedPods(ctx, s); err != nil {
		return retryConflict(err)
	}
	// 2. Decide whether the Job has reached its end, and act on it.
	before := job.DeepCopy()
	result, err := r.syncJob(ctx, s)
	// 3. Write the status the steps computed.
	job.Status = computeJobStatus(job, s.pods, s.now)
	if !equality.Semantic.DeepEqual(before.Status, job.Status) {
		if perr := r.patchStatus(ctx, job, before); perr != nil && err == nil {
			err = fmt.Errorf("updating status of job %s: %w", klog.KObj(job), perr)
		}
	}
	if err != nil {
		return retryConflict(err)
	}
	return result, nil
}

// retryConflict turns a write conflict, which only means the cache has not
// yet seen this controller's previous write, into a prompt retry instead
// of an error whose back-off grows with every repetition.
func retryConflict(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	return ctrl.Result{}, err
}

func (r *JobReconciler) listPods(ctx context.Context, s *jobScope) error {
	list := &corev1alpha1.PodList{}
	if err := r.client.List(ctx, list, client.InNamespace(s.job.Namespace), client.MatchingFields{podcontrol.IndexControllerUID: string(s.job.UID)}); err != nil {
		return fmt.Errorf("listing pods of job %s: %w", klog.KObj(s.job), err)
	}
	s.pods = s.pods[:0]
	for i := range list.Items {
		s.pods = append(s.pods, &list.Items[i])
	}
	s.active = activePods(s.job, s.pods)
	return nil
}

// trackFinishedPods records each finished pod that still has the tracking
// finalizer in status.uncountedTerminatedPods (and, for Indexed Jobs, its
// index), removes the finalizers, then moves the recorded pods into the
// counters. Each status write is a patch conditional on the
// resourceVersion it was computed from, so two reconciles can never both
// count a pod. The back-off record takes the new outcomes once status
// holds them. The last failed pod of an index that will be retried is
// left alone until its replacement exists (delayedReleases).
func (r *JobReconciler) trackFinishedPods(ctx context.Context, s *jobScope) error {
	job := s.job
	before := job.DeepCopy()
	uncounted := job.Status.UncountedTerminatedPods
	if uncounted == nil {
		uncounted = &batchv1alpha1UncountedPods{}
	}
	recorded := func(uid types.UID) bool {
		return slices.Contains(uncounted.Succeeded, uid) || slices.Contains(uncounted.Failed, uid)
	}
	key := podcontrol.Key(job)
	// Pods released already whose release the cache does not show yet:
	// counted, so neither new nor to release again.
	stale := r.releases.pending(key, s.pods)
	isNew := func(p *corev1alpha1.Pod) bool {
		return hasTrackingFinalizer(p) && !stale[p.UID] && !recorded(p.UID) && podOutcome(job, p) != outcomeNone
	}
	record, ok := r.backoff.get(job)
	if !ok {
		record = seedBackoffRecord(job, s.pods, isNew)
		r.backoff.set(job, record)
	}
	// The last failed pod of an index to retry stays until its replacement exists.
	delayed := delayedReleases(job, s.pods, s.active)
	var newSucceeded, newFailed []*corev1alpha1.Pod
	var release []*corev1alpha1.Pod // finished pods whose finalizer may go
	changed := false
	for _, pod := range s.pods {
		if !hasTrackingFinalizer(pod) || stale[pod.UID] {
			continue
		}
		outcome := podOutcome(job, pod)
		if outcome == outcomeNone {
			continue
		}
		if recorded(pod.UID) {
			release = append(release, pod)
			continue
		}
		if delayed[pod.UID] {
			continue
		}
		release = append(release, pod)
		switch outcome {
		case outcomeSucceeded:
			newSucceeded = append(newSucceeded, pod)
			idx, counts := newSuccess(job, pod)
			if !counts {
				continue // released, not counted: its index was done already
			}
			uncounted.Succeeded = append(uncounted.Succeeded, pod.UID)
			if idx >= 0 {
				set := parseIndexes(job.Status.CompletedIndexes, int(ptrOr(job.Spec.Completions, 0)))
				set[idx] = true
				job.Status.CompletedIndexes = set.String()
			}
		case outcomeFailed:
			newFailed = append(newFailed, pod)
			action, rule, matched := matchFailurePolicy(job.Spec.PodFailurePolicy, pod)
			switch {
			case matched && action == "Ignore":
				// Not counted: the pod is released and replaced.
				changed = true
				continue
			case matched && action == "FailJob":
				setFailureTarget(job, batchv1alpha1.ReasonPodFailurePolicy,
					fmt.Sprintf("Container of pod %s matched rule %d of the pod failure policy", pod.Name, rule), s.now)
			}
			if idx, ok := completionIndex(pod); ok && indexFailed(job, pod, action, matched) {
				failed := parseIndexes(ptrOr(job.Status.FailedIndexes, ""), int(ptrOr(job.Spec.Completions, 0)))
				failed[idx] = true
				job.Status.FailedIndexes = ptrTo(failed.String())
			}
			uncounted.Failed = append(uncounted.Failed, pod.UID)
		}
		changed = true
	}
	if changed {
		job.Status.UncountedTerminatedPods = uncounted
		if err := r.patchStatus(ctx, job, before); err != nil {
			return fmt.Errorf("recording finished pods of job %s: %w", klog.KObj(job), err)
		}
	}
	s.backoff = record.withOutcomes(newSucceeded, newFailed)
	r.backoff.set(job, s.backoff)
	if err := r.removeTrackingFinalizers(ctx, release, func(p *corev1alpha1.Pod) { r.releases.released(key, p.UID) }); err != nil {
		return err
	}
	if len(uncounted.Succeeded)+len(uncounted.Failed) == 0 {
		return nil
	}
	// Every recorded pod is released now: count it, once.
	before = job.DeepCopy()
	job.Status.Succeeded += int32(len(uncounted.Succeeded))
	job.Status.Failed += int32(len(uncounted.Failed))
	job.Status.UncountedTerminatedPods = &batchv1alpha1UncountedPods{}
	if err := r.patchStatus(ctx, job, before); err != nil {
		return fmt.Errorf("counting finished pods of job %s: %w", klog.KObj(job), err)
	}
	return nil
}

// patchStatus writes the Job's status as a merge patch of the status
// subresource from before, conditional on before's resourceVersion: a
// write computed from a stale view of the Job conflicts, and the next
// reconcile starts again from a fresh one.
func (r *JobReconciler) patchStatus(ctx context.Context, job, before *batchv1alpha1.Job) error {
	return r.client.Status().Patch(ctx, job, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// syncJob decides whether the Job has met its success or failure criteria
// and, if not, keeps the right number of pods running.
func (r *JobReconciler) syncJob(ctx context.Context, s *jobScope) (ctrl.Result, error) {
	job, active := s.job, s.active

	if cond := meta.FindStatusCondition(job.Status.Conditions, batchv1alpha1.JobFailureTarget); cond == nil || cond.Status != metav1.ConditionTrue {
		if reason, msg := failureCriteria(job, s.pods, s.now); reason != "" {
			setFailureTarget(job, reason, msg, s.now)
		}
	}
	if cond := meta.FindStatusCondition(job.Status.Conditions, batchv1alpha1.JobSuccessCriteriaMet); cond == nil || cond.Status != metav1.ConditionTrue {
		if reason, msg := successCriteria(job, active); reason != "" {
			setCondition(job, batchv1alpha1.JobSuccessCriteriaMet, metav1.ConditionTrue, reason, msg, s.now)
		}
	}

	// A Job that reached its end stops its pods, then records the end.
	if end, reason, msg := jobEnd(job); end != "" {
		if err := r.deletePods(ctx, job, active); err != nil {
			return ctrl.Result{}, err
		}
		if len(podsWithFinalizer(s.pods)) > 0 {
			return ctrl.Result{}, nil // their deletion wakes us
		}
		setCondition(job, end, metav1.ConditionTrue, reason, msg, s.now)
		if end == batchv1alpha1.JobComplete {
			job.Status.CompletionTime = &metav1.Time{Time: s.now}
		}
		r.recorder.Eventf(job, nil, eventTypeFor(end), reason, "Finish", "%s", msg)
		return r.ttlResult(job, s.now), nil
	}

	if job.Spec.Suspend != nil && *job.Spec.Suspend {
		if !meta.IsStatusConditionTrue(job.Status.Conditions, batchv1alpha1.JobSuspended) {
			setCondition(job, batchv1alpha1.JobSuspended, metav1.ConditionTrue, batchv1alpha1.ReasonJobSuspended, "Job suspended", s.now)
			r.recorder.Eventf(job, nil, corev1.EventTypeNormal, "Suspended", "Suspend", "Job suspended")
		}
		job.Status.StartTime = nil
		return ctrl.Result{}, r.deletePods(ctx, job, active)
	}
	if meta.IsStatusConditionTrue(job.Status.Conditions, batchv1alpha1.JobSuspended) {
		setCondition(job, batchv1alpha1.JobSuspended, metav1.ConditionFalse, batchv1alpha1.ReasonJobResumed, "Job resumed", s.now)
		r.recorder.Eventf(job, nil, corev1.EventTypeNormal, "Resumed", "Resume", "Job resumed")
	}
	if job.Status.StartTime == nil {
		job.Status.StartTime = &metav1.Time{Time: s.now}
	}
	if !s.satisfied {
		return ctrl.Result{}, nil // the pod events we wait for wake us
	}
	return r.manageActive(ctx, s, active)
}

// manageActive creates the missing pods, after the back-off that failures
// impose, and deletes the surplus.
func (r *JobReconciler) manageActive(ctx context.Context, s *jobScope, active []*corev1alpha1.Pod) (ctrl.Result, error) {
	job := s.job
	plan := planPods(job, s.pods, active)
	if len(plan.remove) > 0 {
		if err := r.deletePods(ctx, job, plan.remove); err != nil {
			return ctrl.Result{}, err
		}
	}
	var result ctrl.Result
	if d := job.Spec.ActiveDeadlineSeconds; d != nil && job.Status.StartTime != nil {
		result.RequeueAfter = job.Status.StartTime.Add(time.Duration(*d) * time.Second).Sub(s.now)
	}
	if len(plan.create) == 0 {
		return result, nil
	}
	if job.Spec.BackoffLimitPerIndex != nil && isIndexed(job) {
		// Each index waits out its own back-off.
		ready, wait := indexBackoff(job, s.pods, plan.create, s.now)
		if len(ready) == 0 {
			return earliest(result, ctrl.Result{RequeueAfter: wait}), nil
		}
		plan.create = ready
	} else if wait := s.backoff.remaining(s.now); wait > 0 {
		return earliest(result, ctrl.Result{RequeueAfter: wait}), nil
	}
	// At most BurstReplicas creations per sync, as upstream's
	// MaxPodCreateDeletePerSync; the pod events of this batch bring the next.
	create := plan.create[:min(len(plan.create), podcontrol.BurstReplicas)]
	key := podcontrol.Key(job)
	r.expectations.ExpectCreations(key, len(create))
	ref := podcontrol.ControllerRef(job, batchv1alpha1.GroupVersion.WithKind("Job"))
	// The calls of one slow-start batch run concurrently: each takes the
	// next index atomically.
	var next atomic.Int64
	created, err := podcontrol.SlowStartBatch(len(create), 1, func() error {
		idx := create[next.Add(1)-1]
		failures, ignored := indexFailureCounts(job, s.pods, idx)
		pod := newJobPod(job, ref, idx, failures, ignored)
		if err := r.pods.CreatePod(ctx, pod, job); err != nil {
			return err
		}
		return nil
	})
	for i := created; i < len(create); i++ {
		r.expectations.CreationObserved(key) // never to be observed
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
}

func (r *JobReconciler) deletePods(ctx context.Context, job *batchv1alpha1.Job, pods []*corev1alpha1.Pod) error {
	if len(pods) == 0 {
		return nil
	}
	key := podcontrol.Key(job)
	r.expectations.ExpectDeletions(key, podcontrol.UIDs(pods))
	for _, pod := range pods {
		if err := r.pods.DeletePod(ctx, pod, job); client.IgnoreNotFound(err) != nil {
			r.expectations.DeletionObserved(key, pod.UID)
			return err
		}
	}
	return nil
}

// finishedJob releases the pods of a finished Job and deletes the Job when
// its ttlSecondsAfterFinished has passed.
func (r *JobReconciler) finishedJob(ctx context.Context, s *jobScope) (ctrl.Result, error) {
	if err := r.removeTrackingFinalizers(ctx, podsWithFinalizer(s.pods), nil); err != nil {
		return ctrl.Result{}, err
	}
	res := r.ttlResult(s.job, s.now)
	if s.job.Spec.TTLSecondsAfterFinished == nil || res.RequeueAfter > 0 {
		return res, nil
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Deleting job past its ttlSecondsAfterFinished")
	err := r.client.Delete(ctx, s.job, client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{UID: &s.job.UID})
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

func (r *JobReconciler) ttlResult(job *batchv1alpha1.Job, now time.Time) ctrl.Result {
	ttl := job.Spec.TTLSecondsAfterFinished
	if ttl == nil {
		return ctrl.Result{}
	}
	finished := finishTime(job)
	if finished.IsZero() {
		return ctrl.Result{RequeueAfter: time.Duration(*ttl) * time.Second}
	}
	if wait := finished.Add(time.Duration(*ttl) * time.Second).Sub(now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}
	}
	return ctrl.Result{}
}

// releaseOrphans removes the tracking finalizer from the pods of a Job that
// is gone or going, so the garbage collector can delete them.
func (r *JobReconciler) releaseOrphans(ctx context.Context, job types.NamespacedName, uid types.UID) error {
	list := &corev1alpha1.PodList{}
	if err := r.client.List(ctx, list, client.InNamespace(job.Namespace), client.MatchingLabels{LabelJobName: job.Name}); err != nil {
		return err
	}
	for i := range list.Items {
		pod := &list.Items[i]
		ref := podcontrol.ControllerOfKind(pod, jobGK)
		if ref == nil || ref.Name != job.Name || (uid != "" && ref.UID != uid) || !hasTrackingFinalizer(pod) {
			continue
		}
		if err := r.removeTrackingFinalizer(ctx, pod); err != nil {
			return err
		}
	}
	return nil
}

// finalizerWorkers bounds the finalizer removals in flight; the client's
// rate limiter paces them further.
const finalizerWorkers = 32

// removeTrackingFinalizers releases pods concurrently, as upstream does,
// calls released (when not nil) for each pod it released, and returns the
// errors of those it could not release.
func (r *JobReconciler) removeTrackingFinalizers(ctx context.Context, pods []*corev1alpha1.Pod, released func(*corev1alpha1.Pod)) error {
	release := func(pod *corev1alpha1.Pod) error {
		if err := r.removeTrackingFinalizer(ctx, pod); err != nil {
			return err
		}
		if released != nil {
			released(pod)
		}
		return nil
	}
	if len(pods) == 1 {
		return release(pods[0])
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, finalizerWorkers)
	for _, pod := range pods {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := release(pod); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *JobReconciler) removeTrackingFinalizer(ctx context.Context, pod *corev1alpha1.Pod) error {
	if !hasTrackingFinalizer(pod) {
		return nil
	}
	patch := client.MergeFromWithOptions(pod.DeepCopy(), client.MergeFromWithOptimisticLock{})
	pod.Finalizers = slices.DeleteFunc(pod.Finalizers, func(f string) bool { return f == batchv1alpha1.JobTrackingFinalizer })
	if err := r.client.Patch(ctx, pod, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("releasing pod %s: %w", klog.KObj(pod), err)
	}
	return nil
}

// newJobPod builds the pod of a Job: the template, the tracking finalizer,
// the upstream labels and, for an Indexed Job, the completion index in an
// annotation, a label, the JOB_COMPLETION_INDEX variable and the hostname.
func newJobPod(job *batchv1alpha1.Job, ref metav1.OwnerReference, index int, failures, ignored int32) *corev1alpha1.Pod {
	pod := podcontrol.NewPodFromTemplate(&job.Spec.Template, job, ref)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[LabelJobName] = job.Name
	pod.Labels[LabelControllerUID] = string(job.UID)
	pod.Finalizers = append(pod.Finalizers, batchv1alpha1.JobTrackingFinalizer)
	if index < 0 {
		return pod
	}
	i := strconv.Itoa(index)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationCompletionIndex] = i
	pod.Labels[AnnotationCompletionIndex] = i
	if job.Spec.BackoffLimitPerIndex != nil {
		pod.Annotations[AnnotationIndexFailureCount] = strconv.Itoa(int(failures))
		if ignored > 0 {
			pod.Annotations[AnnotationIndexIgnoredFailureCount] = strconv.Itoa(int(ignored))
		}
	}
	pod.GenerateName = fmt.Sprintf("%s-%d-", job.Name, index)
	if pod.Spec.Hostname == "" {
		pod.Spec.Hostname = fmt.Sprintf("%s-%d", job.Name, index)
	}
	env := corev1.EnvVar{Name: EnvCompletionIndex, Value: i}
	for c := range pod.Spec.InitContainers {
		pod.Spec.InitContainers[c].Env = append(pod.Spec.InitContainers[c].Env, env)
	}
	for c := range pod.Spec.Containers {
		pod.Spec.Containers[c].Env = append(pod.Spec.Containers[c].Env, env)
	}
	return pod
}

func eventTypeFor(end string) string {
	if end == batchv1alpha1.JobFailed {
		return corev1.EventTypeWarning
	}
	return corev1.EventTypeNormal
}
