package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeStatus mirrors the upstream core/v1 NodeStatus. Conditions are
// metav1.Conditions of the upstream types Ready, MemoryPressure,
// DiskPressure, PIDPressure and NetworkUnavailable.
type NodeStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// capacity is the total of each resource on the node.
	// +optional
	Capacity corev1.ResourceList `json:"capacity,omitempty"`

	// allocatable is the part of capacity that pods may request.
	// +optional
	Allocatable corev1.ResourceList `json:"allocatable,omitempty"`

	// conditions are Ready, MemoryPressure, DiskPressure, PIDPressure and NetworkUnavailable, as upstream.
	// The agent renews them; the node lifecycle controller sets Ready to Unknown when it stops.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// addresses are the node's reachable addresses (InternalIP, Hostname, ...).
	// +optional
	// +listType=atomic
	Addresses []corev1.NodeAddress `json:"addresses,omitempty"`

	// daemonEndpoints are the ports the node's agent serves on.
	// +optional
	DaemonEndpoints corev1.NodeDaemonEndpoints `json:"daemonEndpoints,omitempty"`

	// nodeInfo describes the node's machine, operating system, kernel and container runtime.
	// +optional
	NodeInfo corev1.NodeSystemInfo `json:"nodeInfo,omitempty"`

	// images are the container images present on the node.
	// +optional
	// +listType=atomic
	Images []corev1.ContainerImage `json:"images,omitempty"`

	// volumesInUse are the volumes mounted on the node.
	// +optional
	// +listType=atomic
	VolumesInUse []corev1.UniqueVolumeName `json:"volumesInUse,omitempty"`

	// agentCertificate is the PEM-encoded serving certificate of the node's agent API, so
	// clients can verify the agent they talk to.
	// +optional
	AgentCertificate string `json:"agentCertificate,omitempty"`

	// displayStatus is the STATUS column of `kubectl get nodes`: Ready, NotReady or Unknown,
	// followed by ",SchedulingDisabled" on a cordoned node.
	// +optional
	DisplayStatus string `json:"displayStatus,omitempty"`
}

// Node is a machine that runs pods: the skiff counterpart of core/v1 Node.
// Each skiff-agent registers its Node, reports its capacity and conditions,
// and renews a Lease in the skiff-node-lease namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=snode,categories=skiff
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.displayStatus`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.nodeInfo.kubeletVersion`
// +kubebuilder:printcolumn:name="Internal-IP",type=string,JSONPath=`.status.addresses[?(@.type=="InternalIP")].address`,priority=1
// +kubebuilder:printcolumn:name="External-IP",type=string,JSONPath=`.status.addresses[?(@.type=="ExternalIP")].address`,priority=1
// +kubebuilder:printcolumn:name="OS-Image",type=string,JSONPath=`.status.nodeInfo.osImage`,priority=1
// +kubebuilder:printcolumn:name="Kernel-Version",type=string,JSONPath=`.status.nodeInfo.kernelVersion`,priority=1
// +kubebuilder:printcolumn:name="Container-Runtime",type=string,JSONPath=`.status.nodeInfo.containerRuntimeVersion`,priority=1
type Node struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream core/v1 NodeSpec: podCIDR(s), taints, unschedulable, providerID.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.podCIDR) || oldSelf.podCIDR == '' || (has(self.podCIDR) && self.podCIDR == oldSelf.podCIDR)",message="podCIDR is immutable once set",fieldPath=".podCIDR"
	Spec corev1.NodeSpec `json:"spec,omitempty"`

	// status is the most recently observed state of the node, written by its agent.
	// +optional
	Status NodeStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NodeList is a list of Nodes.
type NodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Node `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Node{}, &NodeList{})
}
