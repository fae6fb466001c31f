package policy

import (
	"context"
	"fmt"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
)

// Event reasons of the disruption controller, upstream's.
const (
	// ReasonNoPods: the budget selects no pods.
	ReasonNoPods = "NoPods"
	// ReasonUnmanagedPods: some selected pods have no controller, so a
	// percentage or maxUnavailable cannot count them.
	ReasonUnmanagedPods = "UnmanagedPods"
	// ReasonCalculateExpectedPodCountFailed: the controllers' scale could not be read.
	ReasonCalculateExpectedPodCountFailed = "CalculateExpectedPodCountFailed"
	// ReasonNotDeleted: an evicted pod was not deleted within DeletionTimeout.
	ReasonNotDeleted = "NotDeleted"
)

// DisruptionReconciler computes the status of PodDisruptionBudgets over
// skiff pods.
type DisruptionReconciler struct {
	client   client.Client
	recorder events.EventRecorder
	clock    clock.PassiveClock
}

var _ reconcile.Reconciler = (*DisruptionReconciler)(nil)

// NewDisruptionReconciler returns the disruption controller; clk nil means
// the real clock.
func NewDisruptionReconciler(c client.Client, recorder events.EventRecorder, clk clock.PassiveClock) *DisruptionReconciler {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &DisruptionReconciler{client: c, recorder: recorder, clock: clk}
}

// +kubebuilder:rbac:groups=policy.skiff.dev,resources=poddisruptionbudgets,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy.skiff.dev,resources=poddisruptionbudgets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=replicasets;deployments;statefulsets,verbs=get;list;watch
// +kubebuilder:rbac:groups=*,resources=*/scale,verbs=get

// Reconcile computes one budget's status from the pods it selects.
func (r *DisruptionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pdb := &policyv1alpha1.PodDisruptionBudget{}
	if err := r.client.Get(ctx, req.NamespacedName, pdb); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues("podDisruptionBudget", klog.KObj(pdb)))
	before := pdb.DeepCopy()
	now := r.clock.Now()

	recheck, err := r.sync(ctx, pdb, now)
	if err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{}, err
		}
		FailSafe(pdb, err)
	}
	if !equality.Semantic.DeepEqual(before.Status, pdb.Status) {
		// A full update under the resourceVersion read, as upstream's
		// UpdateStatus: an eviction may have spent the budget since the
		// cache saw it, and a conflict brings the reconcile back with the
		// eviction's entry in disruptedPods.
		if err := r.client.Status().Update(ctx, pdb); err != nil {
			return ctrl.Result{}, fmt.Errorf("updating status of PodDisruptionBudget %s: %w", klog.KObj(pdb), err)
		}
	}
	if recheck != nil {
		return ctrl.Result{RequeueAfter: max(recheck.Sub(now), time.Second)}, nil
	}
	return ctrl.Result{}, nil
}

// sync computes the status into pdb, with events on the way, as upstream's
// trySync.
func (r *DisruptionReconciler) sync(ctx context.Context, pdb *policyv1alpha1.PodDisruptionBudget, now time.Time) (*time.Time, error) {
	pods, err := r.selectedPods(ctx, pdb)
	if err != nil {
		r.recorder.Eventf(pdb, nil, corev1.EventTypeWarning, ReasonNoPods, "Sync", "Failed to get pods: %v", err)
		return nil, err
	}
	if len(pods) == 0 {
		r.recorder.Eventf(pdb, nil, corev1.EventTypeNormal, ReasonNoPods, "Sync", "No matching pods found")
	}
	var scale int32
	if NeedsScale(pdb.Spec) {
		var unmanaged []string
		scale, unmanaged, err = r.expectedScale(ctx, pods)
		if err != nil {
			r.recorder.Eventf(pdb, nil, corev1.EventTypeWarning, ReasonCalculateExpectedPodCountFailed, "Sync",
				"Failed to calculate the number of expected pods: %v", err)
			return nil, err
		}
		if len(unmanaged) > 0 {
			r.recorder.Eventf(pdb, nil, corev1.EventTypeWarning, ReasonUnmanagedPods, "Sync",
				"Pods selected by this PodDisruptionBudget (%s) have no controller, so the status cannot count them correctly. "+
					"To account for these pods set .spec.minAvailable to an integer", strings.Join(unmanaged, ", "))
		}
	}
	recheck, expired, err := ComputeStatus(pdb, pods, scale, now)
	if err != nil {
		return nil, err
	}
	for _, name := range expired {
		ctrl.LoggerFrom(ctx).V(1).Info("Evicted pod was not deleted in time; counting it again", "pod", name)
		pod := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pdb.Namespace, Name: name}}
		r.recorder.Eventf(pod, pdb, corev1.EventTypeWarning, ReasonNotDeleted, "Sync",
			"Pod was expected by PodDisruptionBudget %s/%s to be deleted but it was not", pdb.Namespace, pdb.Name)
	}
	return recheck, nil
}

