package pods

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Reasons of the pod conditions the agent sets. metav1.Condition needs a
// reason where upstream leaves it empty.
const (
	ReasonPodCompleted             = "PodCompleted"
	ReasonContainersNotInitialized = "ContainersNotInitialized"
	ReasonInitialized              = "InitContainersCompleted"
	ReasonContainersNotReady       = "ContainersNotReady"
	ReasonContainersReady          = "ContainersReady"
	ReasonPodReady                 = "PodReady"
)

// Waiting reasons of containers, as upstream.
const (
	ReasonContainerCreating          = "ContainerCreating"
	ReasonPodInitializing            = "PodInitializing"
	ReasonCrashLoopBackOff           = "CrashLoopBackOff"
	ReasonErrImagePull               = "ErrImagePull"
	ReasonImagePullBackOff           = "ImagePullBackOff"
	ReasonErrImageNeverPull          = "ErrImageNeverPull"
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	ReasonCreateContainerError       = "CreateContainerError"
	ReasonRunContainerError          = "RunContainerError"
)

// Waiting is a reason a container waits that only the sync knows (a failed
// pull, a missing ConfigMap).
type Waiting struct {
	Reason, Message string
}

// StatusInput is everything ComputePodStatus decides from.
type StatusInput struct {
	Pod     *corev1alpha1.Pod
	Runtime *RuntimePod
	// Probes, by container ID, as for ComputePodActions.
	Probes map[string]ProbeState
	// Waiting holds the sync's waiting reasons by container name.
	Waiting map[string]Waiting
	// Waits are containers in restart back-off.
	Waits []Wait
	// HostIP is the node's address.
	HostIP string
	// RuntimeName prefixes container IDs (containerd://...).
	RuntimeName string
	Now         time.Time
}

func mtime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t.Truncate(time.Second))
}

func terminatedState(c *ContainerState, runtimeName string) *corev1.ContainerStateTerminated {
	reason := c.Reason
	if reason == "" || (reason != "OOMKilled" && reason != "ContainerCannotRun" && reason != "DeadlineExceeded") {
		reason = "Completed"
		if c.ExitCode != 0 {
			reason = "Error"
		}
	}
	return &corev1.ContainerStateTerminated{
		ExitCode: c.ExitCode, Reason: reason, Message: c.Message,
		StartedAt: mtime(c.StartedAt), FinishedAt: mtime(c.FinishedAt), ContainerID: runtimeName + "://" + c.ID,
	}
}

// containerStatus is the status of one container of the spec.
func containerStatus(in StatusInput, c *corev1.Container, initialized bool, waits map[string]Wait) corev1.ContainerStatus {
	st := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	l, prev := in.Runtime.Latest(c.Name), in.Runtime.Previous(c.Name)
	started := false
	st.Started = &started
	if l == nil {
		reason := ReasonContainerCreating
		if !initialized {
			reason = ReasonPodInitializing
		}
		w := Waiting{Reason: reason}
		if sw, ok := in.Waiting[c.Name]; ok {
			w = sw
		}
		st.State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}
		return st
	}
	st.ContainerID = in.RuntimeName + "://" + l.ID
	st.ImageID = l.ImageRef
	st.RestartCount = int32(l.Attempt)
	if prev != nil && prev.Exited() {
		st.LastTerminationState.Terminated = terminatedState(prev, in.RuntimeName)
	}
	switch {
	case l.Running():
		p := probeOf(ActionInput{Probes: in.Probes}, l)
		st.State.Running = &corev1.ContainerStateRunning{StartedAt: mtime(l.StartedAt)}
		started = p.Started
		st.Ready = p.Ready && p.Started
	case l.Exited():
		term := terminatedState(l, in.RuntimeName)
		if w, ok := waits[c.Name]; ok {
			// Restarting after its back-off: show it waiting, as upstream.
			st.State.Waiting = &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff,
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					backoffText(w.Until.Sub(l.FinishedAt)), c.Name, in.Pod.Name, in.Pod.Namespace, in.Pod.UID)}
			st.LastTerminationState.Terminated = term
		} else if sw, ok := in.Waiting[c.Name]; ok {
			st.State.Waiting = &corev1.ContainerStateWaiting{Reason: sw.Reason, Message: sw.Message}
			st.LastTerminationState.Terminated = term
		} else {
			st.State.Terminated = term
		}
	default:
		st.State.Waiting = &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}
	}
	return st
}

