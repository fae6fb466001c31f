package apps

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
)

var _ reconcile.Reconciler = (*DeploymentReconciler)(nil)

var deploymentGVK = appsv1alpha1.GroupVersion.WithKind("Deployment")

// Event reasons of the Deployment controller, as upstream.
const (
	reasonScalingReplicaSet         = "ScalingReplicaSet"
	reasonDeploymentRollback        = "DeploymentRollback"
	reasonRollbackRevisionNotFound  = "RollbackRevisionNotFound"
	reasonRollbackTemplateUnchanged = "RollbackTemplateUnchanged"
	reasonFailedRSCreate            = "ReplicaSetCreateError"
)

// DeploymentReconciler rolls Deployments out through ReplicaSets named by
// pod-template hash, as upstream's Deployment controller.
type DeploymentReconciler struct {
	client    client.Client
	apiReader client.Reader
	recorder  events.EventRecorder
	clock     clock.PassiveClock
}

// NewDeploymentReconciler returns a Deployment reconciler; apiReader must
// read uncached, clk may be nil.
func NewDeploymentReconciler(c client.Client, apiReader client.Reader, recorder events.EventRecorder, clk clock.PassiveClock) *DeploymentReconciler {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &DeploymentReconciler{client: c, apiReader: apiReader, recorder: recorder, clock: clk}
}

// SetupWithManager registers the reconciler: it owns ReplicaSets (and may
// adopt orphans), and hears of pod deletions for the Recreate strategy.
func (r *DeploymentReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := podcontrol.IndexByController(ctx, mgr.GetFieldIndexer(), &appsv1alpha1.ReplicaSet{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&appsv1alpha1.Deployment{}).
		Named("deployment").
		Watches(&appsv1alpha1.ReplicaSet{}, podcontrol.ChildEventHandler(deploymentGVK.GroupKind(), nil, r.deploymentsForOrphan)).
		Watches(&corev1alpha1.Pod{}, handler.Funcs{DeleteFunc: r.podDeleted}).
		Complete(r)
}

func (r *DeploymentReconciler) deploymentsForOrphan(ctx context.Context, obj client.Object) []types.NamespacedName {
	var list appsv1alpha1.DeploymentList
	return selectingOwners(ctx, r.client, obj, &list, func() []appsv1alpha1.Deployment { return list.Items },
		func(o *appsv1alpha1.Deployment) *metav1.LabelSelector { return o.Spec.Selector })
}

// podDeleted enqueues the Deployment of a deleted pod's ReplicaSet, so a
// Recreate rollout starts the new pods once the old ones are gone.
func (r *DeploymentReconciler) podDeleted(ctx context.Context, e handlerDeleteEvent, q handlerQueue) {
	ref := podcontrol.ControllerOfKind(e.Object, replicaSetGVK.GroupKind())
	if ref == nil {
		return
	}
	rs := &appsv1alpha1.ReplicaSet{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: e.Object.GetNamespace(), Name: ref.Name}, rs); err != nil {
		return
	}
	if dref := podcontrol.ControllerOfKind(rs, deploymentGVK.GroupKind()); dref != nil {
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: rs.Namespace, Name: dref.Name}})
	}
}

// deploymentScope is one sync of a Deployment.
type deploymentScope struct {
	d       *appsv1alpha1.Deployment
	rsList  []*appsv1alpha1.ReplicaSet
	now     time.Time
	requeue time.Duration
}

