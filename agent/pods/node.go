package pods

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/skiff-dev/skiff/agent/cri"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podstatus"
)

// Finalizer is put on bound pods so that a pod object never disappears
// while its containers still run; the agent removes it once the containers
// and the sandbox are gone.
const Finalizer = "core.skiff.dev/agent"

// Default timings.
const (
	// DefaultResync is how often a pod whose containers are still changing
	// is looked at again.
	DefaultResync = time.Second
	// DefaultSteadyResync is how often a pod that is stable is looked at.
	DefaultSteadyResync = 10 * time.Second
	// DefaultGracePeriod is the termination grace period when the pod sets none.
	DefaultGracePeriod = 30 * time.Second
)

// Volumes prepares and removes the volumes of pods on the host.
type Volumes interface {
	// Setup makes every volume of the pod ready and returns its host
	// path by volume name. It is called on every sync and refreshes
	// ConfigMap, Secret and downward API contents with an atomic swap.
	Setup(ctx context.Context, pod *corev1alpha1.Pod) (map[string]string, error)
	// Cleanup removes the volumes of the pod with that UID.
	Cleanup(ctx context.Context, uid types.UID) error
}

// Options configure the pods of one node.
type Options struct {
	// NodeName is the node whose pods these are.
	NodeName string
	// Runtime runs the containers; RuntimeName prefixes container IDs.
	Runtime     cri.Runtime
	RuntimeName string
	// Client writes pod status, finalizers and events.
	Client client.Client
	// Reader reads ConfigMaps and Secrets; it should not cache every
	// ConfigMap and Secret of the cluster.
	Reader client.Reader
	// Recorder records events on pods; nil records none.
	Recorder record.EventRecorder
	// Volumes is nil for simulated nodes, which mount nothing.
	Volumes Volumes
	// Prober runs probes and hooks; nil means every probe succeeds.
	Prober Prober
	// HostIP is the node's address; Allocatable its allocatable resources.
	HostIP      func() string
	Allocatable func() corev1.ResourceList
	// HostDNS is the DNS configuration of pods with dnsPolicy Default.
	HostDNS func() *runtimeapi.DNSConfig
	// ClusterDNS and ClusterDomain configure ClusterFirst pods.
	ClusterDNS    []string
	ClusterDomain string
	// RootDir holds pod logs.
	RootDir string
	// TerminationLog returns the host file mounted at a container's
	// terminationMessagePath; nil mounts none.
	TerminationLog func(pod *corev1alpha1.Pod, container string, attempt uint32) (string, error)
	// TerminationMessage reads a terminated container's message from that
	// file; nil reads none.
	TerminationMessage func(uid types.UID, container string, attempt uint32) string
	// UseFinalizer puts Finalizer on the node's pods.
	UseFinalizer bool
	// Resync and SteadyResync default to DefaultResync and DefaultSteadyResync.
	Resync, SteadyResync time.Duration
	// VolumeRefresh is how often the contents of ConfigMap, Secret and
	// downward API volumes of running pods are refreshed (default 10s).
	VolumeRefresh time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Node runs the pods of one node. Sync must not run concurrently for one
// pod; the Dispatcher guarantees it.
type Node struct {
	opts        Options
	backoff     *Backoff
	pullBackoff *Backoff
	enqueue     func(types.NamespacedName)

	mu   sync.Mutex
	pods map[types.UID]*podState
}

// podState is what the agent remembers of a pod between syncs.
type podState struct {
	key     types.NamespacedName
	waiting map[string]Waiting
	// pullFailed is when the image of a container last failed to pull.
	pullFailed map[string]time.Time
	status     *corev1alpha1.PodStatus
	// written is the pod as the agent's last status write stored it, and
	// writtenOver the resourceVersion of the cached pod that write began
	// from: while the cache still holds that version, written is the
	// newer truth (see base).
	written     *corev1alpha1.Pod
	writtenOver string
	probes      *probeSet
	// volumesRefreshed is when ConfigMap, Secret and downward API
	// contents were last written.
	volumesRefreshed time.Time
	// seen is when the agent first saw the pod.
	seen time.Time
}

// NewNode returns the pod runner of one node.
func NewNode(opts Options) *Node {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Resync == 0 {
		opts.Resync = DefaultResync
	}
	if opts.SteadyResync == 0 {
		opts.SteadyResync = DefaultSteadyResync
	}
	if opts.VolumeRefresh == 0 {
		opts.VolumeRefresh = 10 * time.Second
	}
	if opts.HostIP == nil {
		opts.HostIP = func() string { return "" }
	}
	if opts.RuntimeName == "" {
		opts.RuntimeName = "cri"
	}
	return &Node{
		opts:        opts,
		backoff:     NewBackoff(InitialBackoff, MaxBackoff),
		pullBackoff: NewBackoff(InitialBackoff, MaxBackoff),
		enqueue:     func(types.NamespacedName) {},
		pods:        map[types.UID]*podState{},
	}
}

// Name is the node's name.
func (n *Node) Name() string { return n.opts.NodeName }

func (n *Node) state(pod *corev1alpha1.Pod) *podState {
	n.mu.Lock()
	defer n.mu.Unlock()
	ps, ok := n.pods[pod.UID]
	if !ok {
		ps = &podState{key: client.ObjectKeyFromObject(pod), waiting: map[string]Waiting{}, pullFailed: map[string]time.Time{}, seen: n.opts.Now()}
		ps.probes = newProbeSet(n, ps.key)
		n.pods[pod.UID] = ps
	}
	return ps
}

func (n *Node) forget(uid types.UID) {
	n.mu.Lock()
	ps := n.pods[uid]
	delete(n.pods, uid)
	n.mu.Unlock()
	if ps != nil {
		ps.probes.stopAll()
	}
	n.backoff.Forget(string(uid) + "/")
	n.pullBackoff.Forget(string(uid) + "/")
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	if status.Code(err) == codes.NotFound {
		return true
	}
	return strings.Contains(err.Error(), "not found")
}

func (n *Node) event(pod *corev1alpha1.Pod, typ, reason, format string, args ...any) {
	if n.opts.Recorder != nil {
		n.opts.Recorder.Eventf(pod, typ, reason, format, args...)
	}
}

// Sync brings the runtime in line with the pod and patches its status. It
// returns when the pod should be looked at again (0: only on the next event).
func (n *Node) Sync(ctx context.Context, pod *corev1alpha1.Pod) (time.Duration, error) {
	log := ctrl.LoggerFrom(ctx).WithValues("pod", klog.KObj(pod), "node", n.opts.NodeName)
	ctx = ctrl.LoggerInto(ctx, log)
	ps := n.state(pod)

	rp, err := GetRuntimePod(ctx, n.opts.Runtime, pod.UID)
	if err != nil {
		return 0, fmt.Errorf("reading the runtime state of pod %s: %w", klog.KObj(pod), err)
	}

	n.fillTerminationMessages(pod, rp)
	if pod.DeletionTimestamp != nil {
		if rp.AnyRunning() && ps.status != nil && ps.status.DisplayStatus != "Terminating" {
			// Tell users the pod is going before the grace period runs.
			base := ps.base(pod)
			st := ComputePodStatus(StatusInput{Pod: base, Runtime: rp, Probes: ps.probes.results(), Waiting: ps.waiting,
				HostIP: n.opts.HostIP(), RuntimeName: n.opts.RuntimeName, Now: n.opts.Now()})
			if err := n.patchStatus(ctx, base, ps, st); err != nil {
				log.V(2).Info("Posting the Terminating status failed", "err", err.Error())
			}
		}
		return n.terminate(ctx, pod, rp)
	}
	if n.opts.UseFinalizer && !controllerutil.ContainsFinalizer(pod, Finalizer) {
		log.V(4).Info("Adding the agent finalizer")
		patch := client.MergeFromWithOptions(pod.DeepCopy(), client.MergeFromWithOptimisticLock{})
		withFinalizer := pod.DeepCopy()
		controllerutil.AddFinalizer(withFinalizer, Finalizer)
		if err := n.opts.Client.Patch(ctx, withFinalizer, patch); err != nil {
			return 0, fmt.Errorf("adding the finalizer to pod %s: %w", klog.KObj(pod), err)
		}
		pod = withFinalizer
	}
	if ps.status != nil {
		// The cache may not yet hold the status we posted last.
		pod = ps.base(pod)
	}

	now := n.opts.Now()
	probes := ps.probes.results()
	actions := ComputePodActions(ActionInput{Pod: pod, Runtime: rp, Probes: probes, Backoff: n.backoff, Now: now})
	if !actions.Empty() {
		log.V(3).Info("Syncing pod", "actions", actionsString(actions))
	}
	changed := n.execute(ctx, pod, rp, ps, actions)
	if changed {
		ps.volumesRefreshed = now
	} else if n.opts.Volumes != nil && hasProjectedContent(pod) && now.Sub(ps.volumesRefreshed) >= n.opts.VolumeRefresh && rp.AnyRunning() {
		// Changed ConfigMaps and Secrets reach running pods by an atomic swap.
		if _, err := n.opts.Volumes.Setup(ctx, pod); err != nil {
			log.V(2).Info("Refreshing volumes failed", "err", err.Error())
		}
		ps.volumesRefreshed = now
	}
	if changed {
		if rp, err = GetRuntimePod(ctx, n.opts.Runtime, pod.UID); err != nil {
			return 0, fmt.Errorf("reading the runtime state of pod %s: %w", klog.KObj(pod), err)
		}
		n.fillTerminationMessages(pod, rp)
	}
	n.pruneContainers(ctx, rp)
	ps.probes.sync(ctx, pod, rp)
	probes = ps.probes.results()
	now = n.opts.Now()
	if changed {
		actions.Waits = ComputePodActions(ActionInput{Pod: pod, Runtime: rp, Probes: probes, Backoff: n.backoff, Now: now}).Waits
	}
	st := ComputePodStatus(StatusInput{
		Pod: pod, Runtime: rp, Probes: probes, Waiting: ps.waiting, Waits: actions.Waits,
		HostIP: n.opts.HostIP(), RuntimeName: n.opts.RuntimeName, Now: now,
	})
	if err := n.patchStatus(ctx, pod, ps, st); err != nil {
		return 0, err
	}
	return n.nextSync(pod, ps, rp, st, actions, now), nil
}

// nextSync is when the pod is looked at again: soon while it changes, when
// its back-off ends, else at the steady pace.
func (n *Node) nextSync(pod *corev1alpha1.Pod, ps *podState, rp *RuntimePod, st corev1alpha1.PodStatus, a PodActions, now time.Time) time.Duration {
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		if rp.AnyRunning() {
			return n.opts.Resync
		}
		return 0
	}
	next := n.opts.SteadyResync
	steady := st.Phase == corev1.PodRunning && st.Ready == fmt.Sprintf("%d/%d", len(pod.Spec.Containers)+countSidecars(pod), len(pod.Spec.Containers)+countSidecars(pod))
	if !steady || !a.Empty() || len(ps.waiting) > 0 {
		next = n.opts.Resync
	}
	for _, w := range a.Waits {
		if d := w.Until.Sub(now); d > 0 && d < next {
			next = d
		}
	}
	return next
}

