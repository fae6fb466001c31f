package v1alpha1

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeploymentStatus mirrors the upstream apps/v1 DeploymentStatus.
type DeploymentStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// replicas is the number of non-terminating pods of all the Deployment's ReplicaSets.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// updatedReplicas is the number of non-terminating pods that run the current template.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`

	// readyReplicas is the number of pods with a Ready condition.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// availableReplicas is the number of pods ready for at least minReadySeconds.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`

	// unavailableReplicas is the number of pods still needed for the Deployment to be fully available.
	// +optional
	UnavailableReplicas int32 `json:"unavailableReplicas,omitempty"`

	// terminatingReplicas is the number of pods being deleted.
	// +optional
	TerminatingReplicas *int32 `json:"terminatingReplicas,omitempty"`

	// collisionCount counts hash collisions of the pod template; it salts the pod-template-hash.
	// +optional
	CollisionCount *int32 `json:"collisionCount,omitempty"`

	// selector is the label selector in string form, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`

	// ready shows ready out of desired replicas, as the READY column of `kubectl get deployments` does ("2/3").
	// +optional
	Ready string `json:"ready,omitempty"`

	// conditions hold Ready and, as upstream, Available, Progressing and ReplicaFailure.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Deployment declares the pods of a stateless application and rolls out
// changes to them: the skiff counterpart of apps/v1 Deployment. It manages
// ReplicaSets named by pod-template hash.
//
// Rolling back: set the annotation deploy.skiff.dev/rollback-to to a revision
// number (0 for the previous revision); the controller restores that
// revision's template and removes the annotation. Restarting: set the
// template annotation kubectl.kubernetes.io/restartedAt, as `kubectl rollout
// restart` does.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=sdeploy,categories=skiff
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Up-to-date",type=integer,JSONPath=`.status.updatedReplicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.availableReplicas`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Containers",type=string,JSONPath=`.spec.template.spec.containers[*].name`,priority=1
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.template.spec.containers[*].image`,priority=1
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.status.selector`,priority=1
type Deployment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream apps/v1 DeploymentSpec.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas >= 0",message="must be greater than or equal to 0",fieldPath=".replicas"
	// +kubebuilder:validation:XValidation:rule="!has(self.minReadySeconds) || self.minReadySeconds >= 0",message="must be greater than or equal to 0",fieldPath=".minReadySeconds"
	// +kubebuilder:validation:XValidation:rule="!has(self.revisionHistoryLimit) || self.revisionHistoryLimit >= 0",message="must be greater than or equal to 0",fieldPath=".revisionHistoryLimit"
	// +kubebuilder:validation:XValidation:rule="!has(self.progressDeadlineSeconds) || self.progressDeadlineSeconds > (has(self.minReadySeconds) ? self.minReadySeconds : 0)",message="must be greater than minReadySeconds",fieldPath=".progressDeadlineSeconds"
	// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || !has(self.strategy.type) || self.strategy.type != 'Recreate' || !has(self.strategy.rollingUpdate)",message="may not be specified when strategy type is 'Recreate'",fieldPath=".strategy.rollingUpdate"
	// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || !has(self.strategy.rollingUpdate) || !has(self.strategy.rollingUpdate.maxSurge) || !has(self.strategy.rollingUpdate.maxUnavailable) || !(string(self.strategy.rollingUpdate.maxSurge) in ['0', '0%'] && string(self.strategy.rollingUpdate.maxUnavailable) in ['0', '0%'])",message="may not be 0 when maxSurge is 0",fieldPath=".strategy.rollingUpdate.maxUnavailable"
	// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || !has(self.strategy.rollingUpdate) || !has(self.strategy.rollingUpdate.maxSurge) || (type(self.strategy.rollingUpdate.maxSurge) == int ? int(self.strategy.rollingUpdate.maxSurge) >= 0 : string(self.strategy.rollingUpdate.maxSurge).matches('^[0-9]+%$'))",message="must be a non-negative integer or a percentage ('25%')",fieldPath=".strategy.rollingUpdate.maxSurge"
	// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || !has(self.strategy.rollingUpdate) || !has(self.strategy.rollingUpdate.maxUnavailable) || (type(self.strategy.rollingUpdate.maxUnavailable) == int ? int(self.strategy.rollingUpdate.maxUnavailable) >= 0 : string(self.strategy.rollingUpdate.maxUnavailable).matches('^([0-9]|[1-9][0-9]|100)%$'))",message="must be a non-negative integer or a percentage not above 100%",fieldPath=".strategy.rollingUpdate.maxUnavailable"
	Spec appsv1.DeploymentSpec `json:"spec"`

	// status is the most recently observed state of the Deployment.
	// +optional
	Status DeploymentStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// DeploymentList is a list of Deployments.
type DeploymentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Deployment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Deployment{}, &DeploymentList{})
}
