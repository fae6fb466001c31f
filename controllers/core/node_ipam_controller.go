package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Defaults of node IPAM: the cluster CIDR and the size of each node's part.
const (
	DefaultClusterCIDR      = "10.244.0.0/16"
	DefaultNodeCIDRMaskSize = 24
)

// exhaustedRetry is how often a node waits for a CIDR when none is free.
const exhaustedRetry = 30 * time.Second

// NodeIPAMReconciler gives every Node a spec.podCIDR from the cluster CIDR
// and frees it when the Node is deleted. It rebuilds its allocations from
// the existing Nodes before the first assignment, so restarts are safe.
type NodeIPAMReconciler struct {
	client   client.Client
	recorder events.EventRecorder
	alloc    *CIDRAllocator

	rebuild    sync.Once
	rebuildErr error
}

var _ reconcile.Reconciler = (*NodeIPAMReconciler)(nil)

// NewNodeIPAMReconciler returns the controller for the allocator.
func NewNodeIPAMReconciler(c client.Client, recorder events.EventRecorder, alloc *CIDRAllocator) *NodeIPAMReconciler {
	return &NodeIPAMReconciler{client: c, recorder: recorder, alloc: alloc}
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes,verbs=get;list;watch;patch

// Reconcile assigns the node a CIDR, or frees the CIDR of a deleted node.
func (r *NodeIPAMReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.rebuild.Do(func() { r.rebuildErr = r.occupyExisting(ctx) })
	if r.rebuildErr != nil {
		err := r.rebuildErr
		r.rebuild, r.rebuildErr = sync.Once{}, nil
		return ctrl.Result{}, err
	}
	node := &corev1alpha1.Node{}
	if err := r.client.Get(ctx, req.NamespacedName, node); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.alloc.Release(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("node", klog.KObj(node))
	if node.Spec.PodCIDR != "" {
		if err := r.alloc.Occupy(node.Name, node.Spec.PodCIDR); err != nil {
			r.recorder.Eventf(node, nil, corev1.EventTypeWarning, "CIDRNotAvailable", "AllocateCIDR",
				"Node's podCIDR %s cannot be tracked: %v", node.Spec.PodCIDR, err)
		}
		return ctrl.Result{}, nil
	}
	cidr, err := r.alloc.Allocate(node.Name)
	if errors.Is(err, ErrCIDRsExhausted) {
		r.recorder.Eventf(node, nil, corev1.EventTypeWarning, "CIDRNotAvailable", "AllocateCIDR",
			"No /%d left in the cluster CIDR %s for node %s", r.alloc.maskSize, r.alloc.cluster, node.Name)
		return ctrl.Result{RequeueAfter: exhaustedRetry}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	log.V(2).Info("Assigning pod CIDR", "podCIDR", cidr)
	orig := node.DeepCopy()
	node.Spec.PodCIDR = cidr
	node.Spec.PodCIDRs = []string{cidr}
	if err := r.client.Patch(ctx, node, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		// The allocation stays with the node's name, so a retry gets the same CIDR.
		return ctrl.Result{}, fmt.Errorf("assigning pod CIDR %s to node %s: %w", cidr, node.Name, err)
	}
	return ctrl.Result{}, nil
}

// occupyExisting records the CIDRs that existing Nodes hold.
func (r *NodeIPAMReconciler) occupyExisting(ctx context.Context) error {
	nodes := &corev1alpha1.NodeList{}
	if err := r.client.List(ctx, nodes); err != nil {
		return fmt.Errorf("listing nodes to rebuild CIDR allocations: %w", err)
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.Spec.PodCIDR == "" {
			continue
		}
		if err := r.alloc.Occupy(n.Name, n.Spec.PodCIDR); err != nil {
			ctrl.LoggerFrom(ctx).Info("Node's pod CIDR is not tracked", "node", klog.KObj(n), "podCIDR", n.Spec.PodCIDR, "reason", err.Error())
		}
	}
	return nil
}

// SetupWithManager registers the controller on Nodes.
func (r *NodeIPAMReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("node-ipam").
		For(&corev1alpha1.Node{}, builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				return e.ObjectNew.(*corev1alpha1.Node).Spec.PodCIDR == ""
			},
		})).
		// A deleted node frees a CIDR that nodes still waiting for one can take.
		Watches(&corev1alpha1.Node{}, handler.Funcs{
			DeleteFunc: func(ctx context.Context, _ event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				nodes := &corev1alpha1.NodeList{}
				if err := r.client.List(ctx, nodes); err != nil {
					return
				}
				for i := range nodes.Items {
					if nodes.Items[i].Spec.PodCIDR == "" {
						q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&nodes.Items[i])})
					}
				}
			},
		}).
		Complete(r)
}
