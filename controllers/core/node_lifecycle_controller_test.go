package core

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func podNames(t *testing.T, c client.Client) []string {
	t.Helper()
	pods := &corev1alpha1.PodList{}
	if err := c.List(context.Background(), pods); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	return names
}

// TestReconcileOnInjectedClock drives the controller on a fake clock: the
// node goes unreachable exactly at the grace period, and evictions follow
// the rate limit.
func TestReconcileOnInjectedClock(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	node := nodeAt(t0, metav1.ConditionTrue)
	// Another node stays ready: with none, the controller would hold the
	// NoExecute taint back (master disruption mode).
	other := nodeAt(t0, metav1.ConditionTrue)
	other.Name = "n2"
	objs := []client.Object{node, other, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: NodeLeaseNamespace},
		Spec:       coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: t0}},
	}}
	for i := 0; i < 3; i++ {
		objs = append(objs, &corev1alpha1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "ns"},
			Spec: corev1.PodSpec{NodeName: "n1", Tolerations: []corev1.Toleration{{
				Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, TolerationSeconds: ptrTo(int64(0))}}},
		})
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).
		WithStatusSubresource(&corev1alpha1.Node{}, &corev1alpha1.Pod{}).
		WithIndex(&corev1alpha1.Pod{}, podcontrol.IndexPodNodeName, func(o client.Object) []string { return []string{o.(*corev1alpha1.Pod).Spec.NodeName} }).
		Build()
	r := NewNodeLifecycleReconciler(c, events.NewFakeRecorder(100), clk, 40*time.Second, rate.NewLimiter(1, 1))
	req := ctrl.Request{NamespacedName: types.NamespacedName{Name: "n1"}}
	if _, err := r.Reconcile(ctx, req); err != nil { // the controller starts with n1 heard from
		t.Fatal(err)
	}

	clk.Step(39 * time.Second)
	res, err := r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter < time.Second || res.RequeueAfter > 2*time.Second {
		t.Errorf("before the grace period: requeue after %v, want about 1s", res.RequeueAfter)
	}
	if diff := cmp.Diff([]string{"p0", "p1", "p2"}, podNames(t, c)); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}

	clk.Step(time.Second)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	got := &corev1alpha1.Node{}
	if err := c.Get(ctx, req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, conditions.Ready); c == nil || c.Status != metav1.ConditionUnknown {
		t.Errorf("Ready = %+v, want Unknown", c)
	}
	if len(got.Spec.Taints) != 2 {
		t.Errorf("taints %v, want the two unreachable taints", got.Spec.Taints)
	}
	if n := len(podNames(t, c)); n != 2 {
		t.Errorf("%d pods left after the first eviction, want 2 (burst 1)", n)
	}

	res, err = r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(podNames(t, c)); n != 2 || res.RequeueAfter != time.Second {
		t.Errorf("at once: %d pods left and requeue after %v, want 2 and 1s (rate 1/s)", n, res.RequeueAfter)
	}
	clk.Step(time.Second)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := len(podNames(t, c)); n != 1 {
		t.Errorf("a second later: %d pods left, want 1", n)
	}
}

// lifecycleFixture is a fake API with the nodes given and a reconciler on
// a fake clock at t0 whose grace period is 40 s.
func lifecycleFixture(t *testing.T, opts DisruptionOptions, objs ...client.Object) (client.Client, *NodeLifecycleReconciler, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).
		WithStatusSubresource(&corev1alpha1.Node{}, &corev1alpha1.Pod{}).
		WithIndex(&corev1alpha1.Pod{}, podcontrol.IndexPodNodeName, func(o client.Object) []string { return []string{o.(*corev1alpha1.Pod).Spec.NodeName} }).
		Build()
	r := NewNodeLifecycleReconciler(c, events.NewFakeRecorder(100), clk, 40*time.Second, rate.NewLimiter(100, 100)).WithDisruption(opts)
	return c, r, clk
}

func zonedNode(name, zone string, ready metav1.ConditionStatus, taints ...corev1.Taint) *corev1alpha1.Node {
	n := nodeAt(t0, ready)
	n.Name = name
	n.Labels = map[string]string{corev1.LabelTopologyZone: zone}
	n.Spec.Taints = taints
	return n
}

func reconcileNode(t *testing.T, c client.Client, r *NodeLifecycleReconciler, name string) (*corev1alpha1.Node, ctrl.Result) {
	t.Helper()
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
	if err != nil {
		t.Fatal(err)
	}
	got := &corev1alpha1.Node{}
	if err := c.Get(context.Background(), types.NamespacedName{Name: name}, got); err != nil {
		t.Fatal(err)
	}
	return got, res
}

