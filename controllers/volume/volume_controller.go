package volume

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
)

// VolumeReconciler keeps PersistentVolumes' phases, releases volumes whose
// claims are gone, applies their reclaim policy and protects bound volumes.
type VolumeReconciler struct {
	client    client.Client
	apiReader client.Reader
	recorder  events.EventRecorder
	clock     clock.Clock
}

var _ reconcile.Reconciler = (*VolumeReconciler)(nil)

// NewVolumeReconciler returns the volume controller. apiReader confirms,
// uncached, that a claim is gone before its volume is released.
func NewVolumeReconciler(c client.Client, apiReader client.Reader, recorder events.EventRecorder, clk clock.Clock) *VolumeReconciler {
	return &VolumeReconciler{client: c, apiReader: apiReader, recorder: recorder, clock: clk}
}

// volumeState is what one sync decided about a volume.
type volumeState struct {
	phase           corev1.PersistentVolumePhase
	reason, message string
}

// Reconcile syncs one volume: protection, the claim it names, the phase.
func (r *VolumeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	vol := &corev1alpha1.PersistentVolume{}
	if err := r.client.Get(ctx, req.NamespacedName, vol); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("volume", klog.KObj(vol))
	ctx = ctrl.LoggerInto(ctx, log)

	if vol.DeletionTimestamp != nil {
		// pv-protection: a volume is kept while it is bound.
		if controllerutil.ContainsFinalizer(vol, FinalizerPVProtection) && vol.Status.Phase != corev1.VolumeBound {
			log.V(2).Info("Removing pv-protection finalizer")
			orig := vol.DeepCopy()
			controllerutil.RemoveFinalizer(vol, FinalizerPVProtection)
			if err := r.client.Patch(ctx, vol, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
				return ctrl.Result{}, client.IgnoreNotFound(err)
			}
			return ctrl.Result{}, nil
		}
	} else if !controllerutil.ContainsFinalizer(vol, FinalizerPVProtection) {
		orig := vol.DeepCopy()
		controllerutil.AddFinalizer(vol, FinalizerPVProtection)
		if err := r.client.Patch(ctx, vol, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer to volume %s: %w", vol.Name, err)
		}
	}

	st, err := r.sync(ctx, vol)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := vol.DeepCopy()
	applyVolumeStatus(vol, st.phase, st.reason, st.message, metav1.NewTime(r.clock.Now()))
	if before.Status.Phase != st.phase && st.reason != "" {
		typ := corev1.EventTypeNormal
		if st.phase == corev1.VolumeFailed {
			typ = corev1.EventTypeWarning
		}
		r.recorder.Eventf(vol, nil, typ, st.reason, "Reclaim", "%s", st.message)
	}
	if !equality.Semantic.DeepEqual(before.Status, vol.Status) {
		if err := r.client.Status().Patch(ctx, vol, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, fmt.Errorf("updating status of volume %s: %w", vol.Name, err)
		}
	}
	return ctrl.Result{}, nil
}

