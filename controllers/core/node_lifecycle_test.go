package core

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func nodeAt(created time.Time, ready metav1.ConditionStatus) *corev1alpha1.Node {
	n := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", CreationTimestamp: metav1.Time{Time: created}}}
	if ready != "" {
		n.Status.Conditions = []metav1.Condition{{Type: conditions.Ready, Status: ready, Reason: "AgentReady"}}
	}
	return n
}

func leaseAt(renewed time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: renewed}}}
}

func TestAssessNode(t *testing.T) {
	grace := 40 * time.Second
	tests := []struct {
		name       string
		node       *corev1alpha1.Node
		lease      *coordinationv1.Lease
		now        time.Time
		wantHealth nodeHealth
		wantUntil  time.Duration
	}{
		{"lease renewed 10s ago", nodeAt(t0, metav1.ConditionTrue), leaseAt(t0.Add(time.Minute)), t0.Add(70 * time.Second), nodeHealthy, 30 * time.Second},
		{"lease expired", nodeAt(t0, metav1.ConditionTrue), leaseAt(t0.Add(time.Minute)), t0.Add(100 * time.Second), nodeUnreachable, 0},
		{"exactly at the grace period", nodeAt(t0, metav1.ConditionTrue), leaseAt(t0), t0.Add(grace), nodeUnreachable, 0},
		{"no lease yet: counted from creation", nodeAt(t0, ""), nil, t0.Add(10 * time.Second), nodeHealthy, 30 * time.Second},
		{"no lease ever", nodeAt(t0, ""), nil, t0.Add(time.Minute), nodeUnreachable, 0},
		{"agent reports not ready", nodeAt(t0, metav1.ConditionFalse), leaseAt(t0), t0.Add(time.Second), nodeNotReady, 39 * time.Second},
		{"our own Unknown with a fresh lease is not a taint reason", nodeAt(t0, metav1.ConditionUnknown), leaseAt(t0), t0.Add(time.Second), nodeHealthy, 39 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, until := assessNode(tt.node, tt.lease, tt.now, grace)
			if h != tt.wantHealth || until != tt.wantUntil {
				t.Errorf("got (%v, %v), want (%v, %v)", h, until, tt.wantHealth, tt.wantUntil)
			}
		})
	}
}

func TestUnknownStatus(t *testing.T) {
	got := unknownStatus(nodeAt(t0, metav1.ConditionTrue).Status, true)
	if got == nil {
		t.Fatal("want a status with Ready=Unknown")
	}
	c := got.Conditions[0]
	if c.Status != metav1.ConditionUnknown || c.Reason != corev1alpha1.ReasonNodeStatusUnknown || got.DisplayStatus != "Unknown,SchedulingDisabled" {
		t.Errorf("got %+v, display %q", c, got.DisplayStatus)
	}
	if again := unknownStatus(*got, true); again != nil {
		t.Errorf("already Unknown: want no change, got %+v", again)
	}
}

