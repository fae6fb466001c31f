// Package policy holds the disruption controller of skiff-controller-manager,
// the counterpart of upstream's pkg/controller/disruption for skiff pods.
// For every policy.skiff.dev PodDisruptionBudget it counts the skiff pods the
// budget selects, works out how many must stay healthy (minAvailable or
// maxUnavailable, as a number or a percentage of the replicas of the pods'
// controllers), and writes currentHealthy, desiredHealthy, expectedPods,
// disruptionsAllowed, the DisruptionAllowed condition and the summarising
// Ready condition.
//
// budget.go holds the arithmetic as pure functions; the reconciler in
// disruption_controller.go gathers the pods and scales and writes status.
// Evictions (internal/eviction) spend the budget between two syncs by
// decrementing disruptionsAllowed and recording the pod in disruptedPods,
// both under the budget's resourceVersion; the controller writes status the
// same way, so neither overwrites the other.
//
// The package writes PodDisruptionBudget status only. It must not delete or
// change pods: evicting is the client's act (kubectl skiff drain).
package policy
