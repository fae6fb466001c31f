package core

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
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

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
	"github.com/skiff-dev/skiff/internal/podstatus"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// Default eviction rate: pods deleted per second, and burst.
const (
	DefaultEvictionQPS   = 10
	DefaultEvictionBurst = 20
)

// NodeLifecycleReconciler watches Node Leases: it marks a node whose agent
// went silent Ready=Unknown, taints it unreachable, evicts the pods that do
// not tolerate its NoExecute taints in time, and untaints it when the agent
// is back (upstream's node lifecycle and taint eviction controllers).
type NodeLifecycleReconciler struct {
	client      client.Client
	recorder    events.EventRecorder
	clock       clock.PassiveClock
	gracePeriod time.Duration
	evictions   *rate.Limiter
	disruption  *disruption
	tolerations DefaultTolerations
	// reader, when set, reads a Lease afresh before a node is declared
	// unreachable: the cached Lease may be older than the cached Node.
	reader client.Reader
}

var _ reconcile.Reconciler = (*NodeLifecycleReconciler)(nil)

// NewNodeLifecycleReconciler returns the controller. gracePeriod is how long
// a Lease may go unrenewed; evictions limits pod deletions (nil: the defaults).
func NewNodeLifecycleReconciler(c client.Client, recorder events.EventRecorder, clk clock.PassiveClock, gracePeriod time.Duration, evictions *rate.Limiter) *NodeLifecycleReconciler {
	if gracePeriod <= 0 {
		gracePeriod = DefaultNodeMonitorGracePeriod
	}
	if evictions == nil {
		evictions = rate.NewLimiter(DefaultEvictionQPS, DefaultEvictionBurst)
	}
	return &NodeLifecycleReconciler{client: c, recorder: recorder, clock: clk, gracePeriod: gracePeriod, evictions: evictions,
		disruption: newDisruption(UpstreamDisruptionOptions), tolerations: UpstreamDefaultTolerations}
}

// WithDisruption sets how fast NoExecute taints reach nodes that stopped
// being ready, zone by zone (default: kube-controller-manager's).
func (r *NodeLifecycleReconciler) WithDisruption(opts DisruptionOptions) *NodeLifecycleReconciler {
	r.disruption = newDisruption(opts)
	return r
}

// WithAPIReader makes the controller confirm with an uncached read that a
// node's Lease expired before it marks the node Ready=Unknown. Without it,
// a Lease informer behind the Node informer can mark a node that has just
// come back (and posted Ready=True) Unknown again.
func (r *NodeLifecycleReconciler) WithAPIReader(reader client.Reader) *NodeLifecycleReconciler {
	r.reader = reader
	return r
}

// WithDefaultTolerations sets the tolerationSeconds of pods that have no
// not-ready or unreachable toleration of their own (default 300 s each).
func (r *NodeLifecycleReconciler) WithDefaultTolerations(d DefaultTolerations) *NodeLifecycleReconciler {
	r.tolerations = d
	return r
}

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes;nodes/status,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods/status,verbs=patch

// Reconcile brings one node's status, taints and pods in line with its Lease.
func (r *NodeLifecycleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	node := &corev1alpha1.Node{}
	if err := r.client.Get(ctx, req.NamespacedName, node); err != nil {
		if apierrors.IsNotFound(err) {
			r.disruption.forget(ctrl.LoggerFrom(ctx), req.Name, r.clock.Now())
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("node", klog.KObj(node))
	ctx = ctrl.LoggerInto(ctx, log)

	lease := &coordinationv1.Lease{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: NodeLeaseNamespace, Name: node.Name}, lease); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("reading the lease of node %s: %w", node.Name, err)
		}
		lease = nil
	}
	now := r.clock.Now()
	health, untilExpiry := assessNode(node, lease, now, r.gracePeriod)
	if health == nodeUnreachable && r.reader != nil && unknownStatus(node.Status, node.Spec.Unschedulable) != nil {
		fresh := &coordinationv1.Lease{}
		err := r.reader.Get(ctx, types.NamespacedName{Namespace: NodeLeaseNamespace, Name: node.Name}, fresh)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("reading the lease of node %s: %w", node.Name, err)
		default:
			health, untilExpiry = assessNode(node, fresh, now, r.gracePeriod)
		}
	}

	// 1. An unreachable node is Ready=Unknown.
	if health == nodeUnreachable {
		if status := unknownStatus(node.Status, node.Spec.Unschedulable); status != nil {
			log.Info("Marking node Ready=Unknown: its Lease was not renewed", "gracePeriod", r.gracePeriod)
			orig := node.DeepCopy()
			node.Status = *status
			if err := r.client.Status().Patch(ctx, node, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
				return ctrl.Result{}, fmt.Errorf("marking node %s Ready=Unknown: %w", node.Name, err)
			}
			r.recorder.Eventf(node, nil, corev1.EventTypeNormal, "NodeNotReady", "MarkUnknown",
				"Node %s stopped renewing its Lease for %s; marked Ready=Unknown", node.Name, r.gracePeriod)
		}
	}

	// 2. The pods of an unreachable node are not ready: Services stop
	// sending them traffic before they are evicted.
	if health == nodeUnreachable {
		if err := r.markPodsNotReady(ctx, node); err != nil {
			return ctrl.Result{}, err
		}
	}

	// 3. The lifecycle taints follow the node's health and pressure; the
	// NoExecute ones as the disruption of the node's zone allows.
	recheck, err := r.syncTaints(ctx, node, lease, health, now)
	if err != nil {
		return ctrl.Result{}, err
	}

	// 4. Pods that do not tolerate the NoExecute taints are evicted in time.
	next, err := r.evict(ctx, node, now)
	if err != nil {
		return ctrl.Result{}, err
	}

	// 5. Look again when the Lease would expire, the zone may allow a
	// taint, or the next eviction is due.
	result := ctrl.Result{}
	if health != nodeUnreachable {
		result.RequeueAfter = untilExpiry + 10*time.Millisecond
	}
	for _, d := range []time.Duration{recheck, next} {
		if d > 0 && (result.RequeueAfter == 0 || d < result.RequeueAfter) {
			result.RequeueAfter = d
		}
	}
	return result, nil
}

