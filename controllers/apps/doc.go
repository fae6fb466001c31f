// Package apps holds the reconcilers of the apps.skiff.dev kinds:
// ReplicaSet, Deployment, StatefulSet and DaemonSet. Each behaves as its
// upstream counterpart in k8s.io/kubernetes/pkg/controller field by field,
// and maintains observedGeneration and the summarising Ready, Reconciling
// and Stalled conditions (kstatus rules).
//
// Pod creation, expectations, adoption and deletion ranking come from
// controllers/podcontrol. Decisions (how many to create, which to delete,
// rollout step sizes, status) are pure functions in the *_helpers.go and
// *_status.go files, tested with tables; the reconcilers carry them out.
//
// The package owns the apps.skiff.dev objects' status and the pods,
// ReplicaSets, ControllerRevisions and PersistentVolumeClaims these kinds
// create. It must not bind pods (the scheduler does) nor touch pod status
// (the agent does).
package apps
