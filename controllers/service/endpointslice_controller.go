package service

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// EndpointSliceReconciler keeps the EndpointSlices of each Service with a
// selector equal to the pods the selector matches.
type EndpointSliceReconciler struct {
	client client.Client
}

var _ reconcile.Reconciler = (*EndpointSliceReconciler)(nil)

// NewEndpointSliceReconciler returns the reconciler.
func NewEndpointSliceReconciler(c client.Client) *EndpointSliceReconciler {
	return &EndpointSliceReconciler{client: c}
}

// SetupWithManager registers the reconciler; pod changes wake the Services
// whose selector matches the pod.
func (r *EndpointSliceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&corev1alpha1.Service{}).
		Owns(&corev1alpha1.EndpointSlice{}).
		Watches(&corev1alpha1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.servicesOfPod)).
		Named("endpointslice").
		Complete(r)
}

func (r *EndpointSliceReconciler) servicesOfPod(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &corev1alpha1.ServiceList{}
	if err := r.client.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, svc := range list.Items {
		if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(obj.GetLabels())) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&svc)})
		}
	}
	return reqs
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=endpointslices,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core.skiff.dev,resources=endpointslices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch

// Reconcile writes the Service's desired slices and deletes the others it manages.
func (r *EndpointSliceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	svc := &corev1alpha1.Service{}
	if err := r.client.Get(ctx, req.NamespacedName, svc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err) // owned slices go with it
	}
	if len(svc.Spec.Selector) == 0 || !svc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // selector-less Services have user-managed slices
	}
	log := ctrl.LoggerFrom(ctx).WithValues("service", klog.KObj(svc))
	ctx = ctrl.LoggerInto(ctx, log)

	pods := &corev1alpha1.PodList{}
	if err := r.client.List(ctx, pods, client.InNamespace(svc.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return ctrl.Result{}, err
	}
	matched := make([]*corev1alpha1.Pod, 0, len(pods.Items))
	for i := range pods.Items {
		matched = append(matched, &pods.Items[i])
	}
	existing := &corev1alpha1.EndpointSliceList{}
	if err := r.client.List(ctx, existing, client.InNamespace(svc.Namespace),
		client.MatchingLabels{LabelServiceName: svc.Name, LabelSliceManagedBy: EndpointSliceManager}); err != nil {
		return ctrl.Result{}, err
	}
	have := map[string]*corev1alpha1.EndpointSlice{}
	for i := range existing.Items {
		have[existing.Items[i].Name] = &existing.Items[i]
	}

	for _, d := range desiredSlices(svc, matched) {
		want := sliceObject(svc, d)
		if err := r.write(ctx, svc, want, have[d.name]); err != nil {
			return ctrl.Result{}, err
		}
		delete(have, d.name)
	}
	for _, stale := range have {
		log.V(2).Info("Deleting endpoint slice", "endpointslice", klog.KObj(stale))
		if err := r.client.Delete(ctx, stale); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("deleting endpoint slice %s: %w", klog.KObj(stale), err)
		}
	}
	return ctrl.Result{}, nil
}

func (r *EndpointSliceReconciler) write(ctx context.Context, svc *corev1alpha1.Service, want, have *corev1alpha1.EndpointSlice) error {
	if have == nil {
		if err := controllerutil.SetControllerReference(svc, want, r.client.Scheme()); err != nil {
			return err
		}
		ctrl.LoggerFrom(ctx).V(2).Info("Creating endpoint slice", "endpointslice", klog.KObj(want))
		if err := r.client.Create(ctx, want); err != nil {
			return fmt.Errorf("creating endpoint slice %s: %w", klog.KObj(want), err)
		}
		have = want
	} else if !equality.Semantic.DeepEqual(have.Endpoints, want.Endpoints) || !equality.Semantic.DeepEqual(have.Ports, want.Ports) {
		have.Endpoints, have.Ports = want.Endpoints, want.Ports
		if err := r.client.Update(ctx, have); err != nil {
			return fmt.Errorf("updating endpoint slice %s: %w", klog.KObj(have), err)
		}
	}
	if meta.IsStatusConditionTrue(have.Status.Conditions, conditions.Ready) && have.Status.ObservedGeneration == have.Generation {
		return nil
	}
	before := have.DeepCopy()
	have.Status.ObservedGeneration = have.Generation
	meta.SetStatusCondition(&have.Status.Conditions, metav1.Condition{
		Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: conditions.ReasonReconciled,
		Message: "Lists the endpoints of service " + svc.Name, ObservedGeneration: have.Generation,
	})
	return client.IgnoreNotFound(r.client.Status().Patch(ctx, have, client.MergeFrom(before)))
}