// keepExited is how many containers per name a pod keeps: the newest and
// the one before it, whose state is the container status's lastState.
const keepExited = 2

// pruneContainers removes exited containers older than the two newest of
// each name, so a crash-looping pod does not pile them up in the runtime.
func (n *Node) pruneContainers(ctx context.Context, rp *RuntimePod) {
	for name, cs := range rp.Containers {
		if len(cs) <= keepExited {
			continue
		}
		kept := cs[:keepExited]
		for _, c := range cs[keepExited:] {
			if !c.Exited() {
				kept = append(kept, c)
				continue
			}
			if err := n.opts.Runtime.RemoveContainer(ctx, c.ID); err != nil && !isNotFound(err) {
				ctrl.LoggerFrom(ctx).V(2).Info("Removing an old container failed", "container", name, "id", c.ID, "err", err.Error())
				kept = append(kept, c)
			}
		}
		rp.Containers[name] = kept
	}
}

// fillTerminationMessages reads the messages of exited containers that the
// runtime did not report: the termination message file, or for
// terminationMessagePolicy FallbackToLogsOnError and a failed container
// the end of its log, as upstream.
func (n *Node) fillTerminationMessages(pod *corev1alpha1.Pod, rp *RuntimePod) {
	if n.opts.TerminationMessage == nil {
		return
	}
	for name, cs := range rp.Containers {
		spec := findContainer(pod, name)
		for _, c := range cs {
			if !c.Exited() || c.Message != "" {
				continue
			}
			c.Message = n.opts.TerminationMessage(pod.UID, c.Name, c.Attempt)
			if c.Message == "" && c.ExitCode != 0 && spec != nil && spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
				c.Message = tailLog(filepath.Join(n.SandboxConfig(pod, 0).LogDirectory, name, fmt.Sprintf("%d.log", c.Attempt)))
			}
		}
	}
}

