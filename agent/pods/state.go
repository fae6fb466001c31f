package pods

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/agent/cri"
)

// SandboxState is the runtime's view of one sandbox of a pod.
type SandboxState struct {
	ID        string
	Attempt   uint32
	Ready     bool
	IP        string
	CreatedAt time.Time
}

// ContainerState is the runtime's view of one container of a pod.
type ContainerState struct {
	ID        string
	SandboxID string
	Name      string
	Attempt   uint32
	State     runtimeapi.ContainerState
	CreatedAt time.Time
	StartedAt time.Time
	// FinishedAt and ExitCode are set once the container exited.
	FinishedAt time.Time
	ExitCode   int32
	// Reason and Message are the runtime's (OOMKilled, Error, Completed) and
	// the termination message.
	Reason, Message string
	Image, ImageRef string
	// Hash is the hash of the container spec it was created from.
	Hash string
	// GracePeriod is the pod's termination grace period when the container
	// was created, for killing containers whose pod is gone.
	GracePeriod time.Duration
}

// Running tells whether the container runs.
func (c *ContainerState) Running() bool {
	return c != nil && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING
}

// Exited tells whether the container has exited.
func (c *ContainerState) Exited() bool {
	return c != nil && c.State == runtimeapi.ContainerState_CONTAINER_EXITED
}

// RuntimePod is everything the runtime knows about one pod.
type RuntimePod struct {
	UID types.UID
	// Sandboxes are newest first.
	Sandboxes []*SandboxState
	// Containers holds each container name's containers, newest first.
	Containers map[string][]*ContainerState
}

// Sandbox is the newest sandbox, or nil.
func (p *RuntimePod) Sandbox() *SandboxState {
	if p == nil || len(p.Sandboxes) == 0 {
		return nil
	}
	return p.Sandboxes[0]
}

// Latest is the newest container of that name, or nil.
func (p *RuntimePod) Latest(name string) *ContainerState {
	if p == nil || len(p.Containers[name]) == 0 {
		return nil
	}
	return p.Containers[name][0]
}

// Previous is the container of that name before the newest, or nil.
func (p *RuntimePod) Previous(name string) *ContainerState {
	if p == nil || len(p.Containers[name]) < 2 {
		return nil
	}
	return p.Containers[name][1]
}

// AnyRunning tells whether a container runs or a sandbox is ready.
func (p *RuntimePod) AnyRunning() bool {
	if p == nil {
		return false
	}
	for _, s := range p.Sandboxes {
		if s.Ready {
			return true
		}
	}
	for _, cs := range p.Containers {
		for _, c := range cs {
			if c.Running() || c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
				return true
			}
		}
	}
	return false
}

// Empty tells whether the runtime holds nothing of the pod.
func (p *RuntimePod) Empty() bool {
	if p == nil {
		return true
	}
	if len(p.Sandboxes) > 0 {
		return false
	}
	for _, cs := range p.Containers {
		if len(cs) > 0 {
			return false
		}
	}
	return true
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// GetRuntimePod asks the runtime for everything it holds of the pod with
// that UID.
func GetRuntimePod(ctx context.Context, rt cri.Runtime, uid types.UID) (*RuntimePod, error) {
	p := &RuntimePod{UID: uid, Containers: map[string][]*ContainerState{}}
	sandboxes, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{cri.LabelPodUID: string(uid)}})
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes: %w", err)
	}
	for _, s := range sandboxes {
		st := &SandboxState{ID: s.Id, Attempt: s.GetMetadata().GetAttempt(), Ready: s.State == runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: nsTime(s.CreatedAt)}
		p.Sandboxes = append(p.Sandboxes, st)
		containers, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: s.Id})
		if err != nil {
			return nil, fmt.Errorf("listing containers of sandbox %s: %w", s.Id, err)
		}
		for _, c := range containers {
			resp, err := rt.ContainerStatus(ctx, c.Id, false)
			if err != nil {
				if isNotFound(err) {
					continue // Removed meanwhile.
				}
				return nil, fmt.Errorf("reading the status of container %s: %w", c.Id, err)
			}
			cs := resp.GetStatus()
			name := c.GetLabels()[cri.LabelContainerName]
			if name == "" {
				name = cs.GetMetadata().GetName()
			}
			grace := DefaultGracePeriod
			if secs, err := strconv.ParseInt(cs.GetAnnotations()[cri.AnnotationGracePeriod], 10, 64); err == nil {
				grace = time.Duration(secs) * time.Second
			}
			p.Containers[name] = append(p.Containers[name], &ContainerState{
				GracePeriod: grace,
				ID:          c.Id, SandboxID: s.Id, Name: name, Attempt: cs.GetMetadata().GetAttempt(), State: cs.State,
				CreatedAt: nsTime(cs.CreatedAt), StartedAt: nsTime(cs.StartedAt), FinishedAt: nsTime(cs.FinishedAt),
				ExitCode: cs.ExitCode, Reason: cs.Reason, Message: cs.Message,
				Image: cs.GetImage().GetImage(), ImageRef: cs.ImageRef, Hash: cs.GetAnnotations()[cri.AnnotationContainerHash],
			})
		}
	}
	sort.Slice(p.Sandboxes, func(i, j int) bool { return p.Sandboxes[i].CreatedAt.After(p.Sandboxes[j].CreatedAt) })
	if s := p.Sandbox(); s != nil && s.Ready {
		resp, err := rt.PodSandboxStatus(ctx, s.ID, false)
		if err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("reading the status of sandbox %s: %w", s.ID, err)
		}
		if err == nil {
			s.IP = resp.GetStatus().GetNetwork().GetIp()
			s.Ready = resp.GetStatus().GetState() == runtimeapi.PodSandboxState_SANDBOX_READY
		}
	}
	for _, cs := range p.Containers {
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].Attempt != cs[j].Attempt {
				return cs[i].Attempt > cs[j].Attempt
			}
			return cs[i].CreatedAt.After(cs[j].CreatedAt)
		})
	}
	return p, nil
}
