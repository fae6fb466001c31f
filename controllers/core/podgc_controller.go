package core

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
)

// AgentFinalizer is the finalizer skiff-agent puts on the pods bound to
// its node and removes once their containers are gone (agent/pods.Finalizer;
// repeated here so the manager does not import the agent).
const AgentFinalizer = "core.skiff.dev/agent"

// PodGCOptions configure the pod garbage collector.
type PodGCOptions struct {
	// TerminatingDelay is how long after its grace period a terminating
	// pod on a node that is not Ready is force-deleted; zero means
	// DefaultTerminatingPodGCDelay, negative never (as upstream: only the
	// out-of-service taint releases such pods).
	TerminatingDelay time.Duration
	// OrphanQuarantine is how long a pod bound to a missing Node waits for
	// it; zero means DefaultOrphanQuarantine.
	OrphanQuarantine time.Duration
}

// PodGCReconciler force-deletes the pods that no agent will ever finish
// deleting, as upstream's podgc: terminating pods on a node that is not
// Ready and carries the node.kubernetes.io/out-of-service taint, and pods
// bound to a Node that no longer exists; and, unlike upstream, terminating
// pods on a not-Ready node once their grace period ended a configurable
// delay ago. Force-deleting marks the pod Failed, removes the agent's
// finalizer and deletes it with grace period 0, so its controller can
// replace it (a StatefulSet only then creates the pod of that name again).
type PodGCReconciler struct {
	client   client.Client
	reader   client.Reader
	recorder events.EventRecorder
	clock    clock.PassiveClock
	opts     PodGCOptions

	mu sync.Mutex
	// missingSince is when each missing Node was first looked for.
	missingSince map[string]time.Time
}

var _ reconcile.Reconciler = (*PodGCReconciler)(nil)

