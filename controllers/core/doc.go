// Package core holds the controllers of core.skiff.dev kinds that run in
// skiff-controller-manager and are not the scheduler:
//
//   - the node lifecycle controller (node_lifecycle_controller.go), which
//     marks a Node whose agent stopped renewing its Lease Ready=Unknown,
//     taints it node.kubernetes.io/unreachable, evicts the pods that do not
//     tolerate its NoExecute taints once their tolerationSeconds pass, and
//     untaints it when the agent is back; and installs the admission policy
//     that gives pods upstream's default tolerations (toleration_policy.go);
//   - node IPAM (node_ipam_controller.go), which gives each Node a podCIDR
//     from the cluster CIDR.
//
// These controllers write Node taints, the Node Ready condition (only to
// Unknown), spec.podCIDR(s), and delete evicted Pods. They must not write
// anything else the agent owns (capacity, other conditions, pod status).
package core
