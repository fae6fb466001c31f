// Package pods runs the pods bound to a node through a container runtime.
//
// For each pod, a sync first works out what to do with no side effects
// (ComputePodActions, from the spec, the runtime's view of the pod, probe
// results and per-container back-off), then carries the actions out in
// numbered steps, then computes the status (ComputePodStatus, also pure)
// and patches it through the status subresource. This mirrors the
// upstream kubelet's computePodActions and SyncPod.
//
// The package owns the pods' sandboxes, containers, probes and volumes. It
// must not touch the Node object (agent/node does) and knows the runtime only
// through agent/cri.
package pods