// NewPodGCReconciler returns the pod garbage collector; reader must not
// cache (the manager's API reader): it confirms that a Node is gone.
func NewPodGCReconciler(c client.Client, reader client.Reader, recorder events.EventRecorder, clk clock.PassiveClock, opts PodGCOptions) *PodGCReconciler {
	if opts.TerminatingDelay == 0 {
		opts.TerminatingDelay = DefaultTerminatingPodGCDelay
	}
	if opts.OrphanQuarantine <= 0 {
		opts.OrphanQuarantine = DefaultOrphanQuarantine
	}
	return &PodGCReconciler{client: c, reader: reader, recorder: recorder, clock: clk, opts: opts, missingSince: map[string]time.Time{}}
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;patch;update;delete
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods/status,verbs=patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes,verbs=get;list;watch

// Reconcile looks at one bound pod and force-deletes it when its node will
// not.
func (r *PodGCReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1alpha1.Pod{}
	if err := r.client.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pod.Spec.NodeName == "" {
		return ctrl.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("pod", klog.KObj(pod), "node", pod.Spec.NodeName)
	ctx = ctrl.LoggerInto(ctx, log)
	now := r.clock.Now()

	// 1. Decide: the pod's node is missing, or not Ready.
	var reason gcReason
	var wait time.Duration
	node := &corev1alpha1.Node{}
	err := r.client.Get(ctx, types.NamespacedName{Name: pod.Spec.NodeName}, node)
	switch {
	case apierrors.IsNotFound(err):
		reason, wait = orphanGC(r.missing(pod.Spec.NodeName, now), r.opts.OrphanQuarantine, now)
		if reason != gcNone {
			// The cache may be behind: only the API server says it is gone.
			gone, err := r.nodeGone(ctx, pod.Spec.NodeName)
			if err != nil {
				return ctrl.Result{}, err
			}
			if !gone {
				r.found(pod.Spec.NodeName)
				return ctrl.Result{RequeueAfter: time.Second}, nil
			}
		}
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading node %s of pod %s: %w", pod.Spec.NodeName, klog.KObj(pod), err)
	default:
		r.found(node.Name)
		reason, wait = terminatingGC(pod, node, r.opts.TerminatingDelay, now)
	}
	if reason == gcNone {
		return ctrl.Result{RequeueAfter: wait}, nil
	}

	// 2. Force-delete.
	return ctrl.Result{}, r.forceDelete(ctx, pod, reason, now)
}

// forceDelete marks the pod Failed, removes the agent's finalizer and
// deletes it with grace period 0; other finalizers stay for their owners.
// Each write answers with the pod as stored, so the next one's optimistic
// lock holds.
func (r *PodGCReconciler) forceDelete(ctx context.Context, pod *corev1alpha1.Pod, reason gcReason, now time.Time) error {
	log := ctrl.LoggerFrom(ctx)
	log.Info("Force-deleting pod", "reason", reason)
	if status := failedStatus(pod.Status, reason, now); status != nil {
		orig := pod.DeepCopy()
		pod.Status = *status
		if err := r.client.Status().Patch(ctx, pod, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return client.IgnoreNotFound(fmt.Errorf("marking pod %s Failed: %w", klog.KObj(pod), err))
		}
	}
	if controllerutil.ContainsFinalizer(pod, AgentFinalizer) {
		orig := pod.DeepCopy()
		controllerutil.RemoveFinalizer(pod, AgentFinalizer)
		if err := r.client.Patch(ctx, pod, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return client.IgnoreNotFound(fmt.Errorf("removing the agent finalizer of pod %s: %w", klog.KObj(pod), err))
		}
	}
	if pod.DeletionTimestamp == nil {
		uid := pod.UID
		if err := r.client.Delete(ctx, pod, client.GracePeriodSeconds(0), client.Preconditions{UID: &uid}); err != nil {
			return client.IgnoreNotFound(fmt.Errorf("deleting pod %s: %w", klog.KObj(pod), err))
		}
	}
	var msg string
	switch reason {
	case gcOutOfService:
		msg = fmt.Sprintf("node %s is not ready and tainted %s", pod.Spec.NodeName, corev1.TaintNodeOutOfService)
	case gcTerminatingOnNotReady:
		msg = fmt.Sprintf("node %s is not ready and the pod's grace period ended %s ago; its containers there are removed when the node returns",
			pod.Spec.NodeName, r.opts.TerminatingDelay)
	case gcOrphaned:
		msg = fmt.Sprintf("node %s no longer exists", pod.Spec.NodeName)
	}
	r.recorder.Eventf(pod, nil, corev1.EventTypeWarning, "ForceDeleted", "ForceDelete", "Force-deleted: %s", msg)
	return nil
}

// missing records that the node was looked for and not found, and returns
// since when.
func (r *PodGCReconciler) missing(node string, now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	since, ok := r.missingSince[node]
	if !ok {
		since = now
		r.missingSince[node] = now
	}
	return since
}

func (r *PodGCReconciler) found(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.missingSince, node)
}

func (r *PodGCReconciler) nodeGone(ctx context.Context, name string) (bool, error) {
	err := r.reader.Get(ctx, types.NamespacedName{Name: name}, &corev1alpha1.Node{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("confirming node %s is gone: %w", name, err)
	}
	return false, nil
}

// SetupWithManager registers the controller: bound pods when they arrive
// or start terminating, and the pods of a Node whose readiness or taints
// change or that is deleted.
func (r *PodGCReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := podcontrol.IndexPodsByNode(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	nodePods := func(all bool) handler.MapFunc {
		return func(ctx context.Context, o client.Object) []reconcile.Request {
			pods := &corev1alpha1.PodList{}
			if err := mgr.GetClient().List(ctx, pods, client.MatchingFields{podcontrol.IndexPodNodeName: o.GetName()}); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "Listing the pods of a node failed", "node", o.GetName())
				return nil
			}
			var reqs []reconcile.Request
			for i := range pods.Items {
				if all || pods.Items[i].DeletionTimestamp != nil {
					reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pods.Items[i])})
				}
			}
			return reqs
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("pod-gc").
		For(&corev1alpha1.Pod{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(e event.CreateEvent) bool { return e.Object.(*corev1alpha1.Pod).Spec.NodeName != "" },
			UpdateFunc: func(e event.UpdateEvent) bool {
				old, cur := e.ObjectOld.(*corev1alpha1.Pod), e.ObjectNew.(*corev1alpha1.Pod)
				return cur.Spec.NodeName != "" && (old.Spec.NodeName != cur.Spec.NodeName ||
					(old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil))
			},
			DeleteFunc: func(event.DeleteEvent) bool { return false },
		})).
		Watches(&corev1alpha1.Node{}, handler.EnqueueRequestsFromMapFunc(nodePods(false)), builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false },
			UpdateFunc: func(e event.UpdateEvent) bool {
				old, cur := e.ObjectOld.(*corev1alpha1.Node), e.ObjectNew.(*corev1alpha1.Node)
				return readyStatus(old) != readyStatus(cur) ||
					hasTaintKey(old.Spec.Taints, corev1.TaintNodeOutOfService) != hasTaintKey(cur.Spec.Taints, corev1.TaintNodeOutOfService)
			},
			DeleteFunc: func(event.DeleteEvent) bool { return false },
		})).
		Watches(&corev1alpha1.Node{}, handler.EnqueueRequestsFromMapFunc(nodePods(true)), builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false },
			UpdateFunc: func(event.UpdateEvent) bool { return false },
			DeleteFunc: func(event.DeleteEvent) bool { return true },
		})).
		Complete(r)
}

func readyStatus(n *corev1alpha1.Node) string {
	if c := meta.FindStatusCondition(n.Status.Conditions, conditions.Ready); c != nil {
		return string(c.Status)
	}
	return ""
}
