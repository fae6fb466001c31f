package v1alpha1

// Pod condition types, as upstream. The summarising Ready condition is
// conditions.Ready.
const (
	// PodScheduled is True once the scheduler has bound the pod to a node.
	PodScheduled = "PodScheduled"
	// PodInitialized is True once every init container has completed.
	PodInitialized = "Initialized"
	// ContainersReady is True when every container is ready.
	ContainersReady = "ContainersReady"
)

// Reasons of the PodScheduled condition.
const (
	// ReasonUnschedulable: no node fits the pod; the message says why for each node.
	ReasonUnschedulable = "Unschedulable"
	// ReasonScheduled: the pod is bound to a node.
	ReasonScheduled = "Scheduled"
)

// Reasons of the pod Ready condition that skiff's controllers set (the
// agent sets the others).
const (
	// ReasonNodeUnreachable: the pod's node stopped renewing its Lease, so
	// the node lifecycle controller marked the pod not ready.
	ReasonNodeUnreachable = "NodeUnreachable"
)

// Node condition types, as upstream. The summarising Ready condition is
// conditions.Ready.
const (
	// NodeMemoryPressure is True when the node is short of memory.
	NodeMemoryPressure = "MemoryPressure"
	// NodeDiskPressure is True when the node is short of disk space.
	NodeDiskPressure = "DiskPressure"
	// NodePIDPressure is True when the node is short of process IDs.
	NodePIDPressure = "PIDPressure"
	// NodeNetworkUnavailable is True when the node's pod network is not configured.
	NodeNetworkUnavailable = "NetworkUnavailable"
)

// Reasons of the node Ready condition.
const (
	// ReasonAgentReady: the agent is posting ready status.
	ReasonAgentReady = "AgentReady"
	// ReasonAgentNotReady: the agent is running but the node cannot run pods.
	ReasonAgentNotReady = "AgentNotReady"
	// ReasonNodeStatusUnknown: the agent stopped renewing the node's Lease.
	ReasonNodeStatusUnknown = "NodeStatusUnknown"
)

// Reasons of the Ready condition of claims and volumes.
const (
	// ReasonBound: the claim and the volume are bound to each other.
	ReasonBound = "Bound"
	// ReasonWaitingForVolume: no volume matches the claim yet.
	ReasonWaitingForVolume = "WaitingForVolume"
	// ReasonWaitForFirstConsumer: binding waits until a pod that uses the claim is scheduled.
	ReasonWaitForFirstConsumer = "WaitForFirstConsumer"
)
