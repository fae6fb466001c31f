package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/pods"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// podWriteStep is one write of every pod of a side, as the component
// that makes it in a cluster makes it.
type podWriteStep struct {
	name  string
	write func(ctx context.Context, i int) error
}

// skiffPodWrites are the writes of a skiff pod's start, as skiff's
// components send them: the ReplicaSet controller's create, the
// scheduler's bind (spec.nodeName, then the PodScheduled condition, each
// a merge patch with the resourceVersion it decided on), the agent's
// status once the pod runs (a merge patch computed by the agent's own
// status function).
func skiffPodWrites(c client.Client, ns string, n int) []podWriteStep {
	live := make([]*corev1alpha1.Pod, n)
	return []podWriteStep{
		{"create", func(ctx context.Context, i int) error {
			p := skiffPod(ns, i)
			p.Labels = map[string]string{"app": "web"}
			live[i] = p
			return c.Create(ctx, p)
		}},
		{"bind: spec.nodeName", func(ctx context.Context, i int) error {
			p := live[i].DeepCopy()
			p.Spec.NodeName = fmt.Sprintf("sim-%d", i%100)
			err := c.Patch(ctx, p, client.MergeFromWithOptions(live[i], client.MergeFromWithOptimisticLock{}))
			live[i] = p
			return err
		}},
		{"bind: PodScheduled", func(ctx context.Context, i int) error {
			p := live[i].DeepCopy()
			meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
				Type: corev1alpha1.PodScheduled, Status: metav1.ConditionTrue,
				Reason: corev1alpha1.ReasonScheduled, Message: "Bound to node " + p.Spec.NodeName,
			})
			err := c.Status().Patch(ctx, p, client.MergeFromWithOptions(live[i], client.MergeFromWithOptimisticLock{}))
			live[i] = p
			return err
		}},
		{"agent: Running and Ready", func(ctx context.Context, i int) error {
			p := live[i].DeepCopy()
			p.Status = pods.ComputePodStatus(runningInput(p))
			return c.Status().Patch(ctx, p, client.MergeFrom(live[i]))
		}},
	}
}

// runningInput is the agent's view of pod p with its sandbox ready and
// every container running and ready.
func runningInput(p *corev1alpha1.Pod) pods.StatusInput {
	now := time.Now()
	rp := &pods.RuntimePod{UID: p.UID, Containers: map[string][]*pods.ContainerState{},
		Sandboxes: []*pods.SandboxState{{ID: "sb-" + string(p.UID), Ready: true, IP: "10.1.0.2", CreatedAt: now}}}
	probes := map[string]pods.ProbeState{}
	for _, c := range p.Spec.Containers {
		id := "c-" + c.Name + "-" + string(p.UID)
		rp.Containers[c.Name] = []*pods.ContainerState{{ID: id, SandboxID: "sb-" + string(p.UID), Name: c.Name,
			State: runtimeapi.ContainerState_CONTAINER_RUNNING, CreatedAt: now, StartedAt: now, Image: c.Image, ImageRef: c.Image}}
		probes[id] = pods.ProbeState{Live: true, Ready: true, Started: true}
	}
	return pods.StatusInput{Pod: p, Runtime: rp, Probes: probes, HostIP: "10.0.0.1", RuntimeName: "fake", Now: now}
}

// corePodWrites are the same pod's writes upstream: the ReplicaSet
// controller's create, kube-scheduler's binding, and a kubelet-like status
// (kwok's) as a strategic merge patch of the status subresource.
func corePodWrites(cs kubernetes.Interface, ns string, n int) []podWriteStep {
	return []podWriteStep{
		{"create", func(ctx context.Context, i int) error {
			p := upstreamPod(ns, i)
			p.Labels = map[string]string{"app": "web"}
			_, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			return err
		}},
		{"bind", func(ctx context.Context, i int) error {
			return cs.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i)},
				Target:     corev1.ObjectReference{Kind: "Node", Name: fmt.Sprintf("node-%d", i%100)},
			}, metav1.CreateOptions{})
		}},
		{"kubelet: Running and Ready", func(ctx context.Context, i int) error {
			now := metav1.NewTime(time.Now().Truncate(time.Second))
			st := corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.0.0.1", HostIPs: []corev1.HostIP{{IP: "10.0.0.1"}},
				PodIP: "10.1.0.2", PodIPs: []corev1.PodIP{{IP: "10.1.0.2"}}, StartTime: &now, QOSClass: corev1.PodQOSBurstable}
			for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady} {
				st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
			}
			started := true
			st.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Ready: true, Started: &started, Image: "busybox",
				ImageID: "busybox", ContainerID: "fake://c-c", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
			patch, err := json.Marshal(map[string]any{"status": st})
			if err != nil {
				return err
			}
			_, err = cs.CoreV1().Pods(ns).Patch(ctx, fmt.Sprintf("pod-%d", i), types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
			return err
		}},
	}
}

