package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CronJobStatus mirrors the upstream batch/v1 CronJobStatus.
type CronJobStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// active references the Jobs of this CronJob that are running.
	// +optional
	// +listType=atomic
	Active []corev1.ObjectReference `json:"active,omitempty"`

	// lastScheduleTime is when a Job was last scheduled.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`

	// lastSuccessfulTime is when a Job last completed successfully.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`

	// conditions hold Ready: True while the schedule is valid and being followed.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// CronJob creates Jobs on a repeating schedule: the skiff counterpart of
// batch/v1 CronJob.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=scj,categories=skiff
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Timezone",type=string,JSONPath=`.spec.timeZone`
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active.length()`
// +kubebuilder:printcolumn:name="Last Schedule",type=date,JSONPath=`.status.lastScheduleTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Containers",type=string,JSONPath=`.spec.jobTemplate.spec.template.spec.containers[*].name`,priority=1
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.jobTemplate.spec.template.spec.containers[*].image`,priority=1
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 52",message="metadata.name must be no more than 52 characters, so that the names of its Jobs stay valid"
type CronJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream batch/v1 CronJobSpec.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.startingDeadlineSeconds) || self.startingDeadlineSeconds >= 0",message="must be greater than or equal to 0",fieldPath=".startingDeadlineSeconds"
	// +kubebuilder:validation:XValidation:rule="!has(self.successfulJobsHistoryLimit) || self.successfulJobsHistoryLimit >= 0",message="must be greater than or equal to 0",fieldPath=".successfulJobsHistoryLimit"
	// +kubebuilder:validation:XValidation:rule="!has(self.failedJobsHistoryLimit) || self.failedJobsHistoryLimit >= 0",message="must be greater than or equal to 0",fieldPath=".failedJobsHistoryLimit"
	// +kubebuilder:validation:XValidation:rule="!self.schedule.contains('TZ=')",message="cannot use TZ or CRON_TZ in schedule, use timeZone instead",fieldPath=".schedule"
	Spec batchv1.CronJobSpec `json:"spec"`

	// status is the most recently observed state of the CronJob.
	// +optional
	Status CronJobStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// CronJobList is a list of CronJobs.
type CronJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CronJob `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CronJob{}, &CronJobList{})
}
