package cri

// Labels the agent puts on every sandbox and container. They are how a
// restarted agent recognises what it runs, so they never change meaning.
const (
	// LabelPodName is the name of the skiff Pod.
	LabelPodName = "io.kubernetes.pod.name"
	// LabelPodNamespace is the namespace of the skiff Pod.
	LabelPodNamespace = "io.kubernetes.pod.namespace"
	// LabelPodUID is the UID of the skiff Pod.
	LabelPodUID = "io.kubernetes.pod.uid"
	// LabelContainerName is the name of the container in the pod spec.
	LabelContainerName = "io.kubernetes.container.name"
	// LabelNodeName is the skiff Node the sandbox belongs to; one runtime
	// may serve several simulated nodes.
	LabelNodeName = "skiff.dev/node"
	// LabelManaged marks objects created by skiff-agent.
	LabelManaged = "skiff.dev/managed"

	// AnnotationRestartCount is the restart count of the container.
	AnnotationRestartCount = "io.kubernetes.container.restartCount"
	// AnnotationTerminationMessagePath is where the container writes its
	// termination message.
	AnnotationTerminationMessagePath = "io.kubernetes.container.terminationMessagePath"
	// AnnotationContainerHash is a hash of the container spec the container was created from.
	AnnotationContainerHash = "io.kubernetes.container.hash"
	// AnnotationContainerType is "init" for an init container that must
	// complete, "sidecar" for a native sidecar, "regular" otherwise; the
	// fake runtime completes simulated init containers by it.
	AnnotationContainerType = "skiff.dev/container-type"
	// AnnotationGracePeriod is the pod's termination grace period, for
	// killing containers whose pod is gone.
	AnnotationGracePeriod = "io.kubernetes.pod.terminationGracePeriod"
)
