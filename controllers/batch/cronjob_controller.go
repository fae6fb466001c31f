package batch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	"github.com/skiff-dev/skiff/internal/kstatus"
)

// jobOwnerIndex indexes Jobs by the UID of their controlling CronJob.
const jobOwnerIndex = "batch.skiff.dev/cronjob-owner"

// AnnotationScheduledTimestamp records on each Job the schedule time it was
// created for, as upstream's batch.kubernetes.io/cronjob-scheduled-timestamp.
const AnnotationScheduledTimestamp = "batch.kubernetes.io/cronjob-scheduled-timestamp"

// CronJobReconciler creates a Job for each time a CronJob's schedule fires,
// following concurrencyPolicy, startingDeadlineSeconds, suspend and the
// history limits, as upstream's cronjob_controllerv2.
type CronJobReconciler struct {
	client    client.Client
	apiReader client.Reader // uncached: tells a missing Job from one the cache has not seen yet
	clock     clock.PassiveClock
	recorder  recorder.EventRecorder
	missed    *missedReports
}

// missedReports remembers, per CronJob, the latest schedule time whose
// misses were reported, so each is reported once: a missed time is not
// written to status (lastScheduleTime is when a Job last started, as
// upstream), so every reconcile would find it again.
type missedReports struct {
	mu    sync.Mutex
	times map[types.NamespacedName]missedReport
}

type missedReport struct {
	uid types.UID
	at  time.Time
}

// first tells whether the misses up to at are new for this CronJob, and
// remembers them.
func (m *missedReports) first(cj *batchv1alpha1.CronJob, at time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := types.NamespacedName{Namespace: cj.Namespace, Name: cj.Name}
	if r, ok := m.times[key]; ok && r.uid == cj.UID && !at.After(r.at) {
		return false
	}
	m.times[key] = missedReport{uid: cj.UID, at: at}
	return true
}

func (m *missedReports) forget(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.times, key)
}

var _ reconcile.Reconciler = (*CronJobReconciler)(nil)

// NewCronJobReconciler returns a reconciler that reads time from clk.
// apiReader reads Jobs past the cache (the manager's APIReader).
func NewCronJobReconciler(c client.Client, apiReader client.Reader, clk clock.PassiveClock, rec recorder.EventRecorder) *CronJobReconciler {
	return &CronJobReconciler{client: c, apiReader: apiReader, clock: clk, recorder: rec, missed: &missedReports{times: map[types.NamespacedName]missedReport{}}}
}

// SetupWithManager registers the reconciler and its Job index.
func (r *CronJobReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &batchv1alpha1.Job{}, jobOwnerIndex, func(o client.Object) []string {
		ref := metav1.GetControllerOf(o)
		if ref == nil || ref.Kind != "CronJob" || ref.APIVersion != batchv1alpha1.GroupVersion.String() {
			return nil
		}
		return []string{string(ref.UID)}
	})
	if err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&batchv1alpha1.CronJob{}).
		Owns(&batchv1alpha1.Job{}).
		Named("cronjob").
		Complete(r)
}

// cronJobScope is what the phases of one reconcile share.
type cronJobScope struct {
	cronJob *batchv1alpha1.CronJob
	jobs    []*batchv1alpha1.Job // owned by the CronJob, oldest first
	now     time.Time
}

// +kubebuilder:rbac:groups=batch.skiff.dev,resources=cronjobs;jobs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=batch.skiff.dev,resources=cronjobs/status,verbs=get;update;patch

