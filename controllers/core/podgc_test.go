package core

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	agentpods "github.com/skiff-dev/skiff/agent/pods"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func TestAgentFinalizerIsTheAgents(t *testing.T) {
	if AgentFinalizer != agentpods.Finalizer {
		t.Fatalf("AgentFinalizer = %q, the agent puts %q", AgentFinalizer, agentpods.Finalizer)
	}
}

func TestPodGracePeriod(t *testing.T) {
	secs := func(s int64) *int64 { return &s }
	tests := map[string]struct {
		pod  corev1alpha1.Pod
		want time.Duration
	}{
		"none set: 30s": {corev1alpha1.Pod{}, 30 * time.Second},
		"the pod's terminationGracePeriodSeconds": {corev1alpha1.Pod{Spec: corev1.PodSpec{TerminationGracePeriodSeconds: secs(5)}}, 5 * time.Second},
		"zero seconds": {corev1alpha1.Pod{Spec: corev1.PodSpec{TerminationGracePeriodSeconds: secs(0)}}, 0},
		"the deletion's grace period wins": {corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionGracePeriodSeconds: secs(3)},
			Spec: corev1.PodSpec{TerminationGracePeriodSeconds: secs(5)}}, 3 * time.Second},
		"a zero deletion grace period (every custom resource has one) does not count": {corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionGracePeriodSeconds: secs(0)},
			Spec: corev1.PodSpec{TerminationGracePeriodSeconds: secs(5)}}, 5 * time.Second},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := podGracePeriod(&tt.pod); got != tt.want {
				t.Errorf("podGracePeriod = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTerminatingGC(t *testing.T) {
	deleted := metav1.NewTime(t0)
	ten := int64(10)
	terminating := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &ten}}
	running := &corev1alpha1.Pod{Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &ten}}
	node := func(ready metav1.ConditionStatus, taints ...corev1.Taint) *corev1alpha1.Node {
		n := &corev1alpha1.Node{Spec: corev1.NodeSpec{Taints: taints}}
		if ready != "" {
			n.Status.Conditions = []metav1.Condition{{Type: conditions.Ready, Status: ready}}
		}
		return n
	}
	oos := corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}
	oosNoSchedule := corev1.Taint{Key: corev1.TaintNodeOutOfService, Effect: corev1.TaintEffectNoSchedule}
	unreach := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	tests := []struct {
		name       string
		pod        *corev1alpha1.Pod
		node       *corev1alpha1.Node
		delay      time.Duration
		at         time.Time
		wantReason gcReason
		wantWait   time.Duration
	}{
		{"a pod that is not terminating stays", running, node(metav1.ConditionUnknown, oos), time.Minute, t0.Add(time.Hour), gcNone, 0},
		{"a Ready node finishes the deletion itself", terminating, node(metav1.ConditionTrue, oos), time.Minute, t0.Add(time.Hour), gcNone, 0},
		{"out-of-service on an unreachable node: at once", terminating, node(metav1.ConditionUnknown, unreach, oos), time.Minute, t0, gcOutOfService, 0},
		{"out-of-service with any effect counts", terminating, node(metav1.ConditionFalse, oosNoSchedule), time.Minute, t0, gcOutOfService, 0},
		{"out-of-service even when the timed case is off", terminating, node(metav1.ConditionUnknown, oos), -1, t0, gcOutOfService, 0},
		{"unreachable, within the grace period: wait for grace plus delay", terminating, node(metav1.ConditionUnknown, unreach), time.Minute, t0.Add(5 * time.Second),
			gcNone, 65 * time.Second},
		{"unreachable, grace over, within the delay", terminating, node(metav1.ConditionUnknown, unreach), time.Minute, t0.Add(40 * time.Second), gcNone, 30 * time.Second},
		{"unreachable, grace and delay over", terminating, node(metav1.ConditionUnknown, unreach), time.Minute, t0.Add(70 * time.Second), gcTerminatingOnNotReady, 0},
		{"agent reports Ready=False, grace and delay over", terminating, node(metav1.ConditionFalse), time.Minute, t0.Add(70 * time.Second), gcTerminatingOnNotReady, 0},
		{"a node that never reported is not Ready", terminating, node(""), time.Minute, t0.Add(70 * time.Second), gcTerminatingOnNotReady, 0},
		{"negative delay: never, as upstream", terminating, node(metav1.ConditionUnknown, unreach), -1, t0.Add(time.Hour), gcNone, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, wait := terminatingGC(tt.pod, tt.node, tt.delay, tt.at)
			if reason != tt.wantReason || wait != tt.wantWait {
				t.Errorf("got (%q, %v), want (%q, %v)", reason, wait, tt.wantReason, tt.wantWait)
			}
		})
	}
}

func TestOrphanGC(t *testing.T) {
	tests := map[string]struct {
		at         time.Time
		wantReason gcReason
		wantWait   time.Duration
	}{
		"just found missing: quarantine": {t0, gcNone, 40 * time.Second},
		"within the quarantine":          {t0.Add(30 * time.Second), gcNone, 10 * time.Second},
		"quarantine over":                {t0.Add(40 * time.Second), gcOrphaned, 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			reason, wait := orphanGC(t0, 40*time.Second, tt.at)
			if reason != tt.wantReason || wait != tt.wantWait {
				t.Errorf("got (%q, %v), want (%q, %v)", reason, wait, tt.wantReason, tt.wantWait)
			}
		})
	}
}