func taintIDs(n *corev1alpha1.Node) []string {
	var ids []string
	for _, t := range n.Spec.Taints {
		ids = append(ids, t.Key+":"+string(t.Effect))
	}
	return ids
}

var (
	unreachableNoSchedule = corev1.TaintNodeUnreachable + ":NoSchedule"
	unreachableNoExecute  = corev1.TaintNodeUnreachable + ":NoExecute"
)

// TestMasterDisruptionLiftsNoExecute: when no node anywhere is ready, the
// controller takes it for its own view failing, not every node at once:
// it lifts the NoExecute taints and evicts nothing, as upstream. A node
// that is ready again ends the mode, and the silent nodes get a fresh
// grace period before they are tainted.
func TestMasterDisruptionLiftsNoExecute(t *testing.T) {
	ctx := context.Background()
	pod := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "n1", Tolerations: []corev1.Toleration{{
		Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, TolerationSeconds: ptrTo(int64(0))}}}}
	n1 := zonedNode("n1", "a", metav1.ConditionUnknown, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &metav1.Time{Time: t0}})
	n2 := zonedNode("n2", "b", metav1.ConditionTrue)
	lease2 := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n2", Namespace: NodeLeaseNamespace}, Spec: coordinationv1.LeaseSpec{RenewTime: &metav1.MicroTime{Time: t0}}}
	c, r, clk := lifecycleFixture(t, UpstreamDisruptionOptions, n1, n2, pod, lease2)

	clk.Step(41 * time.Second) // n2's Lease expires too: no node is ready
	if got, _ := reconcileNode(t, c, r, "n2"); !cmp.Equal(taintIDs(got), []string{unreachableNoSchedule}) {
		t.Errorf("n2 taints %v, want only NoSchedule: every zone is down", taintIDs(got))
	}
	got, res := reconcileNode(t, c, r, "n1")
	if !cmp.Equal(taintIDs(got), []string{unreachableNoSchedule}) {
		t.Errorf("n1 taints %v, want its NoExecute lifted", taintIDs(got))
	}
	if res.RequeueAfter != disruptionRecheck {
		t.Errorf("requeue after %v, want %v", res.RequeueAfter, disruptionRecheck)
	}
	if names := podNames(t, c); len(names) != 1 {
		t.Errorf("pods %v, want the pod kept", names)
	}

	// n2 is back: the mode ends, and n1 waits a grace period from then.
	lease2.Spec.RenewTime = &metav1.MicroTime{Time: clk.Now()}
	if err := c.Update(ctx, lease2); err != nil {
		t.Fatal(err)
	}
	n2now := &corev1alpha1.Node{}
	if err := c.Get(ctx, types.NamespacedName{Name: "n2"}, n2now); err != nil {
		t.Fatal(err)
	}
	meta.SetStatusCondition(&n2now.Status.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: "AgentReady"})
	if err := c.Status().Update(ctx, n2now); err != nil {
		t.Fatal(err)
	}
	reconcileNode(t, c, r, "n2")
	got, res = reconcileNode(t, c, r, "n1")
	if !cmp.Equal(taintIDs(got), []string{unreachableNoSchedule}) || res.RequeueAfter != 40*time.Second {
		t.Errorf("right after the mode: taints %v, requeue %v; want NoSchedule only and 40s", taintIDs(got), res.RequeueAfter)
	}
	clk.Step(40 * time.Second)
	lease2.Spec.RenewTime = &metav1.MicroTime{Time: clk.Now()}
	if err := c.Update(ctx, lease2); err != nil {
		t.Fatal(err)
	}
	reconcileNode(t, c, r, "n2")
	if got, _ := reconcileNode(t, c, r, "n1"); !cmp.Equal(taintIDs(got), []string{unreachableNoSchedule, unreachableNoExecute}) {
		t.Errorf("a grace period later: taints %v, want NoExecute back", taintIDs(got))
	}
}

