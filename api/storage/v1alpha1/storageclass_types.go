package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provisioners that skiff understands.
const (
	// ProvisionerLocalPath creates a directory for each volume under the root
	// directory of the agent of the node the volume is provisioned on.
	ProvisionerLocalPath = "skiff.dev/local-path"
	// ProvisionerNone marks a class of statically created volumes, as upstream.
	ProvisionerNone = "kubernetes.io/no-provisioner"
)

// StorageClassStatus is skiff's addition to the upstream object, which has
// no status.
type StorageClassStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions hold Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StorageClass describes a class of storage that claims can ask for and the
// provisioner that creates its volumes: the skiff counterpart of
// storage.k8s.io/v1 StorageClass, which it mirrors field by field (the
// fields are top-level, as upstream).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ssc,categories=skiff
// +kubebuilder:printcolumn:name="Provisioner",type=string,JSONPath=`.provisioner`
// +kubebuilder:printcolumn:name="ReclaimPolicy",type=string,JSONPath=`.reclaimPolicy`
// +kubebuilder:printcolumn:name="VolumeBindingMode",type=string,JSONPath=`.volumeBindingMode`
// +kubebuilder:printcolumn:name="AllowVolumeExpansion",type=boolean,JSONPath=`.allowVolumeExpansion`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="(has(self.reclaimPolicy) ? self.reclaimPolicy : 'Delete') == (has(oldSelf.reclaimPolicy) ? oldSelf.reclaimPolicy : 'Delete')",message="reclaimPolicy is immutable",fieldPath=".reclaimPolicy"
// +kubebuilder:validation:XValidation:rule="(has(self.volumeBindingMode) ? self.volumeBindingMode : 'Immediate') == (has(oldSelf.volumeBindingMode) ? oldSelf.volumeBindingMode : 'Immediate')",message="volumeBindingMode is immutable",fieldPath=".volumeBindingMode"
// +kubebuilder:validation:XValidation:rule="(has(self.parameters) ? self.parameters : {}) == (has(oldSelf.parameters) ? oldSelf.parameters : {})",message="parameters are immutable",fieldPath=".parameters"
type StorageClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// provisioner names the volume plugin that creates volumes of this class:
	// skiff.dev/local-path, or kubernetes.io/no-provisioner for statically created volumes. Immutable.
	// +required
	// +kubebuilder:validation:Enum=skiff.dev/local-path;kubernetes.io/no-provisioner
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="provisioner is immutable"
	Provisioner string `json:"provisioner"`

	// parameters for the provisioner. skiff.dev/local-path takes none. Immutable.
	// +optional
	// +kubebuilder:validation:MaxProperties=512
	Parameters map[string]string `json:"parameters,omitempty"`

	// reclaimPolicy is what happens to a provisioned volume when its claim is deleted:
	// Delete (the default) or Retain. Immutable.
	// +optional
	// +kubebuilder:validation:Enum=Delete;Retain
	ReclaimPolicy *corev1.PersistentVolumeReclaimPolicy `json:"reclaimPolicy,omitempty"`

	// mountOptions are not supported by skiff's local volumes and must be empty.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=0
	MountOptions []string `json:"mountOptions,omitempty"`

	// allowVolumeExpansion lets claims of this class ask for more storage.
	// +optional
	AllowVolumeExpansion *bool `json:"allowVolumeExpansion,omitempty"`

	// volumeBindingMode is Immediate (the default: bind and provision when the claim is created) or
	// WaitForFirstConsumer (wait until a pod using the claim is scheduled, then provision on its node). Immutable.
	// +optional
	// +kubebuilder:validation:Enum=Immediate;WaitForFirstConsumer
	VolumeBindingMode *storagev1.VolumeBindingMode `json:"volumeBindingMode,omitempty"`

	// allowedTopologies restricts the nodes volumes of this class may be provisioned on. Immutable.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	AllowedTopologies []corev1.TopologySelectorTerm `json:"allowedTopologies,omitempty"`

	// status is skiff's addition: the class's observed generation and conditions.
	// +optional
	Status StorageClassStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// StorageClassList is a list of StorageClasses.
type StorageClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StorageClass `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StorageClass{}, &StorageClassList{})
}