// Reconcile brings one CronJob up to date: it records finished Jobs, prunes
// history, and creates the Job of the most recent schedule time when due.
func (r *CronJobReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	cj := &batchv1alpha1.CronJob{}
	if err := r.client.Get(ctx, req.NamespacedName, cj); err != nil {
		if apierrors.IsNotFound(err) {
			r.missed.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // owned Jobs go with it through the garbage collector
	}
	log := ctrl.LoggerFrom(ctx).WithValues("cronjob", klog.KObj(cj))
	ctx = ctrl.LoggerInto(ctx, log)

	s := &cronJobScope{cronJob: cj, now: r.clock.Now()}
	before := cj.DeepCopy()
	defer func() {
		if err := r.patchStatus(ctx, before, s, retErr); err != nil && retErr == nil {
			retErr = err
		}
	}()

	if err := r.listJobs(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	var result ctrl.Result
	for _, phase := range []func(context.Context, *cronJobScope) (ctrl.Result, error){
		r.syncActive,
		r.pruneHistory,
		r.runSchedule,
	} {
		res, err := phase(ctx, s)
		if err != nil {
			return ctrl.Result{}, err
		}
		result = earliest(result, res)
	}
	return result, nil
}

func (r *CronJobReconciler) listJobs(ctx context.Context, s *cronJobScope) error {
	list := &batchv1alpha1.JobList{}
	if err := r.client.List(ctx, list, client.InNamespace(s.cronJob.Namespace), client.MatchingFields{jobOwnerIndex: string(s.cronJob.UID)}); err != nil {
		return fmt.Errorf("listing jobs of cronjob %s: %w", klog.KObj(s.cronJob), err)
	}
	s.jobs = make([]*batchv1alpha1.Job, 0, len(list.Items))
	for i := range list.Items {
		s.jobs = append(s.jobs, &list.Items[i])
	}
	sort.Slice(s.jobs, func(i, j int) bool { return scheduledTimeOf(s.jobs[i]).Before(scheduledTimeOf(s.jobs[j])) })
	return nil
}

// syncActive rebuilds status.active from the owned Jobs that have not
// finished, and lastSuccessfulTime from those that completed. A Job that
// leaves the active list because it finished gets a SawCompletedJob
// event, as upstream. An active Job the cache does not hold is read from
// the API server, as upstream: one that is there stays active (the cache
// is behind), one that is gone leaves with a MissingJob event.
func (r *CronJobReconciler) syncActive(ctx context.Context, s *cronJobScope) (ctrl.Result, error) {
	cj := s.cronJob
	cached := make(map[types.UID]bool, len(s.jobs))
	for _, job := range s.jobs {
		cached[job.UID] = true
	}
	wasActive := map[types.UID]bool{}
	var unseen []corev1.ObjectReference
	for _, ref := range cj.Status.Active {
		wasActive[ref.UID] = true
		if cached[ref.UID] {
			continue
		}
		switch present, err := r.jobExists(ctx, cj, ref); {
		case err != nil:
			return ctrl.Result{}, err
		case present:
			unseen = append(unseen, ref)
		default:
			r.recorder.Eventf(cj, nil, corev1.EventTypeNormal, "MissingJob", "Sync", "Active job went missing: %v", ref.Name)
		}
	}
	cj.Status.Active = unseen
	for _, job := range s.jobs {
		finished, succeeded := jobFinished(job)
		if finished && wasActive[job.UID] {
			end := batchv1alpha1.JobFailed
			if succeeded {
				end = batchv1alpha1.JobComplete
			}
			r.recorder.Eventf(cj, job, corev1.EventTypeNormal, "SawCompletedJob", "Sync", "Saw completed job: %s, condition: %s", job.Name, end)
		}
		if !finished {
			if job.DeletionTimestamp.IsZero() {
				cj.Status.Active = append(cj.Status.Active, jobReference(job))
			}
			continue
		}
		if succeeded && job.Status.CompletionTime != nil &&
			(cj.Status.LastSuccessfulTime == nil || job.Status.CompletionTime.After(cj.Status.LastSuccessfulTime.Time)) {
			cj.Status.LastSuccessfulTime = job.Status.CompletionTime.DeepCopy()
		}
	}
	return ctrl.Result{}, nil
}

// jobExists reads the Job ref names from the API server and tells whether
// it is still the Job ref points to, in the CronJob's namespace and
// controlled by it (status is not trusted to name another's Job).
func (r *CronJobReconciler) jobExists(ctx context.Context, cj *batchv1alpha1.CronJob, ref corev1.ObjectReference) (bool, error) {
	job := &batchv1alpha1.Job{}
	err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: cj.Namespace, Name: ref.Name}, job)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading active job %s/%s: %w", cj.Namespace, ref.Name, err)
	}
	return job.UID == ref.UID && metav1.IsControlledBy(job, cj), nil
}

