package podcontrol

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestExpectations(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	e := NewExpectations(clk)
	const key = "ns/rs"
	if !e.Satisfied(key) {
		t.Fatal("no expectations must be satisfied")
	}
	e.ExpectCreations(key, 2)
	e.ExpectDeletions(key, []types.UID{"a"})
	steps := []struct {
		do   func()
		want bool
	}{
		{func() {}, false},
		{func() { e.CreationObserved(key) }, false},
		{func() { e.DeletionObserved(key, "unrelated") }, false},
		{func() { e.CreationObserved(key) }, false},
		{func() { e.DeletionObserved(key, "a") }, true},
		{func() { e.CreationObserved(key) }, true}, // never below zero
	}
	for i, s := range steps {
		s.do()
		if got := e.Satisfied(key); got != s.want {
			t.Fatalf("step %d: Satisfied = %v, want %v", i, got, s.want)
		}
	}
	e.ExpectCreations(key, 1)
	if e.Satisfied(key) {
		t.Fatal("fresh expectations must not be satisfied")
	}
	clk.SetTime(t0.Add(ExpectationsTimeout + time.Second))
	if !e.Satisfied(key) {
		t.Fatal("expired expectations must be satisfied")
	}
	e.Forget(key)
	if a, d := e.Pending(key); a != 0 || d != 0 {
		t.Fatalf("forgotten key has pending %d/%d", a, d)
	}
}

func TestSlowStartBatch(t *testing.T) {
	tests := map[string]struct {
		count, failAt int // failAt: the call number (1-based) that fails; 0 never
		wantSuccesses int
		wantCalls     int
		wantErr       bool
	}{
		"all succeed in 1+2+4+3":       {count: 10, wantSuccesses: 10, wantCalls: 10},
		"nothing to do":                {count: 0, wantSuccesses: 0, wantCalls: 0},
		"the first call fails: stop":   {count: 500, failAt: 1, wantSuccesses: 0, wantCalls: 1, wantErr: true},
		"a failure in the third batch": {count: 500, failAt: 5, wantSuccesses: 6, wantCalls: 7, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			got, err := SlowStartBatch(tc.count, 1, func() error {
				if n := calls.Add(1); tc.failAt != 0 && int(n) == tc.failAt {
					return errors.New("refused")
				}
				return nil
			})
			if got != tc.wantSuccesses || int(calls.Load()) != tc.wantCalls || (err != nil) != tc.wantErr {
				t.Errorf("successes %d calls %d err %v; want %d, %d, err %v", got, calls.Load(), err, tc.wantSuccesses, tc.wantCalls, tc.wantErr)
			}
		})
	}
}
