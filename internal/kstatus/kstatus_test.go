package kstatus

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/api/conditions"
)

func TestSetReady(t *testing.T) {
	tests := map[string]struct {
		ready    metav1.ConditionStatus
		progress Progress
		before   []string
		want     []string // condition types that are True afterwards
		verdict  Status
	}{
		"ready removes Reconciling and Stalled": {metav1.ConditionTrue, Done, []string{conditions.Reconciling, conditions.Stalled}, []string{conditions.Ready}, StatusCurrent},
		"in progress sets Reconciling":          {metav1.ConditionFalse, InProgress, []string{conditions.Stalled}, []string{conditions.Reconciling}, StatusInProgress},
		"stalled sets Stalled":                  {metav1.ConditionFalse, Stalled, []string{conditions.Reconciling}, []string{conditions.Stalled}, StatusFailed},
		"done but not ready is current (a Job)": {metav1.ConditionFalse, Done, []string{conditions.Reconciling}, nil, StatusCurrent},
		"unknown readiness while in progress":   {metav1.ConditionUnknown, InProgress, nil, []string{conditions.Reconciling}, StatusInProgress},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var conds []metav1.Condition
			for _, typ := range tc.before {
				conds = append(conds, metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: "Before"})
			}
			SetReady(&conds, metav1.Condition{Type: conditions.Ready, Status: tc.ready, Reason: "Why", Message: "because", ObservedGeneration: 3}, tc.progress)
			var gotTrue []string
			for _, c := range conds {
				if c.Status == metav1.ConditionTrue {
					gotTrue = append(gotTrue, c.Type)
				}
				if c.ObservedGeneration != 3 {
					t.Errorf("%s: observedGeneration %d, want 3", c.Type, c.ObservedGeneration)
				}
			}
			if diff := cmp.Diff(tc.want, gotTrue); diff != "" {
				t.Errorf("true conditions (-want +got):\n%s", diff)
			}
			if meta.FindStatusCondition(conds, conditions.Ready) == nil {
				t.Error("Ready missing")
			}
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
				Status   struct {
					ObservedGeneration int64              `json:"observedGeneration"`
					Conditions         []metav1.Condition `json:"conditions"`
				} `json:"status"`
			}{Metadata: metav1.ObjectMeta{Generation: 3}, Status: struct {
				ObservedGeneration int64              `json:"observedGeneration"`
				Conditions         []metav1.Condition `json:"conditions"`
			}{3, conds}})
			if err != nil {
				t.Fatal(err)
			}
			if got, msg := Compute(&unstructured.Unstructured{Object: obj}); got != tc.verdict {
				t.Errorf("Compute = %s (%s), want %s", got, msg, tc.verdict)
			}
		})
	}
}

func TestComputeObservedGeneration(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"generation": int64(2)},
		"status":   map[string]any{"observedGeneration": int64(1)},
	}}
	if got, _ := Compute(u); got != StatusInProgress {
		t.Errorf("Compute = %s, want InProgress while the generation is not observed", got)
	}
}
