package pods

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
)

func TestComputePodActions(t *testing.T) {
	crashed := NewBackoff(InitialBackoff, MaxBackoff)
	// One restart already happened at t0: the next exit waits 10s.
	crashed.Next("uid-web/app", t0)
	tests := map[string]struct {
		pod     *podBuilder
		rt      *runtimeBuilder
		probes  map[string]ProbeState
		backoff *Backoff
		now     time.Time
		want    PodActions
	}{
		"a new pod gets a sandbox and all its containers": {
			pod:  MakePod("web").Containers("a", "b"),
			rt:   MakeRuntime(),
			want: PodActions{CreateSandbox: true, ContainersToStart: []int{0, 1}},
		},
		"a new pod with init containers starts the first one only": {
			pod:  MakePod("web").Init("i1", "i2").Containers("a"),
			rt:   MakeRuntime(),
			want: PodActions{CreateSandbox: true, InitContainersToStart: []int{0}},
		},
		"the next init container starts once the previous one completed": {
			pod:  MakePod("web").Init("i1", "i2").Containers("a"),
			rt:   MakeRuntime().Sandbox(true).Exited("i1", 0, 0, t0),
			want: PodActions{SandboxID: "sb", InitContainersToStart: []int{1}},
		},
		"a running init container is waited for": {
			pod:  MakePod("web").Init("i1", "i2").Containers("a"),
			rt:   MakeRuntime().Sandbox(true).Running("i1", 0),
			want: PodActions{SandboxID: "sb"},
		},
		"containers start after every init container completed": {
			pod:  MakePod("web").Init("i1").Containers("a", "b"),
			rt:   MakeRuntime().Sandbox(true).Exited("i1", 0, 0, t0),
			want: PodActions{SandboxID: "sb", ContainersToStart: []int{0, 1}},
		},
		"a started sidecar lets the next init container start": {
			pod:  MakePod("web").Sidecar("proxy").Init("i1").Containers("a"),
			rt:   MakeRuntime().Sandbox(true).Running("proxy", 0),
			want: PodActions{SandboxID: "sb", InitContainersToStart: []int{1}},
		},
		"a sidecar that exited restarts while containers run": {
			pod:  MakePod("web").Sidecar("proxy").Containers("a"),
			rt:   MakeRuntime().Sandbox(true).Exited("proxy", 0, 1, t0).Running("a", 0),
			now:  t0.Add(time.Second),
			want: PodActions{SandboxID: "sb", InitContainersToStart: []int{0}},
		},
		"a failed init container restarts under OnFailure": {
			pod:  MakePod("web").Init("i1").Containers("a").Restart(corev1.RestartPolicyOnFailure),
			rt:   MakeRuntime().Sandbox(true).Exited("i1", 0, 1, t0),
			now:  t0.Add(time.Second),
			want: PodActions{SandboxID: "sb", InitContainersToStart: []int{0}},
		},
		"a failed init container under Never ends the pod": {
			pod:  MakePod("web").Init("i1").Containers("a").Restart(corev1.RestartPolicyNever),
			rt:   MakeRuntime().Sandbox(true).Exited("i1", 0, 1, t0),
			want: PodActions{KillPod: true, Terminal: true},
		},
		"a steady pod needs nothing": {
			pod:  MakePod("web").Containers("a"),
			rt:   MakeRuntime().Sandbox(true).Running("a", 0),
			want: PodActions{SandboxID: "sb"},
		},
		"the first exit restarts at once": {
			pod:  MakePod("web").Containers("app"),
			rt:   MakeRuntime().Sandbox(true).Exited("app", 0, 1, t0),
			now:  t0.Add(time.Second),
			want: PodActions{SandboxID: "sb", ContainersToStart: []int{0}},
		},
		"a later exit waits for the back-off": {
			pod:     MakePod("web").Containers("app"),
			rt:      MakeRuntime().Sandbox(true).Exited("app", 1, 1, t0.Add(2*time.Second)),
			backoff: crashed,
			now:     t0.Add(5 * time.Second),
			want:    PodActions{SandboxID: "sb", Waits: []Wait{{Name: "app", Until: t0.Add(12 * time.Second)}}},
		},
		"the back-off ends": {
			pod:     MakePod("web").Containers("app"),
			rt:      MakeRuntime().Sandbox(true).Exited("app", 1, 1, t0.Add(2*time.Second)),
			backoff: crashed,
			now:     t0.Add(13 * time.Second),
			want:    PodActions{SandboxID: "sb", ContainersToStart: []int{0}},
		},
		"a completed container stays completed under OnFailure": {
			pod:  MakePod("web").Containers("a", "b").Restart(corev1.RestartPolicyOnFailure),
			rt:   MakeRuntime().Sandbox(true).Exited("a", 0, 0, t0).Running("b", 0),
			want: PodActions{SandboxID: "sb"},
		},
		"a failed liveness probe kills and restarts the container": {
			pod:    MakePod("web").Containers("a"),
			rt:     MakeRuntime().Sandbox(true).Running("a", 0),
			probes: map[string]ProbeState{"a-0": {Live: false, Ready: true, Started: true}},
			want: PodActions{SandboxID: "sb", ContainersToStart: []int{0},
				ContainersToKill: map[string]KillInfo{"a-0": {Name: "a", Reason: "Unhealthy", Message: "Container a failed liveness probe, will be restarted"}}},
		},
		"a dead sandbox is replaced with the next attempt": {
			pod:  MakePod("web").Containers("a"),
			rt:   MakeRuntime().Sandbox(false).Exited("a", 0, 137, t0),
			want: PodActions{CreateSandbox: true, Attempt: 1, ContainersToStart: []int{0}},
		},
		"a dead sandbox of a pod that must not restart stays dead": {
			pod:  MakePod("web").Containers("a", "b").Restart(corev1.RestartPolicyNever),
			rt:   MakeRuntime().Sandbox(false).Exited("a", 0, 137, t0).Running("b", 0),
			want: PodActions{KillPod: true, Terminal: true},
		},
		"every container done under Never ends the pod": {
			pod:  MakePod("web").Containers("a").Restart(corev1.RestartPolicyNever),
			rt:   MakeRuntime().Sandbox(true).Exited("a", 0, 0, t0),
			want: PodActions{KillPod: true, Terminal: true},
		},
		"a deleted pod is killed": {
			pod:  MakePod("web").Containers("a").Deleting(),
			rt:   MakeRuntime().Sandbox(true).Running("a", 0),
			want: PodActions{KillPod: true},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := tc.backoff
			if b == nil {
				b = NewBackoff(InitialBackoff, MaxBackoff)
			}
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			got := ComputePodActions(ActionInput{Pod: tc.pod.Obj(), Runtime: tc.rt.Obj(), Probes: tc.probes, Backoff: b, Now: now})
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerHashChangeRestarts(t *testing.T) {
	pod := MakePod("web").Containers("a").Obj()
	rt := MakeRuntime().Sandbox(true).Running("a", 0).Obj()
	rt.Containers["a"][0].Hash = "stale"
	got := ComputePodActions(ActionInput{Pod: pod, Runtime: rt, Backoff: NewBackoff(InitialBackoff, MaxBackoff), Now: t0})
	if _, ok := got.ContainersToKill["a-0"]; !ok || len(got.ContainersToStart) != 1 {
		t.Errorf("a changed container must be killed and started again, got %+v", got)
	}
}

func TestBackoff(t *testing.T) {
	b := NewBackoff(InitialBackoff, MaxBackoff)
	key := "uid/c"
	now := t0
	var delays []time.Duration
	for range 8 {
		if wait, until := b.InBackoffSince(key, now, now); wait {
			delays = append(delays, until.Sub(now))
		} else {
			delays = append(delays, 0)
		}
		b.Next(key, now)
		now = now.Add(time.Second)
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	if diff := cmp.Diff(want, delays); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
	// A quiet period longer than twice the maximum starts over.
	if wait, _ := b.InBackoffSince(key, now.Add(11*time.Minute), now.Add(11*time.Minute)); wait {
		t.Errorf("back-off must reset after a quiet period")
	}
	b.Forget("uid/")
	if b.Delay(key) != 0 {
		t.Errorf("Forget must drop the pod's keys")
	}
}

func TestPruneContainers(t *testing.T) {
	rt := fakeRuntimeForPrune(t)
	n := NewNode(Options{Runtime: rt})
	rp := MakeRuntime().Sandbox(true).Exited("a", 0, 1, t0).Exited("a", 1, 1, t0).Exited("a", 2, 1, t0).Running("a", 3).Obj()
	n.pruneContainers(t.Context(), rp)
	var attempts []uint32
	for _, c := range rp.Containers["a"] {
		attempts = append(attempts, c.Attempt)
	}
	if diff := cmp.Diff([]uint32{3, 2}, attempts); diff != "" {
		t.Errorf("kept attempts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a-1", "a-0"}, rt.removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
}
