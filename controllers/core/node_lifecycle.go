package core

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/kstatus"
)

// NodeLeaseNamespace holds one Lease per Node, named like the Node, that
// the node's agent renews.
const NodeLeaseNamespace = "skiff-node-lease"

// DefaultNodeMonitorGracePeriod is how long a Node's Lease may go without
// renewal before the Node is considered unreachable, as upstream.
const DefaultNodeMonitorGracePeriod = 40 * time.Second

// DefaultTolerationSeconds is how long a pod stays on a not-ready or
// unreachable node without its own toleration, as upstream's
// DefaultTolerationSeconds admission plugin.
const DefaultTolerationSeconds int64 = 300

// nodeHealth is what the controller concludes about a node's agent.
type nodeHealth int

const (
	// nodeHealthy: the agent renews the Lease and reports Ready (or has not yet reported).
	nodeHealthy nodeHealth = iota
	// nodeNotReady: the agent renews the Lease and reports Ready=False.
	nodeNotReady
	// nodeUnreachable: the Lease was not renewed within the grace period.
	nodeUnreachable
)

// lastHeartbeat is when the node's agent was last heard from: the Lease's
// renew (or acquire) time, else the node's creation, so a node whose agent
// never comes is noticed too.
func lastHeartbeat(node *corev1alpha1.Node, lease *coordinationv1.Lease) time.Time {
	t := node.CreationTimestamp.Time
	if lease != nil {
		if lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(t) {
			t = lease.Spec.RenewTime.Time
		} else if lease.Spec.AcquireTime != nil && lease.Spec.AcquireTime.After(t) {
			t = lease.Spec.AcquireTime.Time
		}
	}
	return t
}

// assessNode returns the node's health at now and, while it is reachable,
// how long until its Lease expires.
func assessNode(node *corev1alpha1.Node, lease *coordinationv1.Lease, now time.Time, grace time.Duration) (nodeHealth, time.Duration) {
	expiry := lastHeartbeat(node, lease).Add(grace)
	if !now.Before(expiry) {
		return nodeUnreachable, 0
	}
	if c := meta.FindStatusCondition(node.Status.Conditions, conditions.Ready); c != nil && c.Status == metav1.ConditionFalse {
		return nodeNotReady, expiry.Sub(now)
	}
	return nodeHealthy, expiry.Sub(now)
}

// unknownStatus returns the node status with Ready=Unknown, as upstream
// marks a node whose kubelet stopped posting status, or nil when it
// already says so.
func unknownStatus(status corev1alpha1.NodeStatus, unschedulable bool) *corev1alpha1.NodeStatus {
	if c := meta.FindStatusCondition(status.Conditions, conditions.Ready); c != nil && c.Status == metav1.ConditionUnknown {
		return nil
	}
	out := status.DeepCopy()
	meta.SetStatusCondition(&out.Conditions, metav1.Condition{
		Type:    conditions.Ready,
		Status:  metav1.ConditionUnknown,
		Reason:  corev1alpha1.ReasonNodeStatusUnknown,
		Message: "Agent stopped renewing the node's Lease.",
	})
	kstatus.SyncWithReady(&out.Conditions, corev1alpha1.ReasonNodeStatusUnknown)
	out.DisplayStatus = "Unknown"
	if unschedulable {
		out.DisplayStatus += ",SchedulingDisabled"
	}
	return out
}

// lifecycleTaints are the taints this controller manages.
var lifecycleTaints = []corev1.Taint{
	{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeMemoryPressure, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeDiskPressure, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Effect: corev1.TaintEffectNoSchedule},
}

// conditionTaints are the NoSchedule taints that follow the node's
// pressure conditions while they are True, as upstream's taint-nodes-by-
// condition: new pods stay off a node that reports pressure, unless they
// tolerate it (DaemonSet pods do).
var conditionTaints = map[string]string{
	corev1alpha1.NodeMemoryPressure: corev1.TaintNodeMemoryPressure,
	corev1alpha1.NodeDiskPressure:   corev1.TaintNodeDiskPressure,
	corev1alpha1.NodePIDPressure:    corev1.TaintNodePIDPressure,
}

// desiredTaints returns the node's taints with the lifecycle taints that
// match its health and its pressure conditions, keeping every other taint
// and the time a kept taint was added.
func desiredTaints(current []corev1.Taint, health nodeHealth, conds []metav1.Condition, now time.Time) (taints []corev1.Taint) {
	want := map[corev1.Taint]bool{}
	key := ""
	switch health {
	case nodeUnreachable:
		key = corev1.TaintNodeUnreachable
	case nodeNotReady:
		key = corev1.TaintNodeNotReady
	}
	for _, t := range lifecycleTaints {
		if t.Key == key {
			want[corev1.Taint{Key: t.Key, Effect: t.Effect}] = true
		}
	}
	for _, c := range conds {
		if taint, ok := conditionTaints[c.Type]; ok && c.Status == metav1.ConditionTrue {
			want[corev1.Taint{Key: taint, Effect: corev1.TaintEffectNoSchedule}] = true
		}
	}
	for _, t := range current {
		id := corev1.Taint{Key: t.Key, Effect: t.Effect}
		if isLifecycleTaint(t) && !want[id] {
			continue
		}
		delete(want, id)
		taints = append(taints, t)
	}
	for _, t := range lifecycleTaints {
		if want[corev1.Taint{Key: t.Key, Effect: t.Effect}] {
			t := t
			if t.Effect == corev1.TaintEffectNoExecute {
				t.TimeAdded = &metav1.Time{Time: now}
			}
			taints = append(taints, t)
		}
	}
	return taints
}

