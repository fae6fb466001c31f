package apps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
)

var _ reconcile.Reconciler = (*DaemonSetReconciler)(nil)

var daemonSetGVK = appsv1alpha1.GroupVersion.WithKind("DaemonSet")

const reasonFailedDaemonPod = "FailedDaemonPod"

// DaemonSetReconciler runs one pod of a DaemonSet on every eligible node,
// as upstream's DaemonSet controller. It pins each pod to its node with
// required node affinity; the scheduler binds it.
type DaemonSetReconciler struct {
	client     client.Client
	apiReader  client.Reader
	recorder   events.EventRecorder
	clock      clock.PassiveClock
	exp        *podcontrol.Expectations
	podControl podcontrol.PodControl
}

// NewDaemonSetReconciler returns a DaemonSet reconciler; apiReader must
// read uncached, clk may be nil.
func NewDaemonSetReconciler(c client.Client, apiReader client.Reader, recorder events.EventRecorder, clk clock.PassiveClock) *DaemonSetReconciler {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &DaemonSetReconciler{client: c, apiReader: apiReader, recorder: recorder, clock: clk,
		exp: podcontrol.NewExpectations(clk), podControl: podcontrol.PodControl{Client: c, Recorder: recorder}}
}

// SetupWithManager registers the reconciler: it owns pods and
// ControllerRevisions and follows every Node change that can change where
// daemons run.
func (r *DaemonSetReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	for _, obj := range []client.Object{&corev1alpha1.Pod{}, &appsv1.ControllerRevision{}} {
		if err := podcontrol.IndexByController(ctx, mgr.GetFieldIndexer(), obj); err != nil {
			return err
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&appsv1alpha1.DaemonSet{}).
		Named("daemonset").
		Owns(&appsv1.ControllerRevision{}).
		Watches(&corev1alpha1.Pod{}, podcontrol.ChildEventHandler(daemonSetGVK.GroupKind(), r.exp, r.daemonSetsForOrphan)).
		Watches(&corev1alpha1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allDaemonSets), builder.WithPredicates(nodeChanged())).
		Complete(r)
}

// nodeChanged passes node creations, deletions and changes of labels,
// taints or schedulability: what decides where daemons run.
func nodeChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*corev1alpha1.Node), e.ObjectNew.(*corev1alpha1.Node)
			return !equality.Semantic.DeepEqual(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Spec, n.Spec)
		},
	}
}

