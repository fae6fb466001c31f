package v1alpha1

// Job condition types, as upstream. The summarising Ready condition is
// conditions.Ready.
const (
	JobComplete           = "Complete"
	JobFailed             = "Failed"
	JobSuspended          = "Suspended"
	JobFailureTarget      = "FailureTarget"
	JobSuccessCriteriaMet = "SuccessCriteriaMet"
)

// Reasons of the Job conditions, as upstream.
const (
	ReasonBackoffLimitExceeded     = "BackoffLimitExceeded"
	ReasonDeadlineExceeded         = "DeadlineExceeded"
	ReasonPodFailurePolicy         = "PodFailurePolicy"
	ReasonMaxFailedIndexesExceeded = "MaxFailedIndexesExceeded"
	ReasonSuccessPolicy            = "SuccessPolicy"
	ReasonCompletionsReached       = "CompletionsReached"
	ReasonJobSuspended             = "JobSuspended"
	ReasonJobResumed               = "JobResumed"
)

// Finalizers and labels of Job pods.
const (
	// JobTrackingFinalizer is set on every Job pod and removed once the
	// pod's outcome is counted in the Job's status.
	JobTrackingFinalizer = "batch.skiff.dev/job-tracking"
)
