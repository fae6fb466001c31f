package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PersistentVolumeStatus mirrors the upstream core/v1 PersistentVolumeStatus.
type PersistentVolumeStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is Pending, Available, Bound, Released or Failed, as upstream.
	// +optional
	Phase corev1.PersistentVolumePhase `json:"phase,omitempty"`

	// message is a human-readable explanation of the phase.
	// +optional
	Message string `json:"message,omitempty"`

	// reason is a brief CamelCase reason for the phase.
	// +optional
	Reason string `json:"reason,omitempty"`

	// lastPhaseTransitionTime is when the phase last changed.
	// +optional
	LastPhaseTransitionTime *metav1.Time `json:"lastPhaseTransitionTime,omitempty"`

	// conditions hold Ready: True while the volume is Available or Bound.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PersistentVolume is a piece of storage on a node that outlives the pods
// using it: the skiff counterpart of core/v1 PersistentVolume. skiff
// supports hostPath and local volumes; the skiff.dev/local-path provisioner
// creates them on demand.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=spv,categories=skiff
// +kubebuilder:printcolumn:name="Capacity",type=string,JSONPath=`.spec.capacity.storage`
// +kubebuilder:printcolumn:name="Access Modes",type=string,JSONPath=`.spec.accessModes`
// +kubebuilder:printcolumn:name="Reclaim Policy",type=string,JSONPath=`.spec.persistentVolumeReclaimPolicy`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Claim",type=string,JSONPath=`.spec.claimRef.name`
// +kubebuilder:printcolumn:name="StorageClass",type=string,JSONPath=`.spec.storageClassName`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="VolumeMode",type=string,JSONPath=`.spec.volumeMode`,priority=1
type PersistentVolume struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream core/v1 PersistentVolumeSpec; the volume source must be hostPath or local.
	// +required
	// +kubebuilder:validation:XValidation:rule="has(self.hostPath) || has(self.local)",message="a volume source is required: skiff supports hostPath and local"
	// +kubebuilder:validation:XValidation:rule="has(self.capacity) && 'storage' in self.capacity",message="capacity.storage is required",fieldPath=".capacity"
	// +kubebuilder:validation:XValidation:rule="has(self.accessModes) && size(self.accessModes) > 0",message="at least one access mode is required",fieldPath=".accessModes"
	// +kubebuilder:validation:XValidation:rule="!has(self.local) || has(self.nodeAffinity)",message="a local volume requires nodeAffinity",fieldPath=".nodeAffinity"
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.claimRef) || !has(oldSelf.claimRef.uid) || (has(self.claimRef) && has(self.claimRef.uid) && self.claimRef.uid == oldSelf.claimRef.uid) || !has(self.claimRef)",message="claimRef may only be cleared, not moved to another claim, once bound",fieldPath=".claimRef"
	// +kubebuilder:validation:XValidation:rule="(has(self.hostPath) == has(oldSelf.hostPath)) && (!has(self.hostPath) || self.hostPath == oldSelf.hostPath) && (has(self.local) == has(oldSelf.local)) && (!has(self.local) || self.local == oldSelf.local)",message="the volume source is immutable"
	Spec corev1.PersistentVolumeSpec `json:"spec"`

	// status is the most recently observed state of the volume.
	// +optional
	Status PersistentVolumeStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// PersistentVolumeList is a list of PersistentVolumes.
type PersistentVolumeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PersistentVolume `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PersistentVolume{}, &PersistentVolumeList{})
}