func backoffText(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%dm0s", int(d/time.Minute))
	}
	return d.String()
}

// ComputePodStatus computes the pod's status from the runtime's view, as
// upstream's generateAPIPodStatus and getPhase do, plus skiff's display
// fields. It keeps PodScheduled, the conditions of other writers
// (DisruptionTarget, ...) and the transition times of unchanged conditions
// from the current status. It has no side effects.
func ComputePodStatus(in StatusInput) corev1alpha1.PodStatus {
	pod := in.Pod
	old := pod.Status
	st := corev1alpha1.PodStatus{
		ObservedGeneration: pod.Generation,
		Conditions:         append([]metav1.Condition(nil), old.Conditions...),
		NominatedNodeName:  old.NominatedNodeName,
		HostIP:             in.HostIP,
		StartTime:          old.StartTime,
		QOSClass:           QOSClass(&pod.Spec),
	}
	if in.HostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: in.HostIP}}
	}
	if st.StartTime == nil {
		t := mtime(in.Now)
		st.StartTime = &t
	}
	if sb := in.Runtime.Sandbox(); sb != nil && sb.Ready {
		st.PodIP = sb.IP
		if pod.Spec.HostNetwork {
			st.PodIP = in.HostIP
		}
	} else if old.PodIP != "" {
		st.PodIP = old.PodIP // Keep the address of a pod whose sandbox ended.
	}
	if st.PodIP != "" {
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	}
	waits := map[string]Wait{}
	for _, w := range in.Waits {
		waits[w.Name] = w
	}

	// Init containers: initialized once every regular one has completed
	// and every sidecar has started.
	initialized := true
	initFailed := false
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := containerStatus(in, c, true, waits)
		if i > 0 && !initialized && cs.State.Waiting != nil && cs.State.Waiting.Reason == ReasonContainerCreating && cs.ContainerID == "" {
			cs.State.Waiting.Reason = ReasonPodInitializing
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		if IsSidecar(c) {
			if cs.State.Running == nil || !*cs.Started {
				initialized = false
			}
			continue
		}
		done := cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
		if !done {
			if cs.State.Terminated != nil && restartPolicy(pod) == corev1.RestartPolicyNever {
				initFailed = true
			}
			initialized = false
		}
	}
	// Once the regular containers have started, the pod stays initialized.
	for i := range pod.Spec.Containers {
		if in.Runtime.Latest(pod.Spec.Containers[i].Name) != nil {
			initialized = true
		}
	}
	for i := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, containerStatus(in, &pod.Spec.Containers[i], initialized, waits))
	}

	st.Phase = podPhase(pod, &st, initialized, initFailed)
	if old.Phase == corev1.PodSucceeded || old.Phase == corev1.PodFailed {
		st.Phase = old.Phase // A terminal phase never changes.
	}
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed

	now := metav1.NewTime(in.Now.Truncate(time.Second))
	set := func(typ string, ok bool, trueReason, falseReason, msg string) {
		c := metav1.Condition{Type: typ, Status: metav1.ConditionFalse, Reason: falseReason, Message: msg, LastTransitionTime: now, ObservedGeneration: pod.Generation}
		if ok {
			c.Status, c.Reason, c.Message = metav1.ConditionTrue, trueReason, ""
		}
		meta.SetStatusCondition(&st.Conditions, c)
	}
	if meta.FindStatusCondition(st.Conditions, corev1alpha1.PodScheduled) == nil {
		set(corev1alpha1.PodScheduled, true, corev1alpha1.ReasonScheduled, "", "")
	}
	switch {
	case terminal && initialized:
		set(corev1alpha1.PodInitialized, true, ReasonPodCompleted, "", "")
	case initialized:
		set(corev1alpha1.PodInitialized, true, ReasonInitialized, "", "")
	default:
		set(corev1alpha1.PodInitialized, false, "", ReasonContainersNotInitialized, "containers with incomplete status: ["+strings.Join(notDone(st.InitContainerStatuses, pod.Spec.InitContainers), " ")+"]")
	}
	unready := unreadyNames(st)
	switch {
	case terminal:
		set(corev1alpha1.ContainersReady, false, "", ReasonPodCompleted, "")
		set(conditions.Ready, false, "", ReasonPodCompleted, "")
	case len(unready) == 0:
		set(corev1alpha1.ContainersReady, true, ReasonContainersReady, "", "")
		set(conditions.Ready, true, ReasonPodReady, "", "")
	default:
		msg := "containers with unready status: [" + strings.Join(unready, " ") + "]"
		set(corev1alpha1.ContainersReady, false, "", ReasonContainersNotReady, msg)
		set(conditions.Ready, false, "", ReasonContainersNotReady, msg)
	}
	setProgress(&st)
	sort.SliceStable(st.Conditions, func(i, j int) bool {
		return conditionOrder(st.Conditions[i].Type) < conditionOrder(st.Conditions[j].Type)
	})

	st.Ready, st.DisplayStatus, st.RestartCount = display(pod, &st)
	return st
}

