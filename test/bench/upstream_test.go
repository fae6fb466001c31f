package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/controlplane"
)

// The upstream reference: kube-scheduler built from the same Kubernetes
// source as the API server, and kwok playing the kubelets of fake core
// Nodes, all against the same API server as skiff in the same run.

const kwokAnnotation = "kwok.x-k8s.io/node"

// process is a binary the benchmark started; stop ends it by its PID.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
	stop func()
}

func startProcess(b *testing.B, name string, args ...string) *process {
	b.Helper()
	return startProcessEnv(b, nil, name, args...)
}

// startProcessEnv is startProcess with extra environment variables.
func startProcessEnv(b *testing.B, env []string, name string, args ...string) *process {
	b.Helper()
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	logFile, err := os.CreateTemp("", filepath.Base(name)+"-*.log")
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting %s: %v", name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(p.done) }()
	p.stop = func() {
		p.once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-p.done
			}
			if !b.Failed() && os.Getenv("SKIFF_BENCH_KEEP_LOGS") == "" {
				_ = os.Remove(logFile.Name())
			} else {
				b.Logf("%s log kept in %s", name, logFile.Name())
			}
		})
	}
	b.Cleanup(p.stop)
	return p
}

func assetsDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return controlplane.DefaultAssetsDir()
}

// requireBenchTools skips the benchmark, saying how to get them, when
// the upstream binaries it compares against are missing.
func requireBenchTools(b *testing.B) {
	b.Helper()
	for _, bin := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(assetsDir(), bin)); err != nil {
			b.Skipf("%s is missing: run `hack/envtest.sh --bench` (make bench does)", bin)
		}
	}
}

// startUpstreamScheduler runs kube-scheduler with the given client limits;
// qps 0 keeps the shipped defaults (50 QPS, burst 100).
func startUpstreamScheduler(b *testing.B, cp *controlplane.ControlPlane, qps float32, burst int) *process {
	b.Helper()
	cfg := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
clientConnection:
  kubeconfig: %s
`, cp.KubeconfigPath)
	if qps > 0 {
		cfg += fmt.Sprintf("  qps: %g\n  burst: %d\n", qps, burst)
	}
	path := filepath.Join(b.TempDir(), "scheduler.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return startProcess(b, filepath.Join(assetsDir(), "kube-scheduler"), "--config="+path, "--secure-port=0", "--v=0")
}

// startUpstreamControllers runs a kube-controller-manager with only the
// named controllers (the control plane's own runs the garbage collector)
// and the given client limits; qps 0 keeps the shipped defaults (20 QPS,
// burst 30, for each controller's client).
func startUpstreamControllers(b *testing.B, cp *controlplane.ControlPlane, controllers string, qps float32, burst int) *process {
	b.Helper()
	args := []string{"--kubeconfig=" + cp.KubeconfigPath, "--controllers=" + controllers,
		"--leader-elect=false", "--secure-port=0", "--v=0"}
	if qps > 0 {
		args = append(args, fmt.Sprintf("--kube-api-qps=%g", qps), fmt.Sprintf("--kube-api-burst=%d", burst))
	}
	return startProcess(b, filepath.Join(assetsDir(), "kube-controller-manager"), args...)
}

// startKwok runs kwok for the core Nodes annotated kwok.x-k8s.io/node=fake,
// with its default stages: nodes become Ready, pods Running and Ready at
// once, pods of Jobs Succeeded once Running.
func startKwok(b *testing.B, cp *controlplane.ControlPlane) {
	b.Helper()
	startProcess(b, filepath.Join(assetsDir(), "kwok"),
		"--kubeconfig="+cp.KubeconfigPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokAnnotation+"=fake",
		"--cidr=10.0.0.1/16",
		"--node-ip=10.0.0.1",
		"--server-address=127.0.0.1:0",
	)
}

func fastClient(b *testing.B, cfg *rest.Config) kubernetes.Interface {
	b.Helper()
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 5000, 10000
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

func createUpstreamNodes(ctx context.Context, b *testing.B, cs kubernetes.Interface, n int) {
	b.Helper()
	parallel(b, n, func(i int) error {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        fmt.Sprintf("kwok-node-%d", i),
				Annotations: map[string]string{kwokAnnotation: "fake"},
				Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": fmt.Sprintf("kwok-node-%d", i)},
			},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: kwokAnnotation, Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{
				Allocatable: nodeResources(),
				Capacity:    nodeResources(),
			},
		}
		_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		return err
	})
	// kwok marks them Ready; the scheduler only uses Ready nodes.
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
		if err == nil && countReadyNodes(list.Items) == n {
			untaintNotReady(ctx, b, cs, list.Items)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Fatalf("kwok did not make %d nodes Ready", n)
}

// untaintNotReady removes the not-ready taint that the API server puts on
// new Nodes: upstream's node lifecycle controller would, once they are
// Ready, and only the garbage collector and namespace controllers run here.
func untaintNotReady(ctx context.Context, b *testing.B, cs kubernetes.Interface, nodes []corev1.Node) {
	b.Helper()
	// A merge patch replaces the taint list whole and needs no resource
	// version, so kwok's concurrent status writes cannot conflict with it.
	patch := []byte(`{"spec":{"taints":[{"key":"` + kwokAnnotation + `","value":"fake","effect":"NoSchedule"}]}}`)
	parallel(b, len(nodes), func(i int) error {
		_, err := cs.CoreV1().Nodes().Patch(ctx, nodes[i].Name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

func nodeResources() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
}

func countReadyNodes(nodes []corev1.Node) int {
	n := 0
	for _, node := range nodes {
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

// upstreamPod is the pod the reference schedules: small requests, and the
// toleration of kwok's taint.
func upstreamPod(ns string, i int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-" + strconv.Itoa(i), Namespace: ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			}}},
			Tolerations: []corev1.Toleration{{Key: kwokAnnotation, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		},
	}
}

// parallel runs f for 0..n-1 on 32 workers and fails on the first error.
func parallel(b *testing.B, n int, f func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}