// sync follows upstream's syncVolume: an unclaimed or pre-bound volume is
// Available; a volume whose claim names it is Bound; a volume the
// controller bound to a claim that took another volume is unbound; a
// volume whose claim is gone is Released and its reclaim policy applies.
func (r *VolumeReconciler) sync(ctx context.Context, vol *corev1alpha1.PersistentVolume) (volumeState, error) {
	ref := vol.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		return volumeState{phase: corev1.VolumeAvailable}, nil
	}
	claim, err := r.getClaim(ctx, ref.Namespace, ref.Name)
	if err != nil {
		return volumeState{}, err
	}
	if claim == nil || claim.UID != ref.UID {
		return r.reclaim(vol), nil
	}
	switch claim.Spec.VolumeName {
	case vol.Name:
		return volumeState{phase: corev1.VolumeBound}, nil
	case "":
		if metav1.HasAnnotation(vol.ObjectMeta, AnnBoundByController) || vol.Status.Phase == corev1.VolumeBound {
			// The claim controller is half-way through binding; it finishes.
			return volumeState{phase: corev1.VolumeBound}, nil
		}
		return volumeState{phase: corev1.VolumeAvailable}, nil
	default:
		// The claim went to another volume: undo this side.
		ctrl.LoggerFrom(ctx).V(2).Info("Unbinding volume from a claim bound elsewhere", "claim", klog.KObj(claim))
		orig := vol.DeepCopy()
		if metav1.HasAnnotation(vol.ObjectMeta, AnnBoundByController) {
			vol.Spec.ClaimRef = nil
			delete(vol.Annotations, AnnBoundByController)
		} else {
			vol.Spec.ClaimRef.UID, vol.Spec.ClaimRef.ResourceVersion = "", ""
		}
		if err := r.client.Patch(ctx, vol, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return volumeState{}, fmt.Errorf("unbinding volume %s: %w", vol.Name, err)
		}
		return volumeState{phase: corev1.VolumeAvailable}, nil
	}
}

// reclaim is the state of a volume whose claim is gone: Released, kept as
// it is with Retain, left to its provisioner with Delete (the agent of its
// node removes the directory and the volume), Failed with Delete on a
// volume no provisioner of skiff created.
func (r *VolumeReconciler) reclaim(vol *corev1alpha1.PersistentVolume) volumeState {
	if vol.Status.Phase == corev1.VolumeFailed {
		return volumeState{phase: corev1.VolumeFailed, reason: vol.Status.Reason, message: vol.Status.Message}
	}
	switch vol.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimDelete:
		if p := vol.Annotations[AnnProvisionedBy]; p == storagev1alpha1.ProvisionerLocalPath {
			return volumeState{phase: corev1.VolumeReleased, reason: ReasonExternalDeleting,
				message: fmt.Sprintf("Waiting for the volume to be deleted by the %s provisioner of its node", p)}
		}
		return volumeState{phase: corev1.VolumeFailed, reason: ReasonVolumeFailedDelete,
			message: "skiff deletes only volumes that its skiff.dev/local-path provisioner created; remove the data and the volume by hand"}
	default:
		return volumeState{phase: corev1.VolumeReleased, reason: ReasonVolumeReleased,
			message: "The claim is gone and the reclaim policy is Retain: the data stays; clear spec.claimRef to make the volume Available again"}
	}
}

// getClaim reads a claim from the cache and confirms a miss with the API
// server: releasing a volume on a stale cache would lose a binding.
func (r *VolumeReconciler) getClaim(ctx context.Context, ns, name string) (*corev1alpha1.PersistentVolumeClaim, error) {
	claim := &corev1alpha1.PersistentVolumeClaim{}
	key := types.NamespacedName{Namespace: ns, Name: name}
	err := r.client.Get(ctx, key, claim)
	if apierrors.IsNotFound(err) {
		err = r.apiReader.Get(ctx, key, claim)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return claim, nil
}

// SetupWithManager registers the controller on volumes and on the claims
// their claimRefs name.
func (r *VolumeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("persistentvolume").
		For(&corev1alpha1.PersistentVolume{}).
		Watches(&corev1alpha1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			c := o.(*corev1alpha1.PersistentVolumeClaim)
			var out []reconcile.Request
			if c.Spec.VolumeName != "" {
				out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: c.Spec.VolumeName}})
			}
			// A deleted claim releases the volume that names it.
			vols := &corev1alpha1.PersistentVolumeList{}
			if err := r.client.List(ctx, vols); err == nil {
				for i := range vols.Items {
					if ref := vols.Items[i].Spec.ClaimRef; ref != nil && ref.Namespace == c.Namespace && ref.Name == c.Name && vols.Items[i].Name != c.Spec.VolumeName {
						out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: vols.Items[i].Name}})
					}
				}
			}
			return out
		})).
		Complete(r)
}