// tailLog returns the last 80 lines (at most 2 KiB) of a CRI log file,
// without the timestamp, stream and tag of each line.
func tailLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 64*1024 {
		b = b[len(b)-64*1024:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var out []string
	for _, l := range lines {
		if f := strings.SplitN(l, " ", 4); len(f) == 4 {
			out = append(out, f[3])
		}
	}
	if len(out) > 80 {
		out = out[len(out)-80:]
	}
	msg := strings.Join(out, "\n")
	if len(msg) > 2048 {
		msg = msg[len(msg)-2048:]
	}
	return msg
}

func hasProjectedContent(pod *corev1alpha1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil {
			return true
		}
	}
	return false
}

func countSidecars(pod *corev1alpha1.Pod) int {
	c := 0
	for i := range pod.Spec.InitContainers {
		if IsSidecar(&pod.Spec.InitContainers[i]) {
			c++
		}
	}
	return c
}

func actionsString(a PodActions) string {
	var parts []string
	if a.KillPod {
		parts = append(parts, "kill pod")
	}
	if a.CreateSandbox {
		parts = append(parts, fmt.Sprintf("create sandbox (attempt %d)", a.Attempt))
	}
	for id, k := range a.ContainersToKill {
		parts = append(parts, fmt.Sprintf("kill %s (%s)", k.Name, id))
	}
	if len(a.InitContainersToStart) > 0 {
		parts = append(parts, fmt.Sprintf("start init %v", a.InitContainersToStart))
	}
	if len(a.ContainersToStart) > 0 {
		parts = append(parts, fmt.Sprintf("start %v", a.ContainersToStart))
	}
	return strings.Join(parts, ", ")
}

