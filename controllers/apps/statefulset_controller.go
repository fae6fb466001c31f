package apps

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
)

var _ reconcile.Reconciler = (*StatefulSetReconciler)(nil)

var statefulSetGVK = appsv1alpha1.GroupVersion.WithKind("StatefulSet")

// Event reasons of the StatefulSet controller, as upstream.
const (
	reasonSuccessfulCreateClaim = "SuccessfulCreate"
	reasonFailedCreateClaim     = "FailedCreate"
)

// StatefulSetReconciler runs the pods of StatefulSets with stable names and
// storage, in order, as upstream's StatefulSet controller. Deterministic
// pod names stand in for expectations: a stale cache cannot create a pod
// twice, and deletions carry a UID precondition.
type StatefulSetReconciler struct {
	client     client.Client
	apiReader  client.Reader
	recorder   events.EventRecorder
	clock      clock.PassiveClock
	podControl podcontrol.PodControl
}

// NewStatefulSetReconciler returns a StatefulSet reconciler; apiReader
// must read uncached, clk may be nil.
func NewStatefulSetReconciler(c client.Client, apiReader client.Reader, recorder events.EventRecorder, clk clock.PassiveClock) *StatefulSetReconciler {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &StatefulSetReconciler{client: c, apiReader: apiReader, recorder: recorder, clock: clk,
		podControl: podcontrol.PodControl{Client: c, Recorder: recorder}}
}