func TestFailedStatus(t *testing.T) {
	running := corev1alpha1.PodStatus{Phase: corev1.PodRunning, Conditions: []metav1.Condition{{Type: conditions.Ready, Status: metav1.ConditionFalse}}}
	if got := failedStatus(corev1alpha1.PodStatus{Phase: corev1.PodSucceeded}, gcOrphaned, t0); got != nil {
		t.Errorf("a succeeded pod is left as it is, got %+v", got)
	}
	if got := failedStatus(corev1alpha1.PodStatus{Phase: corev1.PodFailed}, gcTerminatingOnNotReady, t0); got != nil {
		t.Errorf("a failed pod is left as it is, got %+v", got)
	}
	got := failedStatus(running, gcTerminatingOnNotReady, t0)
	if got.Phase != corev1.PodFailed || meta.FindStatusCondition(got.Conditions, string(corev1.DisruptionTarget)) != nil {
		t.Errorf("terminating pod: phase %s, conditions %+v; want Failed without DisruptionTarget, as upstream", got.Phase, got.Conditions)
	}
	got = failedStatus(running, gcOrphaned, t0)
	c := meta.FindStatusCondition(got.Conditions, string(corev1.DisruptionTarget))
	if got.Phase != corev1.PodFailed || c == nil || c.Status != metav1.ConditionTrue || c.Reason != "DeletionByPodGC" {
		t.Errorf("orphaned pod: phase %s, DisruptionTarget %+v; want Failed with DisruptionTarget DeletionByPodGC", got.Phase, c)
	}
	if running.Phase != corev1.PodRunning {
		t.Error("input changed")
	}
}

// TestPodGCReconcile drives the collector over a fake client on a fake
// clock: a terminating pod on an unreachable node goes once its grace
// period and the delay are over, keeping other finalizers; an orphan goes
// after the quarantine.
func TestPodGCReconcile(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	deleted := metav1.NewTime(t0)
	grace := int64(10)
	node := nodeAt(t0, metav1.ConditionUnknown)
	evicted := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "ns", DeletionTimestamp: &deleted,
			Finalizers: []string{AgentFinalizer, "example.com/keep"}},
		Spec:   corev1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: &grace},
		Status: corev1alpha1.PodStatus{Phase: corev1.PodRunning},
	}
	orphan := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "ns", Finalizers: []string{AgentFinalizer}},
		Spec:       corev1.PodSpec{NodeName: "gone"},
		Status:     corev1alpha1.PodStatus{Phase: corev1.PodRunning},
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(node, evicted, orphan).
		WithStatusSubresource(&corev1alpha1.Pod{}, &corev1alpha1.Node{}).Build()
	r := NewPodGCReconciler(c, c, events.NewFakeRecorder(100), clk, PodGCOptions{TerminatingDelay: 5 * time.Second, OrphanQuarantine: 20 * time.Second})
	reconcile := func(name string) ctrl.Result {
		t.Helper()
		res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	get := func(name string) (*corev1alpha1.Pod, bool) {
		p := &corev1alpha1.Pod{}
		err := c.Get(ctx, types.NamespacedName{Namespace: "ns", Name: name}, p)
		if apierrors.IsNotFound(err) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return p, true
	}

	if res := reconcile("web-0"); res.RequeueAfter != 15*time.Second {
		t.Errorf("terminating pod: requeue after %v, want 15s (grace 10s + delay 5s)", res.RequeueAfter)
	}
	if res := reconcile("orphan"); res.RequeueAfter != 20*time.Second {
		t.Errorf("orphan: requeue after %v, want the 20s quarantine", res.RequeueAfter)
	}
	clk.Step(15 * time.Second)
	reconcile("web-0")
	p, ok := get("web-0")
	if !ok {
		t.Fatal("web-0 is gone although another finalizer holds it")
	}
	if diff := cmp.Diff([]string{"example.com/keep"}, p.Finalizers); diff != "" {
		t.Errorf("finalizers (-want +got):\n%s", diff)
	}
	if p.Status.Phase != corev1.PodFailed {
		t.Errorf("phase %s, want Failed", p.Status.Phase)
	}
	if res := reconcile("orphan"); res.RequeueAfter != 5*time.Second {
		t.Errorf("orphan: requeue after %v, want the 5s left of the quarantine", res.RequeueAfter)
	}
	if _, ok := get("orphan"); !ok {
		t.Fatal("orphan deleted within its quarantine")
	}
	clk.Step(5 * time.Second)
	reconcile("orphan")
	if _, ok := get("orphan"); ok {
		t.Error("orphan still there after the quarantine")
	}
}

// TestPodGCLeavesPodsOfReadyNodes checks that nothing happens to a
// terminating pod whose agent is there.
func TestPodGCLeavesPodsOfReadyNodes(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0.Add(time.Hour))
	deleted := metav1.NewTime(t0)
	pod := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", DeletionTimestamp: &deleted, Finalizers: []string{AgentFinalizer}},
		Spec:       corev1.PodSpec{NodeName: "n1"},
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(nodeAt(t0, metav1.ConditionTrue), pod).
		WithStatusSubresource(&corev1alpha1.Pod{}).Build()
	r := NewPodGCReconciler(c, c, events.NewFakeRecorder(10), clk, PodGCOptions{TerminatingDelay: time.Second})
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(pod)})
	if err != nil || res.RequeueAfter != 0 {
		t.Fatalf("got (%v, %v), want no requeue: the node's readiness change enqueues the pod", res, err)
	}
	got := &corev1alpha1.Pod{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(pod), got); err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(got.Finalizers, []string{AgentFinalizer}) {
		t.Errorf("finalizers %v, want the agent's kept", got.Finalizers)
	}
}
