// Package kstatus keeps skiff's status conditions within the kstatus
// conventions (sigs.k8s.io/cli-utils pkg/kstatus) that kubectl wait, Flux and
// Argo CD rely on to judge custom resources: besides the summarising Ready
// condition, an object carries Reconciling=True while a controller works
// towards the desired state and Stalled=True when it cannot get there without
// a change; neither is present once it is there. Controllers write Ready with
// SetReady; Compute reads an object back the way kstatus does, for tests and
// tools.
//
// The package owns only these conditions; the reasons and messages come from
// each kind's controller.
package kstatus

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiff-dev/skiff/api/conditions"
)

// Progress is where an object stands relative to its desired state.
type Progress int

const (
	// InProgress: a controller is still working towards the desired state.
	// It is the zero value, so that a state nobody classified never reads
	// as finished.
	InProgress Progress = iota
	// Done: the desired state is reached, or there is nothing left to do
	// (a completed or suspended Job, a succeeded Pod).
	Done
	// Stalled: no progress is possible without a change by someone.
	Stalled
)

// FromReady derives the progress from a Ready condition: Done when True,
// Stalled when its reason is one of stalledReasons, InProgress otherwise.
func FromReady(ready metav1.Condition, stalledReasons ...string) Progress {
	if ready.Status == metav1.ConditionTrue {
		return Done
	}
	for _, r := range stalledReasons {
		if ready.Reason == r {
			return Stalled
		}
	}
	return InProgress
}

// SetReady writes the Ready condition and the Reconciling or Stalled
// condition that p implies, with Ready's reason, message and generation.
func SetReady(conds *[]metav1.Condition, ready metav1.Condition, p Progress) {
	meta.SetStatusCondition(conds, ready)
	SetProgress(conds, p, ready)
}

// SetProgress writes Reconciling=True for InProgress, Stalled=True for
// Stalled, and removes both for Done (kstatus reads an absent condition as
// False). Type and Status of like are ignored; its reason, message,
// generation and transition time are copied.
func SetProgress(conds *[]metav1.Condition, p Progress, like metav1.Condition) {
	set := func(typ string) {
		c := like
		c.Type, c.Status = typ, metav1.ConditionTrue
		if c.Reason == "" {
			c.Reason = conditions.ReasonProgressing
		}
		meta.SetStatusCondition(conds, c)
	}
	switch p {
	case Done:
		meta.RemoveStatusCondition(conds, conditions.Reconciling)
		meta.RemoveStatusCondition(conds, conditions.Stalled)
	case InProgress:
		meta.RemoveStatusCondition(conds, conditions.Stalled)
		set(conditions.Reconciling)
	case Stalled:
		meta.RemoveStatusCondition(conds, conditions.Reconciling)
		set(conditions.Stalled)
	}
}

// Status is kstatus's verdict on an object.
type Status string

// The verdicts of kstatus, as it names them.
const (
	StatusInProgress  Status = "InProgress"
	StatusFailed      Status = "Failed"
	StatusCurrent     Status = "Current"
	StatusTerminating Status = "Terminating"
)

// Compute judges an object as kstatus does for a custom resource: a
// deletion timestamp means Terminating; a status.observedGeneration behind
// metadata.generation means InProgress; then Reconciling=True means
// InProgress and Stalled=True means Failed; otherwise the object is Current.
// The message says why.
func Compute(u *unstructured.Unstructured) (Status, string) {
	if u.GetDeletionTimestamp() != nil {
		return StatusTerminating, "Resource scheduled for deletion"
	}
	if og, found, err := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); err == nil && found && og != u.GetGeneration() {
		return StatusInProgress, "Resource not yet observed: observedGeneration is behind generation"
	}
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, want := range []struct {
		typ    string
		status Status
	}{{conditions.Reconciling, StatusInProgress}, {conditions.Stalled, StatusFailed}} {
		for _, c := range raw {
			m, ok := c.(map[string]any)
			if !ok || m["type"] != want.typ || m["status"] != string(metav1.ConditionTrue) {
				continue
			}
			msg, _ := m["message"].(string)
			reason, _ := m["reason"].(string)
			return want.status, reason + ": " + msg
		}
	}
	return StatusCurrent, "Resource is current"
}

// SyncWithReady derives Reconciling and Stalled from the Ready condition
// already in conds, as FromReady does; without Ready it does nothing.
func SyncWithReady(conds *[]metav1.Condition, stalledReasons ...string) {
	ready := meta.FindStatusCondition(*conds, conditions.Ready)
	if ready == nil {
		return
	}
	SetProgress(conds, FromReady(*ready, stalledReasons...), *ready)
}