// runPodWrites makes every step's write for n pods, 32 at a time, and
// prints the API server's and etcd's CPU per write of each step.
func runPodWrites(ctx context.Context, b *testing.B, cs kubernetes.Interface, debugSocket, side string, steps []podWriteStep, n int) (apiserverPerPod float64) {
	b.Helper()
	var rows []string
	for _, s := range steps {
		var profiled chan error
		if dir := os.Getenv("SKIFF_BENCH_PPROF"); dir != "" {
			// A sample of the step's first seconds: make n large enough.
			profiled = make(chan error, 1)
			name := strings.NewReplacer(" ", "-", ":", "", ".", "-").Replace(side + "-" + s.name)
			go func() {
				profiled <- saveProfile(ctx, debugSocket, filepath.Join(dir, name+".pprof"), envInt("SKIFF_BENCH_PPROF_SECONDS", 2))
			}()
		}
		before, reqBefore := cpuSeconds(), must(scrapeRequests(ctx, cs))
		start := time.Now()
		parallel(b, n, func(i int) error { return s.write(ctx, i) })
		elapsed := time.Since(start)
		after, reqAfter := cpuSeconds(), must(scrapeRequests(ctx, cs))
		api := after["kube-apiserver"] - before["kube-apiserver"]
		apiserverPerPod += api / float64(n)
		rows = append(rows, fmt.Sprintf("  %-6s %-28s kube-apiserver %5.2f ms, etcd %5.2f ms, client %5.2f ms per write (%s; %s)",
			side, s.name, 1000*api/float64(n), 1000*(after["etcd"]-before["etcd"])/float64(n),
			1000*(after["bench"]-before["bench"])/float64(n), secs(elapsed), writeSummary(reqBefore, reqAfter, n)))
		if profiled != nil {
			if err := <-profiled; err != nil {
				b.Logf("CPU profile of kube-apiserver: %v", err)
			}
		}
	}
	fmt.Println(strings.Join(rows, "\n"))
	return apiserverPerPod
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// BenchmarkPodWrites measures the API server's CPU for each write of a
// pod's start, skiff's (a CustomResource: JSON, structural schema, CEL
// rules, merge patches) against upstream's (a built-in: protobuf,
// compiled validation, the binding subresource), without controllers, so
// that the cost of one kind of write can be changed and measured alone.
// SKIFF_BENCH_PODS sets the number of pods (500).
func BenchmarkPodWrites(b *testing.B) {
	n := envInt("SKIFF_BENCH_PODS", 500)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cp, fast, debugSocket := startBenchControlPlane(ctx, b)
	c, err := client.New(fast, client.Options{Scheme: scheme.New()})
	if err != nil {
		b.Fatal(err)
	}
	cs := fastClient(b, cp.Config)
	for i := range b.N {
		for _, ns := range []string{fmt.Sprintf("skiff-%d", i), fmt.Sprintf("upstream-%d", i)} {
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		s := runPodWrites(ctx, b, cs, debugSocket, "skiff", skiffPodWrites(c, fmt.Sprintf("skiff-%d", i), n), n)
		u := runPodWrites(ctx, b, cs, debugSocket, "upstream", corePodWrites(cs, fmt.Sprintf("upstream-%d", i), n), n)
		for _, path := range []string{"/apis/core.skiff.dev/v1alpha1/namespaces/skiff-%d/pods/pod-0", "/api/v1/namespaces/upstream-%d/pods/pod-0"} {
			raw, err := cs.CoreV1().RESTClient().Get().AbsPath(fmt.Sprintf(path, i)).DoRaw(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var obj struct {
				Metadata struct {
					ManagedFields json.RawMessage `json:"managedFields"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(raw, &obj); err != nil {
				b.Fatal(err)
			}
			fmt.Printf("  %s: %d bytes of JSON, %d of them managedFields\n", path, len(raw), len(obj.Metadata.ManagedFields))
			if os.Getenv("SKIFF_BENCH_DUMP") != "" {
				fmt.Println(string(raw))
			}
		}
		fmt.Printf("  kube-apiserver CPU per pod started: skiff %.2f ms, upstream %.2f ms, skiff/upstream %.2f\n", 1000*s, 1000*u, s/u)
		b.ReportMetric(1000*s, "skiff-apiserver-ms/pod")
		b.ReportMetric(1000*u, "upstream-apiserver-ms/pod")
		b.ReportMetric(s/u, "skiff/upstream-apiserver-cpu")
	}
}
