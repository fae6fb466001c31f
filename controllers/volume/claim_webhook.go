package volume

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
)

// ClaimValidator refuses at admission the changes of a claim's storage
// request that CEL cannot judge, because they depend on the claim's
// StorageClass, with upstream's rules: only a bound claim may change its
// request; it may grow only when its class has allowVolumeExpansion; it may
// not shrink below the capacity it has.
type ClaimValidator struct {
	// Reader reads StorageClasses.
	Reader client.Reader
}

var _ admission.Validator[*corev1alpha1.PersistentVolumeClaim] = ClaimValidator{}

// SetupWebhookWithManager serves the validator from the manager's webhook server.
func (v ClaimValidator) SetupWebhookWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &corev1alpha1.PersistentVolumeClaim{}).WithValidator(v).Complete()
}

// The webhook ignores a manager that does not answer: creating and deleting
// claims never depend on it, and the claim controller still refuses a
// resize the class does not allow, with an event.
// +kubebuilder:webhook:path=/validate-core-skiff-dev-v1alpha1-persistentvolumeclaim,mutating=false,failurePolicy=ignore,sideEffects=None,groups=core.skiff.dev,resources=persistentvolumeclaims,verbs=update,versions=v1alpha1,name=vpersistentvolumeclaim-v1alpha1.core.skiff.dev,admissionReviewVersions=v1

// ValidateCreate allows every new claim: CEL in the CRD checks them.
func (ClaimValidator) ValidateCreate(context.Context, *corev1alpha1.PersistentVolumeClaim) (admission.Warnings, error) {
	return nil, nil
}

// ValidateUpdate checks a change of the storage request.
func (v ClaimValidator) ValidateUpdate(ctx context.Context, old, claim *corev1alpha1.PersistentVolumeClaim) (admission.Warnings, error) {
	was, want := requested(old), requested(claim)
	if was.Cmp(want) == 0 {
		return nil, nil
	}
	path := field.NewPath("spec", "resources", "requests", "storage")
	var errs field.ErrorList
	switch {
	case old.Spec.VolumeName == "" || old.Status.Phase != corev1.ClaimBound:
		errs = append(errs, field.Forbidden(path, "only a bound claim can be resized"))
	case want.Cmp(was) > 0:
		allowed := false
		if name := ClaimClass(claim); name != "" {
			sc := &storagev1alpha1.StorageClass{}
			if err := v.Reader.Get(ctx, types.NamespacedName{Name: name}, sc); err != nil && !apierrors.IsNotFound(err) {
				return nil, apierrors.NewInternalError(err)
			} else if err == nil {
				allowed = sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
			}
		}
		if !allowed {
			errs = append(errs, field.Forbidden(path, "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize (allowVolumeExpansion: true)"))
		}
	default:
		if have, ok := old.Status.Capacity[corev1.ResourceStorage]; ok && want.Cmp(have) < 0 {
			errs = append(errs, field.Forbidden(path, "field can not be less than status.capacity"))
		}
	}
	if len(errs) == 0 {
		return nil, nil
	}
	return nil, apierrors.NewInvalid(corev1alpha1.GroupVersion.WithKind("PersistentVolumeClaim").GroupKind(), claim.Name, errs)
}

// ValidateDelete allows every deletion.
func (ClaimValidator) ValidateDelete(context.Context, *corev1alpha1.PersistentVolumeClaim) (admission.Warnings, error) {
	return nil, nil
}
