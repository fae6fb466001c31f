package service

import (
	"context"
	"errors"
	"fmt"
	"slices"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/kstatus"
)

// AllocationFinalizer keeps a Service until its claims are released.
const AllocationFinalizer = "core.skiff.dev/service-allocations"

// Reasons of the Service Ready condition.
const (
	ReasonAllocated        = "Allocated"
	ReasonAllocationFailed = "AllocationFailed"
)

// ServiceReconciler gives each Service its ClusterIP and NodePorts, as
// upstream's API server does at admission, and releases them when the
// Service no longer needs them.
type ServiceReconciler struct {
	client   client.Client
	alloc    *Allocator
	recorder events.EventRecorder
}

var _ reconcile.Reconciler = (*ServiceReconciler)(nil)

// NewServiceReconciler returns a reconciler that allocates through alloc.
func NewServiceReconciler(c client.Client, alloc *Allocator, recorder events.EventRecorder) *ServiceReconciler {
	return &ServiceReconciler{client: c, alloc: alloc, recorder: recorder}
}

// SetupWithManager registers the reconciler.
func (r *ServiceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&corev1alpha1.Service{}).
		Named("service").
		Complete(r)
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=services,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=services/status;services/finalizers,verbs=get;update;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ipaddresses,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;create

// Reconcile claims what the Service needs, writes it into the spec as the
// API server would, and releases what it no longer needs.
func (r *ServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	svc := &corev1alpha1.Service{}
	if err := r.client.Get(ctx, req.NamespacedName, svc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("service", klog.KObj(svc))
	ctx = ctrl.LoggerInto(ctx, log)

	if !svc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.releaseAll(ctx, svc)
	}
	if controllerutil.AddFinalizer(svc, AllocationFinalizer) {
		if err := r.client.Update(ctx, svc); err != nil {
			return ctrl.Result{}, err
		}
	}

	before := svc.DeepCopy()
	allocErr := r.allocate(ctx, svc)
	if !equalitySpec(before, svc) {
		log.V(2).Info("Writing allocated addresses", "clusterIP", svc.Spec.ClusterIP)
		if err := r.client.Update(ctx, svc); err != nil {
			return ctrl.Result{}, fmt.Errorf("writing addresses of service %s: %w", klog.KObj(svc), err)
		}
	}
	if allocErr == nil {
		allocErr = r.releaseUnused(ctx, svc)
	}
	statusBefore := svc.DeepCopy()
	svc.Status.ObservedGeneration = svc.Generation
	ready := readyCondition(svc, allocErr)
	kstatus.SetReady(&svc.Status.Conditions, ready, kstatus.FromReady(ready, ReasonAllocationFailed))
	if err := r.client.Status().Patch(ctx, svc, client.MergeFrom(statusBefore)); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var taken ErrAllocated
	var outside ErrOutOfRange
	if errors.As(allocErr, &taken) || errors.As(allocErr, &outside) {
		r.recorder.Eventf(svc, nil, corev1.EventTypeWarning, ReasonAllocationFailed, "Allocate", "%v", allocErr)
		return ctrl.Result{}, reconcile.TerminalError(allocErr)
	}
	return ctrl.Result{}, allocErr
}

// allocate claims the ClusterIP and NodePorts the spec asks for, or free
// ones where it leaves them empty, and writes them into the spec.
func (r *ServiceReconciler) allocate(ctx context.Context, svc *corev1alpha1.Service) error {
	spec := &svc.Spec
	if spec.ClusterIP != corev1.ClusterIPNone {
		ip, err := r.alloc.ClaimClusterIP(ctx, svc, spec.ClusterIP)
		if err != nil {
			return err
		}
		spec.ClusterIP, spec.ClusterIPs = ip, []string{ip}
		spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		if spec.IPFamilyPolicy == nil {
			spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
		}
	}
	if spec.Type != corev1.ServiceTypeNodePort {
		for i := range spec.Ports {
			spec.Ports[i].NodePort = 0
		}
		return nil
	}
	for i := range spec.Ports {
		port, err := r.alloc.ClaimNodePort(ctx, svc, spec.Ports[i].NodePort)
		if err != nil {
			return err
		}
		spec.Ports[i].NodePort = port
	}
	return nil
}

// releaseUnused deletes the NodePort claims of the Service that its spec no
// longer names (a port removed, the type changed).
func (r *ServiceReconciler) releaseUnused(ctx context.Context, svc *corev1alpha1.Service) error {
	held, err := r.heldNodePorts(ctx, svc)
	if err != nil {
		return err
	}
	for _, port := range held {
		if slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.NodePort == port }) {
			continue
		}
		if err := r.alloc.ReleaseNodePort(ctx, svc, port); err != nil {
			return err
		}
	}
	return nil
}

func (r *ServiceReconciler) heldNodePorts(ctx context.Context, svc *corev1alpha1.Service) ([]int32, error) {
	list := &coordinationv1.LeaseList{}
	if err := r.client.List(ctx, list, client.InNamespace(SystemNamespace), client.MatchingLabels{labelNodePort: "true"}); err != nil {
		return nil, err
	}
	var ports []int32
	for _, l := range list.Items {
		var port int32
		if ptr.Deref(l.Spec.HolderIdentity, "") == ownerRef(svc) {
			if _, err := fmt.Sscanf(l.Name, "nodeport-%d", &port); err == nil {
				ports = append(ports, port)
			}
		}
	}
	return ports, nil
}

// releaseAll releases every claim of a Service being deleted, then lets it go.
func (r *ServiceReconciler) releaseAll(ctx context.Context, svc *corev1alpha1.Service) error {
	if !controllerutil.ContainsFinalizer(svc, AllocationFinalizer) {
		return nil
	}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		if err := r.alloc.ReleaseClusterIP(ctx, svc, ip); err != nil {
			return err
		}
	}
	held, err := r.heldNodePorts(ctx, svc)
	if err != nil {
		return err
	}
	for _, port := range held {
		if err := r.alloc.ReleaseNodePort(ctx, svc, port); err != nil {
			return err
		}
	}
	controllerutil.RemoveFinalizer(svc, AllocationFinalizer)
	return client.IgnoreNotFound(r.client.Update(ctx, svc))
}

// readyCondition summarises a Service: Ready once its addresses are claimed.
func readyCondition(svc *corev1alpha1.Service, err error) metav1.Condition {
	c := metav1.Condition{Type: conditions.Ready, ObservedGeneration: svc.Generation}
	if err != nil {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonAllocationFailed, err.Error()
		return c
	}
	c.Status, c.Reason = metav1.ConditionTrue, ReasonAllocated
	switch {
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		c.Message = "Headless service: no ClusterIP"
	default:
		c.Message = "ClusterIP " + svc.Spec.ClusterIP + " allocated"
	}
	return c
}

func equalitySpec(a, b *corev1alpha1.Service) bool {
	if a.Spec.ClusterIP != b.Spec.ClusterIP || !slices.Equal(a.Spec.ClusterIPs, b.Spec.ClusterIPs) ||
		!slices.Equal(a.Spec.IPFamilies, b.Spec.IPFamilies) || ptr.Deref(a.Spec.IPFamilyPolicy, "") != ptr.Deref(b.Spec.IPFamilyPolicy, "") {
		return false
	}
	for i := range a.Spec.Ports {
		if a.Spec.Ports[i].NodePort != b.Spec.Ports[i].NodePort {
			return false
		}
	}
	return true
}
