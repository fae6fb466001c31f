// Package v1alpha1 contains the batch.skiff.dev API: Job and CronJob.
//
// Each kind mirrors its upstream namesake in the batch/v1 group: specs embed the upstream Go types unchanged, so an upstream manifest
// becomes a skiff manifest by changing apiVersion only. Status mirrors the
// upstream status fields, with conditions expressed as metav1.Condition and
// a summarising Ready condition on every kind.
//
// This package holds API types only; controllers live under controllers/.
// +kubebuilder:object:generate=true
// +groupName=batch.skiff.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "batch.skiff.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
