package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

func popKeys(q *Queue, n int) []string {
	var keys []string
	for i := 0; i < n; i++ {
		keys = append(keys, q.Pop().info.key)
	}
	return keys
}

type lens struct{ Active, Backoff, Unschedulable int }

func queueLens(q *Queue) lens {
	a, b, u := q.Lens()
	return lens{a, b, u}
}

func TestQueueOrdersByPriorityThenAge(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	q := NewQueue(clk)
	for _, p := range []struct {
		name string
		prio int32
	}{{"low-old", 0}, {"high-old", 10}, {"low-new", 0}, {"high-new", 10}} {
		q.Add(MakePod(p.name, "ns").Priority(p.prio).Info())
		clk.Step(time.Second)
	}
	want := []string{"ns/high-old", "ns/high-new", "ns/low-old", "ns/low-new"}
	if diff := cmp.Diff(want, popKeys(q, 4)); diff != "" {
		t.Errorf("pop order (-want +got):\n%s", diff)
	}
}

func TestQueueUnschedulableAndBackoff(t *testing.T) {
	tests := []struct {
		name string
		// run acts on the queue after the pod was popped and returned as unschedulable.
		run  func(q *Queue, clk *clocktesting.FakeClock)
		want lens
	}{{
		name: "waits in the unschedulable set without an event",
		run:  func(q *Queue, clk *clocktesting.FakeClock) { clk.Step(time.Minute); q.Flush() },
		want: lens{Unschedulable: 1},
	}, {
		name: "an event during back-off moves it to back-off",
		run:  func(q *Queue, clk *clocktesting.FakeClock) { q.MoveAllUnschedulable() },
		want: lens{Backoff: 1},
	}, {
		name: "an event after back-off moves it to active",
		run: func(q *Queue, clk *clocktesting.FakeClock) {
			clk.Step(initialBackoff)
			q.MoveAllUnschedulable()
		},
		want: lens{Active: 1},
	}, {
		name: "back-off expires on flush",
		run: func(q *Queue, clk *clocktesting.FakeClock) {
			q.MoveAllUnschedulable()
			clk.Step(initialBackoff)
			q.Flush()
		},
		want: lens{Active: 1},
	}, {
		name: "retried anyway after five minutes",
		run: func(q *Queue, clk *clocktesting.FakeClock) {
			clk.Step(maxUnschedulableDuration + time.Second)
			q.Flush()
		},
		want: lens{Active: 1},
	}, {
		name: "an update of the pod moves it out",
		run: func(q *Queue, clk *clocktesting.FakeClock) {
			clk.Step(initialBackoff)
			q.Add(MakePod("p", "ns").Labels("changed", "yes").Info())
		},
		want: lens{Active: 1},
	}, {
		name: "deleted",
		run:  func(q *Queue, clk *clocktesting.FakeClock) { q.Delete("ns/p") },
		want: lens{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
			q := NewQueue(clk)
			q.Add(MakePod("p", "ns").Info())
			q.AddUnschedulable(q.Pop(), false)
			tt.run(q, clk)
			if diff := cmp.Diff(tt.want, queueLens(q)); diff != "" {
				t.Errorf("queue sizes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQueueEventWhileInFlightIsNotLost(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	q := NewQueue(clk)
	q.Add(MakePod("p", "ns").Info())
	p := q.Pop()
	q.MoveAllUnschedulable() // a node was added while the pod was being scheduled
	q.AddUnschedulable(p, false)
	if diff := cmp.Diff(lens{Backoff: 1}, queueLens(q)); diff != "" {
		t.Errorf("queue sizes (-want +got):\n%s", diff)
	}
}

func TestQueueBackoffGrows(t *testing.T) {
	tests := []struct {
		attempts int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {20, 10 * time.Second}}
	for _, tt := range tests {
		p := &queuedPod{attempts: tt.attempts, lastFailure: time.Unix(0, 0)}
		if got := p.backoffExpiry().Sub(time.Unix(0, 0)); got != tt.want {
			t.Errorf("attempts %d: back-off %v, want %v", tt.attempts, got, tt.want)
		}
	}
}

func TestQueuePopBlocksUntilAddOrClose(t *testing.T) {
	q := NewQueue(clocktesting.NewFakeClock(time.Unix(1000, 0)))
	got := make(chan *queuedPod)
	go func() { got <- q.Pop() }()
	q.Add(MakePod("p", "ns").Info())
	if p := <-got; p == nil || p.info.key != "ns/p" {
		t.Fatalf("Pop returned %v, want ns/p", p)
	}
	go func() { got <- q.Pop() }()
	q.Close()
	if p := <-got; p != nil {
		t.Fatalf("Pop after Close returned %v, want nil", p.info.key)
	}
}
