package pods

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestComputePodStatus(t *testing.T) {
	type want struct {
		phase   corev1.PodPhase
		display string
		ready   string
		podReady,
		initialized bool
		restarts int32
	}
	tests := map[string]struct {
		pod     *podBuilder
		rt      *runtimeBuilder
		probes  map[string]ProbeState
		waiting map[string]Waiting
		waits   []Wait
		want    want
	}{
		"nothing created yet": {
			pod:  MakePod("web").Containers("a"),
			rt:   MakeRuntime(),
			want: want{phase: corev1.PodPending, display: "ContainerCreating", ready: "0/1", initialized: true},
		},
		"created, not yet started": {
			pod:  MakePod("web").Containers("a"),
			rt:   MakeRuntime().Sandbox(true).Created("a"),
			want: want{phase: corev1.PodPending, display: "ContainerCreating", ready: "0/1", initialized: true},
		},
		"running and ready": {
			pod:  MakePod("web").Containers("a", "b"),
			rt:   MakeRuntime().Sandbox(true).Running("a", 0).Running("b", 0),
			want: want{phase: corev1.PodRunning, display: "Running", ready: "2/2", podReady: true, initialized: true},
		},
		"running, readiness not yet passed": {
			pod:    MakePod("web").Containers("a").Readiness("a"),
			rt:     MakeRuntime().Sandbox(true).Running("a", 0),
			probes: map[string]ProbeState{"a-0": {Live: true, Ready: false, Started: true}},
			want:   want{phase: corev1.PodRunning, display: "Running", ready: "0/1", initialized: true},
		},
		"waiting for the first init container": {
			pod:  MakePod("web").Init("i1", "i2").Containers("a"),
			rt:   MakeRuntime().Sandbox(true).Running("i1", 0),
			want: want{phase: corev1.PodPending, display: "Init:0/2", ready: "0/1"},
		},
		"init container crash looping": {
			pod:   MakePod("web").Init("i1").Containers("a"),
			rt:    MakeRuntime().Sandbox(true).Exited("i1", 0, 1, t0).Exited("i1", 1, 1, t0),
			waits: []Wait{{Name: "i1", Until: t0.Add(10 * time.Second)}},
			want:  want{phase: corev1.PodPending, display: "Init:CrashLoopBackOff", ready: "0/1", restarts: 1},
		},
		"crash loop back-off": {
			pod:   MakePod("web").Containers("a"),
			rt:    MakeRuntime().Sandbox(true).Exited("a", 0, 1, t0).Exited("a", 1, 1, t0.Add(time.Second)),
			waits: []Wait{{Name: "a", Until: t0.Add(11 * time.Second)}},
			want:  want{phase: corev1.PodRunning, display: "CrashLoopBackOff", ready: "0/1", initialized: true, restarts: 1},
		},
		"image pull failing": {
			pod:     MakePod("web").Containers("a"),
			rt:      MakeRuntime().Sandbox(true),
			waiting: map[string]Waiting{"a": {Reason: ReasonImagePullBackOff, Message: "Back-off pulling image"}},
			want:    want{phase: corev1.PodPending, display: "ImagePullBackOff", ready: "0/1", initialized: true},
		},
		"completed under Never": {
			pod:  MakePod("web").Containers("a").Restart(corev1.RestartPolicyNever),
			rt:   MakeRuntime().Sandbox(true).Exited("a", 0, 0, t0),
			want: want{phase: corev1.PodSucceeded, display: "Completed", ready: "0/1", initialized: true},
		},
		"failed under Never": {
			pod:  MakePod("web").Containers("a", "b").Restart(corev1.RestartPolicyNever),
			rt:   MakeRuntime().Sandbox(true).Exited("a", 0, 2, t0).Exited("b", 0, 0, t0),
			want: want{phase: corev1.PodFailed, display: "Error", ready: "0/2", initialized: true},
		},
		"failed init container under Never": {
			pod:  MakePod("web").Init("i1").Containers("a").Restart(corev1.RestartPolicyNever),
			rt:   MakeRuntime().Sandbox(true).Exited("i1", 0, 1, t0),
			want: want{phase: corev1.PodFailed, display: "Init:Error", ready: "0/1"},
		},
		"one done, one running under OnFailure": {
			pod:  MakePod("web").Containers("a", "b").Restart(corev1.RestartPolicyOnFailure),
			rt:   MakeRuntime().Sandbox(true).Exited("a", 0, 0, t0).Running("b", 0),
			want: want{phase: corev1.PodRunning, display: "Running", ready: "1/2", initialized: true},
		},
		"terminating": {
			pod:  MakePod("web").Containers("a").Deleting(),
			rt:   MakeRuntime().Sandbox(true).Running("a", 0),
			want: want{phase: corev1.PodRunning, display: "Terminating", ready: "1/1", podReady: true, initialized: true},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := ComputePodStatus(StatusInput{Pod: tc.pod.Obj(), Runtime: tc.rt.Obj(), Probes: tc.probes, Waiting: tc.waiting,
				Waits: tc.waits, HostIP: "192.0.2.1", RuntimeName: "containerd", Now: t0})
			got := want{
				phase: st.Phase, display: st.DisplayStatus, ready: st.Ready, restarts: st.RestartCount,
				podReady:    meta.IsStatusConditionTrue(st.Conditions, conditions.Ready),
				initialized: meta.IsStatusConditionTrue(st.Conditions, corev1alpha1.PodInitialized),
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if st.HostIP != "192.0.2.1" || st.StartTime == nil || st.QOSClass == "" {
				t.Errorf("hostIP, startTime and qosClass must be set: %+v", st)
			}
			progress := 0
			if meta.FindStatusCondition(st.Conditions, conditions.Reconciling) != nil || meta.FindStatusCondition(st.Conditions, conditions.Stalled) != nil {
				progress = 1
			}
			if wantProgress := !tc.want.podReady && st.Phase != corev1.PodSucceeded; wantProgress != (progress == 1) {
				t.Errorf("a pod has Reconciling or Stalled exactly when it is neither ready nor succeeded (kstatus): %v", st.Conditions)
			}
			if len(st.Conditions) != 4+progress {
				t.Errorf("want the 4 pod conditions and at most one of Reconciling and Stalled, got %v", st.Conditions)
			}
		})
	}
}

