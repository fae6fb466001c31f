package apps

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestReplicaSetDiff(t *testing.T) {
	tests := map[string]struct {
		active   int
		replicas int32
		want     int
	}{
		"create the missing":      {1, 3, -2},
		"delete the extra":        {5, 3, 2},
		"steady":                  {3, 3, 0},
		"creations capped at 500": {0, 2000, -500},
		"deletions capped at 500": {2000, 0, 500},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := replicaSetDiff(tc.active, tc.replicas, 500); got != tc.want {
				t.Errorf("diff = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestReplicaSetStatus(t *testing.T) {
	now := t0
	rs := &appsv1alpha1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs", Generation: 4}}
	rs.Spec.Replicas = ptr32(3)
	rs.Spec.MinReadySeconds = 10
	rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	rs.Spec.Template.Labels = map[string]string{"app": "web", "tier": "front"}
	full := func(b *podB) *podB { return b.label("app", "web").label("tier", "front") }
	tests := map[string]struct {
		pods        []*corev1alpha1.Pod
		terminating int32
		err         error
		diff        int
		want        appsv1alpha1.ReplicaSetStatus
		wantReady   metav1.ConditionStatus
		wantFailure string
	}{
		"all available": {
			pods: []*corev1alpha1.Pod{full(makePod("a")).readySince(now.Add(-time.Minute)).obj(),
				full(makePod("b")).readySince(now.Add(-time.Minute)).obj(), full(makePod("c")).readySince(now.Add(-time.Minute)).obj()},
			want:      appsv1alpha1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3},
			wantReady: metav1.ConditionTrue,
		},
		"ready but not yet for minReadySeconds, one partly labelled": {
			pods: []*corev1alpha1.Pod{full(makePod("a")).readySince(now.Add(-time.Minute)).obj(),
				full(makePod("b")).readySince(now.Add(-time.Second)).obj(), makePod("c").label("app", "web").running().obj()},
			terminating: 1,
			want:        appsv1alpha1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 1},
			wantReady:   metav1.ConditionFalse,
		},
		"create failure": {
			err: errors.New(`pods "x" is forbidden: exceeded quota`), diff: -3,
			want:      appsv1alpha1.ReplicaSetStatus{},
			wantReady: metav1.ConditionFalse, wantFailure: appsv1alpha1.ReasonFailedCreate,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := replicaSetStatus(rs, tc.pods, tc.terminating, tc.err, tc.diff, now)
			got := appsv1alpha1.ReplicaSetStatus{Replicas: st.Replicas, FullyLabeledReplicas: st.FullyLabeledReplicas,
				ReadyReplicas: st.ReadyReplicas, AvailableReplicas: st.AvailableReplicas}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("counters (-want +got):\n%s", diff)
			}
			if st.ObservedGeneration != 4 || st.Selector != "app=web" || *st.TerminatingReplicas != tc.terminating {
				t.Errorf("observedGeneration %d selector %q terminating %d", st.ObservedGeneration, st.Selector, *st.TerminatingReplicas)
			}
			if c := meta.FindStatusCondition(st.Conditions, conditions.Ready); c == nil || c.Status != tc.wantReady {
				t.Errorf("Ready = %+v, want %s", c, tc.wantReady)
			}
			failure := meta.FindStatusCondition(st.Conditions, appsv1alpha1.ReplicaFailure)
			switch {
			case tc.wantFailure == "" && failure != nil:
				t.Errorf("unexpected ReplicaFailure %+v", failure)
			case tc.wantFailure != "" && (failure == nil || failure.Reason != tc.wantFailure):
				t.Errorf("ReplicaFailure = %+v, want reason %s", failure, tc.wantFailure)
			case tc.wantFailure != "" && !meta.IsStatusConditionTrue(st.Conditions, conditions.Stalled):
				t.Error("a ReplicaFailure must stall the ReplicaSet")
			}
		})
	}
	// The check is due when the youngest ready pod becomes available.
	pods := []*corev1alpha1.Pod{makePod("a").readySince(now.Add(-4 * time.Second)).obj(), makePod("b").readySince(now.Add(-time.Minute)).obj()}
	if got := nextAvailableCheck(pods, 10, now); got != 7*time.Second {
		t.Errorf("nextAvailableCheck = %v, want 7s", got)
	}
}

