package v1alpha1

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DisruptionAllowed is upstream's condition type: True when
// status.disruptionsAllowed is above zero. Its reasons are upstream's
// policyv1.SufficientPodsReason, InsufficientPodsReason and SyncFailedReason.
const DisruptionAllowed = policyv1.DisruptionAllowedCondition

// PodDisruptionBudgetStatus mirrors the upstream policy/v1
// PodDisruptionBudgetStatus, written by the disruption controller of
// skiff-controller-manager and, for disruptionsAllowed and disruptedPods, by
// every eviction.
type PodDisruptionBudgetStatus struct {
	// observedGeneration is the metadata.generation that this status was computed from.
	// Evictions are refused while it is behind.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// disruptedPods maps the name of each pod an eviction has been granted for, and
	// which has not been seen deleted yet, to the time of the eviction. The controller
	// drops entries after two minutes, as upstream.
	// +optional
	// +kubebuilder:validation:MaxProperties=2001
	DisruptedPods map[string]metav1.Time `json:"disruptedPods,omitempty"`

	// disruptionsAllowed is the number of pod disruptions currently allowed.
	DisruptionsAllowed int32 `json:"disruptionsAllowed"`

	// currentHealthy is the number of selected pods that are ready and neither
	// terminating nor already evicted.
	CurrentHealthy int32 `json:"currentHealthy"`

	// desiredHealthy is the minimum number of healthy pods the budget asks for.
	DesiredHealthy int32 `json:"desiredHealthy"`

	// expectedPods is the number of pods the budget counts: the selected pods for an
	// integer minAvailable, otherwise the replicas of their controllers.
	ExpectedPods int32 `json:"expectedPods"`

	// conditions hold upstream's DisruptionAllowed and the summarising Ready
	// (True when currentHealthy reaches desiredHealthy).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PodDisruptionBudget limits how many of a set of skiff pods voluntary
// disruptions (an eviction by `kubectl skiff drain`) may take down at once:
// the skiff counterpart of policy/v1 PodDisruptionBudget, whose spec it
// embeds unchanged.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=spdb,categories=skiff
// +kubebuilder:printcolumn:name="Min Available",type=string,JSONPath=`.spec.minAvailable`
// +kubebuilder:printcolumn:name="Max Unavailable",type=string,JSONPath=`.spec.maxUnavailable`
// +kubebuilder:printcolumn:name="Allowed Disruptions",type=integer,JSONPath=`.status.disruptionsAllowed`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Healthy",type=integer,JSONPath=`.status.currentHealthy`,priority=1
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredHealthy`,priority=1
// +kubebuilder:printcolumn:name="Expected",type=integer,JSONPath=`.status.expectedPods`,priority=1
type PodDisruptionBudget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the upstream policy/v1 PodDisruptionBudgetSpec: a selector over skiff
	// pods of the namespace (null selects none, {} selects all) and one of
	// minAvailable or maxUnavailable, each an integer or a percentage.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!(has(self.minAvailable) && has(self.maxUnavailable))",message="minAvailable and maxUnavailable cannot be both set"
	// +kubebuilder:validation:XValidation:rule="!has(self.minAvailable) || (type(self.minAvailable) == int ? int(self.minAvailable) >= 0 : string(self.minAvailable).matches('^0*(100|[0-9]{1,2})%$'))",message="must be a non-negative integer or a percentage from 0% to 100%",fieldPath=".minAvailable"
	// +kubebuilder:validation:XValidation:rule="!has(self.maxUnavailable) || (type(self.maxUnavailable) == int ? int(self.maxUnavailable) >= 0 : string(self.maxUnavailable).matches('^0*(100|[0-9]{1,2})%$'))",message="must be a non-negative integer or a percentage from 0% to 100%",fieldPath=".maxUnavailable"
	// +kubebuilder:validation:XValidation:rule="!has(self.unhealthyPodEvictionPolicy) || self.unhealthyPodEvictionPolicy in ['IfHealthyBudget', 'AlwaysAllow']",message="supported values: IfHealthyBudget, AlwaysAllow",fieldPath=".unhealthyPodEvictionPolicy"
	Spec policyv1.PodDisruptionBudgetSpec `json:"spec,omitempty"`

	// status is the budget as the disruption controller last computed it.
	// +optional
	Status PodDisruptionBudgetStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// PodDisruptionBudgetList is a list of PodDisruptionBudgets.
type PodDisruptionBudgetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PodDisruptionBudget `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PodDisruptionBudget{}, &PodDisruptionBudgetList{})
}
