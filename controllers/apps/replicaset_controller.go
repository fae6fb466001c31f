package apps

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"github.com/skiff-dev/skiff/internal/podutil"
)

var _ reconcile.Reconciler = (*ReplicaSetReconciler)(nil)

// ReplicaSetReconciler keeps spec.replicas pods of a ReplicaSet, as
// upstream's ReplicaSet controller.
type ReplicaSetReconciler struct {
	client     client.Client
	apiReader  client.Reader
	recorder   events.EventRecorder
	clock      clock.PassiveClock
	exp        *podcontrol.Expectations
	podControl podcontrol.PodControl
	// burst caps the pods created or deleted in one sync.
	burst int
}

// NewReplicaSetReconciler returns a ReplicaSet reconciler; apiReader must
// read uncached (adoption checks), clk may be nil.
func NewReplicaSetReconciler(c client.Client, apiReader client.Reader, recorder events.EventRecorder, clk clock.PassiveClock) *ReplicaSetReconciler {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &ReplicaSetReconciler{
		client: c, apiReader: apiReader, recorder: recorder, clock: clk,
		exp:        podcontrol.NewExpectations(clk),
		podControl: podcontrol.PodControl{Client: c, Recorder: recorder},
		burst:      podcontrol.BurstReplicas,
	}
}

var replicaSetGVK = appsv1alpha1.GroupVersion.WithKind("ReplicaSet")