// TestNoExecuteRateByZoneState follows the NoExecute taints a zone allows
// as its nodes go silent one after another.
func TestNoExecuteRateByZoneState(t *testing.T) {
	t.Run("a healthy zone taints one node every 1/rate seconds", func(t *testing.T) {
		objs := []client.Object{zonedNode("d1", "a", metav1.ConditionTrue), zonedNode("d2", "a", metav1.ConditionTrue)}
		for i := 0; i < 8; i++ {
			objs = append(objs, zonedNode(fmt.Sprintf("ok%d", i), "a", metav1.ConditionTrue))
		}
		c, r, clk := lifecycleFixture(t, UpstreamDisruptionOptions, objs...)
		reconcileNode(t, c, r, "ok0") // the controller starts
		clk.Step(41 * time.Second)    // d1 and d2 have no Lease; the others count as ready until reconciled
		if got, _ := reconcileNode(t, c, r, "d1"); len(got.Spec.Taints) != 2 {
			t.Errorf("d1 taints %v, want both", taintIDs(got))
		}
		got, res := reconcileNode(t, c, r, "d2")
		if !cmp.Equal(taintIDs(got), []string{unreachableNoSchedule}) || res.RequeueAfter != 10*time.Second {
			t.Errorf("d2 at once: taints %v, requeue %v; want NoSchedule only, 10s (rate 0.1)", taintIDs(got), res.RequeueAfter)
		}
		clk.Step(10 * time.Second)
		if got, _ := reconcileNode(t, c, r, "d2"); len(got.Spec.Taints) != 2 {
			t.Errorf("d2 10 s later: taints %v, want both", taintIDs(got))
		}
		size, unhealthy, health := testutil.ToFloat64(zoneSize.WithLabelValues("a")), testutil.ToFloat64(unhealthyNodes.WithLabelValues("a")),
			testutil.ToFloat64(zoneHealthPercent.WithLabelValues("a"))
		if size != 10 || unhealthy != 2 || health != 80 {
			t.Errorf("zone a: size %v, unhealthy %v, health %v%%; want 10, 2, 80%%", size, unhealthy, health)
		}
	})
	t.Run("an unhealthy small zone taints none, an unhealthy large one slowly", func(t *testing.T) {
		for _, tc := range []struct {
			size        int
			wantTainted bool
			wantRequeue time.Duration
		}{
			{size: 10, wantTainted: false, wantRequeue: disruptionRecheck},
			{size: 60, wantTainted: true},
		} {
			var objs []client.Object
			silent := tc.size * 6 / 10 // 60% not ready
			for i := 0; i < tc.size; i++ {
				ready := metav1.ConditionTrue
				if i < silent {
					ready = metav1.ConditionUnknown
				}
				objs = append(objs, zonedNode(fmt.Sprintf("n%d", i), "a", ready))
			}
			objs = append(objs, zonedNode("elsewhere", "b", metav1.ConditionTrue))
			c, r, clk := lifecycleFixture(t, UpstreamDisruptionOptions, objs...)
			reconcileNode(t, c, r, "elsewhere")
			clk.Step(41 * time.Second)
			got, res := reconcileNode(t, c, r, "n0")
			if tainted := len(got.Spec.Taints) == 2; tainted != tc.wantTainted || (!tainted && res.RequeueAfter != tc.wantRequeue) {
				t.Errorf("zone of %d: taints %v, requeue %v; want tainted %v", tc.size, taintIDs(got), res.RequeueAfter, tc.wantTainted)
			}
			if tc.wantTainted {
				if _, res := reconcileNode(t, c, r, "n1"); res.RequeueAfter != 100*time.Second {
					t.Errorf("zone of %d: next taint in %v, want 100s (rate 0.01)", tc.size, res.RequeueAfter)
				}
			}
		}
	})
	t.Run("a zone that is down taints at the normal rate while another zone is up", func(t *testing.T) {
		c, r, clk := lifecycleFixture(t, UpstreamDisruptionOptions,
			zonedNode("down", "a", metav1.ConditionUnknown), zonedNode("up", "b", metav1.ConditionTrue))
		reconcileNode(t, c, r, "up")
		clk.Step(41 * time.Second)
		if got, _ := reconcileNode(t, c, r, "down"); len(got.Spec.Taints) != 2 {
			t.Errorf("taints %v, want both", taintIDs(got))
		}
	})
}

