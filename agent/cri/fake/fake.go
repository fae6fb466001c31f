package fake

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/agent/cri"
)

// Annotations a simulated pod may carry.
const (
	// AnnotationExitCode makes every container of the pod exit with this
	// code after AnnotationRunSeconds (or Options.RunDuration).
	AnnotationExitCode = "sim.skiff.dev/exit-code"
	// AnnotationRunSeconds is how long a container runs before it exits,
	// when AnnotationExitCode is set.
	AnnotationRunSeconds = "sim.skiff.dev/run-seconds"
)

// Options tune the simulated runtime.
type Options struct {
	// StartDelay is how long a started container stays created before it runs.
	StartDelay time.Duration
	// RunDuration is how long a container of a pod with AnnotationExitCode
	// runs before it exits, unless the pod says otherwise.
	RunDuration time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Runtime is the in-memory runtime. The zero value is not usable; call New.
type Runtime struct {
	opts Options

	mu         sync.Mutex
	seq        uint64
	sandboxes  map[string]*sandbox
	containers map[string]*container
	// byUID and byNode index sandboxes by the pod UID and node labels, so
	// that a thousand simulated nodes do not scan each other's pods.
	byUID  map[string]map[string]struct{}
	byNode map[string]map[string]struct{}
}

type sandbox struct {
	id        string
	config    *runtimeapi.PodSandboxConfig
	createdAt time.Time
	ready     bool
	ip        string
	// containers are the IDs of the sandbox's containers, so that listing a
	// pod's containers does not scan every pod of every simulated node.
	containers map[string]struct{}
}

type container struct {
	id        string
	sandboxID string
	config    *runtimeapi.ContainerConfig
	createdAt time.Time
	startedAt time.Time // zero until started; in the future during StartDelay
	exitAt    time.Time // zero when the container never exits by itself
	exitCode  int32
	stoppedAt time.Time // set when stopped by StopContainer
}

var _ cri.Runtime = (*Runtime)(nil)

// New returns an empty runtime.
func New(opts Options) *Runtime {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Runtime{opts: opts, sandboxes: map[string]*sandbox{}, containers: map[string]*container{},
		byUID: map[string]map[string]struct{}{}, byNode: map[string]map[string]struct{}{}}
}

func notFound(kind, id string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", kind, id)
}

// Version reports the fake runtime's name and version.
func (r *Runtime) Version(context.Context, string) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "skiff-fake", RuntimeVersion: "0.1.0", RuntimeApiVersion: "v1"}, nil
}

// Status reports the runtime and network as ready.
func (r *Runtime) Status(context.Context, bool) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: true},
	}}}, nil
}

// RunPodSandbox creates a ready sandbox with a unique 10.x.y.z address
// (none for host-network pods).
func (r *Runtime) RunPodSandbox(_ context.Context, config *runtimeapi.PodSandboxConfig, _ string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	id := fmt.Sprintf("sandbox-%d", r.seq)
	ip := fmt.Sprintf("10.%d.%d.%d", 128+(r.seq>>16)&0x7f, (r.seq>>8)&0xff, r.seq&0xff)
	if config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE {
		ip = ""
	}
	r.sandboxes[id] = &sandbox{id: id, config: config, createdAt: r.opts.Now(), ready: true, ip: ip, containers: map[string]struct{}{}}
	index(r.byUID, config.Labels[cri.LabelPodUID], id)
	index(r.byNode, config.Labels[cri.LabelNodeName], id)
	return id, nil
}

func index(idx map[string]map[string]struct{}, key, id string) {
	if idx[key] == nil {
		idx[key] = map[string]struct{}{}
	}
	idx[key][id] = struct{}{}
}

func unindex(idx map[string]map[string]struct{}, key, id string) {
	delete(idx[key], id)
	if len(idx[key]) == 0 {
		delete(idx, key)
	}
}

// StopPodSandbox stops the sandbox and every container in it.
func (r *Runtime) StopPodSandbox(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[id]
	if !ok {
		return nil // Stopping is idempotent, as in containerd.
	}
	s.ready = false
	now := r.opts.Now()
	for cid := range s.containers {
		r.stopLocked(r.containers[cid], now)
	}
	return nil
}

// RemovePodSandbox removes the sandbox and its containers.
func (r *Runtime) RemovePodSandbox(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[id]
	if !ok {
		return nil
	}
	for cid := range s.containers {
		delete(r.containers, cid)
	}
	unindex(r.byUID, s.config.Labels[cri.LabelPodUID], id)
	unindex(r.byNode, s.config.Labels[cri.LabelNodeName], id)
	delete(r.sandboxes, id)
	return nil
}

