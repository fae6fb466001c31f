package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// JobStatus mirrors the upstream batch/v1 JobStatus. Conditions are
// metav1.Conditions of the upstream types Complete, Failed, Suspended,
// FailureTarget and SuccessCriteriaMet, plus the summarising Ready.
type JobStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions hold Complete, Failed, Suspended, FailureTarget and SuccessCriteriaMet, as upstream, and Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// startTime is when the Job controller started the Job (again, after a resume).
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the Job completed successfully.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// active is the number of pending and running pods that are not terminating.
	// +optional
	Active int32 `json:"active,omitempty"`

	// succeeded is the number of pods that reached phase Succeeded.
	// +optional
	Succeeded int32 `json:"succeeded,omitempty"`

	// failed is the number of pods that reached phase Failed.
	// +optional
	Failed int32 `json:"failed,omitempty"`

	// terminating is the number of pods being deleted.
	// +optional
	Terminating *int32 `json:"terminating,omitempty"`

	// ready is the number of active pods with a Ready condition.
	// +optional
	Ready *int32 `json:"ready,omitempty"`

	// completedIndexes lists the completed indexes of an Indexed Job in interval form ("1,3-5").
	// +optional
	CompletedIndexes string `json:"completedIndexes,omitempty"`

	// failedIndexes lists the failed indexes of an Indexed Job with backoffLimitPerIndex, in interval form.
	// +optional
	FailedIndexes *string `json:"failedIndexes,omitempty"`

	// uncountedTerminatedPods holds the UIDs of finished pods whose outcome is not yet in the counters;
	// their tracking finalizer is removed only after it is.
	// +optional
	UncountedTerminatedPods *batchv1.UncountedTerminatedPods `json:"uncountedTerminatedPods,omitempty"`

	// displayStatus is the STATUS column of `kubectl get jobs`: Running, Complete, Failed, Suspended,
	// FailureTarget or SuccessCriteriaMet.
	// +optional
	DisplayStatus string `json:"displayStatus,omitempty"`

	// completions shows succeeded out of desired completions, as the COMPLETIONS column of
	// `kubectl get jobs` does ("1/3").
	// +optional
	Completions string `json:"completions,omitempty"`
}

// Job runs pods until a given number of them complete successfully: the
// skiff counterpart of batch/v1 Job. Each pod carries a tracking finalizer
// so no outcome is lost or counted twice.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sjob,categories=skiff
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.displayStatus`
// +kubebuilder:printcolumn:name="Completions",type=string,JSONPath=`.status.completions`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Containers",type=string,JSONPath=`.spec.template.spec.containers[*].name`,priority=1
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.template.spec.containers[*].image`,priority=1
// +kubebuilder:validation:XValidation:rule="self.spec.template == oldSelf.spec.template || (has(oldSelf.spec.suspend) && oldSelf.spec.suspend && (!has(oldSelf.status) || !has(oldSelf.status.startTime)))",message="spec.template is immutable, except while the Job is suspended and has never started"
type Job struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream batch/v1 JobSpec.
	// +required
	Spec batchv1.JobSpec `json:"spec"`

	// status is the most recently observed state of the Job.
	// +optional
	Status JobStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// JobList is a list of Jobs.
type JobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Job `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Job{}, &JobList{})
}