// Reconcile syncs one Deployment as upstream's syncDeployment: paused and
// scaling events only resize, a rollback request restores a template, and
// otherwise the strategy moves the rollout one step.
func (r *DeploymentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	d := &appsv1alpha1.Deployment{}
	if err := r.client.Get(ctx, req.NamespacedName, d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if d.DeletionTimestamp != nil {
		return ctrl.Result{}, nil // the garbage collector removes the ReplicaSets
	}
	before := d.DeepCopy()
	skipStatus := false
	defer func() {
		if !skipStatus {
			retErr = errors.Join(retErr, patchStatus(ctx, r.client, d, before, func(o client.Object) any { return o.(*appsv1alpha1.Deployment).Status }))
		}
	}()

	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || selector.Empty() {
		d.Status.ObservedGeneration = d.Generation
		setSummary(&d.Status.Conditions, d.Generation, summary{stalled: true, message: fmt.Sprintf("spec.selector is invalid or empty: %v", err)})
		r.recorder.Eventf(d, nil, corev1.EventTypeWarning, "SelectingAll", "Sync", "This deployment is selecting all pods. A non-empty selector is required.")
		return ctrl.Result{}, reconcile.TerminalError(fmt.Errorf("invalid selector of %s", klog.KObj(d)))
	}
	rsList, err := r.claimReplicaSets(ctx, d, selector)
	if err != nil {
		return ctrl.Result{}, err
	}
	s := &deploymentScope{d: d, rsList: rsList, now: r.clock.Now()}
	r.checkPausedConditions(s)

	switch {
	case d.Spec.Paused:
		err = r.sync(ctx, s)
	case d.Annotations[appsv1alpha1.AnnotationRollbackTo] != "":
		skipStatus = true
		err = r.rollback(ctx, s)
	case isScalingEvent(d, rsList):
		err = r.sync(ctx, s)
	case isRollingUpdate(d):
		err = r.rolloutRolling(ctx, s)
	default:
		err = r.rolloutRecreate(ctx, s)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: s.requeue}, nil
}

func (r *DeploymentReconciler) claimReplicaSets(ctx context.Context, d *appsv1alpha1.Deployment, selector labels.Selector) ([]*appsv1alpha1.ReplicaSet, error) {
	var list appsv1alpha1.ReplicaSetList
	candidates, err := listOwned(ctx, r.client, &list, func() []*appsv1alpha1.ReplicaSet {
		out := make([]*appsv1alpha1.ReplicaSet, len(list.Items))
		for i := range list.Items {
			out[i] = &list.Items[i]
		}
		return out
	}, d.Namespace, selector, d.UID)
	if err != nil {
		return nil, err
	}
	claimer := &podcontrol.Claimer{Client: r.client, Owner: d, OwnerGVK: deploymentGVK, Selector: selector,
		CanAdopt: podcontrol.RecheckDeletion(r.apiReader, d)}
	return podcontrol.Claim(ctx, claimer, candidates)
}

// checkPausedConditions records pausing and resuming in the Progressing
// condition, unless the deadline has already been exceeded.
func (r *DeploymentReconciler) checkPausedConditions(s *deploymentScope) {
	d := s.d
	if !hasProgressDeadline(d) {
		return
	}
	c := meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing)
	if c != nil && c.Reason == appsv1alpha1.ReasonProgressDeadlineExceeded {
		return
	}
	pausedCond := c != nil && c.Reason == appsv1alpha1.ReasonDeploymentPaused
	switch {
	case d.Spec.Paused && !pausedCond:
		setCondition(&d.Status.Conditions, metav1.Condition{Type: appsv1alpha1.DeploymentProgressing, Status: metav1.ConditionUnknown,
			Reason: appsv1alpha1.ReasonDeploymentPaused, Message: "Deployment is paused", ObservedGeneration: d.Generation}, s.now)
	case !d.Spec.Paused && pausedCond:
		setCondition(&d.Status.Conditions, metav1.Condition{Type: appsv1alpha1.DeploymentProgressing, Status: metav1.ConditionUnknown,
			Reason: appsv1alpha1.ReasonDeploymentResumed, Message: "Deployment is resumed", ObservedGeneration: d.Generation}, s.now)
	}
}

// sync only resizes: for a paused Deployment or a scaling event.
func (r *DeploymentReconciler) sync(ctx context.Context, s *deploymentScope) error {
	newRS, old, err := r.getAllReplicaSetsAndSyncRevision(ctx, s, false)
	if err != nil {
		return err
	}
	if err := r.scale(ctx, s.d, newRS, old); err != nil {
		return err
	}
	if s.d.Spec.Paused && s.d.Annotations[appsv1alpha1.AnnotationRollbackTo] == "" {
		if err := r.cleanupDeployment(ctx, s.d, old); err != nil {
			return err
		}
	}
	r.setStatus(s, append(old, newRS), newRS, false)
	return nil
}

// setStatus computes the status; rollout adds the Progressing bookkeeping.
func (r *DeploymentReconciler) setStatus(s *deploymentScope, all []*appsv1alpha1.ReplicaSet, newRS *appsv1alpha1.ReplicaSet, rollout bool) {
	all = nonNil(all)
	st := deploymentStatus(s.d, all, newRS, s.now)
	if rollout {
		s.requeue = rolloutConditions(s.d, &st, all, newRS, s.now)
	}
	setSummary(&st.Conditions, s.d.Generation, deploymentSummary(s.d, &st))
	s.d.Status = st
}

