// Package core holds the controllers of core.skiff.dev kinds that run in
// skiff-controller-manager and are not the scheduler:
//
//   - the node lifecycle controller (node_lifecycle_controller.go), which
//     marks a Node whose agent stopped renewing its Lease Ready=Unknown,
//     taints it node.kubernetes.io/unreachable, evicts the pods that do not
//     tolerate its NoExecute taints once their tolerationSeconds pass, and
//     untaints it when the agent is back, marks the pods of an unreachable
//     node not ready so Services drop them at once; and installs the
//     admission policy that gives pods upstream's default tolerations
//     (toleration_policy.go);
//   - the pod garbage collector (podgc_controller.go), which force-deletes
//     (removes the agent's finalizer, deletes with grace period 0) the
//     pods no agent will finish deleting: terminating pods on a not-Ready
//     node after their grace period and a delay, or at once when the node
//     is tainted node.kubernetes.io/out-of-service, and pods of Nodes that
//     no longer exist;
//   - node IPAM (node_ipam_controller.go), which gives each Node a podCIDR
//     from the cluster CIDR.
//
// These controllers write Node taints, the Node Ready condition (only to
// Unknown), spec.podCIDR(s), a pod's Ready condition (only to False, while
// its node is unreachable), the phase of pods they force-delete (Failed)
// and the agent's finalizer of those pods, and delete evicted Pods. They
// must not write anything else the agent owns (capacity, other
// conditions, the status of pods whose agent is there).
package core