// TestRestartGivesSilentNodesAGracePeriod: a controller that starts
// finds Ready=True on nodes whose Leases it cannot yet judge against the
// others' (it was down): a node silent since before the start is tainted
// NoExecute only a grace period after it, as upstream takes a node it has
// no probe time for as heard from now.
func TestRestartGivesSilentNodesAGracePeriod(t *testing.T) {
	ctx := context.Background()
	objs := []client.Object{zonedNode("silent", "a", metav1.ConditionTrue)}
	var leases []*coordinationv1.Lease
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("up%d", i)
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: NodeLeaseNamespace}}
		leases = append(leases, lease)
		objs = append(objs, zonedNode(name, "a", metav1.ConditionTrue), lease)
	}
	c, r, clk := lifecycleFixture(t, UpstreamDisruptionOptions, objs...)
	renew := func() {
		for _, l := range leases {
			l.Spec.RenewTime = &metav1.MicroTime{Time: clk.Now()}
			if err := c.Update(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.Step(time.Hour) // the controller was down; "silent" stopped an hour ago
	renew()
	got, res := reconcileNode(t, c, r, "silent")
	if !cmp.Equal(taintIDs(got), []string{unreachableNoSchedule}) || res.RequeueAfter != 40*time.Second {
		t.Errorf("at start: taints %v, requeue %v; want NoSchedule only and 40s", taintIDs(got), res.RequeueAfter)
	}
	clk.Step(40 * time.Second)
	renew()
	for _, l := range leases {
		reconcileNode(t, c, r, l.Name)
	}
	if got, _ := reconcileNode(t, c, r, "silent"); !cmp.Equal(taintIDs(got), []string{unreachableNoSchedule, unreachableNoExecute}) {
		t.Errorf("a grace period after the start: taints %v, want NoExecute too", taintIDs(got))
	}
}

func TestComputeZoneState(t *testing.T) {
	for _, tc := range []struct {
		ready, notReady int
		want            zoneState
	}{
		{ready: 3, notReady: 0, want: zoneNormal},
		{ready: 1, notReady: 2, want: zoneNormal}, // two not ready are never a partial disruption
		{ready: 2, notReady: 3, want: zonePartialDisruption},
		{ready: 3, notReady: 3, want: zoneNormal}, // 50% < 55%
		{ready: 0, notReady: 1, want: zoneFullDisruption},
		{ready: 0, notReady: 0, want: zoneNormal},
	} {
		if got := computeZoneState(tc.ready, tc.notReady, 0.55); got != tc.want {
			t.Errorf("%d ready, %d not: %v, want %v", tc.ready, tc.notReady, got, tc.want)
		}
	}
}

// TestRefundedTaintIsAllowedAgain: a taint the controller could not write
// does not spend the zone's budget.
func TestRefundedTaintIsAllowedAgain(t *testing.T) {
	d := newDisruption(UpstreamDisruptionOptions)
	log := ctrl.Log
	d.prime(log, nil, t0)
	d.observe(log, "ready", "", true, t0)
	d.observe(log, "silent", "", false, t0)
	now := t0.Add(time.Minute)
	first, _ := d.allowTaint("", t0, 40*time.Second, now)
	if first == nil {
		t.Fatal("first taint refused")
	}
	if res, wait := d.allowTaint("", t0, 40*time.Second, now); res != nil || wait != 10*time.Second {
		t.Fatalf("second taint at once: allowed %v, wait %v; want refused, 10s", res != nil, wait)
	}
	first.CancelAt(now) // its write failed
	if res, _ := d.allowTaint("", t0, 40*time.Second, now); res == nil {
		t.Error("a refunded taint is refused")
	}
}

// TestZoneLabelsAndExclusion: the beta failure-domain labels name a zone
// when the GA ones are missing, and an excluded node does not count.
func TestZoneLabelsAndExclusion(t *testing.T) {
	beta := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
		corev1.LabelFailureDomainBetaRegion: "r", corev1.LabelFailureDomainBetaZone: "z"}}}
	ga := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
		corev1.LabelTopologyRegion: "r", corev1.LabelTopologyZone: "z"}}}
	if zoneKey(beta) != zoneKey(ga) || zoneName(zoneKey(ga)) != "r/z" {
		t.Errorf("beta %q, GA %q (%s)", zoneKey(beta), zoneKey(ga), zoneName(zoneKey(ga)))
	}

	// The only other node is excluded: the silent one is alone, so every
	// zone is down and nothing is tainted NoExecute.
	excluded := zonedNode("excluded", "a", metav1.ConditionTrue)
	excluded.Labels[LabelExcludeDisruption] = ""
	c, r, clk := lifecycleFixture(t, UpstreamDisruptionOptions, excluded, zonedNode("silent", "a", metav1.ConditionTrue))
	reconcileNode(t, c, r, "silent")
	clk.Step(41 * time.Second)
	if got, _ := reconcileNode(t, c, r, "silent"); !cmp.Equal(taintIDs(got), []string{unreachableNoSchedule}) {
		t.Errorf("taints %v, want NoSchedule only", taintIDs(got))
	}
}
