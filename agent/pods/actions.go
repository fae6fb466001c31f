package pods

import (
	"fmt"
	"hash/fnv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/json"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// ProbeState is what the probes say about one running container.
type ProbeState struct {
	// Live is false once the liveness probe failed.
	Live bool
	// Ready is the readiness probe's verdict (true without a probe).
	Ready bool
	// Started is the startup probe's verdict (true without a probe).
	Started bool
}

// ActionInput is everything ComputePodActions decides from.
type ActionInput struct {
	Pod     *corev1alpha1.Pod
	Runtime *RuntimePod
	// Probes holds the probe state of running containers by container ID;
	// a container without an entry is live, started and ready.
	Probes map[string]ProbeState
	// Backoff says whether a container must wait before it restarts.
	Backoff *Backoff
	Now     time.Time
}

// KillInfo says why a container is killed.
type KillInfo struct {
	Name    string
	Reason  string
	Message string
}

// Wait is a container that would start but must wait for its back-off.
type Wait struct {
	Name  string
	Until time.Time
}

// PodActions are what a sync does to a pod, in this order: kill the whole
// pod, kill single containers, create a sandbox, start the next init
// container, start containers.
type PodActions struct {
	// KillPod stops every container and the sandbox.
	KillPod bool
	// CreateSandbox creates a new sandbox with attempt Attempt.
	CreateSandbox bool
	Attempt       uint32
	// SandboxID is the sandbox the containers start in (empty when it is created).
	SandboxID string
	// InitContainersToStart are indexes in spec.initContainers: the next
	// init container, or a native sidecar to restart.
	InitContainersToStart []int
	// ContainersToStart are indexes in spec.containers.
	ContainersToStart []int
	// ContainersToKill maps container IDs to why they are killed.
	ContainersToKill map[string]KillInfo
	// Waits are containers held back by their back-off.
	Waits []Wait
	// Terminal is set when the pod has finished and must not run again.
	Terminal bool
}

// Empty tells whether there is nothing to do.
func (a PodActions) Empty() bool {
	return !a.KillPod && !a.CreateSandbox && len(a.InitContainersToStart) == 0 &&
		len(a.ContainersToStart) == 0 && len(a.ContainersToKill) == 0
}

// IsSidecar tells whether an init container is a native sidecar.
func IsSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// ContainerHash is a hash of a container's spec; a running container whose
// hash differs is restarted, as upstream.
func ContainerHash(c *corev1.Container) string {
	b, _ := json.Marshal(c)
	h := fnv.New32a()
	_, _ = h.Write(b)
	return fmt.Sprintf("%08x", h.Sum32())
}

// BackoffKey is the back-off key of a container of a pod.
func BackoffKey(pod *corev1alpha1.Pod, name string) string {
	return string(pod.UID) + "/" + name
}

func restartPolicy(pod *corev1alpha1.Pod) corev1.RestartPolicy {
	if pod.Spec.RestartPolicy == "" {
		return corev1.RestartPolicyAlways
	}
	return pod.Spec.RestartPolicy
}

// shouldRestart tells whether an exited container runs again under the
// pod's restart policy.
func shouldRestart(policy corev1.RestartPolicy, c *ContainerState) bool {
	switch policy {
	case corev1.RestartPolicyAlways:
		return true
	case corev1.RestartPolicyOnFailure:
		return c.ExitCode != 0
	default:
		return false
	}
}

func probeOf(in ActionInput, c *ContainerState) ProbeState {
	if p, ok := in.Probes[c.ID]; ok {
		return p
	}
	return ProbeState{Live: true, Ready: true, Started: true}
}

// PodFinished tells whether every regular container has exited and none
// will run again, so the pod is Succeeded or Failed (and whether it failed).
func PodFinished(pod *corev1alpha1.Pod, rp *RuntimePod) (finished, failed bool) {
	policy := restartPolicy(pod)
	// An init container that failed under restartPolicy Never fails the pod.
	if policy == corev1.RestartPolicyNever {
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			if l := rp.Latest(c.Name); !IsSidecar(c) && l.Exited() && l.ExitCode != 0 {
				return true, true
			}
		}
	}
	if policy == corev1.RestartPolicyAlways {
		return false, false
	}
	for i := range pod.Spec.Containers {
		l := rp.Latest(pod.Spec.Containers[i].Name)
		if l == nil || !l.Exited() || shouldRestart(policy, l) {
			return false, false
		}
		if l.ExitCode != 0 {
			failed = true
		}
	}
	return true, failed
}

