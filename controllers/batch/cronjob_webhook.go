package batch

import (
	"context"

	"github.com/robfig/cron/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
)

// CronJobValidator refuses at admission what CEL in the CRD cannot check: a
// schedule that does not parse and a time zone that does not exist.
type CronJobValidator struct{}

var _ admission.Validator[*batchv1alpha1.CronJob] = CronJobValidator{}

// SetupWebhookWithManager serves the validator from the manager's webhook server.
func (v CronJobValidator) SetupWebhookWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &batchv1alpha1.CronJob{}).WithValidator(v).Complete()
}

// +kubebuilder:webhook:path=/validate-batch-skiff-dev-v1alpha1-cronjob,mutating=false,failurePolicy=fail,sideEffects=None,groups=batch.skiff.dev,resources=cronjobs,verbs=create;update,versions=v1alpha1,name=vcronjob-v1alpha1.batch.skiff.dev,admissionReviewVersions=v1

// ValidateCreate checks the schedule and time zone of a new CronJob.
func (CronJobValidator) ValidateCreate(_ context.Context, cj *batchv1alpha1.CronJob) (admission.Warnings, error) {
	return nil, validateCronJob(cj)
}

// ValidateUpdate checks them again when the spec changes.
func (CronJobValidator) ValidateUpdate(_ context.Context, _, cj *batchv1alpha1.CronJob) (admission.Warnings, error) {
	return nil, validateCronJob(cj)
}

// ValidateDelete allows every deletion.
func (CronJobValidator) ValidateDelete(context.Context, *batchv1alpha1.CronJob) (admission.Warnings, error) {
	return nil, nil
}

func validateCronJob(cj *batchv1alpha1.CronJob) error {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := timeZoneLocation(*tz); err != nil || *tz == "Local" {
			errs = append(errs, field.Invalid(spec.Child("timeZone"), *tz, "unknown time zone: use an IANA name such as Europe/Berlin or Etc/UTC"))
		}
	}
	if _, err := cron.ParseStandard(cj.Spec.Schedule); err != nil {
		errs = append(errs, field.Invalid(spec.Child("schedule"), cj.Spec.Schedule, err.Error()))
	}
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(batchv1alpha1.GroupVersion.WithKind("CronJob").GroupKind(), cj.Name, errs)
}