// pruneHistory deletes the oldest finished Jobs beyond the history limits.
func (r *CronJobReconciler) pruneHistory(ctx context.Context, s *cronJobScope) (ctrl.Result, error) {
	var succeeded, failed []*batchv1alpha1.Job
	for _, job := range s.jobs {
		if !job.DeletionTimestamp.IsZero() {
			continue
		}
		if finished, ok := jobFinished(job); finished && ok {
			succeeded = append(succeeded, job)
		} else if finished {
			failed = append(failed, job)
		}
	}
	for _, group := range []struct {
		jobs  []*batchv1alpha1.Job
		limit *int32
	}{{succeeded, s.cronJob.Spec.SuccessfulJobsHistoryLimit}, {failed, s.cronJob.Spec.FailedJobsHistoryLimit}} {
		if group.limit == nil {
			continue
		}
		for i := 0; i < len(group.jobs)-int(*group.limit); i++ {
			if err := r.deleteJob(ctx, s.cronJob, group.jobs[i], "SuccessfulDelete", "Deleted finished job %s beyond the history limit"); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	return ctrl.Result{}, nil
}

// runSchedule creates the Job of the most recent schedule time when it is
// due, and asks to be called again at the next schedule time.
func (r *CronJobReconciler) runSchedule(ctx context.Context, s *cronJobScope) (ctrl.Result, error) {
	cj := s.cronJob
	sched, err := parseSchedule(cj.Spec.Schedule, ptrOr(cj.Spec.TimeZone, ""))
	if err != nil {
		// Admission refuses such schedules; this is a CronJob stored before the webhook ran.
		r.recorder.Eventf(cj, nil, corev1.EventTypeWarning, "UnparseableSchedule", "Schedule", "Cannot run: %v", err)
		return ctrl.Result{}, reconcile.TerminalError(fmt.Errorf("cronjob %s: %w", klog.KObj(cj), err))
	}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return ctrl.Result{}, nil
	}
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	times := timesAt(sched, earliest, s.now)
	requeue := ctrl.Result{RequeueAfter: times.next.Sub(s.now) + 100*time.Millisecond}
	if times.recent.IsZero() {
		return requeue, nil
	}
	if ran := jobOfScheduleTime(s.jobs, cj.Name, times.recent); ran != nil {
		// The status read is older than this Job: the schedule time ran.
		// Without this, Replace would delete the Job it just created.
		cj.Status.LastScheduleTime = &metav1.Time{Time: times.recent}
		return requeue, nil
	}
	late := tooLate(cj, times.recent, s.now)
	if (times.missed > 0 || late) && r.missed.first(cj, times.recent) {
		r.recorder.Eventf(cj, nil, corev1.EventTypeWarning, "MissedSchedule", "Schedule", "%s", missedMessage(cj, times, late))
	}
	if late {
		// Not written to lastScheduleTime, which says when a Job last
		// started, as upstream.
		return requeue, nil
	}
	switch cj.Spec.ConcurrencyPolicy {
	case "Forbid":
		if len(cj.Status.Active) > 0 {
			r.recorder.Eventf(cj, nil, corev1.EventTypeNormal, "JobAlreadyActive", "Schedule",
				"Not starting the job of %s because a previous one is still running (concurrencyPolicy Forbid)", times.recent.UTC().Format(time.RFC3339))
			return requeue, nil
		}
	case "Replace":
		for _, ref := range cj.Status.Active {
			// Every entry is an owned Job: syncActive kept only those.
			job := &batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: cj.Namespace, Name: ref.Name, UID: ref.UID}}
			if err := r.deleteJob(ctx, cj, job, "SuccessfulDelete", "Deleted job %s to replace it (concurrencyPolicy Replace)"); err != nil {
				return ctrl.Result{}, err
			}
		}
		cj.Status.Active = nil
	}
	job, err := r.createJob(ctx, cj, times.recent)
	if err != nil {
		return ctrl.Result{}, err
	}
	cj.Status.Active = append(cj.Status.Active, jobReference(job))
	cj.Status.LastScheduleTime = &metav1.Time{Time: times.recent}
	return requeue, nil
}