// syncTaints writes the lifecycle taints the node's health and pressure
// call for, holding back NoExecute ones as the zone's disruption says, and
// returns when to look again for the zone's sake.
func (r *NodeLifecycleReconciler) syncTaints(ctx context.Context, node *corev1alpha1.Node, lease *coordinationv1.Lease, health nodeHealth, now time.Time) (time.Duration, error) {
	log := ctrl.LoggerFrom(ctx)
	if r.disruption.needsPriming() {
		nodes := &corev1alpha1.NodeList{}
		if err := r.client.List(ctx, nodes); err != nil {
			return 0, fmt.Errorf("listing nodes: %w", err)
		}
		r.disruption.prime(log, nodes.Items, now)
	}
	if excludedFromDisruption(node) {
		r.disruption.forget(log, node.Name, now)
	} else {
		r.disruption.observe(log, node.Name, zoneKey(node), nodeReady(node, health), now)
	}
	taints := desiredTaints(node.Spec.Taints, health, node.Status.Conditions, now)
	taints, recheck, granted := r.gateNoExecute(node, taints, silentSince(node, lease, health), now)
	if equality.Semantic.DeepEqual(taints, node.Spec.Taints) { // an empty list is the same as none
		return recheck, nil
	}
	log.V(2).Info("Updating node taints", "health", health)
	orig := node.DeepCopy()
	node.Spec.Taints = taints
	if err := r.client.Patch(ctx, node, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if granted != nil {
			granted.CancelAt(now) // the zone's budget gets the taint back
		}
		return 0, fmt.Errorf("updating taints of node %s: %w", node.Name, err)
	}
	if granted != nil {
		noExecuteTaints.WithLabelValues(zoneName(zoneKey(node))).Inc()
	}
	return recheck, nil
}

// gateNoExecute holds back the NoExecute lifecycle taints that taints
// would add, as the disruption of the node's zone says, and lifts those
// the node has in master disruption mode. It returns the taints to write
// and, for a node that is not ready, when to look again: the zone's state
// moves with other nodes. granted is the reservation of a taint taken
// from the zone's budget (cancelled when the write fails).
func (r *NodeLifecycleReconciler) gateNoExecute(node *corev1alpha1.Node, taints []corev1.Taint, since time.Time, now time.Time) (_ []corev1.Taint, recheck time.Duration, granted *rate.Reservation) {
	if !since.IsZero() {
		recheck = disruptionRecheck
	}
	lifted := r.disruption.lifted()
	// A node that has a NoExecute lifecycle taint swaps it (not-ready to
	// unreachable and back) at once, as upstream; only a first one waits.
	tainted, adds := false, false
	for _, t := range node.Spec.Taints {
		tainted = tainted || isNoExecuteLifecycleTaint(t)
	}
	for _, t := range taints {
		adds = adds || (!tainted && isNoExecuteLifecycleTaint(t))
	}
	if !lifted && !adds {
		return taints, recheck, nil
	}
	if !lifted {
		res, wait := r.disruption.allowTaint(zoneKey(node), since, r.gracePeriod, now)
		if res != nil {
			return taints, recheck, res
		}
		recheck = wait
	}
	// Held back (the node had none) or lifted: no NoExecute lifecycle taint.
	kept := make([]corev1.Taint, 0, len(taints))
	for _, t := range taints {
		if !isNoExecuteLifecycleTaint(t) {
			kept = append(kept, t)
		}
	}
	return kept, recheck, nil
}

// silentSince is when a node that is not ready stopped being so: its last
// heartbeat when unreachable, its Ready condition's transition when it
// reports not ready; zero for a ready node.
func silentSince(node *corev1alpha1.Node, lease *coordinationv1.Lease, health nodeHealth) time.Time {
	switch health {
	case nodeUnreachable:
		return lastHeartbeat(node, lease)
	case nodeNotReady:
		if c := meta.FindStatusCondition(node.Status.Conditions, conditions.Ready); c != nil {
			return c.LastTransitionTime.Time
		}
		return node.CreationTimestamp.Time
	}
	return time.Time{}
}