func nonNil(rss []*appsv1alpha1.ReplicaSet) []*appsv1alpha1.ReplicaSet {
	out := rss[:0:0]
	for _, rs := range rss {
		if rs != nil {
			out = append(out, rs)
		}
	}
	return out
}

// scale resizes the ReplicaSets for a new replicas count, proportionally
// when a rolling update is in flight.
func (r *DeploymentReconciler) scale(ctx context.Context, d *appsv1alpha1.Deployment, newRS *appsv1alpha1.ReplicaSet, old []*appsv1alpha1.ReplicaSet) error {
	replicas := deploymentReplicas(d)
	if rs := activeOrLatest(newRS, old); rs != nil {
		if derefInt32(rs.Spec.Replicas, 1) == replicas {
			return nil
		}
		return r.scaleReplicaSet(ctx, rs, replicas, d)
	}
	if isSaturated(d, newRS) {
		for _, rs := range activeReplicaSets(old) {
			if err := r.scaleReplicaSet(ctx, rs, 0, d); err != nil {
				return err
			}
		}
		return nil
	}
	if !isRollingUpdate(d) {
		return nil
	}
	active := activeReplicaSets(append(old, newRS))
	plan := proportionalPlan(d, active)
	for _, rs := range active {
		if err := r.scaleReplicaSet(ctx, rs, plan[rs.Name], d); err != nil {
			return err
		}
	}
	return nil
}

// scaleReplicaSet sets rs's size and replica annotations, and records an
// event when the size changes.
func (r *DeploymentReconciler) scaleReplicaSet(ctx context.Context, rs *appsv1alpha1.ReplicaSet, size int32, d *appsv1alpha1.Deployment) error {
	from := derefInt32(rs.Spec.Replicas, 1)
	orig := rs.DeepCopy()
	annotationsChanged := setReplicasAnnotations(rs, deploymentReplicas(d), deploymentReplicas(d)+maxSurge(d))
	if from == size && !annotationsChanged {
		return nil
	}
	rs.Spec.Replicas = int32Ptr(size)
	ctrl.LoggerFrom(ctx).V(2).Info("Scaling ReplicaSet", "replicaSet", klog.KObj(rs), "from", from, "to", size)
	if err := r.client.Update(ctx, rs); err != nil {
		*rs = *orig
		return fmt.Errorf("scaling %s to %d: %w", klog.KObj(rs), size, err)
	}
	if from != size {
		dir := "up"
		if size < from {
			dir = "down"
		}
		r.recorder.Eventf(d, rs, corev1.EventTypeNormal, reasonScalingReplicaSet, "Scale", "Scaled %s replica set %s from %d to %d", dir, rs.Name, from, size)
	}
	return nil
}

// getAllReplicaSetsAndSyncRevision finds the new ReplicaSet (creating it
// when create is set), moves it to the newest revision and records the
// revision on the Deployment.
func (r *DeploymentReconciler) getAllReplicaSetsAndSyncRevision(ctx context.Context, s *deploymentScope, create bool) (*appsv1alpha1.ReplicaSet, []*appsv1alpha1.ReplicaSet, error) {
	d := s.d
	existing, old := findNewReplicaSet(d, s.rsList)
	newRevision := maxRevision(old) + 1
	var newRS *appsv1alpha1.ReplicaSet
	switch {
	case existing != nil:
		orig := existing.DeepCopy()
		changed := setNewReplicaSetAnnotations(d, existing, newRevision, true)
		if existing.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			existing.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			changed = true
		}
		if changed {
			if err := r.client.Update(ctx, existing); err != nil {
				*existing = *orig
				return nil, nil, fmt.Errorf("updating new ReplicaSet %s: %w", klog.KObj(existing), err)
			}
		}
		if hasProgressDeadline(d) && meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing) == nil {
			setCondition(&d.Status.Conditions, metav1.Condition{Type: appsv1alpha1.DeploymentProgressing, Status: metav1.ConditionTrue,
				Reason: appsv1alpha1.ReasonFoundNewReplicaSet, Message: fmt.Sprintf("Found new replica set %q", existing.Name), ObservedGeneration: d.Generation}, s.now)
		}
		newRS = existing
	case create:
		rs, err := r.createNewReplicaSet(ctx, s, old, newRevision)
		if err != nil {
			return nil, nil, err
		}
		newRS = rs
	}
	if newRS != nil {
		if err := r.setDeploymentRevision(ctx, d, newRS.Annotations[appsv1alpha1.AnnotationRevision]); err != nil {
			return nil, nil, err
		}
	}
	return newRS, old, nil
}