func isLifecycleTaint(t corev1.Taint) bool {
	for _, l := range lifecycleTaints {
		if l.Key == t.Key && l.Effect == t.Effect {
			return true
		}
	}
	return false
}

// DefaultTolerations are the tolerationSeconds a pod gets for the
// not-ready and unreachable NoExecute taints when it has no toleration of
// its own, as upstream's --default-not-ready-toleration-seconds and
// --default-unreachable-toleration-seconds.
type DefaultTolerations struct {
	NotReady, Unreachable int64
}

// UpstreamDefaultTolerations are 300 s for both taints.
var UpstreamDefaultTolerations = DefaultTolerations{NotReady: DefaultTolerationSeconds, Unreachable: DefaultTolerationSeconds}

func (d DefaultTolerations) seconds(key string) int64 {
	if key == corev1.TaintNodeNotReady {
		return d.NotReady
	}
	return d.Unreachable
}

// evictionTime says when a pod on a node with these taints must be
// evicted: never (ok false) when it tolerates every NoExecute taint for
// ever; else the earliest time one of its tolerations runs out, counted
// from when the taint was added. A pod without a toleration for the
// not-ready or unreachable taint gets the default, as if upstream's
// DefaultTolerationSeconds had added it at admission.
func evictionTime(pod *corev1alpha1.Pod, taints []corev1.Taint, defaults DefaultTolerations, now time.Time) (at time.Time, ok bool) {
	for i := range taints {
		t := &taints[i]
		if t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		added := now
		if t.TimeAdded != nil {
			added = t.TimeAdded.Time
		}
		seconds, tolerated := tolerationSeconds(pod.Spec.Tolerations, t)
		if !tolerated {
			if t.Key != corev1.TaintNodeNotReady && t.Key != corev1.TaintNodeUnreachable {
				return added, true
			}
			seconds = ptrTo(defaults.seconds(t.Key))
		}
		if seconds == nil {
			continue
		}
		s := *seconds
		if s < 0 {
			s = 0
		}
		deadline := added.Add(time.Duration(s) * time.Second)
		if !ok || deadline.Before(at) {
			at, ok = deadline, true
		}
	}
	return at, ok
}

// tolerationSeconds returns the shortest tolerationSeconds of the
// tolerations that tolerate the taint (nil: for ever), and whether any does.
func tolerationSeconds(tolerations []corev1.Toleration, t *corev1.Taint) (*int64, bool) {
	var min *int64
	tolerated, forever := false, false
	for i := range tolerations {
		tol := &tolerations[i]
		if !tol.ToleratesTaint(klog.Background(), t, false) {
			continue
		}
		tolerated = true
		if tol.TolerationSeconds == nil {
			forever = true
			continue
		}
		if min == nil || *tol.TolerationSeconds < *min {
			min = tol.TolerationSeconds
		}
	}
	if forever && min == nil {
		return nil, tolerated
	}
	return min, tolerated
}

func ptrTo[T any](v T) *T { return &v }

// notReadyStatus returns the pod status with its Ready condition False, as
// upstream's MarkPodsNotReady does for the pods of a node whose Ready
// condition went Unknown: nobody hears from their containers any more, so
// Services must stop sending them traffic now rather than when the pods
// are evicted. It returns nil when there is nothing to change: the pod
// finished, has no Ready condition yet, or is already not ready.
func notReadyStatus(status corev1alpha1.PodStatus, nodeName string) *corev1alpha1.PodStatus {
	if status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed {
		return nil
	}
	ready := meta.FindStatusCondition(status.Conditions, conditions.Ready)
	if ready == nil || ready.Status == metav1.ConditionFalse {
		return nil
	}
	out := status.DeepCopy()
	meta.SetStatusCondition(&out.Conditions, metav1.Condition{
		Type:               conditions.Ready,
		Status:             metav1.ConditionFalse,
		Reason:             corev1alpha1.ReasonNodeUnreachable,
		Message:            "Node " + nodeName + " stopped renewing its Lease; the pod's readiness is unknown.",
		ObservedGeneration: ready.ObservedGeneration,
	})
	kstatus.SyncWithReady(&out.Conditions)
	return out
}
