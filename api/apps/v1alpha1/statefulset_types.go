package v1alpha1

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StatefulSetStatus mirrors the upstream apps/v1 StatefulSetStatus.
type StatefulSetStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// replicas is the number of pods the StatefulSet has created.
	// +optional
	Replicas int32 `json:"replicas"`

	// readyReplicas is the number of pods with a Ready condition.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// currentReplicas is the number of pods at currentRevision.
	// +optional
	CurrentReplicas int32 `json:"currentReplicas,omitempty"`

	// updatedReplicas is the number of pods at updateRevision.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`

	// availableReplicas is the number of pods ready for at least minReadySeconds.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas"`

	// currentRevision is the ControllerRevision of the pods in [0, currentReplicas).
	// +optional
	CurrentRevision string `json:"currentRevision,omitempty"`

	// updateRevision is the ControllerRevision of the pods in [replicas-updatedReplicas, replicas).
	// +optional
	UpdateRevision string `json:"updateRevision,omitempty"`

	// collisionCount counts hash collisions of ControllerRevision names.
	// +optional
	CollisionCount *int32 `json:"collisionCount,omitempty"`

	// selector is the label selector in string form, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`

	// ready shows ready out of desired replicas, as the READY column of `kubectl get statefulsets` does ("2/3").
	// +optional
	Ready string `json:"ready,omitempty"`

	// conditions hold Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StatefulSet runs pods with stable names, stable storage and ordered
// deployment: the skiff counterpart of apps/v1 StatefulSet. Revisions are
// stored as apps/v1 ControllerRevisions.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=ssts,categories=skiff
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Containers",type=string,JSONPath=`.spec.template.spec.containers[*].name`,priority=1
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.template.spec.containers[*].image`,priority=1
type StatefulSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream apps/v1 StatefulSetSpec.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas >= 0",message="must be greater than or equal to 0",fieldPath=".replicas"
	// +kubebuilder:validation:XValidation:rule="!has(self.minReadySeconds) || self.minReadySeconds >= 0",message="must be greater than or equal to 0",fieldPath=".minReadySeconds"
	// +kubebuilder:validation:XValidation:rule="!has(self.revisionHistoryLimit) || self.revisionHistoryLimit >= 0",message="must be greater than or equal to 0",fieldPath=".revisionHistoryLimit"
	// +kubebuilder:validation:XValidation:rule="!has(self.ordinals) || !has(self.ordinals.start) || self.ordinals.start >= 0",message="must be greater than or equal to 0",fieldPath=".ordinals.start"
	// +kubebuilder:validation:XValidation:rule="!has(self.updateStrategy) || !has(self.updateStrategy.rollingUpdate) || !has(self.updateStrategy.rollingUpdate.partition) || self.updateStrategy.rollingUpdate.partition >= 0",message="must be greater than or equal to 0",fieldPath=".updateStrategy.rollingUpdate.partition"
	// +kubebuilder:validation:XValidation:rule="!has(self.updateStrategy) || !has(self.updateStrategy.type) || self.updateStrategy.type != 'OnDelete' || !has(self.updateStrategy.rollingUpdate)",message="only allowed for updateStrategy 'RollingUpdate'",fieldPath=".updateStrategy.rollingUpdate"
	// +kubebuilder:validation:XValidation:rule="!has(self.updateStrategy) || !has(self.updateStrategy.rollingUpdate) || !has(self.updateStrategy.rollingUpdate.maxUnavailable) || (type(self.updateStrategy.rollingUpdate.maxUnavailable) == int ? int(self.updateStrategy.rollingUpdate.maxUnavailable) >= 1 : string(self.updateStrategy.rollingUpdate.maxUnavailable).matches('^([1-9]|[1-9][0-9]|100)%$'))",message="must be at least 1 or a percentage between 1% and 100%",fieldPath=".updateStrategy.rollingUpdate.maxUnavailable"
	// +kubebuilder:validation:XValidation:rule="(has(self.serviceName) ? self.serviceName : '') == (has(oldSelf.serviceName) ? oldSelf.serviceName : '')",message="serviceName is immutable",fieldPath=".serviceName"
	// +kubebuilder:validation:XValidation:rule="(has(self.podManagementPolicy) ? self.podManagementPolicy : 'OrderedReady') == (has(oldSelf.podManagementPolicy) ? oldSelf.podManagementPolicy : 'OrderedReady')",message="podManagementPolicy is immutable",fieldPath=".podManagementPolicy"
	// +kubebuilder:validation:XValidation:rule="has(self.volumeClaimTemplates) == has(oldSelf.volumeClaimTemplates) && (!has(self.volumeClaimTemplates) || self.volumeClaimTemplates == oldSelf.volumeClaimTemplates)",message="volumeClaimTemplates is immutable",fieldPath=".volumeClaimTemplates"
	Spec appsv1.StatefulSetSpec `json:"spec"`

	// status is the most recently observed state of the StatefulSet.
	// +optional
	Status StatefulSetStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// StatefulSetList is a list of StatefulSets.
type StatefulSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StatefulSet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StatefulSet{}, &StatefulSetList{})
}