func makeDaemonSet(nodeSelector map[string]string, tolerations ...corev1.Toleration) *appsv1alpha1.DaemonSet {
	ds := &appsv1alpha1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", Generation: 1}}
	ds.Spec.Template.Spec.NodeSelector = nodeSelector
	ds.Spec.Template.Spec.Tolerations = tolerations
	return ds
}

func TestNodeShouldRunDaemonPod(t *testing.T) {
	noSchedule := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	noExecute := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute}
	tests := map[string]struct {
		ds                    *appsv1alpha1.DaemonSet
		node                  *corev1alpha1.Node
		wantRun, wantContinue bool
	}{
		"plain node":                        {makeDaemonSet(nil), makeNode("n", nil), true, true},
		"nodeSelector matches":              {makeDaemonSet(map[string]string{"role": "edge"}), makeNode("n", map[string]string{"role": "edge"}), true, true},
		"nodeSelector does not match":       {makeDaemonSet(map[string]string{"role": "edge"}), makeNode("n", nil), false, false},
		"untolerated NoSchedule: keep only": {makeDaemonSet(nil), makeNode("n", nil, noSchedule), false, true},
		"untolerated NoExecute: evict":      {makeDaemonSet(nil), makeNode("n", nil, noExecute), false, false},
		"tolerated NoExecute":               {makeDaemonSet(nil, corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists}), makeNode("n", nil, noExecute), true, true},
		"default toleration of not-ready": {makeDaemonSet(nil), makeNode("n", nil,
			corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute},
			corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}), true, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			run, cont := nodeShouldRunDaemonPod(tc.node, tc.ds)
			if run != tc.wantRun || cont != tc.wantContinue {
				t.Errorf("got (%v, %v), want (%v, %v)", run, cont, tc.wantRun, tc.wantContinue)
			}
		})
	}
	// Required node affinity in the template is honoured, then replaced by the pin.
	ds := makeDaemonSet(nil)
	ds.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}}}}}
	if run, _ := nodeShouldRunDaemonPod(makeNode("n", map[string]string{"zone": "b"}), ds); run {
		t.Error("node affinity must exclude zone b")
	}
	spec := daemonPodSpec(&ds.Spec.Template, "n1")
	terms := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if diff := cmp.Diff([]corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}}}, terms); diff != "" {
		t.Errorf("pinning terms (-want +got):\n%s", diff)
	}
	if len(spec.Tolerations) != 6 {
		t.Errorf("%d tolerations, want the 6 defaults", len(spec.Tolerations))
	}
	ds.Spec.Template.Spec.HostNetwork = true
	if got := len(daemonPodSpec(&ds.Spec.Template, "n1").Tolerations); got != 7 {
		t.Errorf("hostNetwork: %d tolerations, want 7", got)
	}
}