func (r *DeploymentReconciler) setDeploymentRevision(ctx context.Context, d *appsv1alpha1.Deployment, rev string) error {
	if rev == "" || d.Annotations[appsv1alpha1.AnnotationRevision] == rev {
		return nil
	}
	orig := d.DeepCopy()
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[appsv1alpha1.AnnotationRevision] = rev
	status := d.Status
	if err := r.client.Patch(ctx, d, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("recording revision %s on %s: %w", rev, klog.KObj(d), err)
	}
	d.Status = status // the patch returns the stored status; keep ours
	return nil
}

func (r *DeploymentReconciler) createNewReplicaSet(ctx context.Context, s *deploymentScope, old []*appsv1alpha1.ReplicaSet, newRevision int64) (*appsv1alpha1.ReplicaSet, error) {
	d := s.d
	hash := templateHash(&d.Spec.Template, d.Status.CollisionCount)
	template := d.Spec.Template.DeepCopy()
	if template.Labels == nil {
		template.Labels = map[string]string{}
	}
	template.Labels[LabelPodTemplateHash] = hash
	selector := d.Spec.Selector.DeepCopy()
	if selector.MatchLabels == nil {
		selector.MatchLabels = map[string]string{}
	}
	selector.MatchLabels[LabelPodTemplateHash] = hash
	rs := &appsv1alpha1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          copyLabels(template.Labels),
			OwnerReferences: []metav1.OwnerReference{podcontrol.ControllerRef(d, deploymentGVK)},
		},
	}
	rs.Spec.Replicas = int32Ptr(0)
	rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
	rs.Spec.Selector = selector
	rs.Spec.Template = *template
	size := newRSReplicas(d, append(append([]*appsv1alpha1.ReplicaSet(nil), old...), rs), rs)
	rs.Spec.Replicas = int32Ptr(size)
	setNewReplicaSetAnnotations(d, rs, newRevision, false)

	ctrl.LoggerFrom(ctx).V(2).Info("Creating new ReplicaSet", "replicaSet", klog.KObj(rs), "replicas", size)
	err := r.client.Create(ctx, rs)
	switch {
	case apierrors.IsAlreadyExists(err):
		found := &appsv1alpha1.ReplicaSet{}
		if gerr := r.apiReader.Get(ctx, client.ObjectKeyFromObject(rs), found); gerr != nil {
			return nil, fmt.Errorf("reading existing ReplicaSet %s: %w", klog.KObj(rs), gerr)
		}
		if metav1.IsControlledBy(found, d) && equalIgnoreHash(&found.Spec.Template, &d.Spec.Template) {
			return found, nil // our cache was behind
		}
		// A foreign ReplicaSet holds the name: salt the hash and retry.
		d.Status.CollisionCount = int32Ptr(derefInt32(d.Status.CollisionCount, 0) + 1)
		return nil, fmt.Errorf("hash collision for %s on ReplicaSet name %s; collisionCount is now %d", klog.KObj(d), rs.Name, *d.Status.CollisionCount)
	case err != nil:
		msg := fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err)
		if hasProgressDeadline(d) {
			setCondition(&d.Status.Conditions, metav1.Condition{Type: appsv1alpha1.DeploymentProgressing, Status: metav1.ConditionFalse,
				Reason: reasonFailedRSCreate, Message: msg, ObservedGeneration: d.Generation}, s.now)
		}
		r.recorder.Eventf(d, nil, corev1.EventTypeWarning, reasonFailedRSCreate, "Create", "%s", msg)
		return nil, fmt.Errorf("creating ReplicaSet %s: %w", klog.KObj(rs), err)
	}
	if size > 0 {
		r.recorder.Eventf(d, rs, corev1.EventTypeNormal, reasonScalingReplicaSet, "Scale", "Scaled up replica set %s from 0 to %d", rs.Name, size)
	}
	if hasProgressDeadline(d) {
		refreshCondition(&d.Status.Conditions, metav1.Condition{Type: appsv1alpha1.DeploymentProgressing, Status: metav1.ConditionTrue,
			Reason: appsv1alpha1.ReasonNewReplicaSetCreated, Message: fmt.Sprintf("Created new replica set %q", rs.Name), ObservedGeneration: d.Generation}, s.now)
	}
	return rs, nil
}

func copyLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// rolloutRolling moves a RollingUpdate one step: scale the new ReplicaSet
// up within maxSurge, else old ones down within maxUnavailable.
func (r *DeploymentReconciler) rolloutRolling(ctx context.Context, s *deploymentScope) error {
	d := s.d
	newRS, old, err := r.getAllReplicaSetsAndSyncRevision(ctx, s, true)
	if err != nil {
		return err
	}
	all := append(append([]*appsv1alpha1.ReplicaSet(nil), old...), newRS)

	// Scale up the new ReplicaSet.
	replicas := deploymentReplicas(d)
	if size := derefInt32(newRS.Spec.Replicas, 1); size != replicas {
		target := replicas
		if size < replicas {
			target = newRSReplicas(d, all, newRS)
		}
		if target != size {
			if err := r.scaleReplicaSet(ctx, newRS, target, d); err != nil {
				return err
			}
			r.setStatus(s, all, newRS, true)
			return nil
		}
	}

	// Scale down old ReplicaSets: unhealthy pods first, then healthy ones.
	if specReplicas(old) > 0 {
		if budget := maxOldScaleDown(d, all, newRS); budget > 0 {
			scaled := false
			activeOld := activeReplicaSets(old)
			for name, size := range cleanupUnhealthyPlan(activeOld, budget) {
				if err := r.scaleReplicaSet(ctx, byName(activeOld, name), size, d); err != nil {
					return err
				}
				scaled = true
			}
			for name, size := range scaleDownOldPlan(d, all, activeReplicaSets(old)) {
				if err := r.scaleReplicaSet(ctx, byName(old, name), size, d); err != nil {
					return err
				}
				scaled = true
			}
			if scaled {
				r.setStatus(s, all, newRS, true)
				return nil
			}
		}
	}

	r.setStatus(s, all, newRS, true)
	if deploymentComplete(d, &d.Status) {
		return r.cleanupDeployment(ctx, d, old)
	}
	return nil
}

func byName(rss []*appsv1alpha1.ReplicaSet, name string) *appsv1alpha1.ReplicaSet {
	for _, rs := range rss {
		if rs.Name == name {
			return rs
		}
	}
	return nil
}

// rolloutRecreate scales every old ReplicaSet to zero, waits until their
// pods are gone, then scales the new one up.
func (r *DeploymentReconciler) rolloutRecreate(ctx context.Context, s *deploymentScope) error {
	d := s.d
	newRS, old, err := r.getAllReplicaSetsAndSyncRevision(ctx, s, false)
	if err != nil {
		return err
	}
	all := append(append([]*appsv1alpha1.ReplicaSet(nil), old...), newRS)
	scaled := false
	for _, rs := range activeReplicaSets(old) {
		if err := r.scaleReplicaSet(ctx, rs, 0, d); err != nil {
			return err
		}
		scaled = true
	}
	if scaled {
		r.setStatus(s, all, newRS, true)
		return nil
	}
	running, err := r.oldPodsRunning(ctx, newRS, old)
	if err != nil {
		return err
	}
	if running {
		r.setStatus(s, all, newRS, true)
		return nil
	}
	if newRS == nil {
		if newRS, old, err = r.getAllReplicaSetsAndSyncRevision(ctx, s, true); err != nil {
			return err
		}
		all = append(append([]*appsv1alpha1.ReplicaSet(nil), old...), newRS)
	}
	if derefInt32(newRS.Spec.Replicas, 1) != deploymentReplicas(d) {
		if err := r.scaleReplicaSet(ctx, newRS, deploymentReplicas(d), d); err != nil {
			return err
		}
	}
	r.setStatus(s, all, newRS, true)
	if deploymentComplete(d, &d.Status) {
		return r.cleanupDeployment(ctx, d, old)
	}
	return nil
}

// oldPodsRunning tells whether any pod of an old ReplicaSet may still run.
func (r *DeploymentReconciler) oldPodsRunning(ctx context.Context, newRS *appsv1alpha1.ReplicaSet, old []*appsv1alpha1.ReplicaSet) (bool, error) {
	if statusReplicas(old, func(s *appsv1alpha1.ReplicaSetStatus) int32 { return s.Replicas }) > 0 {
		return true, nil
	}
	for _, rs := range old {
		if newRS != nil && rs.UID == newRS.UID {
			continue
		}
		pods, err := podsControlledBy(ctx, r.client, rs.Namespace, rs.UID)
		if err != nil {
			return false, err
		}
		for _, p := range pods {
			if p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
				return true, nil
			}
		}
	}
	return false, nil
}