// patchStatus writes st through podstatus.Patch: a JSON merge patch with
// the pod's resourceVersion as precondition, the pod read afresh and the
// status merged again on a conflict. status.conditions is a list, so the
// patch replaces it whole: the list written is MergeConditions of the
// pod's and st's, and the precondition makes sure the pod's conditions are
// the API server's, so conditions other writers set (DisruptionTarget,
// PodScheduled) are never dropped.
func (n *Node) patchStatus(ctx context.Context, pod *corev1alpha1.Pod, ps *podState, st corev1alpha1.PodStatus) error {
	if equality.Semantic.DeepEqual(st, pod.Status) && ps.status != nil {
		return nil
	}
	stored := pod.DeepCopy()
	err := podstatus.Patch(ctx, n.opts.Reader, n.opts.Client.Status(), stored, func(p *corev1alpha1.Pod) {
		if p.UID != pod.UID {
			return // deleted and created again under the same name: not this pod's status
		}
		conditions := MergeConditions(p.Status.Conditions, st.Conditions)
		p.Status = *st.DeepCopy()
		p.Status.Conditions = conditions
	})
	if apierrors.IsNotFound(err) || (err == nil && stored.UID != pod.UID) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("patching the status of pod %s: %w", klog.KObj(pod), err)
	}
	st = stored.Status
	observePodStart(ps, pod, st, n.opts.Now())
	ps.status = st.DeepCopy()
	over := pod.ResourceVersion
	if ps.written != nil && over == ps.written.ResourceVersion {
		over = ps.writtenOver // written over the last write: the cache is behind both
	}
	ps.written, ps.writtenOver = stored, over
	return nil
}