func TestComputePodStatusDetails(t *testing.T) {
	pod := MakePod("web").Containers("a").Obj()
	scheduledAt := metav1.NewTime(t0.Add(-time.Minute))
	pod.Status.Conditions = []metav1.Condition{{Type: corev1alpha1.PodScheduled, Status: metav1.ConditionTrue, Reason: "Scheduled", LastTransitionTime: scheduledAt}}
	rt := MakeRuntime().Sandbox(true).Exited("a", 0, 137, t0).Exited("a", 1, 1, t0.Add(time.Second)).Obj()
	rt.Containers["a"][1].Reason = "OOMKilled"
	st := ComputePodStatus(StatusInput{Pod: pod, Runtime: rt, RuntimeName: "containerd", Now: t0.Add(2 * time.Second),
		Waits: []Wait{{Name: "a", Until: t0.Add(21 * time.Second)}}})
	cs := st.ContainerStatuses[0]
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != ReasonCrashLoopBackOff {
		t.Fatalf("want CrashLoopBackOff, got %+v", cs.State)
	}
	if want := "back-off 20s restarting failed container=a pod=web_ns(uid-web)"; cs.State.Waiting.Message != want {
		t.Errorf("message %q, want %q", cs.State.Waiting.Message, want)
	}
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 1 || lt.Reason != "Error" || lt.ContainerID != "containerd://a-1" {
		t.Errorf("last state %+v", cs.LastTerminationState)
	}
	if st.PodIP != "10.0.0.5" || len(st.PodIPs) != 1 {
		t.Errorf("pod IP %q %v", st.PodIP, st.PodIPs)
	}
	if c := meta.FindStatusCondition(st.Conditions, corev1alpha1.PodScheduled); !c.LastTransitionTime.Equal(&scheduledAt) {
		t.Errorf("PodScheduled must be kept as the scheduler wrote it: %+v", c)
	}
	if c := meta.FindStatusCondition(st.Conditions, conditions.Ready); c.Reason != ReasonContainersNotReady || c.Message != "containers with unready status: [a]" {
		t.Errorf("Ready condition %+v", c)
	}
	// An earlier OOM kill is reported as such.
	rt2 := MakeRuntime().Sandbox(true).Exited("a", 0, 137, t0).Obj()
	rt2.Containers["a"][0].Reason = "OOMKilled"
	st2 := ComputePodStatus(StatusInput{Pod: MakePod("web").Containers("a").Restart(corev1.RestartPolicyNever).Obj(), Runtime: rt2, Now: t0})
	if term := st2.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "OOMKilled" || st2.DisplayStatus != "OOMKilled" {
		t.Errorf("want OOMKilled, got %+v / %s", st2.ContainerStatuses[0].State, st2.DisplayStatus)
	}
}