// selectedPods lists the skiff pods of the budget's namespace that its
// selector matches: a null selector matches none, an empty one all.
func (r *DisruptionReconciler) selectedPods(ctx context.Context, pdb *policyv1alpha1.PodDisruptionBudget) ([]*corev1alpha1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("spec.selector: %w", err)
	}
	if pdb.Spec.Selector == nil {
		return nil, nil
	}
	var list corev1alpha1.PodList
	if err := r.client.List(ctx, &list, client.InNamespace(pdb.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	pods := make([]*corev1alpha1.Pod, 0, len(list.Items))
	for i := range list.Items {
		pods = append(pods, &list.Items[i])
	}
	return pods, nil
}

// expectedScale sums the replicas of the controllers of pods, each
// controller once, as upstream's getExpectedScale: a ReplicaSet counts its
// Deployment's replicas when a Deployment controls it, a StatefulSet its
// own, any other controller the replicas of its scale subresource. Pods
// without a controller are returned by name; a pod whose controller is not
// found is an error.
func (r *DisruptionReconciler) expectedScale(ctx context.Context, pods []*corev1alpha1.Pod) (int32, []string, error) {
	looked := map[types.UID]bool{}  // controller references already resolved
	scales := map[types.UID]int32{} // what scales (a Deployment for its ReplicaSets) -> replicas
	var unmanaged []string
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		if ref == nil {
			unmanaged = append(unmanaged, pod.Name)
			continue
		}
		if looked[ref.UID] {
			continue
		}
		uid, n, err := r.controllerScale(ctx, pod.Namespace, ref)
		if err != nil {
			return 0, nil, err
		}
		if uid == "" {
			return 0, nil, fmt.Errorf("found no controllers for pod %q", pod.Name)
		}
		looked[ref.UID] = true
		scales[uid] = n
	}
	var total int32
	for _, n := range scales {
		total += n
	}
	return total, unmanaged, nil
}

// controllerScale returns the UID and replicas of what a pod's controller
// reference scales with, or an empty UID when it does not exist (any more).
func (r *DisruptionReconciler) controllerScale(ctx context.Context, ns string, ref *metav1.OwnerReference) (types.UID, int32, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return "", 0, err
	}
	key := client.ObjectKey{Namespace: ns, Name: ref.Name}
	switch {
	case gv.Group == appsv1alpha1.GroupVersion.Group && ref.Kind == "ReplicaSet":
		rs := &appsv1alpha1.ReplicaSet{}
		if err := r.client.Get(ctx, key, rs); err != nil || rs.UID != ref.UID {
			return "", 0, client.IgnoreNotFound(err)
		}
		owner := metav1.GetControllerOf(rs)
		if owner == nil || owner.Kind != "Deployment" {
			return rs.UID, ptr.Deref(rs.Spec.Replicas, 1), nil
		}
		d := &appsv1alpha1.Deployment{}
		if err := r.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: owner.Name}, d); err != nil || d.UID != owner.UID {
			return "", 0, client.IgnoreNotFound(err)
		}
		return d.UID, ptr.Deref(d.Spec.Replicas, 1), nil
	case gv.Group == appsv1alpha1.GroupVersion.Group && ref.Kind == "StatefulSet":
		ss := &appsv1alpha1.StatefulSet{}
		if err := r.client.Get(ctx, key, ss); err != nil || ss.UID != ref.UID {
			return "", 0, client.IgnoreNotFound(err)
		}
		return ss.UID, ptr.Deref(ss.Spec.Replicas, 1), nil
	}
	// Anything else that scales: its scale subresource, read uncached.
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gv.WithKind(ref.Kind))
	obj.SetNamespace(ns)
	obj.SetName(ref.Name)
	// The unstructured client reads subresources into unstructured objects only.
	scale := &unstructured.Unstructured{}
	scale.SetGroupVersionKind(autoscalingv1.SchemeGroupVersion.WithKind("Scale"))
	if err := r.client.SubResource("scale").Get(ctx, obj, scale); err != nil {
		if apierrors.IsNotFound(err) {
			// No such object, or an object without a scale subresource
			// (a DaemonSet, a Job): only the second is an error to report.
			if err := r.client.Get(ctx, key, obj); err != nil || obj.GetUID() != ref.UID {
				return "", 0, client.IgnoreNotFound(err)
			}
			resource := gv.WithKind(ref.Kind).GroupKind().String()
			if m, err := r.client.RESTMapper().RESTMapping(gv.WithKind(ref.Kind).GroupKind(), gv.Version); err == nil {
				resource = m.Resource.GroupResource().String()
			}
			return "", 0, fmt.Errorf("%s does not implement the scale subresource", resource)
		}
		return "", 0, fmt.Errorf("reading the scale of %s %s/%s: %w", ref.Kind, ns, ref.Name, err)
	}
	if scale.GetUID() != ref.UID {
		return "", 0, nil
	}
	replicas, _, err := unstructured.NestedInt64(scale.Object, "spec", "replicas")
	if err != nil {
		return "", 0, fmt.Errorf("the scale of %s %s/%s: %w", ref.Kind, ns, ref.Name, err)
	}
	return scale.GetUID(), int32(replicas), nil
}

// budgetsForPod maps a pod to the budgets of its namespace that select it.
func (r *DisruptionReconciler) budgetsForPod(ctx context.Context, o client.Object) []reconcile.Request {
	var list policyv1alpha1.PodDisruptionBudgetList
	if err := r.client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing PodDisruptionBudgets for a pod", "pod", klog.KObj(o))
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		pdb := &list.Items[i]
		if Selects(pdb, o.GetLabels()) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(pdb)})
		}
	}
	return out
}

// Selects tells whether the budget's selector matches a pod's labels: a
// null or invalid selector matches nothing, an empty one everything.
func Selects(pdb *policyv1alpha1.PodDisruptionBudget, podLabels map[string]string) bool {
	if pdb.Spec.Selector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	return err == nil && sel.Matches(labels.Set(podLabels))
}

// SetupWithManager registers the controller; pod changes bring the
// budgets that select the pod.
func (r *DisruptionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("disruption").
		For(&policyv1alpha1.PodDisruptionBudget{}).
		Watches(&corev1alpha1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.budgetsForPod)).
		Complete(r)
}