// base is the pod to compute and write the next status from: the cached
// pod with the status the agent posted last. While the cache has not yet
// seen the agent's last write (it still holds the version that write
// began from), it is the pod as that write stored it, so the next write's
// resourceVersion precondition is not stale by the agent's own write (a
// 409, a read and a second write otherwise).
func (ps *podState) base(pod *corev1alpha1.Pod) *corev1alpha1.Pod {
	if ps.written != nil && pod.ResourceVersion == ps.writtenOver {
		return ps.written.DeepCopy()
	}
	return withLastStatus(pod, ps.status)
}

// execute carries out the actions in numbered steps and tells whether it
// changed anything in the runtime. Failures are reported in the pod's
// waiting reasons and events; the next sync tries again.
func (n *Node) execute(ctx context.Context, pod *corev1alpha1.Pod, rp *RuntimePod, ps *podState, a PodActions) bool {
	log := ctrl.LoggerFrom(ctx)
	if a.Empty() {
		return false
	}
	// Step 1: kill the pod when its sandbox must go.
	if a.KillPod {
		log.V(2).Info("Killing pod")
		if err := n.killPod(ctx, pod, rp, gracePeriod(pod)); err != nil {
			log.Error(err, "Killing the pod failed")
			return true
		}
	}
	// Step 2: kill containers that failed liveness or changed.
	for id, k := range a.ContainersToKill {
		log.V(2).Info("Killing container", "container", k.Name, "reason", k.Reason)
		n.event(pod, corev1.EventTypeNormal, "Killing", "%s", k.Message)
		c := findContainer(pod, k.Name)
		if err := n.killContainer(ctx, pod, c, id, gracePeriod(pod)); err != nil {
			log.Error(err, "Killing the container failed", "container", k.Name)
		}
	}
	// Step 3: create the sandbox.
	sandboxID := a.SandboxID
	sandboxConfig := n.SandboxConfig(pod, a.Attempt)
	if a.CreateSandbox {
		log.V(2).Info("Creating pod sandbox", "attempt", a.Attempt)
		if n.opts.Volumes != nil {
			if _, err := n.opts.Volumes.Setup(ctx, pod); err != nil {
				n.event(pod, corev1.EventTypeWarning, "FailedMount", "Unable to prepare volumes: %v", err)
				return false
			}
		}
		id, err := n.opts.Runtime.RunPodSandbox(ctx, sandboxConfig, "")
		if err != nil {
			n.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			log.Error(err, "Creating the pod sandbox failed")
			return true
		}
		sandboxID = id
	}
	if len(a.InitContainersToStart) == 0 && len(a.ContainersToStart) == 0 {
		return true
	}
	podIP := ""
	if resp, err := n.opts.Runtime.PodSandboxStatus(ctx, sandboxID, false); err == nil {
		podIP = resp.GetStatus().GetNetwork().GetIp()
	}
	var volumes map[string]string
	if n.opts.Volumes != nil {
		var err error
		if volumes, err = n.opts.Volumes.Setup(ctx, pod); err != nil {
			n.event(pod, corev1.EventTypeWarning, "FailedMount", "Unable to prepare volumes: %v", err)
			return true
		}
	}
	// Step 4: start the next init container (and restart sidecars).
	for _, i := range a.InitContainersToStart {
		c := &pod.Spec.InitContainers[i]
		if err := n.startContainer(ctx, pod, rp, ps, c, sandboxID, sandboxConfig, volumes, podIP); err != nil {
			return true
		}
	}
	// Step 5: start containers.
	for _, i := range a.ContainersToStart {
		_ = n.startContainer(ctx, pod, rp, ps, &pod.Spec.Containers[i], sandboxID, sandboxConfig, volumes, podIP)
	}
	return true
}