// cleanupDeployment deletes the oldest scaled-down ReplicaSets beyond
// revisionHistoryLimit.
func (r *DeploymentReconciler) cleanupDeployment(ctx context.Context, d *appsv1alpha1.Deployment, old []*appsv1alpha1.ReplicaSet) error {
	limit := derefInt32(d.Spec.RevisionHistoryLimit, defaultRevisionHistoryLimit)
	victims := cleanupVictims(old, limit)
	for _, rs := range victims {
		ctrl.LoggerFrom(ctx).V(2).Info("Deleting old ReplicaSet", "replicaSet", klog.KObj(rs))
		uid := rs.UID
		if err := r.client.Delete(ctx, rs, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting old ReplicaSet %s: %w", klog.KObj(rs), err)
		}
	}
	return nil
}

// cleanupVictims returns the old ReplicaSets to delete so that at most
// limit remain: lowest revisions first, only those fully scaled down.
func cleanupVictims(old []*appsv1alpha1.ReplicaSet, limit int32) []*appsv1alpha1.ReplicaSet {
	var cleanable []*appsv1alpha1.ReplicaSet
	for _, rs := range old {
		if rs != nil && rs.DeletionTimestamp == nil {
			cleanable = append(cleanable, rs)
		}
	}
	diff := len(cleanable) - int(limit)
	if diff <= 0 {
		return nil
	}
	cleanable = byCreation(cleanable)
	sortStableBy(cleanable, func(a, b *appsv1alpha1.ReplicaSet) bool { return revision(a) < revision(b) })
	var out []*appsv1alpha1.ReplicaSet
	for _, rs := range cleanable[:diff] {
		if rs.Status.Replicas != 0 || derefInt32(rs.Spec.Replicas, 1) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		out = append(out, rs)
	}
	return out
}

// rollback restores the template of the revision named by the
// rollback-to annotation (0: the previous one) and removes the annotation.
func (r *DeploymentReconciler) rollback(ctx context.Context, s *deploymentScope) error {
	d := s.d
	newRS, old, err := r.getAllReplicaSetsAndSyncRevision(ctx, s, true)
	if err != nil {
		return err
	}
	all := nonNil(append(old, newRS))
	to, perr := parseRevision(d.Annotations[appsv1alpha1.AnnotationRollbackTo])
	if perr != nil {
		r.recorder.Eventf(d, nil, corev1.EventTypeWarning, reasonRollbackRevisionNotFound, "Rollback", "Annotation %s must be a revision number: %v", appsv1alpha1.AnnotationRollbackTo, perr)
		return r.clearRollbackTo(ctx, d)
	}
	if to == 0 {
		if to = previousRevision(all); to == 0 {
			r.recorder.Eventf(d, nil, corev1.EventTypeWarning, reasonRollbackRevisionNotFound, "Rollback", "Unable to find last revision.")
			return r.clearRollbackTo(ctx, d)
		}
	}
	for _, rs := range all {
		if revision(rs) != to {
			continue
		}
		if equalIgnoreHash(&d.Spec.Template, &rs.Spec.Template) {
			r.recorder.Eventf(d, rs, corev1.EventTypeWarning, reasonRollbackTemplateUnchanged, "Rollback", "The rollback revision contains the same template as current deployment %q", d.Name)
			return r.clearRollbackTo(ctx, d)
		}
		template := rs.Spec.Template.DeepCopy()
		delete(template.Labels, LabelPodTemplateHash)
		d.Spec.Template = *template
		for k, v := range rs.Annotations {
			if !annotationsNotCopied[k] {
				d.Annotations[k] = v
			}
		}
		if err := r.clearRollbackTo(ctx, d); err != nil {
			return err
		}
		r.recorder.Eventf(d, rs, corev1.EventTypeNormal, reasonDeploymentRollback, "Rollback", "Rolled back deployment %q to revision %d", d.Name, to)
		return nil
	}
	r.recorder.Eventf(d, nil, corev1.EventTypeWarning, reasonRollbackRevisionNotFound, "Rollback", "Unable to find the revision to rollback to.")
	return r.clearRollbackTo(ctx, d)
}

func (r *DeploymentReconciler) clearRollbackTo(ctx context.Context, d *appsv1alpha1.Deployment) error {
	delete(d.Annotations, appsv1alpha1.AnnotationRollbackTo)
	if err := r.client.Update(ctx, d); err != nil {
		return fmt.Errorf("updating %s after rollback: %w", klog.KObj(d), err)
	}
	return nil
}