// SetupWithManager registers the reconciler: it owns pods and ControllerRevisions.
func (r *StatefulSetReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	for _, obj := range []client.Object{&corev1alpha1.Pod{}, &appsv1.ControllerRevision{}} {
		if err := podcontrol.IndexByController(ctx, mgr.GetFieldIndexer(), obj); err != nil {
			return err
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&appsv1alpha1.StatefulSet{}).
		Named("statefulset").
		Owns(&appsv1.ControllerRevision{}).
		Watches(&corev1alpha1.Pod{}, podcontrol.ChildEventHandler(statefulSetGVK.GroupKind(), nil, r.statefulSetsForOrphan)).
		Complete(r)
}

func (r *StatefulSetReconciler) statefulSetsForOrphan(ctx context.Context, obj client.Object) []types.NamespacedName {
	var list appsv1alpha1.StatefulSetList
	return selectingOwners(ctx, r.client, obj, &list, func() []appsv1alpha1.StatefulSet { return list.Items },
		func(o *appsv1alpha1.StatefulSet) *metav1.LabelSelector { return o.Spec.Selector })
}

// statefulScope is one sync of a StatefulSet.
type statefulScope struct {
	set                             *appsv1alpha1.StatefulSet
	currentRevision, updateRevision *appsv1.ControllerRevision
	currentTemplate, updateTemplate *corev1.PodTemplateSpec
	collisionCount                  int32
	now                             time.Time
}

// Reconcile syncs one StatefulSet as upstream's updateStatefulSet: revisions,
// then replicas in ordinal order, condemned pods from the highest ordinal,
// then the rolling update, then history and status.
func (r *StatefulSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	set := &appsv1alpha1.StatefulSet{}
	if err := r.client.Get(ctx, req.NamespacedName, set); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if set.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	before := set.DeepCopy()
	defer func() {
		retErr = errors.Join(retErr, patchStatus(ctx, r.client, set, before, func(o client.Object) any { return o.(*appsv1alpha1.StatefulSet).Status }))
	}()
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || selector.Empty() {
		set.Status.ObservedGeneration = set.Generation
		setSummary(&set.Status.Conditions, set.Generation, summary{stalled: true, message: fmt.Sprintf("spec.selector is invalid or empty: %v", err)})
		return ctrl.Result{}, reconcile.TerminalError(fmt.Errorf("invalid selector of %s", klog.KObj(set)))
	}
	candidates, err := listPods(ctx, r.client, set.Namespace, selector, set.UID)
	if err != nil {
		return ctrl.Result{}, err
	}
	var members []*corev1alpha1.Pod
	for _, p := range candidates {
		if isMemberOf(set, p) || metav1.IsControlledBy(p, set) {
			members = append(members, p)
		}
	}
	claimer := &podcontrol.Claimer{Client: r.client, Owner: set, OwnerGVK: statefulSetGVK, Selector: selector,
		CanAdopt: podcontrol.RecheckDeletion(r.apiReader, set)}
	pods, err := podcontrol.Claim(ctx, claimer, members)
	if err != nil {
		return ctrl.Result{}, err
	}
	s := &statefulScope{set: set, now: r.clock.Now(), collisionCount: derefInt32(set.Status.CollisionCount, 0)}
	revisions, err := r.syncRevisions(ctx, s, selector)
	if err != nil {
		return ctrl.Result{}, err
	}
	replicas, syncErr := r.syncPods(ctx, s, pods)
	all := append([]*corev1alpha1.Pod(nil), pods...)
	set.Status = statefulSetStatus(set, all, s.currentRevision.Name, s.updateRevision.Name, s.collisionCount, s.now)
	if syncErr != nil {
		return ctrl.Result{}, syncErr
	}
	if err := r.truncateHistory(ctx, s, revisions, pods); err != nil {
		return ctrl.Result{}, err
	}
	if wait := nextAvailableCheck(replicas, set.Spec.MinReadySeconds, s.now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return ctrl.Result{}, nil
}

// syncRevisions finds or creates the update revision, as upstream's
// getStatefulSetRevisions: an equal revision that is not the newest is
// renumbered (a rollback); the current revision is status.currentRevision,
// or the update revision for a new set.
func (r *StatefulSetReconciler) syncRevisions(ctx context.Context, s *statefulScope, selector labels.Selector) ([]*appsv1.ControllerRevision, error) {
	set := s.set
	revisions, err := claimRevisions(ctx, r.client, r.apiReader, set, statefulSetGVK, selector)
	if err != nil {
		return nil, err
	}
	next := int64(1)
	if n := len(revisions); n > 0 {
		next = revisions[n-1].Revision + 1
	}
	data, err := revisionData(&set.Spec.Template)
	if err != nil {
		return nil, err
	}
	var equal *appsv1.ControllerRevision
	for _, rev := range revisions {
		if string(rev.Data.Raw) == string(data.Raw) {
			equal = rev
		}
	}
	switch {
	case equal != nil && equal == revisions[len(revisions)-1]:
		s.updateRevision = equal
	case equal != nil:
		equal.Revision = next
		if err := r.client.Update(ctx, equal); err != nil {
			return nil, fmt.Errorf("renumbering ControllerRevision %s: %w", klog.KObj(equal), err)
		}
		sortRevisions(revisions)
		s.updateRevision = equal
	default:
		cc := int32Ptr(s.collisionCount)
		rev, err := newRevision(set, statefulSetGVK, &set.Spec.Template, "", next)
		if err != nil {
			return nil, err
		}
		hash := hashRevisionData(rev.Data.Raw, cc)
		rev.Name = revisionName(set.Name, hash)
		rev.Labels[appsv1.ControllerRevisionHashLabelKey] = rev.Name
		created, err := createRevision(ctx, r.client, r.apiReader, rev, &cc)
		s.collisionCount = *cc
		if err != nil {
			set.Status.CollisionCount = cc
			return nil, err
		}
		revisions = append(revisions, created)
		s.updateRevision = created
	}
	for _, rev := range revisions {
		if rev.Name == set.Status.CurrentRevision {
			s.currentRevision = rev
		}
	}
	if s.currentRevision == nil {
		s.currentRevision = s.updateRevision
	}
	if s.currentTemplate, err = templateOfRevision(s.currentRevision); err != nil {
		return nil, err
	}
	if s.updateTemplate, err = templateOfRevision(s.updateRevision); err != nil {
		return nil, err
	}
	return revisions, nil
}

// syncPods creates, fixes and deletes pods; it returns the replicas in
// ordinal order (some not yet created).
func (r *StatefulSetReconciler) syncPods(ctx context.Context, s *statefulScope, pods []*corev1alpha1.Pod) ([]*corev1alpha1.Pod, error) {
	set := s.set
	log := ctrl.LoggerFrom(ctx)
	start, n := startOrdinal(set), setReplicas(set)
	replicas := make([]*corev1alpha1.Pod, n)
	var condemned []*corev1alpha1.Pod
	for _, p := range pods {
		_, ord := parentAndOrdinal(p.Name)
		switch {
		case ord < 0:
		case inOrdinalRange(set, ord):
			replicas[ord-start] = p
		default:
			condemned = append(condemned, p)
		}
	}
	for i := range replicas {
		if replicas[i] == nil {
			replicas[i] = r.newVersionedPod(s, start+i)
		}
	}
	sort.SliceStable(condemned, func(i, j int) bool {
		_, a := parentAndOrdinal(condemned[i].Name)
		_, b := parentAndOrdinal(condemned[j].Name)
		return a > b
	})
	var firstUnhealthy *corev1alpha1.Pod
	for _, p := range replicas {
		if statefulUnavailable(p, set.Spec.MinReadySeconds, s.now) {
			firstUnhealthy = p
			break
		}
	}
	if firstUnhealthy == nil {
		for i := len(condemned) - 1; i >= 0; i-- {
			if statefulUnavailable(condemned[i], set.Spec.MinReadySeconds, s.now) {
				firstUnhealthy = condemned[i]
				break
			}
		}
	}
	monotonic := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement

	// 1. Replicas, lowest ordinal first.
	for i, p := range replicas {
		stop, err := r.processReplica(ctx, s, p, i, monotonic)
		if err != nil || (stop && monotonic) {
			return replicas, err
		}
	}
	// 2. Claims of condemned pods follow the retention policy before they go.
	for _, p := range condemned {
		if err := r.syncClaimOwners(ctx, set, p); err != nil {
			return replicas, err
		}
	}
	// 3. Condemned pods, highest ordinal first.
	for _, p := range condemned {
		if p.DeletionTimestamp != nil {
			if monotonic {
				return replicas, nil
			}
			continue
		}
		if monotonic && p != firstUnhealthy && statefulUnavailable(p, set.Spec.MinReadySeconds, s.now) {
			return replicas, nil
		}
		log.V(2).Info("Deleting pod for scale down", "pod", klog.KObj(p))
		if err := r.deletePod(ctx, set, p); err != nil {
			return replicas, err
		}
		if monotonic {
			return replicas, nil
		}
	}
	// 4. The rolling update.
	for _, p := range statefulUpdateVictims(set, replicas, s.updateRevision.Name, s.now) {
		log.V(2).Info("Deleting pod for update", "pod", klog.KObj(p))
		if err := r.deletePod(ctx, set, p); err != nil {
			return replicas, err
		}
	}
	return replicas, nil
}

func (r *StatefulSetReconciler) newVersionedPod(s *statefulScope, ord int) *corev1alpha1.Pod {
	if useCurrentRevision(s.set, ord) {
		return newStatefulPod(s.set, s.currentTemplate, ord, s.currentRevision.Name)
	}
	return newStatefulPod(s.set, s.updateTemplate, ord, s.updateRevision.Name)
}

// processReplica moves one replica forward; stop means a monotonic sync
// must wait for it.
func (r *StatefulSetReconciler) processReplica(ctx context.Context, s *statefulScope, pod *corev1alpha1.Pod, i int, monotonic bool) (bool, error) {
	set := s.set
	if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		if pod.DeletionTimestamp == nil {
			if err := r.deletePod(ctx, set, pod); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	if pod.UID == "" {
		if err := r.createClaims(ctx, set, pod); err != nil {
			return true, err
		}
		ctrl.LoggerFrom(ctx).V(2).Info("Creating pod", "pod", klog.KObj(pod))
		if err := r.podControl.CreatePod(ctx, pod, set); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return true, nil // our cache is behind
			}
			return true, err
		}
		return monotonic, nil
	}
	if pod.DeletionTimestamp != nil || !isRunningAndReady(pod) || !statefulAvailable(pod, set, s.now) {
		if monotonic {
			return true, nil
		}
	}
	if !identityMatches(set, pod) {
		orig := pod.DeepCopy()
		_, ord := parentAndOrdinal(pod.Name)
		setStatefulIdentity(set, pod, ord)
		if err := r.client.Patch(ctx, pod, client.MergeFrom(orig)); err != nil {
			return true, fmt.Errorf("restoring the identity of %s: %w", klog.KObj(pod), err)
		}
	}
	if err := r.syncClaimOwners(ctx, set, pod); err != nil {
		return true, err
	}
	return false, nil
}

func statefulAvailable(p *corev1alpha1.Pod, set *appsv1alpha1.StatefulSet, now time.Time) bool {
	return !statefulUnavailable(p, set.Spec.MinReadySeconds, now)
}

func (r *StatefulSetReconciler) deletePod(ctx context.Context, set *appsv1alpha1.StatefulSet, pod *corev1alpha1.Pod) error {
	if err := r.podControl.DeletePod(ctx, pod, set); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// createClaims creates the missing PersistentVolumeClaims of a pod.
func (r *StatefulSetReconciler) createClaims(ctx context.Context, set *appsv1alpha1.StatefulSet, pod *corev1alpha1.Pod) error {
	_, ord := parentAndOrdinal(pod.Name)
	for i := range set.Spec.VolumeClaimTemplates {
		claim := newClaim(set, &set.Spec.VolumeClaimTemplates[i], ord)
		existing := &corev1alpha1.PersistentVolumeClaim{}
		err := r.client.Get(ctx, client.ObjectKeyFromObject(claim), existing)
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading claim %s: %w", klog.KObj(claim), err)
		}
		bySet, _ := claimOwners(set, true)
		setOwnerRef(claim, set, statefulSetGVK.GroupVersion().String(), statefulSetGVK.Kind, bySet)
		if err := r.client.Create(ctx, claim); err != nil && !apierrors.IsAlreadyExists(err) {
			r.recorder.Eventf(set, nil, corev1.EventTypeWarning, reasonFailedCreateClaim, "Create", "create Claim %s Pod %s in StatefulSet %s failed error: %v", claim.Name, pod.Name, set.Name, err)
			return fmt.Errorf("creating claim %s: %w", klog.KObj(claim), err)
		}
		r.recorder.Eventf(set, nil, corev1.EventTypeNormal, reasonSuccessfulCreateClaim, "Create", "create Claim %s Pod %s in StatefulSet %s success", claim.Name, pod.Name, set.Name)
	}
	return nil
}

// syncClaimOwners sets the owner references of a pod's claims that the
// retention policy asks for.
func (r *StatefulSetReconciler) syncClaimOwners(ctx context.Context, set *appsv1alpha1.StatefulSet, pod *corev1alpha1.Pod) error {
	if pod.UID == "" {
		return nil
	}
	_, ord := parentAndOrdinal(pod.Name)
	bySet, byPod := claimOwners(set, inOrdinalRange(set, ord))
	for i := range set.Spec.VolumeClaimTemplates {
		claim := &corev1alpha1.PersistentVolumeClaim{}
		key := types.NamespacedName{Namespace: set.Namespace, Name: claimName(set, &set.Spec.VolumeClaimTemplates[i], ord)}
		if err := r.client.Get(ctx, key, claim); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("reading claim %s: %w", key, err)
		}
		orig := claim.DeepCopy()
		changed := setOwnerRef(claim, set, statefulSetGVK.GroupVersion().String(), statefulSetGVK.Kind, bySet)
		changed = setOwnerRef(claim, pod, corev1alpha1.GroupVersion.String(), "Pod", byPod) || changed
		if !changed {
			continue
		}
		if err := r.client.Patch(ctx, claim, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("updating owners of claim %s: %w", key, err)
		}
	}
	return nil
}

// truncateHistory deletes the oldest revisions beyond revisionHistoryLimit
// that are neither current, update, nor run by a pod.
func (r *StatefulSetReconciler) truncateHistory(ctx context.Context, s *statefulScope, revisions []*appsv1.ControllerRevision, pods []*corev1alpha1.Pod) error {
	live := map[string]bool{s.currentRevision.Name: true, s.updateRevision.Name: true}
	for _, p := range pods {
		live[p.Labels[appsv1.ControllerRevisionHashLabelKey]] = true
	}
	var history []*appsv1.ControllerRevision
	for _, rev := range revisions {
		if !live[rev.Name] {
			history = append(history, rev)
		}
	}
	limit := int(derefInt32(s.set.Spec.RevisionHistoryLimit, defaultRevisionHistoryLimit))
	for i := 0; i < len(history)-limit; i++ {
		if err := r.client.Delete(ctx, history[i]); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting ControllerRevision %s: %w", klog.KObj(history[i]), err)
		}
	}
	return nil
}
