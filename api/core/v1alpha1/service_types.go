package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceStatus mirrors the upstream core/v1 ServiceStatus.
type ServiceStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// loadBalancer is kept for compatibility with upstream; skiff does not provision load balancers.
	// +optional
	LoadBalancer corev1.LoadBalancerStatus `json:"loadBalancer,omitempty"`

	// conditions hold Ready: True once the service has its addresses allocated.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Service gives a set of pods one stable virtual address and DNS name: the
// skiff counterpart of core/v1 Service. skiff-controller-manager allocates
// its ClusterIP and NodePorts; the proxy of every skiff-agent programs them.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ssvc,categories=skiff
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Cluster-IP",type=string,JSONPath=`.spec.clusterIP`
// +kubebuilder:printcolumn:name="External-IP",type=string,JSONPath=`.spec.externalIPs`
// +kubebuilder:printcolumn:name="Port(s)",type=string,JSONPath=`.spec.ports[*].port`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.spec.selector`,priority=1
type Service struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream core/v1 ServiceSpec. Types ClusterIP and NodePort and headless
	// services (clusterIP: None) are supported.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.clusterIP) || oldSelf.clusterIP == '' || (has(self.clusterIP) && self.clusterIP == oldSelf.clusterIP)",message="clusterIP is immutable once set",fieldPath=".clusterIP"
	// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'NodePort' || !has(self.clusterIP) || self.clusterIP != 'None'",message="a NodePort service may not be headless (clusterIP: None)",fieldPath=".clusterIP"
	// +kubebuilder:validation:XValidation:rule="has(self.ports) || (has(self.clusterIP) && self.clusterIP == 'None')",message="ports are required, except for a headless service",fieldPath=".ports"
	Spec corev1.ServiceSpec `json:"spec,omitempty"`

	// status is the most recently observed state of the service.
	// +optional
	Status ServiceStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServiceList is a list of Services.
type ServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Service `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Service{}, &ServiceList{})
}