func (r *DaemonSetReconciler) allDaemonSets(ctx context.Context, _ client.Object) []reconcile.Request {
	var list appsv1alpha1.DaemonSetList
	if err := r.client.List(ctx, &list); err != nil {
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return out
}

func (r *DaemonSetReconciler) daemonSetsForOrphan(ctx context.Context, obj client.Object) []types.NamespacedName {
	var list appsv1alpha1.DaemonSetList
	return selectingOwners(ctx, r.client, obj, &list, func() []appsv1alpha1.DaemonSet { return list.Items },
		func(o *appsv1alpha1.DaemonSet) *metav1.LabelSelector { return o.Spec.Selector })
}

// Reconcile syncs one DaemonSet: revisions, pods per node, the rolling
// update, history cleanup and status.
func (r *DaemonSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	ds := &appsv1alpha1.DaemonSet{}
	if err := r.client.Get(ctx, req.NamespacedName, ds); err != nil {
		if apierrors.IsNotFound(err) {
			r.exp.Forget(req.String())
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if ds.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	before := ds.DeepCopy()
	defer func() {
		retErr = errors.Join(retErr, patchStatus(ctx, r.client, ds, before, func(o client.Object) any { return o.(*appsv1alpha1.DaemonSet).Status }))
	}()
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || selector.Empty() {
		ds.Status.ObservedGeneration = ds.Generation
		setSummary(&ds.Status.Conditions, ds.Generation, summary{stalled: true, message: fmt.Sprintf("spec.selector is invalid or empty: %v", err)})
		return ctrl.Result{}, reconcile.TerminalError(fmt.Errorf("invalid selector of %s", klog.KObj(ds)))
	}
	now := r.clock.Now()
	needsSync := r.exp.Satisfied(req.String())

	var nodeList corev1alpha1.NodeList
	if err := r.client.List(ctx, &nodeList); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing nodes: %w", err)
	}
	nodes := make([]*corev1alpha1.Node, len(nodeList.Items))
	for i := range nodeList.Items {
		nodes[i] = &nodeList.Items[i]
	}
	candidates, err := listPods(ctx, r.client, ds.Namespace, selector, ds.UID)
	if err != nil {
		return ctrl.Result{}, err
	}
	claimer := &podcontrol.Claimer{Client: r.client, Owner: ds, OwnerGVK: daemonSetGVK, Selector: selector,
		CanAdopt: podcontrol.RecheckDeletion(r.apiReader, ds)}
	pods, err := podcontrol.Claim(ctx, claimer, candidates)
	if err != nil {
		return ctrl.Result{}, err
	}
	hash, old, err := r.syncRevisions(ctx, ds, selector)
	if err != nil {
		return ctrl.Result{}, err
	}

	byNode := podsByNode(pods)
	if needsSync {
		plan := planDaemonPods(ds, nodes, byNode, hash)
		if len(plan.createOn) == 0 && len(plan.del) == 0 && isRollingDaemonSet(ds) {
			desired := 0
			for _, n := range nodes {
				if run, _ := nodeShouldRunDaemonPod(n, ds); run {
					desired++
				}
			}
			plan = planDaemonRollingUpdate(ds, desired, byNode, hash, now)
		}
		for _, p := range plan.failed {
			r.recorder.Eventf(ds, p, corev1.EventTypeWarning, reasonFailedDaemonPod, "Delete", "Found failed daemon pod %s on node %s, will try to kill it", klog.KObj(p), p.Spec.NodeName)
		}
		if err := r.syncNodes(ctx, ds, plan, hash); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.cleanupHistory(ctx, ds, old, pods); err != nil {
		return ctrl.Result{}, err
	}
	ds.Status = daemonSetStatus(ds, nodes, byNode, hash, now)
	if wait := nextAvailableCheck(pods, ds.Spec.MinReadySeconds, now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return ctrl.Result{}, nil
}

// syncRevisions makes sure a ControllerRevision of the current template
// exists and returns its hash and the older revisions.
func (r *DaemonSetReconciler) syncRevisions(ctx context.Context, ds *appsv1alpha1.DaemonSet, selector labels.Selector) (string, []*appsv1.ControllerRevision, error) {
	revs, err := claimRevisions(ctx, r.client, r.apiReader, ds, daemonSetGVK, selector)
	if err != nil {
		return "", nil, err
	}
	hash := templateHash(&ds.Spec.Template, ds.Status.CollisionCount)
	var cur *appsv1.ControllerRevision
	var old []*appsv1.ControllerRevision
	var maxRev int64
	for _, rev := range revs {
		maxRev = max(maxRev, rev.Revision)
		if rev.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash && cur == nil {
			cur = rev
			continue
		}
		old = append(old, rev)
	}
	if cur == nil {
		rev, err := newRevision(ds, daemonSetGVK, &ds.Spec.Template, hash, maxRev+1)
		if err != nil {
			return "", nil, err
		}
		if _, err := createRevision(ctx, r.client, r.apiReader, rev, &ds.Status.CollisionCount); err != nil {
			return "", nil, err
		}
	} else if cur.Revision < maxRev {
		// A template seen before is current again: it becomes the newest revision.
		cur.Revision = maxRev + 1
		if err := r.client.Update(ctx, cur); err != nil {
			return "", nil, fmt.Errorf("updating ControllerRevision %s: %w", klog.KObj(cur), err)
		}
	}
	return hash, old, nil
}

// cleanupHistory deletes the oldest revisions beyond revisionHistoryLimit
// that no pod runs.
func (r *DaemonSetReconciler) cleanupHistory(ctx context.Context, ds *appsv1alpha1.DaemonSet, old []*appsv1.ControllerRevision, pods []*corev1alpha1.Pod) error {
	limit := int(derefInt32(ds.Spec.RevisionHistoryLimit, defaultRevisionHistoryLimit))
	if len(old) <= limit {
		return nil
	}
	live := map[string]bool{}
	for _, p := range pods {
		live[p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] = true
	}
	toDelete := len(old) - limit
	for _, rev := range old {
		if toDelete == 0 {
			break
		}
		if live[rev.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] {
			continue
		}
		if err := r.client.Delete(ctx, rev); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting ControllerRevision %s: %w", klog.KObj(rev), err)
		}
		toDelete--
	}
	return nil
}

// syncNodes carries out a plan under expectations.
func (r *DaemonSetReconciler) syncNodes(ctx context.Context, ds *appsv1alpha1.DaemonSet, plan daemonPlan, hash string) error {
	key := podcontrol.Key(ds)
	createOn := plan.createOn
	if len(createOn) > daemonSetBurst {
		createOn = createOn[:daemonSetBurst]
	}
	r.exp.ExpectCreations(key, len(createOn))
	r.exp.ExpectDeletions(key, podcontrol.UIDs(plan.del))
	log := ctrl.LoggerFrom(ctx)
	if len(createOn) > 0 || len(plan.del) > 0 {
		log.V(2).Info("Syncing daemon pods", "creating", len(createOn), "deleting", len(plan.del))
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, p := range plan.del {
		wg.Go(func() {
			if err := r.podControl.DeletePod(ctx, p, ds); err != nil {
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

	// Delete first: a pod replaced on one node must be gone before the
	// next node surges, so at most maxSurge nodes run two pods.
	ref := podcontrol.ControllerRef(ds, daemonSetGVK)
	next := 0
	created, createErr := podcontrol.SlowStartBatch(len(createOn), podcontrol.SlowStartInitialBatchSize, func() error {
		mu.Lock()
		node := createOn[next]
		next++
		mu.Unlock()
		pod := podcontrol.NewPodFromTemplate(&ds.Spec.Template, ds, ref)
		pod.Spec = *daemonPodSpec(&ds.Spec.Template, node)
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
		pod.Labels[LabelPodTemplateGeneration] = strconv.FormatInt(ds.Generation, 10)
		err := r.podControl.CreatePod(ctx, pod, ds)
		if err != nil && !apierrors.IsTimeout(err) {
			r.exp.CreationObserved(key)
			return err
		}
		return nil
	})
	failed := 0
	if createErr != nil {
		failed = len(multiErrs(createErr))
	}
	for range len(createOn) - created - failed {
		r.exp.CreationObserved(key)
	}

	return errors.Join(append(errs, createErr)...)
}
