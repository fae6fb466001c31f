package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodStatus mirrors the upstream core/v1 PodStatus. Conditions are
// metav1.Conditions of the upstream types PodScheduled, Initialized,
// ContainersReady and Ready; ready, displayStatus and restartCount are
// skiff's summaries for the columns of `kubectl get`.
type PodStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is the pod's place in its lifecycle: Pending, Running, Succeeded, Failed or Unknown.
	// +optional
	Phase corev1.PodPhase `json:"phase,omitempty"`

	// conditions are PodScheduled, Initialized, ContainersReady and Ready, as upstream.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// message is a human-readable explanation of the pod's state.
	// +optional
	Message string `json:"message,omitempty"`

	// reason is a brief CamelCase reason for the pod's state, for example Evicted.
	// +optional
	Reason string `json:"reason,omitempty"`

	// nominatedNodeName is the node on which the scheduler has preempted pods to make room for this one.
	// +optional
	NominatedNodeName string `json:"nominatedNodeName,omitempty"`

	// hostIP is the primary address of the node the pod runs on.
	// +optional
	HostIP string `json:"hostIP,omitempty"`

	// hostIPs are the addresses of the node the pod runs on.
	// +optional
	// +listType=atomic
	HostIPs []corev1.HostIP `json:"hostIPs,omitempty"`

	// podIP is the address allocated to the pod.
	// +optional
	PodIP string `json:"podIP,omitempty"`

	// podIPs are the addresses allocated to the pod, at most one per IP family.
	// +optional
	// +listType=map
	// +listMapKey=ip
	PodIPs []corev1.PodIP `json:"podIPs,omitempty"`

	// startTime is when the agent acknowledged the pod, before any image was pulled.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// initContainerStatuses has one entry per init container in the spec.
	// +optional
	// +listType=atomic
	InitContainerStatuses []corev1.ContainerStatus `json:"initContainerStatuses,omitempty"`

	// containerStatuses has one entry per container in the spec.
	// +optional
	// +listType=atomic
	ContainerStatuses []corev1.ContainerStatus `json:"containerStatuses,omitempty"`

	// qosClass is the quality-of-service class derived from the containers' resources:
	// Guaranteed, Burstable or BestEffort.
	// +optional
	QOSClass corev1.PodQOSClass `json:"qosClass,omitempty"`

	// ready shows ready containers out of all containers, as the READY column of `kubectl get pods` does ("1/2").
	// +optional
	Ready string `json:"ready,omitempty"`

	// displayStatus is the STATUS column of `kubectl get pods`: the phase, or the reason a
	// container waits or ended (CrashLoopBackOff, ImagePullBackOff, Completed, Terminating, ...).
	// +optional
	DisplayStatus string `json:"displayStatus,omitempty"`

	// restartCount is the sum of the restart counts of the pod's containers.
	// +optional
	RestartCount int32 `json:"restartCount,omitempty"`
}

// Pod is a group of containers that run together on one node, sharing a
// network namespace and volumes; the skiff counterpart of core/v1 Pod.
// The skiff scheduler assigns spec.nodeName and the skiff-agent of that node
// runs the containers.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=spod,categories=skiff
// +kubebuilder:selectablefield:JSONPath=`.spec.nodeName`
// +kubebuilder:selectablefield:JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.displayStatus`
// +kubebuilder:printcolumn:name="Restarts",type=integer,JSONPath=`.status.restartCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="IP",type=string,JSONPath=`.status.podIP`,priority=1
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`,priority=1
// +kubebuilder:printcolumn:name="Nominated Node",type=string,JSONPath=`.status.nominatedNodeName`,priority=1
type Pod struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream core/v1 PodSpec. Once the pod exists, nodeName
	// may only be set once, containers and init containers may not be
	// added or removed, and restartPolicy may not change: the rules are
	// hack/crdpatch's ("pod object spec"), on the fields themselves.
	// +required
	Spec corev1.PodSpec `json:"spec"`

	// status is the most recently observed state of the pod, written by the scheduler and the agent.
	// +optional
	Status PodStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// PodList is a list of Pods.
type PodList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pod `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Pod{}, &PodList{})
}
