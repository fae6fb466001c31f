package v1alpha1

// Workload condition types, as upstream. The summarising Ready condition is
// conditions.Ready.
const (
	// DeploymentAvailable is True when at least the minimum number of pods is available.
	DeploymentAvailable = "Available"
	// DeploymentProgressing is True while a rollout makes progress or has completed,
	// and False with ReasonProgressDeadlineExceeded when it has stalled.
	DeploymentProgressing = "Progressing"
	// ReplicaFailure is True when pods could not be created or deleted.
	ReplicaFailure = "ReplicaFailure"
)

// Reasons of the workload conditions, as upstream.
const (
	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonNewReplicaSetCreated       = "NewReplicaSetCreated"
	ReasonFoundNewReplicaSet         = "FoundNewReplicaSet"
	ReasonNewReplicaSetAvailable     = "NewReplicaSetAvailable"
	ReasonReplicaSetUpdated          = "ReplicaSetUpdated"
	ReasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
	ReasonDeploymentPaused           = "DeploymentPaused"
	ReasonDeploymentResumed          = "DeploymentResumed"
	ReasonFailedCreate               = "FailedCreate"
	ReasonFailedDelete               = "FailedDelete"
)

// Annotations that drive workload controllers through the API.
const (
	// AnnotationRollbackTo asks the Deployment controller to roll back to the
	// named revision ("0" is the previous one); it is removed once done.
	AnnotationRollbackTo = "deploy.skiff.dev/rollback-to"
	// AnnotationRevision is the upstream revision annotation on Deployments and ReplicaSets.
	AnnotationRevision = "deployment.kubernetes.io/revision"
)
