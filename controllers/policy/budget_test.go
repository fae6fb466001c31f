package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
)

func intOrPercent(s string) *intstr.IntOrString {
	v := intstr.Parse(s)
	return &v
}

func TestExpectedAndDesired(t *testing.T) {
	tests := map[string]struct {
		spec              policyv1.PodDisruptionBudgetSpec
		selected, scale   int32
		expected, desired int32
		wantErr           bool
	}{
		"neither field desires nothing":               {selected: 3, scale: 3},
		"integer minAvailable counts selected pods":   {spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: intOrPercent("2")}, selected: 3, scale: 10, expected: 3, desired: 2},
		"integer minAvailable above the pods":         {spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: intOrPercent("5")}, selected: 3, expected: 3, desired: 5},
		"percent minAvailable uses the scale":         {spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: intOrPercent("50%")}, selected: 2, scale: 4, expected: 4, desired: 2},
		"percent minAvailable rounds up":              {spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: intOrPercent("50%")}, selected: 3, scale: 3, expected: 3, desired: 2},
		"100% minAvailable":                           {spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: intOrPercent("100%")}, selected: 3, scale: 3, expected: 3, desired: 3},
		"integer maxUnavailable uses the scale":       {spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOrPercent("1")}, selected: 2, scale: 5, expected: 5, desired: 4},
		"maxUnavailable above the scale floors at 0":  {spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOrPercent("7")}, selected: 2, scale: 5, expected: 5},
		"percent maxUnavailable rounds up":            {spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOrPercent("30%")}, selected: 10, scale: 10, expected: 10, desired: 7},
		"percent maxUnavailable rounds up, small":     {spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOrPercent("10%")}, selected: 3, scale: 3, expected: 3, desired: 2},
		"maxUnavailable 0 protects every replica":     {spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOrPercent("0")}, selected: 3, scale: 3, expected: 3, desired: 3},
		"maxUnavailable with no controllers expected": {spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOrPercent("1")}, selected: 2},
		"malformed percent":                           {spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOrPercent("x%")}, scale: 3, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			expected, desired, err := ExpectedAndDesired(tc.spec, tc.selected, tc.scale)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if expected != tc.expected || desired != tc.desired {
				t.Errorf("expected, desired = %d, %d; want %d, %d", expected, desired, tc.expected, tc.desired)
			}
		})
	}
}

func TestDisruptionsAllowed(t *testing.T) {
	tests := map[string]struct {
		current, desired, expected, want int32
	}{
		"spare healthy pods":         {current: 5, desired: 3, expected: 5, want: 2},
		"exactly met":                {current: 3, desired: 3, expected: 5},
		"below":                      {current: 2, desired: 3, expected: 5},
		"no expected pods allows no": {current: 2, desired: 0, expected: 0},
		"nothing desired":            {current: 2, desired: 0, expected: 2, want: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := DisruptionsAllowed(tc.current, tc.desired, tc.expected); got != tc.want {
				t.Errorf("DisruptionsAllowed = %d, want %d", got, tc.want)
			}
		})
	}
}

type podOpt func(*corev1alpha1.Pod)

func ready(p *corev1alpha1.Pod) {
	p.Status.Conditions = append(p.Status.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue})
}

func deleting(p *corev1alpha1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)} }

