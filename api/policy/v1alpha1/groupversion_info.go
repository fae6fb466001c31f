// Package v1alpha1 contains the policy.skiff.dev API: PodDisruptionBudget.
//
// Each kind mirrors its upstream namesake in the policy/v1 group: specs embed
// the upstream Go types unchanged, so an upstream manifest becomes a skiff
// manifest by changing apiVersion only. Status mirrors the upstream status
// fields, with the summarising Ready condition of every skiff kind next to
// upstream's DisruptionAllowed condition.
//
// skiff has its own kind rather than using policy/v1 PodDisruptionBudgets
// from the host API: a budget's status must be computed by a controller that
// sees the pods it selects, and upstream's disruption controller (part of
// kube-controller-manager in any real cluster) sees only core Pods. It would
// write its own status, counting no pods, into a policy/v1 budget that
// selects skiff pods, and the two controllers would overwrite each other.
//
// This package holds API types only; controllers live under controllers/.
// +kubebuilder:object:generate=true
// +groupName=policy.skiff.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "policy.skiff.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
