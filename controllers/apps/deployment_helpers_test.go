package apps

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
)

func TestResolveFenceposts(t *testing.T) {
	tests := map[string]struct {
		surge, unavailable     string
		desired                int32
		wantSurge, wantUnavail int32
	}{
		"numbers": {"2", "1", 6, 2, 1},
		"25% of 6: surge rounds up, unavail down": {"25%", "25%", 6, 2, 1},
		"25% of 10":                      {"25%", "25%", 10, 3, 2},
		"25% of 1":                       {"25%", "25%", 1, 1, 0},
		"both zero: one unavailable":     {"0", "0%", 5, 0, 1},
		"0% surge of 3, 34% unavailable": {"0%", "34%", 3, 0, 1},
		"100% unavailable":               {"0", "100%", 4, 0, 4},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, u := intstr.Parse(tc.surge), intstr.Parse(tc.unavailable)
			gs, gu, err := resolveFenceposts(&s, &u, tc.desired)
			if err != nil || gs != tc.wantSurge || gu != tc.wantUnavail {
				t.Errorf("got %d, %d, %v; want %d, %d", gs, gu, err, tc.wantSurge, tc.wantUnavail)
			}
		})
	}
	if s, u, _ := resolveFenceposts(nil, nil, 4); s != 1 || u != 1 {
		t.Errorf("defaults of 4: %d, %d; want 1, 1 (25%%)", s, u)
	}
}

func TestMaxUnavailableCapsAtReplicasAndRecreate(t *testing.T) {
	if got := maxUnavailable(makeDeployment(2, "0", "5")); got != 2 {
		t.Errorf("maxUnavailable 5 of 2 replicas = %d, want 2", got)
	}
	d := makeDeployment(3, "", "")
	d.Spec.Strategy.Type = "Recreate"
	if maxSurge(d) != 0 || maxUnavailable(d) != 0 {
		t.Error("Recreate has no surge or unavailability budget")
	}
}