func (r *Runtime) sandboxToAPI(s *sandbox) *runtimeapi.PodSandbox {
	state := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if s.ready {
		state = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return &runtimeapi.PodSandbox{
		Id: s.id, Metadata: s.config.Metadata, State: state, CreatedAt: s.createdAt.UnixNano(),
		Labels: s.config.Labels, Annotations: s.config.Annotations,
	}
}

// PodSandboxStatus reports the sandbox's state and address.
func (r *Runtime) PodSandboxStatus(_ context.Context, id string, _ bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[id]
	if !ok {
		return nil, notFound("sandbox", id)
	}
	p := r.sandboxToAPI(s)
	st := &runtimeapi.PodSandboxStatus{
		Id: s.id, Metadata: p.Metadata, State: p.State, CreatedAt: p.CreatedAt,
		Labels: p.Labels, Annotations: p.Annotations,
	}
	if s.ip != "" {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: s.ip}
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: st}, nil
}

func matchLabels(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// ListPodSandbox lists the sandboxes that match the filter.
func (r *Runtime) ListPodSandbox(_ context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	if id := filter.GetId(); id != "" {
		if s, ok := r.sandboxes[id]; ok {
			out = append(out, r.sandboxToAPI(s))
		}
		return out, nil
	}
	candidates := r.sandboxes
	for label, idx := range map[string]map[string]map[string]struct{}{cri.LabelPodUID: r.byUID, cri.LabelNodeName: r.byNode} {
		if v, ok := filter.GetLabelSelector()[label]; ok {
			candidates = map[string]*sandbox{}
			for sid := range idx[v] {
				candidates[sid] = r.sandboxes[sid]
			}
			break
		}
	}
	for _, s := range candidates {
		if filter.GetState() != nil && r.sandboxToAPI(s).State != filter.GetState().State {
			continue
		}
		if matchLabels(filter.GetLabelSelector(), s.config.Labels) {
			out = append(out, r.sandboxToAPI(s))
		}
	}
	return out, nil
}

// CreateContainer creates a container in a sandbox.
func (r *Runtime) CreateContainer(_ context.Context, sandboxID string, config *runtimeapi.ContainerConfig, _ *runtimeapi.PodSandboxConfig) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sandboxes[sandboxID]
	if !ok {
		return "", notFound("sandbox", sandboxID)
	}
	r.seq++
	id := fmt.Sprintf("container-%d", r.seq)
	r.containers[id] = &container{id: id, sandboxID: sandboxID, config: config, createdAt: r.opts.Now()}
	s.containers[id] = struct{}{}
	return id, nil
}

// StartContainer starts a created container: it runs after StartDelay and,
// when its pod asks for it, exits after the run duration.
func (r *Runtime) StartContainer(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return notFound("container", id)
	}
	if !c.startedAt.IsZero() {
		return status.Errorf(codes.FailedPrecondition, "container %q already started", id)
	}
	c.startedAt = r.opts.Now().Add(r.opts.StartDelay)
	if c.config.GetAnnotations()[cri.AnnotationContainerType] == "init" {
		// Simulated init containers complete once they ran.
		c.exitAt = c.startedAt
	}
	ann := r.sandboxes[c.sandboxID].config.Annotations
	if code, ok := ann[AnnotationExitCode]; ok {
		n, err := strconv.Atoi(code)
		if err != nil {
			n = 1
		}
		run := r.opts.RunDuration
		if secs, err := strconv.ParseFloat(ann[AnnotationRunSeconds], 64); err == nil {
			run = time.Duration(secs * float64(time.Second))
		}
		c.exitCode = int32(n)
		c.exitAt = c.startedAt.Add(run)
	}
	return nil
}

func (r *Runtime) stopLocked(c *container, now time.Time) {
	if c == nil || !c.stoppedAt.IsZero() {
		return
	}
	if !c.exitAt.IsZero() && !c.exitAt.After(now) {
		return // It has exited by itself already.
	}
	c.stoppedAt = now
	c.exitCode = 137
	if c.startedAt.IsZero() || c.startedAt.After(now) {
		c.startedAt = now
	}
}

// StopContainer stops a container at once; simulated processes honour no
// grace period.
func (r *Runtime) StopContainer(_ context.Context, id string, _ int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return notFound("container", id)
	}
	r.stopLocked(c, r.opts.Now())
	return nil
}

