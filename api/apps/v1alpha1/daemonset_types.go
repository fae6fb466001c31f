package v1alpha1

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DaemonSetStatus mirrors the upstream apps/v1 DaemonSetStatus.
type DaemonSetStatus struct {
	// currentNumberScheduled is the number of nodes that run at least one daemon pod and should.
	// +optional
	CurrentNumberScheduled int32 `json:"currentNumberScheduled"`

	// numberMisscheduled is the number of nodes that run a daemon pod but should not.
	// +optional
	NumberMisscheduled int32 `json:"numberMisscheduled"`

	// desiredNumberScheduled is the number of nodes that should run the daemon pod.
	// +optional
	DesiredNumberScheduled int32 `json:"desiredNumberScheduled"`

	// numberReady is the number of nodes whose daemon pod is ready.
	// +optional
	NumberReady int32 `json:"numberReady"`

	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// updatedNumberScheduled is the number of nodes that run the updated daemon pod.
	// +optional
	UpdatedNumberScheduled int32 `json:"updatedNumberScheduled,omitempty"`

	// numberAvailable is the number of nodes whose daemon pod has been ready for minReadySeconds.
	// +optional
	NumberAvailable int32 `json:"numberAvailable,omitempty"`

	// numberUnavailable is the number of nodes that should run an available daemon pod and do not.
	// +optional
	NumberUnavailable int32 `json:"numberUnavailable,omitempty"`

	// collisionCount counts hash collisions of ControllerRevision names.
	// +optional
	CollisionCount *int32 `json:"collisionCount,omitempty"`

	// conditions hold Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DaemonSet runs one copy of a pod on every eligible node: the skiff
// counterpart of apps/v1 DaemonSet.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sds,categories=skiff
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredNumberScheduled`
// +kubebuilder:printcolumn:name="Current",type=integer,JSONPath=`.status.currentNumberScheduled`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.numberReady`
// +kubebuilder:printcolumn:name="Up-to-date",type=integer,JSONPath=`.status.updatedNumberScheduled`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.numberAvailable`
// +kubebuilder:printcolumn:name="Node Selector",type=string,JSONPath=`.spec.template.spec.nodeSelector`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Containers",type=string,JSONPath=`.spec.template.spec.containers[*].name`,priority=1
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.template.spec.containers[*].image`,priority=1
type DaemonSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream apps/v1 DaemonSetSpec.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.minReadySeconds) || self.minReadySeconds >= 0",message="must be greater than or equal to 0",fieldPath=".minReadySeconds"
	// +kubebuilder:validation:XValidation:rule="!has(self.revisionHistoryLimit) || self.revisionHistoryLimit >= 0",message="must be greater than or equal to 0",fieldPath=".revisionHistoryLimit"
	// +kubebuilder:validation:XValidation:rule="!has(self.updateStrategy) || !has(self.updateStrategy.type) || self.updateStrategy.type != 'OnDelete' || !has(self.updateStrategy.rollingUpdate)",message="only allowed for updateStrategy 'RollingUpdate'",fieldPath=".updateStrategy.rollingUpdate"
	Spec appsv1.DaemonSetSpec `json:"spec"`

	// status is the most recently observed state of the DaemonSet.
	// +optional
	Status DaemonSetStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// DaemonSetList is a list of DaemonSets.
type DaemonSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DaemonSet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&DaemonSet{}, &DaemonSetList{})
}
