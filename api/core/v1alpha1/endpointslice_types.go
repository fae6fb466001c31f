package v1alpha1

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EndpointSliceStatus is skiff's addition to the upstream object, which has
// no status: it tells whether the slice reflects the latest generation.
type EndpointSliceStatus struct {
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

// EndpointSlice lists a subset of the endpoints of a Service: the skiff
// counterpart of discovery.k8s.io/v1 EndpointSlice, which it mirrors field by
// field (addressType, endpoints and ports are top-level, as upstream). The
// label kubernetes.io/service-name names the owning Service.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sep,categories=skiff
// +kubebuilder:printcolumn:name="AddressType",type=string,JSONPath=`.addressType`
// +kubebuilder:printcolumn:name="Ports",type=string,JSONPath=`.ports[*].port`
// +kubebuilder:printcolumn:name="Endpoints",type=string,JSONPath=`.endpoints[*].addresses[0]`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EndpointSlice struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// addressType is the type of address the slice carries: IPv4, IPv6 or FQDN. Immutable.
	// +required
	// +kubebuilder:validation:Enum=IPv4;IPv6;FQDN
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="addressType is immutable"
	AddressType discoveryv1.AddressType `json:"addressType"`

	// endpoints is the list of endpoints in this slice, at most 1000.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	Endpoints []discoveryv1.Endpoint `json:"endpoints"`

	// ports are the network ports of every endpoint in this slice, at most 100.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Ports []discoveryv1.EndpointPort `json:"ports"`

	// status is skiff's addition: the slice's observed generation and conditions.
	// +optional
	Status EndpointSliceStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// EndpointSliceList is a list of EndpointSlices.
type EndpointSliceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EndpointSlice `json:"items"`
}

func init() {
	SchemeBuilder.Register(&EndpointSlice{}, &EndpointSliceList{})
}