func pod(name string, opts ...podOpt) *corev1alpha1.Pod {
	p := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func TestPruneAndCount(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) metav1.Time { return metav1.NewTime(now.Add(-ago)) }
	pods := []*corev1alpha1.Pod{
		pod("a", ready), pod("b", ready), pod("c", ready), pod("d"), pod("e", ready, deleting),
	}
	tests := map[string]struct {
		disrupted   map[string]metav1.Time
		kept        map[string]metav1.Time
		expired     []string
		recheck     *time.Time
		healthyKept int32
	}{
		"no evictions": {kept: map[string]metav1.Time{}, healthyKept: 3},
		"a recent eviction keeps its pod out": {
			disrupted: map[string]metav1.Time{"a": at(30 * time.Second)}, kept: map[string]metav1.Time{"a": at(30 * time.Second)},
			recheck: ptrTime(now.Add(90 * time.Second)), healthyKept: 2,
		},
		"an expired eviction counts its pod again": {
			disrupted: map[string]metav1.Time{"a": at(3 * time.Minute)}, kept: map[string]metav1.Time{}, expired: []string{"a"}, healthyKept: 3,
		},
		"entries of deleted or terminating pods go": {
			disrupted: map[string]metav1.Time{"gone": at(time.Second), "e": at(time.Second)}, kept: map[string]metav1.Time{}, healthyKept: 3,
		},
		"the earliest expiry is the recheck": {
			disrupted: map[string]metav1.Time{"a": at(time.Minute), "b": at(30 * time.Second), "d": at(10 * time.Second)},
			kept:      map[string]metav1.Time{"a": at(time.Minute), "b": at(30 * time.Second), "d": at(10 * time.Second)},
			recheck:   ptrTime(now.Add(time.Minute)), healthyKept: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			kept, expired, recheck := PruneDisrupted(pods, tc.disrupted, now)
			if diff := cmp.Diff(tc.kept, kept); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.expired, expired); diff != "" {
				t.Errorf("expired (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.recheck, recheck); diff != "" {
				t.Errorf("recheck (-want +got):\n%s", diff)
			}
			if got := CountHealthy(pods, kept, now); got != tc.healthyKept {
				t.Errorf("CountHealthy = %d, want %d", got, tc.healthyKept)
			}
		})
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

func TestComputeStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pods := []*corev1alpha1.Pod{pod("a", ready), pod("b", ready), pod("c", ready)}
	tests := map[string]struct {
		spec      policyv1.PodDisruptionBudgetSpec
		disrupted map[string]metav1.Time
		scale     int32
		want      policyv1alpha1.PodDisruptionBudgetStatus
		allowed   metav1.ConditionStatus
		reason    string
		ready     metav1.ConditionStatus
	}{
		"minAvailable 2 of 3 ready allows one": {
			spec:    policyv1.PodDisruptionBudgetSpec{MinAvailable: intOrPercent("2")},
			want:    policyv1alpha1.PodDisruptionBudgetStatus{ObservedGeneration: 4, DisruptionsAllowed: 1, CurrentHealthy: 3, DesiredHealthy: 2, ExpectedPods: 3},
			allowed: metav1.ConditionTrue, reason: policyv1.SufficientPodsReason, ready: metav1.ConditionTrue,
		},
		"an eviction in flight spends the budget": {
			spec:      policyv1.PodDisruptionBudgetSpec{MinAvailable: intOrPercent("2")},
			disrupted: map[string]metav1.Time{"a": metav1.NewTime(now.Add(-time.Second))},
			want: policyv1alpha1.PodDisruptionBudgetStatus{ObservedGeneration: 4, CurrentHealthy: 2, DesiredHealthy: 2, ExpectedPods: 3,
				DisruptedPods: map[string]metav1.Time{"a": metav1.NewTime(now.Add(-time.Second))}},
			allowed: metav1.ConditionFalse, reason: policyv1.InsufficientPodsReason, ready: metav1.ConditionTrue,
		},
		"maxUnavailable 1 of a scale of 4 with 3 ready": {
			spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: intOrPercent("1")}, scale: 4,
			want:    policyv1alpha1.PodDisruptionBudgetStatus{ObservedGeneration: 4, CurrentHealthy: 3, DesiredHealthy: 3, ExpectedPods: 4},
			allowed: metav1.ConditionFalse, reason: policyv1.InsufficientPodsReason, ready: metav1.ConditionTrue,
		},
		"100% minAvailable not met": {
			spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: intOrPercent("100%")}, scale: 5,
			want:    policyv1alpha1.PodDisruptionBudgetStatus{ObservedGeneration: 4, CurrentHealthy: 3, DesiredHealthy: 5, ExpectedPods: 5},
			allowed: metav1.ConditionFalse, reason: policyv1.InsufficientPodsReason, ready: metav1.ConditionFalse,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pdb := &policyv1alpha1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Generation: 4}, Spec: tc.spec}
			pdb.Status.DisruptedPods = tc.disrupted
			if _, _, err := ComputeStatus(pdb, pods, tc.scale, now); err != nil {
				t.Fatal(err)
			}
			got := pdb.Status
			got.Conditions = nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			c := meta.FindStatusCondition(pdb.Status.Conditions, policyv1alpha1.DisruptionAllowed)
			if c == nil || c.Status != tc.allowed || c.Reason != tc.reason {
				t.Errorf("DisruptionAllowed = %+v, want %s %s", c, tc.allowed, tc.reason)
			}
			r := meta.FindStatusCondition(pdb.Status.Conditions, conditions.Ready)
			if r == nil || r.Status != tc.ready {
				t.Errorf("Ready = %+v, want %s", r, tc.ready)
			}
			if rec := meta.IsStatusConditionTrue(pdb.Status.Conditions, conditions.Reconciling); rec != (tc.ready == metav1.ConditionFalse) {
				t.Errorf("Reconciling = %v with Ready %s", rec, tc.ready)
			}
		})
	}
}

func TestFailSafe(t *testing.T) {
	pdb := &policyv1alpha1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	pdb.Status = policyv1alpha1.PodDisruptionBudgetStatus{ObservedGeneration: 1, DisruptionsAllowed: 3, CurrentHealthy: 5, DesiredHealthy: 2, ExpectedPods: 5}
	FailSafe(pdb, errors.New(`found no controllers for pod "x"`))
	if pdb.Status.DisruptionsAllowed != 0 || pdb.Status.CurrentHealthy != 5 || pdb.Status.ObservedGeneration != 2 {
		t.Errorf("status = %+v", pdb.Status)
	}
	c := meta.FindStatusCondition(pdb.Status.Conditions, policyv1alpha1.DisruptionAllowed)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != policyv1.SyncFailedReason || c.Message != `found no controllers for pod "x"` {
		t.Errorf("DisruptionAllowed = %+v", c)
	}
	if !meta.IsStatusConditionTrue(pdb.Status.Conditions, conditions.Stalled) || meta.IsStatusConditionTrue(pdb.Status.Conditions, conditions.Ready) {
		t.Errorf("conditions = %+v, want Stalled and not Ready", pdb.Status.Conditions)
	}
}

func TestSelects(t *testing.T) {
	tests := map[string]struct {
		selector *metav1.LabelSelector
		want     bool
	}{
		"null selects none":    {},
		"empty selects all":    {selector: &metav1.LabelSelector{}, want: true},
		"matching labels":      {selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, want: true},
		"other labels":         {selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}},
		"invalid selects none": {selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pdb := &policyv1alpha1.PodDisruptionBudget{Spec: policyv1.PodDisruptionBudgetSpec{Selector: tc.selector}}
			if got := Selects(pdb, map[string]string{"app": "web"}); got != tc.want {
				t.Errorf("Selects = %v, want %v", got, tc.want)
			}
		})
	}
}