func TestPlanDaemonPods(t *testing.T) {
	ds := makeDaemonSet(map[string]string{"role": "edge"})
	nodes := []*corev1alpha1.Node{
		makeNode("empty", map[string]string{"role": "edge"}),
		makeNode("one", map[string]string{"role": "edge"}),
		makeNode("two", map[string]string{"role": "edge"}),
		makeNode("failed", map[string]string{"role": "edge"}),
		makeNode("wrong", nil),
	}
	pods := []*corev1alpha1.Pod{
		makePod("one-a").node("one").obj(),
		makePod("two-old").node("two").created(t0.Add(-time.Hour)).obj(),
		makePod("two-new").node("two").obj(),
		makePod("failed-a").node("failed").failed().obj(),
		makePod("wrong-a").node("wrong").obj(),
		makePod("gone-a").node("gone").obj(),
	}
	plan := planDaemonPods(ds, nodes, podsByNode(pods), "h")
	if diff := cmp.Diff([]string{"empty"}, plan.createOn); diff != "" {
		t.Errorf("createOn (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"two-new", "failed-a", "wrong-a", "gone-a"}, podNames(plan.del)); diff != "" {
		t.Errorf("del (-want +got):\n%s", diff)
	}
}

func TestPlanDaemonRollingUpdate(t *testing.T) {
	ready := t0.Add(-time.Hour)
	pod := func(name, node, hash string, isReady bool) *corev1alpha1.Pod {
		b := makePod(name).node(node).label(appsv1.DefaultDaemonSetUniqueLabelKey, hash)
		if isReady {
			b = b.readySince(ready)
		} else {
			b = b.running()
		}
		return b.obj()
	}
	strategy := func(unavailable, surge int32) *appsv1alpha1.DaemonSet {
		ds := makeDaemonSet(nil)
		u, s := intstr.FromInt32(unavailable), intstr.FromInt32(surge)
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &u, MaxSurge: &s}}
		return ds
	}
	tests := map[string]struct {
		ds         *appsv1alpha1.DaemonSet
		pods       []*corev1alpha1.Pod
		wantDelete []string
		wantCreate []string
	}{
		"maxUnavailable 1: one old pod at a time": {
			ds:         strategy(1, 0),
			pods:       []*corev1alpha1.Pod{pod("a", "n1", "old", true), pod("b", "n2", "old", true), pod("c", "n3", "old", true)},
			wantDelete: []string{"a"},
		},
		"maxUnavailable 1 used by an unready new pod": {
			ds:   strategy(1, 0),
			pods: []*corev1alpha1.Pod{pod("a", "n1", "new", false), pod("b", "n2", "old", true), pod("c", "n3", "old", true)},
		},
		"unavailable old pods are replaced regardless": {
			ds:         strategy(1, 0),
			pods:       []*corev1alpha1.Pod{pod("a", "n1", "new", false), pod("b", "n2", "old", false), pod("c", "n3", "old", true)},
			wantDelete: []string{"b"},
		},
		"an unavailable old pod uses the budget: no available pod goes with it": {
			ds:         strategy(1, 0),
			pods:       []*corev1alpha1.Pod{pod("a", "n1", "old", false), pod("b", "n2", "old", true), pod("c", "n3", "old", true)},
			wantDelete: []string{"a"},
		},
		"maxUnavailable 2 with one old pod unavailable: one available pod goes too": {
			ds:         strategy(2, 0),
			pods:       []*corev1alpha1.Pod{pod("a", "n1", "old", true), pod("b", "n2", "old", false), pod("c", "n3", "old", true)},
			wantDelete: []string{"b", "a"},
		},
		"maxSurge 1: start one new pod next to an old one": {
			ds:         strategy(0, 1),
			pods:       []*corev1alpha1.Pod{pod("a", "n1", "old", true), pod("b", "n2", "old", true)},
			wantCreate: []string{"n1"},
		},
		"maxSurge 1: old pod goes once the new one is available": {
			ds:         strategy(0, 1),
			pods:       []*corev1alpha1.Pod{pod("a", "n1", "old", true), pod("a2", "n1", "new", true), pod("b", "n2", "old", true)},
			wantDelete: []string{"a"},
			wantCreate: []string{"n2"},
		},
		"maxSurge 1 used by a new pod not yet available": {
			ds:   strategy(0, 1),
			pods: []*corev1alpha1.Pod{pod("a", "n1", "old", true), pod("a2", "n1", "new", false), pod("b", "n2", "old", true)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			byNode := podsByNode(tc.pods)
			plan := planDaemonRollingUpdate(tc.ds, len(byNode), byNode, "new", t0)
			if diff := cmp.Diff(tc.wantDelete, podNames(plan.del)); diff != "" {
				t.Errorf("delete (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCreate, plan.createOn); diff != "" {
				t.Errorf("create (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDaemonSetStatus(t *testing.T) {
	ds := makeDaemonSet(map[string]string{"role": "edge"})
	nodes := []*corev1alpha1.Node{
		makeNode("n1", map[string]string{"role": "edge"}), makeNode("n2", map[string]string{"role": "edge"}),
		makeNode("n3", map[string]string{"role": "edge"}), makeNode("other", nil),
	}
	pods := []*corev1alpha1.Pod{
		makePod("a").node("n1").label(appsv1.DefaultDaemonSetUniqueLabelKey, "h").readySince(t0.Add(-time.Hour)).obj(),
		makePod("b").node("n2").label(appsv1.DefaultDaemonSetUniqueLabelKey, "old").running().obj(),
		makePod("x").node("other").obj(),
	}
	st := daemonSetStatus(ds, nodes, podsByNode(pods), "h", t0)
	got := [8]int32{st.DesiredNumberScheduled, st.CurrentNumberScheduled, st.NumberReady, st.NumberAvailable,
		st.UpdatedNumberScheduled, st.NumberMisscheduled, st.NumberUnavailable, int32(st.ObservedGeneration)}
	if diff := cmp.Diff([8]int32{3, 2, 1, 1, 1, 1, 2, 1}, got); diff != "" {
		t.Errorf("desired, current, ready, available, updated, misscheduled, unavailable, generation (-want +got):\n%s", diff)
	}
	if meta.IsStatusConditionTrue(st.Conditions, conditions.Ready) || !meta.IsStatusConditionTrue(st.Conditions, conditions.Reconciling) {
		t.Errorf("conditions %+v", st.Conditions)
	}
}

func makeStatefulSet(replicas int32) *appsv1alpha1.StatefulSet {
	set := &appsv1alpha1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "set-uid", Generation: 2}}
	set.Spec.Replicas = &replicas
	set.Spec.ServiceName = "db"
	set.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
	set.Spec.Template.Labels = map[string]string{"app": "db"}
	return set
}

func TestStatefulPodIdentity(t *testing.T) {
	for name, want := range map[string]int{"db-0": 0, "db-12": 12, "my-db-3": 3, "db": -1, "db-x": -1} {
		if _, got := parentAndOrdinal(name); got != want {
			t.Errorf("ordinal of %s = %d, want %d", name, got, want)
		}
	}
	set := makeStatefulSet(3)
	set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}
	set.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod := newStatefulPod(set, &set.Spec.Template, 2, "db-abc")
	if pod.Name != "db-2" || pod.Spec.Hostname != "db-2" || pod.Spec.Subdomain != "db" {
		t.Errorf("identity %s %s %s", pod.Name, pod.Spec.Hostname, pod.Spec.Subdomain)
	}
	wantLabels := map[string]string{"app": "db", appsv1.StatefulSetPodNameLabel: "db-2", appsv1.PodIndexLabel: "2", appsv1.ControllerRevisionHashLabelKey: "db-abc"}
	if diff := cmp.Diff(wantLabels, pod.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db-2"}}}}, pod.Spec.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
}

func TestStatefulRevisionChoiceAndUpdateVictims(t *testing.T) {
	set := makeStatefulSet(4)
	set.Status.CurrentReplicas = 2
	if !useCurrentRevision(set, 1) || useCurrentRevision(set, 2) {
		t.Error("without rollingUpdate, ordinals below currentReplicas keep the current revision")
	}
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr32(3)}}
	if !useCurrentRevision(set, 2) || useCurrentRevision(set, 3) {
		t.Error("ordinals below the partition keep the current revision")
	}
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	if useCurrentRevision(set, 0) {
		t.Error("OnDelete recreates pods at the update revision")
	}

	pod := func(ord int, rev string, ready bool) *corev1alpha1.Pod {
		b := makePod("db-"+string(rune('0'+ord))).label(appsv1.ControllerRevisionHashLabelKey, rev)
		if ready {
			b = b.readySince(t0.Add(-time.Hour))
		}
		return b.obj()
	}
	tests := map[string]struct {
		partition, maxUnavailable int32
		pods                      []*corev1alpha1.Pod
		want                      []string
	}{
		"highest ordinal first":                 {0, 1, []*corev1alpha1.Pod{pod(0, "a", true), pod(1, "a", true), pod(2, "a", true)}, []string{"db-2"}},
		"wait while a pod is unavailable":       {0, 1, []*corev1alpha1.Pod{pod(0, "a", true), pod(1, "a", true), pod(2, "b", false)}, nil},
		"maxUnavailable 2":                      {0, 2, []*corev1alpha1.Pod{pod(0, "a", true), pod(1, "a", true), pod(2, "a", true)}, []string{"db-2", "db-1"}},
		"stop at the partition":                 {2, 2, []*corev1alpha1.Pod{pod(0, "a", true), pod(1, "a", true), pod(2, "b", true)}, nil},
		"updated pods are skipped, not counted": {0, 1, []*corev1alpha1.Pod{pod(0, "a", true), pod(1, "a", true), pod(2, "b", true)}, []string{"db-1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			set := makeStatefulSet(int32(len(tc.pods)))
			mu := intstr.FromInt32(tc.maxUnavailable)
			set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: &tc.partition, MaxUnavailable: &mu}}
			if diff := cmp.Diff(tc.want, podNames(statefulUpdateVictims(set, tc.pods, "b", t0))); diff != "" {
				t.Errorf("victims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClaimOwners(t *testing.T) {
	del, keep := appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	tests := map[string]struct {
		whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType
		inRange                 bool
		wantSet, wantPod        bool
	}{
		"retain, retain":                 {keep, keep, true, false, false},
		"whenDeleted Delete":             {del, keep, true, true, false},
		"whenScaled Delete, in range":    {keep, del, true, false, false},
		"whenScaled Delete, scaled away": {keep, del, false, false, true},
		"both Delete, in range":          {del, del, true, true, false},
		"both Delete, scaled away":       {del, del, false, false, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			set := makeStatefulSet(1)
			set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: tc.whenDeleted, WhenScaled: tc.whenScaled}
			bySet, byPod := claimOwners(set, tc.inRange)
			if bySet != tc.wantSet || byPod != tc.wantPod {
				t.Errorf("got (%v, %v), want (%v, %v)", bySet, byPod, tc.wantSet, tc.wantPod)
			}
		})
	}
}

func TestStatefulSetStatus(t *testing.T) {
	set := makeStatefulSet(3)
	set.Spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
	rev := func(b *podB, r string) *corev1alpha1.Pod {
		return b.label(appsv1.ControllerRevisionHashLabelKey, r).obj()
	}
	pods := []*corev1alpha1.Pod{
		rev(makePod("db-0").readySince(t0.Add(-time.Hour)), "cur"),
		rev(makePod("db-1").readySince(t0.Add(-time.Hour)), "cur"),
		rev(makePod("db-2").readySince(t0.Add(-time.Hour)), "upd"),
	}
	st := statefulSetStatus(set, pods, "cur", "upd", 0, t0)
	if st.Replicas != 3 || st.ReadyReplicas != 3 || st.CurrentReplicas != 2 || st.UpdatedReplicas != 1 || st.CurrentRevision != "cur" || st.Ready != "3/3" {
		t.Errorf("mid-update status %+v", st)
	}
	for _, p := range pods {
		p.Labels[appsv1.ControllerRevisionHashLabelKey] = "upd"
	}
	st = statefulSetStatus(set, pods, "cur", "upd", 0, t0)
	if st.CurrentRevision != "upd" || st.CurrentReplicas != 3 || !meta.IsStatusConditionTrue(st.Conditions, conditions.Ready) {
		t.Errorf("a complete update must make the update revision current: %+v", st)
	}
}
