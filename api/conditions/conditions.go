// Package conditions holds the condition types and reasons that every skiff
// kind shares. They follow the kstatus conventions, so that kubectl wait,
// Argo CD, Flux and other tools that read status judge skiff objects the same
// way they judge built-in ones:
//
//   - Ready summarises the object: True when it has reached its desired state.
//   - Reconciling is True while a controller is still working towards it.
//   - Stalled is True when the controller cannot make progress without help
//     (an invalid spec, a quota, a deadline).
//
// Kind-specific condition types live next to each kind in its API package.
// This package holds constants only and must not import controller code.
package conditions

const (
	// Ready summarises whether the object has reached its desired state.
	Ready = "Ready"
	// Reconciling is True while the controller works towards the desired state.
	Reconciling = "Reconciling"
	// Stalled is True when the controller cannot progress without a change.
	Stalled = "Stalled"
)

// Reasons shared by the summarising conditions of every kind.
const (
	// ReasonReconciled: the controller has observed the latest generation and
	// the object is in its desired state.
	ReasonReconciled = "Reconciled"
	// ReasonProgressing: the controller is moving the object to its desired state.
	ReasonProgressing = "Progressing"
	// ReasonInvalidSpec: the spec cannot be acted on; the message says why.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonNotObserved: the controller has not yet seen the latest generation.
	ReasonNotObserved = "NotObserved"
)