// ComputePodActions works out what a sync must do to bring the runtime in
// line with the pod. It has no side effects.
func ComputePodActions(in ActionInput) PodActions {
	pod, rp := in.Pod, in.Runtime
	a := PodActions{ContainersToKill: map[string]KillInfo{}}
	policy := restartPolicy(pod)

	// A pod that ended, or is being deleted, only gets its remains stopped.
	finished, _ := PodFinished(pod, rp)
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || finished {
		a.Terminal = pod.DeletionTimestamp == nil
		a.KillPod = rp.AnyRunning()
		return a
	}

	sb := rp.Sandbox()
	readySandboxes := 0
	for _, s := range rp.Sandboxes {
		if s.Ready {
			readySandboxes++
		}
	}
	needSandbox := sb == nil || !sb.Ready || readySandboxes > 1 || (sb.IP == "" && !pod.Spec.HostNetwork)
	if needSandbox {
		ran := false
		for _, cs := range rp.Containers {
			if len(cs) > 0 {
				ran = true
			}
		}
		a.KillPod = rp.AnyRunning()
		// A pod that must not restart stays down once its sandbox died.
		if sb != nil && policy == corev1.RestartPolicyNever && ran {
			a.Terminal = true
			return a
		}
		a.CreateSandbox = true
		if sb != nil {
			a.Attempt = sb.Attempt + 1
		}
		// Containers start afresh in the new sandbox: the first init
		// container, or every container that should run.
		if len(pod.Spec.InitContainers) > 0 {
			a.InitContainersToStart = []int{0}
			return a
		}
		for i := range pod.Spec.Containers {
			if l := rp.Latest(pod.Spec.Containers[i].Name); l != nil && l.Exited() && !shouldRestart(policy, l) {
				continue // Completed under OnFailure: it stays completed.
			}
			a.ContainersToStart = append(a.ContainersToStart, i)
		}
		return a
	}
	a.SandboxID = sb.ID

	// considerStart starts a container, or records its back-off wait.
	considerStart := func(name string, l *ContainerState, start func()) {
		if l != nil && l.Exited() {
			if wait, until := in.Backoff.InBackoffSince(BackoffKey(pod, name), l.FinishedAt, in.Now); wait {
				a.Waits = append(a.Waits, Wait{Name: name, Until: until})
				return
			}
		}
		start()
	}
	// checkRunning kills a running container whose liveness probe failed or
	// whose spec changed; it reports whether the container was killed.
	checkRunning := func(c *corev1.Container, l *ContainerState) bool {
		if !l.Running() {
			return false
		}
		if !probeOf(in, l).Live {
			a.ContainersToKill[l.ID] = KillInfo{Name: c.Name, Reason: "Unhealthy", Message: fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.Name)}
			return true
		}
		if l.Hash != "" && l.Hash != ContainerHash(c) {
			a.ContainersToKill[l.ID] = KillInfo{Name: c.Name, Reason: "Killing", Message: fmt.Sprintf("Container %s definition changed, will be restarted", c.Name)}
			return true
		}
		return false
	}

	// Init containers, in order; native sidecars keep running (and are
	// restarted) once started.
	initialized := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		l := rp.Latest(c.Name)
		if IsSidecar(c) {
			switch {
			case l == nil:
				a.InitContainersToStart = append(a.InitContainersToStart, i)
				initialized = false
			case l.Running():
				if checkRunning(c, l) {
					a.InitContainersToStart = append(a.InitContainersToStart, i)
				} else if !probeOf(in, l).Started {
					initialized = false
				}
			case l.Exited():
				considerStart(c.Name, l, func() { a.InitContainersToStart = append(a.InitContainersToStart, i) })
			default:
				initialized = false // Created, not yet running.
			}
			if !initialized {
				break
			}
			continue
		}
		switch {
		case l.Exited() && l.ExitCode == 0:
			continue
		case l == nil:
			a.InitContainersToStart = append(a.InitContainersToStart, i)
		case l.Exited():
			// Failed: policy Never was handled by PodFinished.
			considerStart(c.Name, l, func() { a.InitContainersToStart = append(a.InitContainersToStart, i) })
		}
		initialized = false
		break
	}
	if !initialized {
		return a
	}

	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		l := rp.Latest(c.Name)
		switch {
		case l == nil:
			a.ContainersToStart = append(a.ContainersToStart, i)
		case l.Running():
			if checkRunning(c, l) && policy != corev1.RestartPolicyNever {
				a.ContainersToStart = append(a.ContainersToStart, i)
			}
		case l.Exited():
			if shouldRestart(policy, l) {
				considerStart(c.Name, l, func() { a.ContainersToStart = append(a.ContainersToStart, i) })
			}
		}
	}
	return a
}
