package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PersistentVolumeClaimStatus mirrors the upstream core/v1
// PersistentVolumeClaimStatus.
type PersistentVolumeClaimStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is Pending, Bound or Lost, as upstream.
	// +optional
	Phase corev1.PersistentVolumeClaimPhase `json:"phase,omitempty"`

	// accessModes are the access modes of the bound volume.
	// +optional
	// +listType=atomic
	AccessModes []corev1.PersistentVolumeAccessMode `json:"accessModes,omitempty"`

	// capacity is the capacity of the bound volume.
	// +optional
	Capacity corev1.ResourceList `json:"capacity,omitempty"`

	// allocatedResources are the resources allocated to the claim, which may exceed its request during expansion.
	// +optional
	AllocatedResources corev1.ResourceList `json:"allocatedResources,omitempty"`

	// conditions hold Ready (True once bound) and the upstream Resizing conditions.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PersistentVolumeClaim is a user's request for storage: the skiff
// counterpart of core/v1 PersistentVolumeClaim. skiff-controller-manager
// binds it to a matching PersistentVolume or provisions one through its
// StorageClass.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=spvc,categories=skiff
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Volume",type=string,JSONPath=`.spec.volumeName`
// +kubebuilder:printcolumn:name="Capacity",type=string,JSONPath=`.status.capacity.storage`
// +kubebuilder:printcolumn:name="Access Modes",type=string,JSONPath=`.status.accessModes`
// +kubebuilder:printcolumn:name="StorageClass",type=string,JSONPath=`.spec.storageClassName`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="VolumeMode",type=string,JSONPath=`.spec.volumeMode`,priority=1
type PersistentVolumeClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream core/v1 PersistentVolumeClaimSpec.
	// +required
	// +kubebuilder:validation:XValidation:rule="has(self.accessModes) && size(self.accessModes) > 0",message="at least one access mode is required",fieldPath=".accessModes"
	// +kubebuilder:validation:XValidation:rule="has(self.resources) && has(self.resources.requests) && 'storage' in self.resources.requests",message="resources.requests.storage is required",fieldPath=".resources.requests"
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.volumeName) || oldSelf.volumeName == '' || (has(self.volumeName) && self.volumeName == oldSelf.volumeName)",message="volumeName is immutable once set",fieldPath=".volumeName"
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.storageClassName) || (has(self.storageClassName) && self.storageClassName == oldSelf.storageClassName)",message="storageClassName is immutable once set",fieldPath=".storageClassName"
	// +kubebuilder:validation:XValidation:rule="self.accessModes == oldSelf.accessModes",message="accessModes is immutable",fieldPath=".accessModes"
	// +kubebuilder:validation:XValidation:rule="(has(self.selector) == has(oldSelf.selector)) && (!has(self.selector) || self.selector == oldSelf.selector)",message="selector is immutable",fieldPath=".selector"
	Spec corev1.PersistentVolumeClaimSpec `json:"spec"`

	// status is the most recently observed state of the claim.
	// +optional
	Status PersistentVolumeClaimStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// PersistentVolumeClaimList is a list of PersistentVolumeClaims.
type PersistentVolumeClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PersistentVolumeClaim `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PersistentVolumeClaim{}, &PersistentVolumeClaimList{})
}