func conditionOrder(t string) int {
	switch t {
	case corev1alpha1.PodScheduled:
		return 0
	case corev1alpha1.PodInitialized:
		return 1
	case corev1alpha1.ContainersReady:
		return 2
	case conditions.Ready:
		return 3
	}
	return 4
}

func notDone(statuses []corev1.ContainerStatus, specs []corev1.Container) []string {
	var names []string
	for i, s := range statuses {
		if IsSidecar(&specs[i]) {
			if s.State.Running == nil {
				names = append(names, s.Name)
			}
			continue
		}
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			names = append(names, s.Name)
		}
	}
	return names
}

func unreadyNames(st corev1alpha1.PodStatus) []string {
	var names []string
	for _, s := range st.ContainerStatuses {
		if !s.Ready {
			names = append(names, s.Name)
		}
	}
	return names
}

// podPhase is upstream's getPhase.
func podPhase(pod *corev1alpha1.Pod, st *corev1alpha1.PodStatus, initialized, initFailed bool) corev1.PodPhase {
	policy := restartPolicy(pod)
	if initFailed {
		return corev1.PodFailed
	}
	if !initialized {
		return corev1.PodPending
	}
	var waiting, running, stopped, succeeded int
	for _, s := range st.ContainerStatuses {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		if policy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if policy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		// OnFailure: failed containers restart, unless every one has
		// ended for good (reported terminated rather than waiting).
		for _, s := range st.ContainerStatuses {
			if s.State.Waiting != nil {
				return corev1.PodRunning
			}
		}
		return corev1.PodSucceeded
	}
	return corev1.PodPending
}

// display computes the READY, STATUS and RESTARTS columns, as kubectl's
// printer for pods does.
func display(pod *corev1alpha1.Pod, st *corev1alpha1.PodStatus) (ready, status string, restarts int32) {
	total, readyN := len(pod.Spec.Containers), 0
	reason := string(st.Phase)
	if st.Reason != "" {
		reason = st.Reason
	}
	initializing := false
	for i, s := range st.InitContainerStatuses {
		restarts += s.RestartCount
		if IsSidecar(&pod.Spec.InitContainers[i]) {
			total++
			if s.Ready {
				readyN++
			}
			if s.State.Running != nil && s.Started != nil && *s.Started {
				continue
			}
		}
		if initializing {
			continue
		}
		switch {
		case s.State.Terminated != nil && s.State.Terminated.ExitCode == 0:
			continue
		case s.State.Terminated != nil:
			reason = "Init:" + s.State.Terminated.Reason
			if s.State.Terminated.Reason == "" {
				reason = fmt.Sprintf("Init:ExitCode:%d", s.State.Terminated.ExitCode)
			}
		case s.State.Waiting != nil && s.State.Waiting.Reason != "" && s.State.Waiting.Reason != ReasonPodInitializing && s.State.Waiting.Reason != ReasonContainerCreating:
			reason = "Init:" + s.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		initializing = true
	}
	hasRunning := false
	for i := len(st.ContainerStatuses) - 1; i >= 0; i-- {
		s := st.ContainerStatuses[i]
		restarts += s.RestartCount
		if s.Ready {
			readyN++
		}
		if initializing {
			continue
		}
		switch {
		case s.State.Waiting != nil && s.State.Waiting.Reason != "":
			reason = s.State.Waiting.Reason
		case s.State.Terminated != nil && s.State.Terminated.Reason != "":
			reason = s.State.Terminated.Reason
		case s.State.Terminated != nil:
			reason = fmt.Sprintf("ExitCode:%d", s.State.Terminated.ExitCode)
		case s.State.Running != nil && s.Ready:
			hasRunning = true
		}
	}
	if reason == "Completed" && hasRunning {
		reason = string(corev1.PodRunning)
	}
	if pod.DeletionTimestamp != nil {
		reason = "Terminating"
	}
	return fmt.Sprintf("%d/%d", readyN, total), reason, restarts
}