func findContainer(pod *corev1alpha1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

func gracePeriod(pod *corev1alpha1.Pod) time.Duration {
	if pod.DeletionGracePeriodSeconds != nil && *pod.DeletionGracePeriodSeconds > 0 {
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return DefaultGracePeriod
}

// startContainer pulls the image, builds the configuration, creates and
// starts the container and runs its postStart hook.
func (n *Node) startContainer(ctx context.Context, pod *corev1alpha1.Pod, rp *RuntimePod, ps *podState, c *corev1.Container,
	sandboxID string, sandboxConfig *runtimeapi.PodSandboxConfig, volumes map[string]string, podIP string) error {
	log := ctrl.LoggerFrom(ctx).WithValues("container", c.Name)
	attempt := uint32(0)
	if l := rp.Latest(c.Name); l != nil {
		attempt = l.Attempt + 1
	}
	imageRef, err := n.ensureImage(ctx, pod, ps, c, sandboxConfig)
	if err != nil {
		return err
	}
	cfg, err := n.ContainerConfig(ctx, pod, c, imageRef, attempt, volumes, podIP)
	if err != nil {
		var ce configError
		if errors.As(err, &ce) {
			ps.waiting[c.Name] = Waiting{Reason: ReasonCreateContainerConfigError, Message: ce.msg}
			n.event(pod, corev1.EventTypeWarning, "Failed", "Error: %s", ce.msg)
		}
		return err
	}
	log.V(2).Info("Creating container", "attempt", attempt)
	id, err := n.opts.Runtime.CreateContainer(ctx, sandboxID, cfg, sandboxConfig)
	if err != nil {
		ps.waiting[c.Name] = Waiting{Reason: ReasonCreateContainerError, Message: err.Error()}
		n.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return err
	}
	n.event(pod, corev1.EventTypeNormal, "Created", "Created container %s", c.Name)
	if attempt > 0 {
		// Each restart after an exit grows the back-off, as upstream.
		n.backoff.Next(BackoffKey(pod, c.Name), n.opts.Now())
	}
	if err := n.opts.Runtime.StartContainer(ctx, id); err != nil {
		ps.waiting[c.Name] = Waiting{Reason: ReasonRunContainerError, Message: err.Error()}
		n.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return err
	}
	delete(ps.waiting, c.Name)
	n.event(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil && n.opts.Prober != nil {
		if msg, err := n.opts.Prober.Hook(ctx, pod, podIP, c, id, c.Lifecycle.PostStart); err != nil {
			log.V(2).Info("PostStart hook failed", "message", msg)
			n.event(pod, corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed: %s", msg)
			_ = n.killContainer(ctx, pod, nil, id, gracePeriod(pod))
		}
	}
	return nil
}

// pullPolicy is the container's imagePullPolicy, defaulted as upstream:
// Always for :latest or no tag, else IfNotPresent.
func pullPolicy(c *corev1.Container) corev1.PullPolicy {
	if c.ImagePullPolicy != "" {
		return c.ImagePullPolicy
	}
	img := c.Image
	if strings.Contains(img, "@") {
		return corev1.PullIfNotPresent
	}
	slash := strings.LastIndex(img, "/")
	tag := ""
	if i := strings.LastIndex(img, ":"); i > slash {
		tag = img[i+1:]
	}
	if tag == "" || tag == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// ensureImage makes the image present according to the pull policy and
// returns its reference.
func (n *Node) ensureImage(ctx context.Context, pod *corev1alpha1.Pod, ps *podState, c *corev1.Container, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	spec := &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image}
	policy := pullPolicy(c)
	if policy != corev1.PullAlways {
		st, err := n.opts.Runtime.ImageStatus(ctx, spec, false)
		if err == nil && st.GetImage() != nil {
			return st.GetImage().GetId(), nil
		}
		if policy == corev1.PullNever {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			ps.waiting[c.Name] = Waiting{Reason: ReasonErrImageNeverPull, Message: msg}
			n.event(pod, corev1.EventTypeWarning, ReasonErrImageNeverPull, "%s", msg)
			return "", errors.New(msg)
		}
	}
	key := string(pod.UID) + "/" + c.Image
	if last, ok := ps.pullFailed[c.Name]; ok {
		if wait, _ := n.pullBackoff.InBackoffSince(key, last, n.opts.Now()); wait {
			ps.waiting[c.Name] = Waiting{Reason: ReasonImagePullBackOff, Message: fmt.Sprintf("Back-off pulling image %q", c.Image)}
			n.event(pod, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
			return "", errors.New("image pull back-off")
		}
	}
	n.event(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	start := n.opts.Now()
	var auth *runtimeapi.AuthConfig
	if len(pod.Spec.ImagePullSecrets) > 0 {
		auth = n.pullAuth(ctx, pod, c.Image)
	}
	ref, err := n.opts.Runtime.PullImage(ctx, spec, auth, sandboxConfig)
	if err != nil {
		n.pullBackoff.Next(key, n.opts.Now())
		ps.pullFailed[c.Name] = n.opts.Now()
		ps.waiting[c.Name] = Waiting{Reason: ReasonErrImagePull, Message: err.Error()}
		n.event(pod, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", c.Image, err)
		return "", err
	}
	delete(ps.pullFailed, c.Name)
	n.event(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %s", c.Image, n.opts.Now().Sub(start).Round(time.Millisecond))
	return ref, nil
}

// killContainer runs the preStop hook, then stops the container within
// what is left of the grace period.
func (n *Node) killContainer(ctx context.Context, pod *corev1alpha1.Pod, c *corev1.Container, id string, grace time.Duration) error {
	start := n.opts.Now()
	if c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil && n.opts.Prober != nil {
		hookCtx, cancel := context.WithTimeout(ctx, grace)
		podIP := ""
		if st := n.stateIfAny(pod.UID); st != nil && st.status != nil {
			podIP = st.status.PodIP
		}
		if msg, err := n.opts.Prober.Hook(hookCtx, pod, podIP, c, id, c.Lifecycle.PreStop); err != nil {
			n.event(pod, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %s", msg)
		}
		cancel()
	}
	left := grace - n.opts.Now().Sub(start)
	secs := int64(left.Round(time.Second) / time.Second)
	if secs < 2 && grace > 0 {
		secs = 2 // Let SIGTERM handlers run at least a little, as upstream's minimum.
	}
	if err := n.opts.Runtime.StopContainer(ctx, id, secs); err != nil && !isNotFound(err) {
		return fmt.Errorf("stopping container %s: %w", id, err)
	}
	return nil
}

func (n *Node) stateIfAny(uid types.UID) *podState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pods[uid]
}

// killPod stops every running container (in parallel, each with the grace
// period) and then the sandbox.
func (n *Node) killPod(ctx context.Context, pod *corev1alpha1.Pod, rp *RuntimePod, grace time.Duration) error {
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for name, cs := range rp.Containers {
		for _, c := range cs {
			if c.Exited() {
				continue
			}
			var spec *corev1.Container
			if pod != nil {
				spec = findContainer(pod, name)
				n.event(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", name)
			}
			if pod == nil {
				grace = c.GracePeriod // The pod is gone: use what it said when it was alive.
			}
			wg.Add(1)
			go func(id string, grace time.Duration) {
				defer wg.Done()
				var err error
				if pod != nil {
					err = n.killContainer(ctx, pod, spec, id, grace)
				} else {
					err = n.opts.Runtime.StopContainer(ctx, id, int64(grace/time.Second))
					if isNotFound(err) {
						err = nil
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}(c.ID, grace)
		}
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for _, s := range rp.Sandboxes {
		if !s.Ready {
			continue
		}
		if err := n.opts.Runtime.StopPodSandbox(ctx, s.ID); err != nil && !isNotFound(err) {
			return fmt.Errorf("stopping sandbox %s: %w", s.ID, err)
		}
	}
	return nil
}

// removePod removes every container and sandbox of the pod and its volumes.
func (n *Node) removePod(ctx context.Context, uid types.UID, rp *RuntimePod) error {
	for _, cs := range rp.Containers {
		for _, c := range cs {
			if err := n.opts.Runtime.RemoveContainer(ctx, c.ID); err != nil && !isNotFound(err) {
				return fmt.Errorf("removing container %s: %w", c.ID, err)
			}
		}
	}
	for _, s := range rp.Sandboxes {
		if err := n.opts.Runtime.RemovePodSandbox(ctx, s.ID); err != nil && !isNotFound(err) {
			return fmt.Errorf("removing sandbox %s: %w", s.ID, err)
		}
	}
	if n.opts.Volumes != nil {
		if err := n.opts.Volumes.Cleanup(ctx, uid); err != nil {
			return err
		}
	}
	return n.removeLogs(uid)
}

// removeLogs removes the log directory of a removed pod (its name is not
// known any more when the pod object is gone), as the kubelet does.
func (n *Node) removeLogs(uid types.UID) error {
	if n.opts.RootDir == "" || uid == "" {
		return nil
	}
	dirs, err := filepath.Glob(filepath.Join(n.opts.RootDir, "logs", "*_"+string(uid)))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("removing the logs of pod %s: %w", uid, err)
		}
	}
	return nil
}

// terminate handles a pod being deleted: kill, remove, then drop the finalizer.
func (n *Node) terminate(ctx context.Context, pod *corev1alpha1.Pod, rp *RuntimePod) (time.Duration, error) {
	log := ctrl.LoggerFrom(ctx)
	if rp.AnyRunning() {
		log.V(2).Info("Killing pod", "reason", "deleted")
		if err := n.killPod(ctx, pod, rp, gracePeriod(pod)); err != nil {
			return 0, err
		}
	}
	if !rp.Empty() || n.opts.Volumes != nil {
		if err := n.removePod(ctx, pod.UID, rp); err != nil {
			return 0, err
		}
	}
	n.forget(pod.UID)
	if controllerutil.ContainsFinalizer(pod, Finalizer) {
		log.V(2).Info("Removing the agent finalizer")
		// The optimistic lock keeps other finalizers; our own status
		// writes make the cached copy stale, so a conflict reads afresh.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			patch := client.MergeFromWithOptions(pod.DeepCopy(), client.MergeFromWithOptimisticLock{})
			updated := pod.DeepCopy()
			controllerutil.RemoveFinalizer(updated, Finalizer)
			err := n.opts.Client.Patch(ctx, updated, patch)
			if apierrors.IsConflict(err) {
				fresh := &corev1alpha1.Pod{}
				if gerr := n.opts.Reader.Get(ctx, client.ObjectKeyFromObject(pod), fresh); gerr != nil {
					return gerr
				}
				pod = fresh
			}
			return err
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("removing the finalizer of pod %s: %w", klog.KObj(pod), err)
		}
	}
	return 0, nil
}

// SyncGone cleans up after a pod that no longer exists.
func (n *Node) SyncGone(ctx context.Context, uid types.UID) error {
	rp, err := GetRuntimePod(ctx, n.opts.Runtime, uid)
	if err != nil {
		return err
	}
	if rp.AnyRunning() {
		ctrl.LoggerFrom(ctx).V(2).Info("Killing the containers of a deleted pod", "uid", uid)
		if err := n.killPod(ctx, nil, rp, DefaultGracePeriod); err != nil {
			return err
		}
	}
	if err := n.removePod(ctx, uid, rp); err != nil {
		return err
	}
	n.forget(uid)
	return nil
}

// RuntimePodUIDs lists the UIDs of the pods the runtime holds for this node.
func (n *Node) RuntimePodUIDs(ctx context.Context) ([]types.UID, error) {
	sandboxes, err := n.opts.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{cri.LabelNodeName: n.opts.NodeName}})
	if err != nil {
		return nil, err
	}
	seen := map[types.UID]bool{}
	var uids []types.UID
	for _, s := range sandboxes {
		uid := types.UID(s.GetLabels()[cri.LabelPodUID])
		if uid != "" && !seen[uid] {
			seen[uid] = true
			uids = append(uids, uid)
		}
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	return uids, nil
}
