// Package scheduler is skiff's pod scheduler: a leader-elected manager
// Runnable that assigns skiff Pods to skiff Nodes, with upstream
// kube-scheduler semantics (pkg/scheduler).
//
// It owns:
//   - the scheduling queue (queue.go): an active heap ordered by priority then
//     age, a back-off heap, and an unschedulable set that cluster events move
//     back (node added or changed, pod deleted or finished, claims changed);
//   - the cache (cache.go): nodes with the pods bound or assumed on them, so a
//     cycle never waits for the watch round trip of the previous binding;
//   - the filters (filters.go) and scores (algorithm.go) of the default
//     kube-scheduler profile, run over the nodes in parallel (parallel.go),
//     with the per-cycle counts that preemption and nominated pods update
//     (cyclestate.go); preemption (preemption.go); and binding
//     (scheduler.go), which sets spec.nodeName and the PodScheduled condition.
//
// It writes only spec.nodeName, status.conditions[PodScheduled] and
// status.nominatedNodeName of Pods, and the DisruptionTarget condition of
// the preemption victims it deletes, and records events. It must not touch Nodes, nor Pods whose spec.schedulerName is
// neither "default-scheduler" nor "skiff-scheduler".
package scheduler