// SetupWithManager registers the reconciler: it owns pods, through a
// handler that feeds the expectations and lets ReplicaSets adopt orphans.
func (r *ReplicaSetReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := podcontrol.IndexByController(ctx, mgr.GetFieldIndexer(), &corev1alpha1.Pod{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&appsv1alpha1.ReplicaSet{}).
		Named("replicaset").
		Watches(&corev1alpha1.Pod{}, podcontrol.ChildEventHandler(replicaSetGVK.GroupKind(), r.exp, r.replicaSetsForOrphan)).
		Complete(r)
}

// replicaSetsForOrphan names the ReplicaSets whose selector matches obj.
func (r *ReplicaSetReconciler) replicaSetsForOrphan(ctx context.Context, obj client.Object) []types.NamespacedName {
	var list appsv1alpha1.ReplicaSetList
	return selectingOwners(ctx, r.client, obj, &list, func() []appsv1alpha1.ReplicaSet { return list.Items },
		func(o *appsv1alpha1.ReplicaSet) *metav1.LabelSelector { return o.Spec.Selector })
}

// Reconcile syncs one ReplicaSet: claim its pods, create or delete pods
// when the expectations are met, then patch the status.
func (r *ReplicaSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	rs := &appsv1alpha1.ReplicaSet{}
	if err := r.client.Get(ctx, req.NamespacedName, rs); err != nil {
		if apierrors.IsNotFound(err) {
			r.exp.Forget(req.String())
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	log := ctrl.LoggerFrom(ctx)
	before := rs.DeepCopy()
	now := r.clock.Now()

	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || selector.Empty() {
		rs.Status.ObservedGeneration = rs.Generation
		setSummary(&rs.Status.Conditions, rs.Generation, summary{stalled: true,
			message: fmt.Sprintf("spec.selector is invalid or empty: %v", err)})
		return ctrl.Result{}, errors.Join(reconcile.TerminalError(fmt.Errorf("invalid selector of %s: %w", klog.KObj(rs), err)),
			patchStatus(ctx, r.client, rs, before, rsStatusOf))
	}

	// Read the expectations before the cache, as upstream: an event that
	// lands in between is then seen in the list.
	key := req.String()
	needsSync := r.exp.Satisfied(key)
	candidates, err := listPods(ctx, r.client, rs.Namespace, selector, rs.UID)
	if err != nil {
		return ctrl.Result{}, err
	}
	var active []*corev1alpha1.Pod
	for _, p := range candidates {
		if podutil.IsActive(p) {
			active = append(active, p)
		}
	}
	claimer := &podcontrol.Claimer{Client: r.client, Owner: rs, OwnerGVK: replicaSetGVK, Selector: selector,
		CanAdopt: podcontrol.RecheckDeletion(r.apiReader, rs)}
	pods, claimErr := podcontrol.Claim(ctx, claimer, active)

	var manageErr error
	var deleted []*corev1alpha1.Pod
	diff := replicaSetDiff(len(pods), derefInt32(rs.Spec.Replicas, 1), r.burst)
	if needsSync && rs.DeletionTimestamp == nil && claimErr == nil {
		deleted, manageErr = r.manageReplicas(ctx, rs, pods, diff)
	} else if !needsSync {
		log.V(4).Info("Waiting for the cache to observe earlier pod changes")
	}

	// Pods deleted just now are terminating, not available: a Deployment
	// reads these figures to decide how many more pods it may take down.
	var terminating int32
	for _, p := range candidates {
		if podutil.IsTerminating(p) && !podutil.IsTerminal(p) && metav1.IsControlledBy(p, rs) {
			terminating++
		}
	}
	if len(deleted) > 0 {
		gone := map[types.UID]bool{}
		for _, p := range deleted {
			gone[p.UID] = true
		}
		var remaining []*corev1alpha1.Pod
		for _, p := range pods {
			if !gone[p.UID] {
				remaining = append(remaining, p)
			}
		}
		pods = remaining
	}
	rs.Status = replicaSetStatus(rs, pods, terminating, manageErr, diff, now)
	if err := patchStatus(ctx, r.client, rs, before, rsStatusOf); err != nil {
		return ctrl.Result{}, errors.Join(manageErr, claimErr, err)
	}
	if err := errors.Join(manageErr, claimErr); err != nil {
		return ctrl.Result{}, err
	}
	if wait := nextAvailableCheck(pods, rs.Spec.MinReadySeconds, now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return ctrl.Result{}, nil
}

func rsStatusOf(o client.Object) any { return o.(*appsv1alpha1.ReplicaSet).Status }

// manageReplicas creates (diff < 0) or deletes (diff > 0) pods; it
// returns the pods it deleted.
func (r *ReplicaSetReconciler) manageReplicas(ctx context.Context, rs *appsv1alpha1.ReplicaSet, pods []*corev1alpha1.Pod, diff int) ([]*corev1alpha1.Pod, error) {
	log := ctrl.LoggerFrom(ctx)
	key := podcontrol.Key(rs)
	switch {
	case diff < 0:
		n := -diff
		r.exp.ExpectCreations(key, n)
		log.V(2).Info("Creating pods", "need", derefInt32(rs.Spec.Replicas, 1), "creating", n)
		ref := podcontrol.ControllerRef(rs, replicaSetGVK)
		created, err := podcontrol.SlowStartBatch(n, podcontrol.SlowStartInitialBatchSize, func() error {
			err := r.podControl.CreatePod(ctx, podcontrol.NewPodFromTemplate(&rs.Spec.Template, rs, ref), rs)
			if err != nil && apierrors.IsTimeout(err) {
				// The pod may exist after all; the informer will tell.
				return nil
			}
			if err != nil {
				r.exp.CreationObserved(key) // never to be seen
			}
			return err
		})
		// Batches never started will not be observed either.
		failed := 0
		if err != nil {
			failed = len(multiErrs(err))
		}
		for range n - created - failed {
			r.exp.CreationObserved(key)
		}
		return nil, err
	case diff > 0:
		related, err := r.relatedPods(ctx, rs, pods)
		if err != nil {
			return nil, err
		}
		victims := append([]*corev1alpha1.Pod(nil), pods...)
		if diff < len(victims) {
			podcontrol.SortForDeletion(victims, related, r.clock.Now())
		}
		victims = victims[:diff]
		r.exp.ExpectDeletions(key, podcontrol.UIDs(victims))
		log.V(2).Info("Deleting pods", "need", derefInt32(rs.Spec.Replicas, 1), "deleting", diff)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for _, p := range victims {
			wg.Go(func() {
				if err := r.podControl.DeletePod(ctx, p, rs); err != nil {
					r.exp.DeletionObserved(key, p.UID)
					if !apierrors.IsNotFound(err) {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return victims, errors.Join(errs...)
	}
	return nil, nil
}

// relatedPods are the pods whose crowding on a node ranks pods for
// deletion: for a ReplicaSet of a Deployment, the pods of all the
// Deployment's ReplicaSets, as upstream; otherwise its own.
func (r *ReplicaSetReconciler) relatedPods(ctx context.Context, rs *appsv1alpha1.ReplicaSet, own []*corev1alpha1.Pod) ([]*corev1alpha1.Pod, error) {
	ref := metav1.GetControllerOf(rs)
	if ref == nil {
		return own, nil
	}
	var siblings appsv1alpha1.ReplicaSetList
	if err := r.client.List(ctx, &siblings, client.InNamespace(rs.Namespace), client.MatchingFields{podcontrol.IndexControllerUID: string(ref.UID)}); err != nil {
		return nil, fmt.Errorf("listing sibling ReplicaSets of %s: %w", klog.KObj(rs), err)
	}
	var out []*corev1alpha1.Pod
	for i := range siblings.Items {
		if siblings.Items[i].UID == rs.UID {
			out = append(out, own...)
			continue
		}
		pods, err := podsControlledBy(ctx, r.client, rs.Namespace, siblings.Items[i].UID)
		if err != nil {
			return nil, err
		}
		out = append(out, pods...)
	}
	return out, nil
}

func multiErrs(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		return u.Unwrap()
	}
	return []error{err}
}