func TestDesiredTaints(t *testing.T) {
	now := metav1.Time{Time: t0}
	earlier := &metav1.Time{Time: t0.Add(-time.Hour)}
	unreachNoSched := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}
	unreachNoExec := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &now}
	notReadyNoSched := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
	notReadyNoExec := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute, TimeAdded: &now}
	user := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	diskNoSched := corev1.Taint{Key: corev1.TaintNodeDiskPressure, Effect: corev1.TaintEffectNoSchedule}
	memNoSched := corev1.Taint{Key: corev1.TaintNodeMemoryPressure, Effect: corev1.TaintEffectNoSchedule}
	pidNoSched := corev1.Taint{Key: corev1.TaintNodePIDPressure, Effect: corev1.TaintEffectNoSchedule}
	pressure := func(typ string, s metav1.ConditionStatus) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s}
	}
	tests := []struct {
		name        string
		conds       []metav1.Condition
		current     []corev1.Taint
		health      nodeHealth
		want        []corev1.Taint
		wantChanged bool
	}{
		{"healthy untainted node", nil, nil, nodeHealthy, nil, false},
		{"unreachable gets both taints", nil, []corev1.Taint{user}, nodeUnreachable, []corev1.Taint{user, unreachNoSched, unreachNoExec}, true},
		{"unreachable keeps the time a taint was added", nil,
			[]corev1.Taint{unreachNoSched, {Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: earlier}}, nodeUnreachable,
			[]corev1.Taint{unreachNoSched, {Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: earlier}}, false},
		{"recovered node is untainted, other taints stay", nil, []corev1.Taint{unreachNoSched, user, unreachNoExec}, nodeHealthy, []corev1.Taint{user}, true},
		{"not ready replaces unreachable", nil, []corev1.Taint{unreachNoSched, unreachNoExec}, nodeNotReady, []corev1.Taint{notReadyNoSched, notReadyNoExec}, true},
		{"disk pressure taints the node", []metav1.Condition{pressure(corev1alpha1.NodeDiskPressure, metav1.ConditionTrue)}, []corev1.Taint{user}, nodeHealthy, []corev1.Taint{user, diskNoSched}, true},
		{"a pressure taint stays while the pressure does", []metav1.Condition{pressure(corev1alpha1.NodeDiskPressure, metav1.ConditionTrue)}, []corev1.Taint{diskNoSched}, nodeHealthy, []corev1.Taint{diskNoSched}, false},
		{"relieved pressure removes the taint", []metav1.Condition{pressure(corev1alpha1.NodeMemoryPressure, metav1.ConditionFalse)}, []corev1.Taint{memNoSched, user}, nodeHealthy, []corev1.Taint{user}, true},
		{"pressure and unreachable together", []metav1.Condition{pressure(corev1alpha1.NodePIDPressure, metav1.ConditionTrue)}, nil, nodeUnreachable, []corev1.Taint{unreachNoSched, unreachNoExec, pidNoSched}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := desiredTaints(tt.current, tt.health, tt.conds, t0)
			changed := !equality.Semantic.DeepEqual(got, tt.current)
			if diff := cmp.Diff(tt.want, got); diff != "" || changed != tt.wantChanged {
				t.Errorf("changed %v (want %v); taints (-want +got):\n%s", changed, tt.wantChanged, diff)
			}
		})
	}
}

func TestEvictionTime(t *testing.T) {
	added := &metav1.Time{Time: t0}
	unreach := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: added}
	custom := corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute, TimeAdded: added}
	noSched := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}
	secs := func(s int64) *int64 { return &s }
	pod := func(tols ...corev1.Toleration) *corev1alpha1.Pod {
		return &corev1alpha1.Pod{Spec: corev1.PodSpec{Tolerations: tols}}
	}
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute, TimeAdded: added}
	tests := []struct {
		name     string
		pod      *corev1alpha1.Pod
		taints   []corev1.Taint
		defaults *DefaultTolerations
		wantAt   time.Time
		wantOK   bool
	}{
		{"no NoExecute taint", pod(), []corev1.Taint{noSched}, nil, time.Time{}, false},
		{"no toleration, configured defaults: unreachable", pod(), []corev1.Taint{unreach}, &DefaultTolerations{NotReady: 7, Unreachable: 3}, t0.Add(3 * time.Second), true},
		{"no toleration, configured defaults: not-ready", pod(), []corev1.Taint{notReady}, &DefaultTolerations{NotReady: 7, Unreachable: 3}, t0.Add(7 * time.Second), true},
		{"own toleration beats configured defaults", pod(corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, TolerationSeconds: secs(60)}),
			[]corev1.Taint{unreach}, &DefaultTolerations{NotReady: 7, Unreachable: 3}, t0.Add(60 * time.Second), true},
		{"no toleration: the default 300s", pod(), []corev1.Taint{unreach}, nil, t0.Add(300 * time.Second), true},
		{"own toleration of 5s", pod(corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(5)}),
			[]corev1.Taint{unreach}, nil, t0.Add(5 * time.Second), true},
		{"tolerated for ever", pod(corev1.Toleration{Operator: corev1.TolerationOpExists}), []corev1.Taint{unreach, custom}, nil, time.Time{}, false},
		{"untolerated custom taint: at once", pod(), []corev1.Taint{custom}, nil, t0, true},
		{"the shortest toleration wins", pod(
			corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, TolerationSeconds: secs(100)},
			corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpExists, TolerationSeconds: secs(30)}),
			[]corev1.Taint{unreach, custom}, nil, t0.Add(30 * time.Second), true},
		{"negative seconds mean at once", pod(corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, TolerationSeconds: secs(-1)}),
			[]corev1.Taint{unreach}, nil, t0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defaults := UpstreamDefaultTolerations
			if tt.defaults != nil {
				defaults = *tt.defaults
			}
			at, ok := evictionTime(tt.pod, tt.taints, defaults, t0.Add(time.Hour))
			if ok != tt.wantOK || !at.Equal(tt.wantAt) {
				t.Errorf("got (%v, %v), want (%v, %v)", at, ok, tt.wantAt, tt.wantOK)
			}
		})
	}
}