func isNoExecuteLifecycleTaint(t corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoExecute && isLifecycleTaint(t)
}

// evict deletes the node's pods whose tolerations ran out, within the
// eviction rate, and returns how long until the next one is due.
func (r *NodeLifecycleReconciler) evict(ctx context.Context, node *corev1alpha1.Node, now time.Time) (time.Duration, error) {
	if !hasNoExecute(node.Spec.Taints) {
		return 0, nil
	}
	pods := &corev1alpha1.PodList{}
	if err := r.client.List(ctx, pods, client.MatchingFields{podcontrol.IndexPodNodeName: node.Name}); err != nil {
		return 0, fmt.Errorf("listing pods of node %s: %w", node.Name, err)
	}
	var next time.Duration
	later := func(d time.Duration) {
		if next == 0 || d < next {
			next = d
		}
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		at, ok := evictionTime(pod, node.Spec.Taints, r.tolerations, now)
		if !ok {
			continue
		}
		if at.After(now) {
			later(at.Sub(now))
			continue
		}
		if !r.evictions.AllowN(now, 1) {
			later(time.Duration(float64(time.Second) / float64(r.evictions.Limit())))
			continue
		}
		ctrl.LoggerFrom(ctx).Info("Evicting pod from tainted node", "pod", klog.KObj(pod))
		// As upstream's taint eviction: DisruptionTarget says why the pod
		// goes before it goes (Jobs' pod failure policies read it).
		err := podstatus.Patch(ctx, r.freshReader(), r.client.Status(), pod, func(p *corev1alpha1.Pod) {
			podutil.SetDisruptionTarget(p, podutil.ReasonDeletionByTaintManager, podutil.MessageDeletionByTaintManager)
		})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("marking pod %s a disruption target: %w", klog.KObj(pod), err)
		}
		uid := pod.UID
		if err := r.client.Delete(ctx, pod, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("evicting pod %s from node %s: %w", klog.KObj(pod), node.Name, err)
		}
		r.recorder.Eventf(pod, node, corev1.EventTypeNormal, "TaintManagerEviction", "Evict",
			"Evicted from node %s: the pod does not tolerate its NoExecute taints %s", node.Name, noExecuteKeys(node.Spec.Taints))
	}
	return next, nil
}

// freshReader is the reader of a pod again after a conflict: the API
// reader when set, the client otherwise.
func (r *NodeLifecycleReconciler) freshReader() client.Reader {
	if r.reader != nil {
		return r.reader
	}
	return r.client
}

// markPodsNotReady sets Ready=False on the node's pods that still say
// they are ready, as upstream's MarkPodsNotReady.
func (r *NodeLifecycleReconciler) markPodsNotReady(ctx context.Context, node *corev1alpha1.Node) error {
	pods := &corev1alpha1.PodList{}
	if err := r.client.List(ctx, pods, client.MatchingFields{podcontrol.IndexPodNodeName: node.Name}); err != nil {
		return fmt.Errorf("listing pods of node %s: %w", node.Name, err)
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		status := notReadyStatus(pod.Status, node.Name)
		if status == nil {
			continue
		}
		ctrl.LoggerFrom(ctx).V(2).Info("Marking pod not ready: its node is unreachable", "pod", klog.KObj(pod))
		orig := pod.DeepCopy()
		pod.Status = *status
		// The optimistic lock keeps a status the agent wrote meanwhile: the
		// next pass looks again.
		if err := r.client.Status().Patch(ctx, pod, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("marking pod %s not ready: %w", klog.KObj(pod), err)
		}
	}
	return nil
}

func hasNoExecute(taints []corev1.Taint) bool {
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

func noExecuteKeys(taints []corev1.Taint) []string {
	var keys []string
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			keys = append(keys, t.Key)
		}
	}
	return keys
}

// SetupWithManager registers the controller: Nodes, their Leases, and the
// Pods on them.
func (r *NodeLifecycleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := podcontrol.IndexPodsByNode(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	leaseToNode := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetName()}}}
	})
	podToNode := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		pod, ok := o.(*corev1alpha1.Pod)
		if !ok || pod.Spec.NodeName == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: pod.Spec.NodeName}}}
	})
	inLeaseNamespace := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() == NodeLeaseNamespace })
	return ctrl.NewControllerManagedBy(mgr).
		Named("node-lifecycle").
		For(&corev1alpha1.Node{}).
		Watches(&coordinationv1.Lease{}, leaseToNode, builder.WithPredicates(inLeaseNamespace)).
		Watches(&corev1alpha1.Pod{}, podToNode, builder.WithPredicates(predicate.Funcs{
			// Only pods that arrive on a node matter; updates and deletes do not.
			UpdateFunc: func(e event.UpdateEvent) bool {
				return e.ObjectOld.(*corev1alpha1.Pod).Spec.NodeName != e.ObjectNew.(*corev1alpha1.Pod).Spec.NodeName
			},
			DeleteFunc: func(event.DeleteEvent) bool { return false },
		})).
		Complete(r)
}
