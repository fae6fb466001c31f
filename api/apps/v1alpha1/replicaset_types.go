package v1alpha1

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReplicaSetStatus mirrors the upstream apps/v1 ReplicaSetStatus.
type ReplicaSetStatus struct {
	// replicas is the number of pods the ReplicaSet owns that are not terminating.
	// +optional
	Replicas int32 `json:"replicas"`

	// fullyLabeledReplicas is the number of pods whose labels match the template's labels.
	// +optional
	FullyLabeledReplicas int32 `json:"fullyLabeledReplicas,omitempty"`

	// readyReplicas is the number of pods with a Ready condition.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// availableReplicas is the number of pods ready for at least minReadySeconds.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`

	// terminatingReplicas is the number of pods being deleted.
	// +optional
	TerminatingReplicas *int32 `json:"terminatingReplicas,omitempty"`

	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// selector is the label selector in string form, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`

	// conditions hold Ready and, as upstream, ReplicaFailure when pods cannot be created or deleted.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ReplicaSet keeps a stable number of identical pods running: the skiff
// counterpart of apps/v1 ReplicaSet. Deployments manage ReplicaSets; users
// rarely create them directly.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=srs,categories=skiff
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Current",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Containers",type=string,JSONPath=`.spec.template.spec.containers[*].name`,priority=1
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.template.spec.containers[*].image`,priority=1
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.status.selector`,priority=1
type ReplicaSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream apps/v1 ReplicaSetSpec.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas >= 0",message="must be greater than or equal to 0",fieldPath=".replicas"
	// +kubebuilder:validation:XValidation:rule="!has(self.minReadySeconds) || self.minReadySeconds >= 0",message="must be greater than or equal to 0",fieldPath=".minReadySeconds"
	Spec appsv1.ReplicaSetSpec `json:"spec"`

	// status is the most recently observed state of the ReplicaSet.
	// +optional
	Status ReplicaSetStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ReplicaSetList is a list of ReplicaSets.
type ReplicaSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ReplicaSet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ReplicaSet{}, &ReplicaSetList{})
}