func TestNotReadyStatus(t *testing.T) {
	withReady := func(phase corev1.PodPhase, ready metav1.ConditionStatus) corev1alpha1.PodStatus {
		return corev1alpha1.PodStatus{Phase: phase, Conditions: []metav1.Condition{
			{Type: corev1alpha1.ContainersReady, Status: ready, Reason: "Test"},
			{Type: conditions.Ready, Status: ready, Reason: "Test", ObservedGeneration: 2},
		}}
	}
	tests := map[string]struct {
		status    corev1alpha1.PodStatus
		wantMark  bool
		wantReady metav1.ConditionStatus
	}{
		"running and ready is marked":     {withReady(corev1.PodRunning, metav1.ConditionTrue), true, metav1.ConditionFalse},
		"ready Unknown is marked":         {withReady(corev1.PodPending, metav1.ConditionUnknown), true, metav1.ConditionFalse},
		"already not ready stays":         {withReady(corev1.PodRunning, metav1.ConditionFalse), false, ""},
		"no Ready condition yet stays":    {corev1alpha1.PodStatus{Phase: corev1.PodPending}, false, ""},
		"succeeded pod stays as it ended": {withReady(corev1.PodSucceeded, metav1.ConditionTrue), false, ""},
		"failed pod stays as it ended":    {withReady(corev1.PodFailed, metav1.ConditionTrue), false, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := notReadyStatus(tt.status, "n1")
			if (got != nil) != tt.wantMark {
				t.Fatalf("marked = %v, want %v", got != nil, tt.wantMark)
			}
			if got == nil {
				return
			}
			ready := meta.FindStatusCondition(got.Conditions, conditions.Ready)
			if ready.Status != tt.wantReady || ready.Reason != corev1alpha1.ReasonNodeUnreachable || ready.ObservedGeneration != 2 {
				t.Errorf("Ready = %+v, want %s with reason %s", ready, tt.wantReady, corev1alpha1.ReasonNodeUnreachable)
			}
			if c := meta.FindStatusCondition(got.Conditions, corev1alpha1.ContainersReady); c.Status != tt.status.Conditions[0].Status {
				t.Errorf("ContainersReady changed to %s; only Ready is marked, as upstream", c.Status)
			}
			if !meta.IsStatusConditionTrue(got.Conditions, conditions.Reconciling) {
				t.Errorf("kstatus Reconciling not derived from the new Ready: %+v", got.Conditions)
			}
			if meta.FindStatusCondition(tt.status.Conditions, conditions.Ready).Status == metav1.ConditionFalse {
				t.Errorf("input changed")
			}
		})
	}
}
