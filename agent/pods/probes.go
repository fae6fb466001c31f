package pods

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Prober runs probes and lifecycle hooks against a container.
type Prober interface {
	// Probe runs one probe attempt; it tells whether it succeeded and why not.
	Probe(ctx context.Context, pod *corev1alpha1.Pod, podIP string, c *corev1.Container, containerID string, p *corev1.Probe) (bool, string)
	// Hook runs a postStart or preStop handler.
	Hook(ctx context.Context, pod *corev1alpha1.Pod, podIP string, c *corev1.Container, containerID string, h *corev1.LifecycleHandler) (string, error)
}

type probeKind int

const (
	liveness probeKind = iota
	readiness
	startup
)

func (k probeKind) String() string {
	return [...]string{"Liveness", "Readiness", "Startup"}[k]
}

type probeKey struct {
	containerID string
	kind        probeKind
}

// probeSet holds the probe workers of one pod and their results.
type probeSet struct {
	node *Node
	key  types.NamespacedName

	mu      sync.Mutex
	workers map[probeKey]context.CancelFunc
	state   map[string]ProbeState
}

func newProbeSet(n *Node, key types.NamespacedName) *probeSet {
	return &probeSet{node: n, key: key, workers: map[probeKey]context.CancelFunc{}, state: map[string]ProbeState{}}
}

// results is a copy of the probe state by container ID.
func (s *probeSet) results() map[string]ProbeState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]ProbeState, len(s.state))
	for k, v := range s.state {
		out[k] = v
	}
	return out
}

func (s *probeSet) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, cancel := range s.workers {
		cancel()
		delete(s.workers, k)
	}
}

// sync starts workers for the probes of running containers and stops the
// workers of containers that no longer run.
func (s *probeSet) sync(ctx context.Context, pod *corev1alpha1.Pod, rp *RuntimePod) {
	if s.node.opts.Prober == nil {
		return
	}
	running := map[string]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	podIP := ""
	if sb := rp.Sandbox(); sb != nil {
		podIP = sb.IP
	}
	if pod.Spec.HostNetwork {
		podIP = s.node.opts.HostIP()
	}
	all := make([]*corev1.Container, 0, len(pod.Spec.Containers)+len(pod.Spec.InitContainers))
	for i := range pod.Spec.InitContainers {
		if IsSidecar(&pod.Spec.InitContainers[i]) {
			all = append(all, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		all = append(all, &pod.Spec.Containers[i])
	}
	for _, c := range all {
		l := rp.Latest(c.Name)
		if !l.Running() {
			continue
		}
		running[l.ID] = true
		if _, ok := s.state[l.ID]; !ok {
			s.state[l.ID] = ProbeState{Live: true, Ready: c.ReadinessProbe == nil, Started: c.StartupProbe == nil}
		}
		for kind, p := range map[probeKind]*corev1.Probe{liveness: c.LivenessProbe, readiness: c.ReadinessProbe, startup: c.StartupProbe} {
			k := probeKey{l.ID, kind}
			if p == nil || s.workers[k] != nil {
				continue
			}
			wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			s.workers[k] = cancel
			go s.run(wctx, pod.DeepCopy(), c.DeepCopy(), l.ID, l.StartedAt, podIP, kind, p.DeepCopy())
		}
	}
	for k, cancel := range s.workers {
		if !running[k.containerID] {
			cancel()
			delete(s.workers, k)
		}
	}
	for id := range s.state {
		if !running[id] {
			delete(s.state, id)
		}
	}
}

func orDefault(v, d int32) int32 {
	if v <= 0 {
		return d
	}
	return v
}

// run probes one container with one probe until cancelled, as upstream's
// prober worker: an initial delay, then one attempt per period, with the
// success and failure thresholds deciding the result.
func (s *probeSet) run(ctx context.Context, pod *corev1alpha1.Pod, c *corev1.Container, id string, startedAt time.Time, podIP string, kind probeKind, p *corev1.Probe) {
	period := time.Duration(orDefault(p.PeriodSeconds, 10)) * time.Second
	timeout := time.Duration(orDefault(p.TimeoutSeconds, 1)) * time.Second
	successes, failures := orDefault(p.SuccessThreshold, 1), orDefault(p.FailureThreshold, 3)
	if d := time.Until(startedAt.Add(time.Duration(p.InitialDelaySeconds) * time.Second)); d > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	okRun, failRun := int32(0), int32(0)
	for {
		s.mu.Lock()
		st := s.state[id]
		s.mu.Unlock()
		switch {
		case kind == startup && st.Started:
			return // A startup probe stops once it succeeded.
		case kind != startup && !st.Started:
			// Liveness and readiness wait for the startup probe.
		default:
			pctx, cancel := context.WithTimeout(ctx, timeout)
			ok, msg := s.node.opts.Prober.Probe(pctx, pod, podIP, c, id, p)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if ok {
				okRun, failRun = okRun+1, 0
			} else {
				okRun, failRun = 0, failRun+1
				s.node.event(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, msg)
			}
			var result, decided bool
			if okRun >= successes {
				result, decided = true, true
			} else if failRun >= failures {
				result, decided = false, true
			}
			if decided {
				s.set(id, kind, result)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (s *probeSet) set(id string, kind probeKind, result bool) {
	s.mu.Lock()
	st, ok := s.state[id]
	if !ok {
		s.mu.Unlock()
		return
	}
	old := st
	switch kind {
	case liveness:
		st.Live = result
	case readiness:
		st.Ready = result
	case startup:
		st.Started = result
		if !result {
			st.Live = false // A failed startup probe kills the container, as upstream.
		}
	}
	s.state[id] = st
	s.mu.Unlock()
	if st != old {
		s.node.enqueue(s.key)
	}
}
