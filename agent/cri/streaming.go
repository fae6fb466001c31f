package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Streaming is the part of CRI the agent API uses besides Runtime: exec
// through the runtime's streaming server, and reopening a container's log
// after a rotation. The runtime Connect returns implements it; the
// simulated runtime does not.
type Streaming interface {
	Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	ReopenContainerLog(ctx context.Context, containerID string) error
}

var _ Streaming = remoteRuntime{}
