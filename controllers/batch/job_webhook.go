package batch

import (
	"context"
	"math"

	batchv1 "k8s.io/api/batch/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
)

// JobDefaulter fills in a Job's spec at admission as upstream's
// SetDefaults_Job does. A CRD default cannot: backoffLimit defaults to 6,
// but to MaxInt32 when backoffLimitPerIndex is set, and a structural
// default is applied before any webhook sees the object, so the webhook
// could no longer tell a user's explicit 6 from the default one. The CRD
// therefore declares no default for backoffLimit; this webhook does, and
// leaves every value the user gave alone.
type JobDefaulter struct{}

var _ admission.Defaulter[*batchv1alpha1.Job] = JobDefaulter{}

// SetupWebhookWithManager serves the defaulter from the manager's webhook server.
func (d JobDefaulter) SetupWebhookWithManager(mgr ctrl.Manager) error {
	return ctrl.NewWebhookManagedBy(mgr, &batchv1alpha1.Job{}).WithDefaulter(d).Complete()
}

// +kubebuilder:webhook:path=/mutate-batch-skiff-dev-v1alpha1-job,mutating=true,failurePolicy=fail,sideEffects=None,groups=batch.skiff.dev,resources=jobs,verbs=create;update,versions=v1alpha1,name=mjob-v1alpha1.batch.skiff.dev,admissionReviewVersions=v1,reinvocationPolicy=Never

// Default sets the upstream defaults of the fields the user left out.
func (JobDefaulter) Default(_ context.Context, job *batchv1alpha1.Job) error {
	defaultJob(job)
	return nil
}

// defaultJob applies upstream's Job defaults (pkg/apis/batch/v1
// SetDefaults_Job) to the fields that are unset, and only to those.
func defaultJob(job *batchv1alpha1.Job) {
	spec := &job.Spec
	// A Job with neither completions nor parallelism runs one pod to one
	// success; without completions it would be a work queue.
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = ptrTo[int32](1)
	}
	if spec.Parallelism == nil {
		spec.Parallelism = ptrTo[int32](1)
	}
	if spec.BackoffLimit == nil {
		spec.BackoffLimit = ptrTo(defaultBackoffLimit(job))
	}
	if len(job.Labels) == 0 && spec.Template.Labels != nil {
		job.Labels = map[string]string{}
		for k, v := range spec.Template.Labels {
			job.Labels[k] = v
		}
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = ptrTo(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = ptrTo(false)
	}
	if spec.PodReplacementPolicy == nil {
		policy := batchv1.TerminatingOrFailed
		if spec.PodFailurePolicy != nil {
			// Only a pod that has really failed can be matched against the policy.
			policy = batchv1.Failed
		}
		spec.PodReplacementPolicy = &policy
	}
	if spec.ManualSelector == nil {
		spec.ManualSelector = ptrTo(false)
	}
	if p := spec.PodFailurePolicy; p != nil {
		for i := range p.Rules {
			for j := range p.Rules[i].OnPodConditions {
				if p.Rules[i].OnPodConditions[j].Status == "" {
					p.Rules[i].OnPodConditions[j].Status = "True"
				}
			}
		}
	}
}

// defaultBackoffLimit is the backoffLimit of a Job that does not set one:
// 6, or no global limit at all when failures are limited per index.
func defaultBackoffLimit(job *batchv1alpha1.Job) int32 {
	if job.Spec.BackoffLimitPerIndex != nil {
		return math.MaxInt32
	}
	return 6
}

// backoffLimit is the limit of failures that fails the Job: the spec's, or
// its default when the Job was stored without the defaulting webhook.
func backoffLimit(job *batchv1alpha1.Job) int32 {
	if job.Spec.BackoffLimit != nil {
		return *job.Spec.BackoffLimit
	}
	return defaultBackoffLimit(job)
}