// missedMessage says which schedule times will not run: those skipped
// before the most recent, and the most recent itself when it is too late.
func missedMessage(cj *batchv1alpha1.CronJob, times scheduleTimes, late bool) string {
	var parts []string
	if times.missed > 0 {
		more := ""
		if times.missed >= maxCountedMisses {
			more = " or more"
		}
		parts = append(parts, fmt.Sprintf("Skipped %d%s schedule times from %s on", times.missed, more, times.firstMissed.UTC().Format(time.RFC3339)))
	}
	recent := times.recent.UTC().Format(time.RFC3339)
	if late {
		parts = append(parts, fmt.Sprintf("Missed the start of %s by more than startingDeadlineSeconds (%ds)", recent, *cj.Spec.StartingDeadlineSeconds))
	} else {
		parts = append(parts, "running only the most recent, "+recent)
	}
	return strings.Join(parts, ", ")
}

// tooLate tells whether a schedule time is past the CronJob's startingDeadlineSeconds.
func tooLate(cj *batchv1alpha1.CronJob, scheduled, now time.Time) bool {
	d := cj.Spec.StartingDeadlineSeconds
	return d != nil && scheduled.Add(time.Duration(*d)*time.Second).Before(now)
}

// jobOfScheduleTime is the Job created for a schedule time, if the cache
// has it.
func jobOfScheduleTime(jobs []*batchv1alpha1.Job, cronJobName string, scheduled time.Time) *batchv1alpha1.Job {
	name := jobNameFor(cronJobName, scheduled)
	for _, job := range jobs {
		if job.Name == name {
			return job
		}
	}
	return nil
}

func (r *CronJobReconciler) createJob(ctx context.Context, cj *batchv1alpha1.CronJob, scheduled time.Time) (*batchv1alpha1.Job, error) {
	job := jobFromTemplate(cj, scheduled)
	if err := controllerutil.SetControllerReference(cj, job, r.client.Scheme()); err != nil {
		return nil, err
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Creating job", "job", klog.KObj(job))
	err := r.client.Create(ctx, job)
	if apierrors.IsAlreadyExists(err) {
		// Created before a restart or by a reconcile on a stale cache: the
		// deterministic name makes this the same Job, never a second one.
		existing := &batchv1alpha1.Job{}
		if err := r.client.Get(ctx, client.ObjectKeyFromObject(job), existing); err != nil {
			return nil, err
		}
		if !metav1.IsControlledBy(existing, cj) {
			return nil, fmt.Errorf("job %s exists and is not owned by cronjob %s", klog.KObj(existing), klog.KObj(cj))
		}
		return existing, nil
	}
	if err != nil {
		r.recorder.Eventf(cj, nil, corev1.EventTypeWarning, "FailedCreate", "Create", "Error creating job: %v", err)
		return nil, fmt.Errorf("creating job for cronjob %s: %w", klog.KObj(cj), err)
	}
	r.recorder.Eventf(cj, job, corev1.EventTypeNormal, "SuccessfulCreate", "Create", "Created job %s", job.Name)
	return job, nil
}

func (r *CronJobReconciler) deleteJob(ctx context.Context, cj *batchv1alpha1.CronJob, job *batchv1alpha1.Job, reason, format string) error {
	ctrl.LoggerFrom(ctx).V(2).Info("Deleting job", "job", klog.KObj(job))
	err := r.client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &job.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone already, or the name is another Job's now
	}
	if err != nil {
		return fmt.Errorf("deleting job %s: %w", klog.KObj(job), err)
	}
	r.recorder.Eventf(cj, job, corev1.EventTypeNormal, reason, "Delete", format, job.Name)
	return nil
}