func TestRollingUpdateSteps(t *testing.T) {
	tests := map[string]struct {
		d                *appsv1alpha1.Deployment
		newRS            *appsv1alpha1.ReplicaSet
		old              []*appsv1alpha1.ReplicaSet
		wantNewReplicas  int32
		wantMaxScaleDown int32
		wantCleanup      map[string]int32
		wantScaleDown    map[string]int32
	}{
		"start: surge the new ReplicaSet, old may lose one": {
			d: makeDeployment(6, "2", "1"), newRS: makeRS("new", 0, 0, 0),
			old:             []*appsv1alpha1.ReplicaSet{makeRS("old", 6, 6, time.Hour)},
			wantNewReplicas: 2, wantMaxScaleDown: 1,
			wantCleanup: map[string]int32{}, wantScaleDown: map[string]int32{"old": 5},
		},
		"surge used up: no scale up; old may still lose one": {
			d: makeDeployment(6, "2", "1"), newRS: makeRS("new", 2, 0, 0),
			old:             []*appsv1alpha1.ReplicaSet{makeRS("old", 6, 6, time.Hour)},
			wantNewReplicas: 2, wantMaxScaleDown: 1,
			wantCleanup: map[string]int32{}, wantScaleDown: map[string]int32{"old": 5},
		},
		"unhealthy old pods are cleaned up first, oldest ReplicaSet first": {
			d: makeDeployment(4, "1", "1"), newRS: makeRS("new", 1, 1, 0),
			old:             []*appsv1alpha1.ReplicaSet{makeRS("older", 2, 0, 2*time.Hour), makeRS("old", 2, 2, time.Hour)},
			wantNewReplicas: 1, wantMaxScaleDown: 2,
			wantCleanup: map[string]int32{"older": 0}, wantScaleDown: map[string]int32{},
		},
		"pods of a just scaled-down old ReplicaSet still count against the surge": {
			d: makeDeployment(6, "2", "1"), newRS: makeRS("new", 2, 0, 0),
			old:             []*appsv1alpha1.ReplicaSet{withStatusReplicas(makeRS("old", 5, 5, time.Hour), 6)},
			wantNewReplicas: 2, wantMaxScaleDown: 0,
			wantCleanup: map[string]int32{}, wantScaleDown: map[string]int32{},
		},
		"availability at the minimum: nothing may go": {
			d: makeDeployment(6, "2", "1"), newRS: makeRS("new", 3, 0, 0),
			old:             []*appsv1alpha1.ReplicaSet{makeRS("old", 5, 5, time.Hour)},
			wantNewReplicas: 3, wantMaxScaleDown: 0,
			wantCleanup: map[string]int32{}, wantScaleDown: map[string]int32{},
		},
		"a just scaled-down old ReplicaSet counts no more available than its size": {
			d: makeDeployment(6, "2", "1"), newRS: makeRS("new", 3, 2, 0),
			old:             []*appsv1alpha1.ReplicaSet{withStaleAvailable(makeRS("old", 5, 5, time.Hour), 6)},
			wantNewReplicas: 3, wantMaxScaleDown: 2,
			wantCleanup: map[string]int32{}, wantScaleDown: map[string]int32{"old": 3},
		},
		"new ReplicaSet may grow to the replicas; nothing old left": {
			d: makeDeployment(3, "25%", "25%"), newRS: makeRS("new", 2, 2, 0),
			old:             []*appsv1alpha1.ReplicaSet{makeRS("old", 0, 0, time.Hour)},
			wantNewReplicas: 3, wantMaxScaleDown: -1,
			wantCleanup: map[string]int32{}, wantScaleDown: map[string]int32{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			all := append(append([]*appsv1alpha1.ReplicaSet(nil), tc.old...), tc.newRS)
			if got := newRSReplicas(tc.d, all, tc.newRS); got != tc.wantNewReplicas {
				t.Errorf("newRSReplicas = %d, want %d", got, tc.wantNewReplicas)
			}
			budget := maxOldScaleDown(tc.d, all, tc.newRS)
			if budget != tc.wantMaxScaleDown {
				t.Errorf("maxOldScaleDown = %d, want %d", budget, tc.wantMaxScaleDown)
			}
			if diff := cmp.Diff(tc.wantCleanup, cleanupUnhealthyPlan(tc.old, max(budget, 0))); diff != "" {
				t.Errorf("cleanup plan (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantScaleDown, scaleDownOldPlan(tc.d, all, tc.old)); diff != "" {
				t.Errorf("scale-down plan (-want +got):\n%s", diff)
			}
		})
	}
}

func withStatusReplicas(rs *appsv1alpha1.ReplicaSet, n int32) *appsv1alpha1.ReplicaSet {
	rs.Status.Replicas = n
	return rs
}

func withStaleAvailable(rs *appsv1alpha1.ReplicaSet, available int32) *appsv1alpha1.ReplicaSet {
	rs.Status.AvailableReplicas = available
	return rs
}

func TestProportionalPlan(t *testing.T) {
	tests := map[string]struct {
		d    *appsv1alpha1.Deployment
		rss  []*appsv1alpha1.ReplicaSet
		want map[string]int32
	}{
		"upstream e2e: 8 old + 5 new scaled from 10 to 30": {
			d: makeDeployment(30, "3", "2"),
			rss: []*appsv1alpha1.ReplicaSet{
				withAnnotations(makeRS("old", 8, 8, time.Hour), AnnotationMaxReplicas, "13"),
				withAnnotations(makeRS("new", 5, 0, 0), AnnotationMaxReplicas, "13"),
			},
			want: map[string]int32{"old": 20, "new": 13},
		},
		"scaling down takes from the bigger first and the leftover from the first": {
			d: makeDeployment(5, "1", "0"),
			rss: []*appsv1alpha1.ReplicaSet{
				withAnnotations(makeRS("a", 5, 5, time.Hour), AnnotationMaxReplicas, "11"),
				withAnnotations(makeRS("b", 6, 0, 0), AnnotationMaxReplicas, "11"),
			},
			want: map[string]int32{"a": 3, "b": 3},
		},
		"to zero": {
			d: makeDeployment(0, "1", "0"),
			rss: []*appsv1alpha1.ReplicaSet{
				withAnnotations(makeRS("a", 2, 2, time.Hour), AnnotationMaxReplicas, "4"),
				withAnnotations(makeRS("b", 2, 0, 0), AnnotationMaxReplicas, "4"),
			},
			want: map[string]int32{"a": 0, "b": 0},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, proportionalPlan(tc.d, tc.rss)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRevisions(t *testing.T) {
	rev := func(name, r string) *appsv1alpha1.ReplicaSet {
		return withAnnotations(makeRS(name, 0, 0, 0), appsv1alpha1.AnnotationRevision, r)
	}
	rss := []*appsv1alpha1.ReplicaSet{rev("a", "3"), rev("b", "7"), rev("c", "5")}
	if got := maxRevision(rss); got != 7 {
		t.Errorf("maxRevision = %d", got)
	}
	if got := previousRevision(rss); got != 5 {
		t.Errorf("previousRevision = %d", got)
	}
	if got := previousRevision(rss[:1]); got != 0 {
		t.Errorf("previousRevision of one = %d", got)
	}

	d := makeDeployment(3, "1", "0")
	d.Annotations = map[string]string{"team": "web", appsv1alpha1.AnnotationRollbackTo: "1", annotationLastApplied: "{}"}
	rs := rev("x", "2")
	if !setNewReplicaSetAnnotations(d, rs, 4, false) {
		t.Fatal("no change reported")
	}
	want := map[string]string{"team": "web", appsv1alpha1.AnnotationRevision: "4", AnnotationRevisionHistory: "2",
		AnnotationDesiredReplicas: "3", AnnotationMaxReplicas: "4"}
	if diff := cmp.Diff(want, rs.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	setNewReplicaSetAnnotations(d, rs, 6, true)
	if got := rs.Annotations[AnnotationRevisionHistory]; got != "2,4" {
		t.Errorf("revision-history = %q, want 2,4", got)
	}
	if setNewReplicaSetAnnotations(d, rs, 5, true) {
		t.Error("a lower revision must not change the ReplicaSet")
	}
}

func TestTemplateHashAndEquality(t *testing.T) {
	d := makeDeployment(1, "", "")
	d.Spec.Template.Labels = map[string]string{"app": "web"}
	h1 := templateHash(&d.Spec.Template, nil)
	one := int32(1)
	if h2 := templateHash(&d.Spec.Template, &one); h1 == h2 {
		t.Error("the collision count must change the hash")
	}
	withHash := d.Spec.Template.DeepCopy()
	withHash.Labels[LabelPodTemplateHash] = h1
	if !equalIgnoreHash(withHash, &d.Spec.Template) {
		t.Error("templates differing only by pod-template-hash must be equal")
	}
	withHash.Spec.Hostname = "x"
	if equalIgnoreHash(withHash, &d.Spec.Template) {
		t.Error("different templates must differ")
	}
}

func TestRolloutConditions(t *testing.T) {
	now := t0
	progressing := func(reason string, status metav1.ConditionStatus, since time.Time) []metav1.Condition {
		return []metav1.Condition{{Type: appsv1alpha1.DeploymentProgressing, Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(since)}}
	}
	tests := map[string]struct {
		old, cur    appsv1alpha1.DeploymentStatus
		deadline    int32
		wantReason  string
		wantRequeue bool
	}{
		"complete": {
			old:        appsv1alpha1.DeploymentStatus{Conditions: progressing(appsv1alpha1.ReasonReplicaSetUpdated, metav1.ConditionTrue, now.Add(-time.Second))},
			cur:        appsv1alpha1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2, ReadyReplicas: 2},
			deadline:   600,
			wantReason: appsv1alpha1.ReasonNewReplicaSetAvailable,
		},
		"progress refreshes the condition": {
			old:         appsv1alpha1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, Conditions: progressing(appsv1alpha1.ReasonReplicaSetUpdated, metav1.ConditionTrue, now.Add(-time.Hour))},
			cur:         appsv1alpha1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 2},
			deadline:    600,
			wantReason:  appsv1alpha1.ReasonReplicaSetUpdated,
			wantRequeue: true,
		},
		"no progress for longer than the deadline": {
			old:        appsv1alpha1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, Conditions: progressing(appsv1alpha1.ReasonReplicaSetUpdated, metav1.ConditionTrue, now.Add(-time.Hour))},
			cur:        appsv1alpha1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 1},
			deadline:   600,
			wantReason: appsv1alpha1.ReasonProgressDeadlineExceeded,
		},
		"a complete rollout that starts again progresses from now, even when the stored counts already hold the new ReplicaSet": {
			old:         appsv1alpha1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2, Conditions: progressing(appsv1alpha1.ReasonNewReplicaSetAvailable, metav1.ConditionTrue, now.Add(-time.Hour))},
			cur:         appsv1alpha1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2},
			deadline:    3,
			wantReason:  appsv1alpha1.ReasonReplicaSetUpdated,
			wantRequeue: true,
		},
		"no progress, deadline not yet passed": {
			old:         appsv1alpha1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, Conditions: progressing(appsv1alpha1.ReasonReplicaSetUpdated, metav1.ConditionTrue, now.Add(-time.Minute))},
			cur:         appsv1alpha1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 1},
			deadline:    600,
			wantReason:  appsv1alpha1.ReasonReplicaSetUpdated,
			wantRequeue: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := makeDeployment(2, "1", "0")
			if name != "complete" {
				d.Spec.Replicas = ptr32(3)
			}
			d.Spec.ProgressDeadlineSeconds = &tc.deadline
			d.Status = tc.old
			st := tc.cur
			st.Conditions = append([]metav1.Condition(nil), tc.old.Conditions...)
			requeue := rolloutConditions(d, &st, nil, makeRS("new", 0, 0, 0), now)
			c := meta.FindStatusCondition(st.Conditions, appsv1alpha1.DeploymentProgressing)
			if c == nil || c.Reason != tc.wantReason {
				t.Fatalf("Progressing = %+v, want reason %s", c, tc.wantReason)
			}
			if (requeue > 0) != tc.wantRequeue {
				t.Errorf("requeue %v, want one: %v", requeue, tc.wantRequeue)
			}
			if sum := deploymentSummary(d, &st); (tc.wantReason == appsv1alpha1.ReasonProgressDeadlineExceeded) != sum.stalled {
				t.Errorf("summary stalled = %v", sum.stalled)
			}
		})
	}
}

func ptr32(v int32) *int32 { return &v }

func TestCleanupVictims(t *testing.T) {
	rev := func(name, r string, spec int32) *appsv1alpha1.ReplicaSet {
		return withAnnotations(makeRS(name, spec, spec, 0), appsv1alpha1.AnnotationRevision, r)
	}
	old := []*appsv1alpha1.ReplicaSet{rev("r3", "3", 0), rev("r1", "1", 0), rev("r2", "2", 1), rev("r4", "4", 0)}
	got := cleanupVictims(old, 1)
	var names []string
	for _, rs := range got {
		names = append(names, rs.Name)
	}
	// Three over the limit: r1, r2, r3 by revision; r2 still has pods.
	if diff := cmp.Diff([]string{"r1", "r3"}, names); diff != "" {
		t.Errorf("victims (-want +got):\n%s", diff)
	}
}
