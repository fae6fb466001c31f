package node

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestComputeStatus(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	m := SimulatedMachine("sim-7", 7, Resources{CPU: resource.MustParse("4"), Memory: resource.MustParse("8Gi"), EphemeralStorage: resource.MustParse("50Gi")})
	tests := map[string]struct {
		prev          corev1alpha1.NodeStatus
		in            StatusInput
		wantReady     metav1.ConditionStatus
		wantDisplay   string
		wantReadyTime metav1.Time
	}{
		"a ready runtime makes a ready node": {
			in:        StatusInput{Machine: m, RuntimeName: "containerd", RuntimeVersion: "1.6.20", RuntimeReady: true, Now: t0},
			wantReady: metav1.ConditionTrue, wantDisplay: "Ready", wantReadyTime: t0,
		},
		"a runtime that is not ready makes a NotReady node": {
			in:        StatusInput{Machine: m, RuntimeName: "containerd", RuntimeVersion: "1.6.20", RuntimeMessage: "NetworkReady: cni not initialised", Now: t0},
			wantReady: metav1.ConditionFalse, wantDisplay: "NotReady", wantReadyTime: t0,
		},
		"a cordoned node says so": {
			in:        StatusInput{Machine: m, RuntimeReady: true, Unschedulable: true, Now: t0},
			wantReady: metav1.ConditionTrue, wantDisplay: "Ready,SchedulingDisabled", wantReadyTime: t0,
		},
		"an unchanged condition keeps its transition time": {
			prev:      corev1alpha1.NodeStatus{Conditions: []metav1.Condition{{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: corev1alpha1.ReasonAgentReady, Message: "The agent is posting ready status", LastTransitionTime: t0}}},
			in:        StatusInput{Machine: m, RuntimeReady: true, Now: t1},
			wantReady: metav1.ConditionTrue, wantDisplay: "Ready", wantReadyTime: t0,
		},
		"a changed condition gets a new transition time": {
			prev:      corev1alpha1.NodeStatus{Conditions: []metav1.Condition{{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: corev1alpha1.ReasonAgentReady, LastTransitionTime: t0}}},
			in:        StatusInput{Machine: m, Now: t1},
			wantReady: metav1.ConditionFalse, wantDisplay: "NotReady", wantReadyTime: t1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := ComputeStatus(tc.prev, tc.in)
			c := meta.FindStatusCondition(st.Conditions, conditions.Ready)
			if c == nil || c.Status != tc.wantReady || !c.LastTransitionTime.Equal(&tc.wantReadyTime) {
				t.Errorf("Ready condition %+v, want %s since %s", c, tc.wantReady, tc.wantReadyTime)
			}
			if st.DisplayStatus != tc.wantDisplay {
				t.Errorf("display %q, want %q", st.DisplayStatus, tc.wantDisplay)
			}
			for _, typ := range []string{corev1alpha1.NodeMemoryPressure, corev1alpha1.NodeDiskPressure, corev1alpha1.NodePIDPressure} {
				if !meta.IsStatusConditionFalse(st.Conditions, typ) {
					t.Errorf("%s must be False", typ)
				}
			}
			if st.Capacity.Pods().Value() != MaxPods || !st.Allocatable.Cpu().Equal(resource.MustParse("4")) {
				t.Errorf("capacity %v allocatable %v", st.Capacity, st.Allocatable)
			}
			if st.NodeInfo.SystemUUID == "" || st.NodeInfo.KubeProxyVersion == "" || st.NodeInfo.BootID == "" || st.NodeInfo.MachineID == "" {
				t.Errorf("nodeInfo fields the schema requires are empty: %+v", st.NodeInfo)
			}
			if len(st.Addresses) != 2 || st.Addresses[0].Type != corev1.NodeInternalIP {
				t.Errorf("addresses %v", st.Addresses)
			}
		})
	}
}