func TestQOSClass(t *testing.T) {
	rl := func(kv ...string) corev1.ResourceList {
		l := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	c := func(req, lim corev1.ResourceList) corev1.Container {
		return corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
	}
	tests := map[string]struct {
		containers, init []corev1.Container
		want             corev1.PodQOSClass
	}{
		"no resources":                  {containers: []corev1.Container{c(nil, nil)}, want: corev1.PodQOSBestEffort},
		"requests only":                 {containers: []corev1.Container{c(rl("cpu", "100m"), nil)}, want: corev1.PodQOSBurstable},
		"limits only count as requests": {containers: []corev1.Container{c(nil, rl("cpu", "1", "memory", "1Gi"))}, want: corev1.PodQOSGuaranteed},
		"equal requests and limits":     {containers: []corev1.Container{c(rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))}, want: corev1.PodQOSGuaranteed},
		"requests below limits":         {containers: []corev1.Container{c(rl("cpu", "500m", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi"))}, want: corev1.PodQOSBurstable},
		"cpu limit without memory":      {containers: []corev1.Container{c(nil, rl("cpu", "1"))}, want: corev1.PodQOSBurstable},
		"one best-effort container":     {containers: []corev1.Container{c(nil, rl("cpu", "1", "memory", "1Gi")), c(nil, nil)}, want: corev1.PodQOSBurstable},
		"init container counts": {
			containers: []corev1.Container{c(nil, rl("cpu", "1", "memory", "1Gi"))},
			init:       []corev1.Container{c(rl("cpu", "100m"), nil)},
			want:       corev1.PodQOSBurstable,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := QOSClass(&corev1.PodSpec{Containers: tc.containers, InitContainers: tc.init}); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPullPolicy(t *testing.T) {
	tests := map[string]struct {
		image  string
		policy corev1.PullPolicy
		want   corev1.PullPolicy
	}{
		"no tag":             {image: "busybox", want: corev1.PullAlways},
		"latest":             {image: "busybox:latest", want: corev1.PullAlways},
		"tag":                {image: "busybox:1.36", want: corev1.PullIfNotPresent},
		"registry port only": {image: "127.0.0.1:5000/busybox", want: corev1.PullAlways},
		"registry and tag":   {image: "127.0.0.1:5000/busybox:1", want: corev1.PullIfNotPresent},
		"digest":             {image: "busybox@sha256:abc", want: corev1.PullIfNotPresent},
		"explicit":           {image: "busybox", policy: corev1.PullNever, want: corev1.PullNever},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := pullPolicy(&corev1.Container{Image: tc.image, ImagePullPolicy: tc.policy}); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestExpandVars(t *testing.T) {
	env := map[string]string{"A": "1", "B": "two"}
	tests := map[string]string{
		"$(A)":         "1",
		"x-$(B)-$(A)":  "x-two-1",
		"$(MISSING)":   "$(MISSING)",
		"$$(A)":        "$(A)",
		"cost $5":      "cost $5",
		"open $(A":     "open $(A",
		"$(A)$(B)$(A)": "1two1",
	}
	for in, want := range tests {
		if got := expandVars(in, env); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLinuxResources(t *testing.T) {
	c := &corev1.Container{Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
	}}
	r := linuxResources(c)
	if r.CpuShares != 256 || r.CpuQuota != 50000 || r.CpuPeriod != 100000 || r.MemoryLimitInBytes != 64<<20 {
		t.Errorf("got shares %d quota %d period %d memory %d", r.CpuShares, r.CpuQuota, r.CpuPeriod, r.MemoryLimitInBytes)
	}
	if r := linuxResources(&corev1.Container{}); r.CpuShares != 2 || r.CpuQuota != 0 || r.MemoryLimitInBytes != 0 {
		t.Errorf("best effort: %+v", r)
	}
}

func TestImageRegistry(t *testing.T) {
	for image, want := range map[string]string{
		"busybox":                      "docker.io",
		"library/busybox:1":            "docker.io",
		"127.0.0.1:5000/busybox":       "127.0.0.1:5000",
		"localhost/x:1":                "localhost",
		"registry.example.com/a/b:1.0": "registry.example.com",
	} {
		if got := imageRegistry(image); got != want {
			t.Errorf("imageRegistry(%q) = %q, want %q", image, got, want)
		}
	}
}