// RemoveContainer removes a container.
func (r *Runtime) RemoveContainer(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return nil
	}
	if s, ok := r.sandboxes[c.sandboxID]; ok {
		delete(s.containers, id)
	}
	delete(r.containers, id)
	return nil
}

// state works out a container's state at now from its timestamps.
func (c *container) state(now time.Time) (runtimeapi.ContainerState, time.Time) {
	switch {
	case !c.stoppedAt.IsZero():
		return runtimeapi.ContainerState_CONTAINER_EXITED, c.stoppedAt
	case !c.exitAt.IsZero() && !c.exitAt.After(now):
		return runtimeapi.ContainerState_CONTAINER_EXITED, c.exitAt
	case c.startedAt.IsZero() || c.startedAt.After(now):
		return runtimeapi.ContainerState_CONTAINER_CREATED, time.Time{}
	default:
		return runtimeapi.ContainerState_CONTAINER_RUNNING, time.Time{}
	}
}

func (r *Runtime) containerToAPI(c *container, now time.Time) *runtimeapi.Container {
	st, _ := c.state(now)
	return &runtimeapi.Container{
		Id: c.id, PodSandboxId: c.sandboxID, Metadata: c.config.Metadata, Image: c.config.Image,
		ImageRef: c.config.GetImage().GetImage(), State: st, CreatedAt: c.createdAt.UnixNano(),
		Labels: c.config.Labels, Annotations: c.config.Annotations,
	}
}

// ListContainers lists the containers that match the filter.
func (r *Runtime) ListContainers(_ context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Now()
	var candidates []*container
	switch {
	case filter.GetId() != "":
		if c, ok := r.containers[filter.GetId()]; ok {
			candidates = append(candidates, c)
		}
	case filter.GetPodSandboxId() != "":
		if s, ok := r.sandboxes[filter.GetPodSandboxId()]; ok {
			for id := range s.containers {
				candidates = append(candidates, r.containers[id])
			}
		}
	default:
		for _, c := range r.containers {
			candidates = append(candidates, c)
		}
	}
	var out []*runtimeapi.Container
	for _, c := range candidates {
		ct := r.containerToAPI(c, now)
		if filter.GetState() != nil && ct.State != filter.GetState().State {
			continue
		}
		if matchLabels(filter.GetLabelSelector(), c.config.Labels) {
			out = append(out, ct)
		}
	}
	return out, nil
}

// ContainerStatus reports a container's state, times and exit code.
func (r *Runtime) ContainerStatus(_ context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return nil, notFound("container", id)
	}
	now := r.opts.Now()
	st, finished := c.state(now)
	cs := &runtimeapi.ContainerStatus{
		Id: c.id, Metadata: c.config.Metadata, State: st, CreatedAt: c.createdAt.UnixNano(),
		Image: c.config.Image, ImageRef: "sha256:" + fmt.Sprintf("%064x", len(c.config.GetImage().GetImage())),
		Labels: c.config.Labels, Annotations: c.config.Annotations,
	}
	if st != runtimeapi.ContainerState_CONTAINER_CREATED {
		cs.StartedAt = c.startedAt.UnixNano()
	}
	if st == runtimeapi.ContainerState_CONTAINER_EXITED {
		cs.FinishedAt = finished.UnixNano()
		cs.ExitCode = c.exitCode
		cs.Reason = "Completed"
		if c.exitCode != 0 {
			cs.Reason = "Error"
		}
	}
	return &runtimeapi.ContainerStatusResponse{Status: cs}, nil
}

// ExecSync succeeds without running anything.
func (r *Runtime) ExecSync(context.Context, string, []string, time.Duration) ([]byte, []byte, error) {
	return nil, nil, nil
}

// ImageStatus reports every image as present, so simulated pods never pull.
func (r *Runtime) ImageStatus(_ context.Context, image *runtimeapi.ImageSpec, _ bool) (*runtimeapi.ImageStatusResponse, error) {
	return &runtimeapi.ImageStatusResponse{Image: &runtimeapi.Image{Id: "sha256:" + fmt.Sprintf("%064x", len(image.GetImage())), RepoTags: []string{image.GetImage()}}}, nil
}

// PullImage succeeds at once.
func (r *Runtime) PullImage(_ context.Context, image *runtimeapi.ImageSpec, _ *runtimeapi.AuthConfig, _ *runtimeapi.PodSandboxConfig) (string, error) {
	return "sha256:" + fmt.Sprintf("%064x", len(image.GetImage())), nil
}

// Counts reports how many sandboxes and containers exist, for tests.
func (r *Runtime) Counts() (sandboxes, containers int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sandboxes), len(r.containers)
}