func (r *CronJobReconciler) patchStatus(ctx context.Context, before *batchv1alpha1.CronJob, s *cronJobScope, reconcileErr error) error {
	cj := s.cronJob
	cj.Status.ObservedGeneration = cj.Generation
	ready := cronJobReadyCondition(cj, reconcileErr)
	kstatus.SetReady(&cj.Status.Conditions, ready, kstatus.FromReady(ready, conditions.ReasonInvalidSpec))
	if err := r.client.Status().Patch(ctx, cj, client.MergeFrom(before)); err != nil {
		return client.IgnoreNotFound(err)
	}
	return nil
}

// cronJobReadyCondition summarises a CronJob: Ready while its schedule is
// valid and followed, Stalled (Ready False, InvalidSpec) when it cannot run.
func cronJobReadyCondition(cj *batchv1alpha1.CronJob, reconcileErr error) metav1.Condition {
	c := metav1.Condition{Type: conditions.Ready, ObservedGeneration: cj.Generation}
	switch {
	case reconcileErr != nil && errorsIsTerminal(reconcileErr):
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, conditions.ReasonInvalidSpec, reconcileErr.Error()
	case reconcileErr != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, conditions.ReasonProgressing, reconcileErr.Error()
	case cj.Spec.Suspend != nil && *cj.Spec.Suspend:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, "Suspended", "The schedule is suspended"
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, conditions.ReasonReconciled, "Following the schedule"
	}
	return c
}

func errorsIsTerminal(err error) bool {
	return errors.Is(err, reconcile.TerminalError(nil))
}

// jobFromTemplate builds the Job of one schedule time from the CronJob's template.
func jobFromTemplate(cj *batchv1alpha1.CronJob, scheduled time.Time) *batchv1alpha1.Job {
	tmpl := cj.Spec.JobTemplate
	job := &batchv1alpha1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        jobNameFor(cj.Name, scheduled),
			Namespace:   cj.Namespace,
			Labels:      copyMap(tmpl.Labels),
			Annotations: copyMap(tmpl.Annotations),
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	if job.Annotations == nil {
		job.Annotations = map[string]string{}
	}
	// In the CronJob's time zone, as upstream writes it (runSchedule has
	// parsed it already).
	loc, err := timeZoneLocation(ptrOr(cj.Spec.TimeZone, ""))
	if err != nil {
		loc = time.UTC
	}
	job.Annotations[AnnotationScheduledTimestamp] = scheduled.In(loc).Format(time.RFC3339)
	return job
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// jobFinished tells whether a Job has a Complete or Failed condition, and
// whether it succeeded.
func jobFinished(job *batchv1alpha1.Job) (finished, succeeded bool) {
	if meta.IsStatusConditionTrue(job.Status.Conditions, batchv1alpha1.JobComplete) {
		return true, true
	}
	return meta.IsStatusConditionTrue(job.Status.Conditions, batchv1alpha1.JobFailed), false
}

func scheduledTimeOf(job *batchv1alpha1.Job) time.Time {
	if t, err := time.Parse(time.RFC3339, job.Annotations[AnnotationScheduledTimestamp]); err == nil {
		return t
	}
	return job.CreationTimestamp.Time
}

func jobReference(job *batchv1alpha1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		APIVersion: batchv1alpha1.GroupVersion.String(), Kind: "Job",
		Namespace: job.Namespace, Name: job.Name, UID: job.UID, ResourceVersion: job.ResourceVersion,
	}
}

// earliest returns the result that asks to come back soonest.
func earliest(a, b ctrl.Result) ctrl.Result {
	if a.RequeueAfter == 0 || (b.RequeueAfter != 0 && b.RequeueAfter < a.RequeueAfter) {
		return b
	}
	return a
}
