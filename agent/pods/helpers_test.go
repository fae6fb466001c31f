package pods

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// podBuilder builds test pods: MakePod("web").Containers("a").Obj().
type podBuilder struct{ p *corev1alpha1.Pod }

func MakePod(name string) *podBuilder {
	return &podBuilder{&corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)}}}
}

func (b *podBuilder) Containers(names ...string) *podBuilder {
	for _, n := range names {
		b.p.Spec.Containers = append(b.p.Spec.Containers, corev1.Container{Name: n, Image: "img:1"})
	}
	return b
}

func (b *podBuilder) Init(names ...string) *podBuilder {
	for _, n := range names {
		b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, corev1.Container{Name: n, Image: "img:1"})
	}
	return b
}

func (b *podBuilder) Sidecar(name string) *podBuilder {
	always := corev1.ContainerRestartPolicyAlways
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, corev1.Container{Name: name, Image: "img:1", RestartPolicy: &always})
	return b
}

func (b *podBuilder) Restart(p corev1.RestartPolicy) *podBuilder {
	b.p.Spec.RestartPolicy = p
	return b
}

func (b *podBuilder) Deleting() *podBuilder {
	now := metav1.NewTime(t0)
	b.p.DeletionTimestamp = &now
	return b
}

func (b *podBuilder) Readiness(container string) *podBuilder {
	for i := range b.p.Spec.Containers {
		if b.p.Spec.Containers[i].Name == container {
			b.p.Spec.Containers[i].ReadinessProbe = &corev1.Probe{}
		}
	}
	return b
}

func (b *podBuilder) Obj() *corev1alpha1.Pod { return b.p }

// runtimeBuilder builds the runtime's view of a pod.
type runtimeBuilder struct{ rp *RuntimePod }

func MakeRuntime() *runtimeBuilder {
	return &runtimeBuilder{&RuntimePod{Containers: map[string][]*ContainerState{}}}
}

func (b *runtimeBuilder) Sandbox(ready bool) *runtimeBuilder {
	b.rp.Sandboxes = append([]*SandboxState{{ID: "sb", Ready: ready, IP: "10.0.0.5", CreatedAt: t0}}, b.rp.Sandboxes...)
	return b
}

func (b *runtimeBuilder) Running(name string, attempt uint32) *runtimeBuilder {
	return b.add(&ContainerState{ID: name + "-" + string(rune('0'+attempt)), SandboxID: "sb", Name: name, Attempt: attempt,
		State: runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: t0})
}

func (b *runtimeBuilder) Created(name string) *runtimeBuilder {
	return b.add(&ContainerState{ID: name + "-c", SandboxID: "sb", Name: name, State: runtimeapi.ContainerState_CONTAINER_CREATED})
}

func (b *runtimeBuilder) Exited(name string, attempt uint32, code int32, finished time.Time) *runtimeBuilder {
	return b.add(&ContainerState{ID: name + "-" + string(rune('0'+attempt)), SandboxID: "sb", Name: name, Attempt: attempt,
		State: runtimeapi.ContainerState_CONTAINER_EXITED, StartedAt: finished.Add(-time.Second), FinishedAt: finished, ExitCode: code})
}

func (b *runtimeBuilder) add(c *ContainerState) *runtimeBuilder {
	b.rp.Containers[c.Name] = append([]*ContainerState{c}, b.rp.Containers[c.Name]...)
	return b
}

func (b *runtimeBuilder) Obj() *RuntimePod { return b.rp }
