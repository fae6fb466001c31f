package fake

import (
	"context"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/agent/cri"
)

func TestLifecycle(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := New(Options{StartDelay: time.Second, RunDuration: 5 * time.Second, Now: func() time.Time { return now }})
	ctx := context.Background()
	state := func(id string) runtimeapi.ContainerState {
		st, err := r.ContainerStatus(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		return st.Status.State
	}
	tests := map[string]struct {
		annotations map[string]string
		ctype       string
		at          []time.Duration
		want        []runtimeapi.ContainerState
		exitCode    int32
	}{
		"runs after the start delay and keeps running": {
			at:   []time.Duration{0, time.Second, time.Hour},
			want: []runtimeapi.ContainerState{runtimeapi.ContainerState_CONTAINER_CREATED, runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_RUNNING},
		},
		"exits with the pod's exit code after the run duration": {
			annotations: map[string]string{AnnotationExitCode: "3"},
			at:          []time.Duration{time.Second, 6 * time.Second},
			want:        []runtimeapi.ContainerState{runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_EXITED},
			exitCode:    3,
		},
		"a simulated init container completes": {
			ctype: "init",
			at:    []time.Duration{0, time.Second},
			want:  []runtimeapi.ContainerState{runtimeapi.ContainerState_CONTAINER_CREATED, runtimeapi.ContainerState_CONTAINER_EXITED},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			start := now
			sb, _ := r.RunPodSandbox(ctx, &runtimeapi.PodSandboxConfig{Annotations: tc.annotations, Labels: map[string]string{cri.LabelPodUID: name}}, "")
			id, err := r.CreateContainer(ctx, sb, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Annotations: map[string]string{cri.AnnotationContainerType: tc.ctype}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.StartContainer(ctx, id); err != nil {
				t.Fatal(err)
			}
			for i, d := range tc.at {
				now = start.Add(d)
				if got := state(id); got != tc.want[i] {
					t.Errorf("at %s: %s, want %s", d, got, tc.want[i])
				}
			}
			st, _ := r.ContainerStatus(ctx, id, false)
			if st.Status.State == runtimeapi.ContainerState_CONTAINER_EXITED && st.Status.ExitCode != tc.exitCode {
				t.Errorf("exit code %d, want %d", st.Status.ExitCode, tc.exitCode)
			}
			if err := r.StopPodSandbox(ctx, sb); err != nil {
				t.Fatal(err)
			}
			if got := state(id); got != runtimeapi.ContainerState_CONTAINER_EXITED {
				t.Errorf("after stopping the sandbox: %s", got)
			}
			if err := r.RemovePodSandbox(ctx, sb); err != nil {
				t.Fatal(err)
			}
			now = start
		})
	}
	if s, c := r.Counts(); s != 0 || c != 0 {
		t.Errorf("left %d sandboxes and %d containers", s, c)
	}
}
