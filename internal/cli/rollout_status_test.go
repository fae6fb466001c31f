package cli

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
)

func TestDeploymentRolloutStatus(t *testing.T) {
	d := func(gen, observed int64, replicas int32, st appsv1alpha1.DeploymentStatus) *appsv1alpha1.Deployment {
		st.ObservedGeneration = observed
		o := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: gen}, Status: st}
		o.Spec.Replicas = ptr.To(replicas)
		return o
	}
	cases := map[string]struct {
		d       *appsv1alpha1.Deployment
		want    string
		done    bool
		wantErr string
	}{
		"spec not observed yet": {d: d(2, 1, 3, appsv1alpha1.DeploymentStatus{}), want: "Waiting for deployment spec update to be observed..."},
		"new replicas being updated": {d: d(2, 2, 3, appsv1alpha1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1}),
			want: `Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...`},
		"old replicas terminating": {d: d(2, 2, 3, appsv1alpha1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 3}),
			want: `Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...`},
		"updated replicas not available": {d: d(2, 2, 3, appsv1alpha1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2}),
			want: `Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...`},
		"done": {d: d(2, 2, 3, appsv1alpha1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}),
			want: `deployment "web" successfully rolled out`, done: true},
		"progress deadline exceeded": {d: d(2, 2, 3, appsv1alpha1.DeploymentStatus{Conditions: []metav1.Condition{{
			Type: appsv1alpha1.DeploymentProgressing, Status: metav1.ConditionFalse, Reason: appsv1alpha1.ReasonProgressDeadlineExceeded}}}),
			wantErr: "exceeded its progress deadline"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			msg, done, err := deploymentRolloutStatus(tc.d)
			checkStatus(t, msg, done, err, tc.want, tc.done, tc.wantErr)
		})
	}
}

func TestStatefulSetRolloutStatus(t *testing.T) {
	s := func(gen, observed int64, replicas int32, partition *int32, st appsv1alpha1.StatefulSetStatus) *appsv1alpha1.StatefulSet {
		st.ObservedGeneration = observed
		o := &appsv1alpha1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: gen}, Status: st}
		o.Spec.Replicas = ptr.To(replicas)
		o.Spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if partition != nil {
			o.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: partition}
		}
		return o
	}
	onDelete := s(1, 1, 1, nil, appsv1alpha1.StatefulSetStatus{})
	onDelete.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
	cases := map[string]struct {
		s       *appsv1alpha1.StatefulSet
		want    string
		done    bool
		wantErr string
	}{
		"OnDelete has no status":  {s: onDelete, wantErr: "only available for RollingUpdate"},
		"never observed":          {s: s(1, 0, 3, nil, appsv1alpha1.StatefulSetStatus{}), want: "Waiting for statefulset spec update to be observed..."},
		"pods not ready":          {s: s(1, 1, 3, nil, appsv1alpha1.StatefulSetStatus{ReadyReplicas: 1}), want: "Waiting for 2 pods to be ready..."},
		"partition not reached":   {s: s(2, 2, 3, ptr.To[int32](1), appsv1alpha1.StatefulSetStatus{ReadyReplicas: 3, UpdatedReplicas: 1}), want: "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated..."},
		"partition reached":       {s: s(2, 2, 3, ptr.To[int32](1), appsv1alpha1.StatefulSetStatus{ReadyReplicas: 3, UpdatedReplicas: 2}), want: "partitioned roll out complete: 2 new pods have been updated...", done: true},
		"revisions differ":        {s: s(2, 2, 3, nil, appsv1alpha1.StatefulSetStatus{ReadyReplicas: 3, UpdatedReplicas: 2, CurrentRevision: "db-1", UpdateRevision: "db-2"}), want: "waiting for statefulset rolling update to complete 2 pods at revision db-2..."},
		"rolling update complete": {s: s(2, 2, 3, nil, appsv1alpha1.StatefulSetStatus{ReadyReplicas: 3, CurrentReplicas: 3, CurrentRevision: "db-2", UpdateRevision: "db-2"}), want: "statefulset rolling update complete 3 pods at revision db-2...", done: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			msg, done, err := statefulSetRolloutStatus(tc.s)
			checkStatus(t, msg, done, err, tc.want, tc.done, tc.wantErr)
		})
	}
}

func TestDaemonSetRolloutStatus(t *testing.T) {
	ds := func(gen, observed int64, st appsv1alpha1.DaemonSetStatus) *appsv1alpha1.DaemonSet {
		st.ObservedGeneration = observed
		o := &appsv1alpha1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Generation: gen}, Status: st}
		o.Spec.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
		return o
	}
	cases := map[string]struct {
		ds   *appsv1alpha1.DaemonSet
		want string
		done bool
	}{
		"not observed": {ds: ds(2, 1, appsv1alpha1.DaemonSetStatus{}), want: "Waiting for daemon set spec update to be observed..."},
		"updating":     {ds: ds(2, 2, appsv1alpha1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 1}), want: `Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...`},
		"unavailable":  {ds: ds(2, 2, appsv1alpha1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 2}), want: `Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...`},
		"done":         {ds: ds(2, 2, appsv1alpha1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}), want: `daemon set "agent" successfully rolled out`, done: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			msg, done, err := daemonSetRolloutStatus(tc.ds)
			checkStatus(t, msg, done, err, tc.want, tc.done, "")
		})
	}
}

func checkStatus(t *testing.T, msg string, done bool, err error, want string, wantDone bool, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if msg != want || done != wantDone {
		t.Errorf("got (%q, %v), want (%q, %v)", msg, done, want, wantDone)
	}
}
