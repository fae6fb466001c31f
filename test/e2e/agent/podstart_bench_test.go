package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/containerd"
	"github.com/skiff-dev/skiff/agent/cri"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/mounts"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// podStartSizes are the rows of BenchmarkPodStart: one pod, then 30 pods
// created at once.
var podStartSizes = []int{1, 30}

// startLatency is what one side measured for one size: from the moment a
// pod bound to the node is created until it is Running and until it is
// Ready, as a watch sees it.
type startLatency struct {
	running, ready []time.Duration
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}

// BenchmarkPodStart measures pod start latency on one real node: a managed
// containerd (runc, CNI bridge) that this benchmark starts, the busybox
// image imported, one API server. Three sides start the same pods (one
// busybox container sleeping, no probes) one after the other on the same
// containerd:
//
//   - floor: the bare CRI calls for each pod (RunPodSandbox,
//     CreateContainer, StartContainer; no pull, no API server);
//   - skiff: the skiff-agent binary, pods created already bound;
//   - kubelet: the upstream kubelet of the same Kubernetes version (built by
//     hack/envtest.sh --bench), core pods created already bound.
//
// It needs root; the kubelet row is skipped with a note when the kubelet
// binary is missing. Run it with `make bench`, or alone:
//
//	KUBEBUILDER_ASSETS=$(hack/envtest.sh --bench) go test -run '^$' -bench PodStart -benchtime 1x ./test/e2e/agent/
func BenchmarkPodStart(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("pod start benchmark needs root (containerd, mounts, network namespaces)")
	}
	for _, bin := range []string{"containerd", "runc", "busybox", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Skipf("pod start benchmark needs %s on PATH: run hack/deps.sh (as root)", bin)
		}
	}
	for i := 0; i < b.N; i++ {
		runPodStart(b)
	}
}

type podStartEnv struct {
	ctx     context.Context
	work    string
	node    string
	cidr    string
	cd      *containerd.Containerd
	rt      cri.Runtime
	cp      *controlplane.ControlPlane
	c       client.WithWatch
	kubecfg string
	assets  string
	binDir  string
	cdRoot  string
	sysctls map[string]string
	// kubeletRan says the kubelet's cgroups need removing.
	kubeletRan bool
}

func runPodStart(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	work, err := os.MkdirTemp("/tmp", "skf-bench-")
	if err != nil {
		b.Fatal(err)
	}
	e := &podStartEnv{ctx: ctx, work: work, node: "bench-" + rand.String(5),
		cidr: fmt.Sprintf("10.246.%d.0/24", 1+time.Now().Nanosecond()%250), binDir: filepath.Join(work, "bin"), cdRoot: filepath.Join(work, "containerd")}
	defer e.cleanup(b)

	root, err := moduleRootDir()
	if err != nil {
		b.Fatal(err)
	}
	for _, bin := range []struct{ out, pkg, cgo string }{{"skiff-agent", "./cmd/agent", "1"}, {"skiff-pause", "./cmd/agent/pause", "0"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(e.binDir, bin.out), bin.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+bin.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("building %s: %v\n%s", bin.out, err, out)
		}
	}
	if e.cp, err = controlplane.Start(ctx, controlplane.Options{}); err != nil {
		b.Fatal(err)
	}
	e.assets = filepath.Dir(e.cp.KubectlPath)
	if e.c, err = client.NewWithWatch(e.cp.Config, client.Options{Scheme: scheme.New()}); err != nil {
		b.Fatal(err)
	}
	kc, err := os.ReadFile(e.cp.KubeconfigPath)
	if err != nil {
		b.Fatal(err)
	}
	e.kubecfg = filepath.Join(work, "kubeconfig")
	if err := os.WriteFile(e.kubecfg, kc, 0o600); err != nil {
		b.Fatal(err)
	}
	if e.cd, err = containerd.Start(ctx, containerd.Options{RootDir: e.cdRoot, PodCIDR: e.cidr,
		PauseBinary: filepath.Join(e.binDir, "skiff-pause"), NodeName: e.node}); err != nil {
		b.Fatal(err)
	}
	if e.rt, err = cri.Connect(ctx, e.cd.Endpoint(), 10*time.Second); err != nil {
		b.Fatal(err)
	}
	archive := filepath.Join(work, "busybox.tar")
	if err := buildBusybox(archive); err != nil {
		b.Fatal(err)
	}
	if err := containerd.ImportImage(ctx, e.cd.Address(), archive); err != nil {
		b.Fatal(err)
	}

	results := map[string]map[int]startLatency{"floor": {}, "skiff": {}, "kubelet": {}}
	b.ResetTimer()
	for _, n := range podStartSizes {
		results["floor"][n] = e.floor(b, n)
	}
	e.withSkiffAgent(b, func() {
		for _, n := range podStartSizes {
			results["skiff"][n] = e.skiffPods(b, n)
		}
	})
	kubeletNote := ""
	if _, err := os.Stat(filepath.Join(e.assets, "kubelet")); err != nil {
		kubeletNote = "kubelet: not measured, " + filepath.Join(e.assets, "kubelet") + " is missing (hack/envtest.sh --bench builds it)"
		delete(results, "kubelet")
	} else {
		e.withKubelet(b, func() {
			for _, n := range podStartSizes {
				results["kubelet"][n] = e.kubeletPods(b, n)
			}
		})
	}
	b.StopTimer()

	fmt.Printf("\nPod start latency on one node (containerd, runc, CNI bridge; busybox image present; %s)\n", time.Now().UTC().Format(time.DateOnly))
	fmt.Printf("%-8s %5s  %-27s %-27s\n", "side", "pods", "to Running p50 / p99", "to Ready p50 / p99")
	for _, side := range []string{"floor", "skiff", "kubelet"} {
		for _, n := range podStartSizes {
			r, ok := results[side][n]
			if !ok {
				continue
			}
			fmt.Printf("%-8s %5d  %-27s %-27s\n", side, n,
				fmt.Sprintf("%v / %v", pct(r.running, 50).Round(time.Millisecond), pct(r.running, 99).Round(time.Millisecond)),
				fmt.Sprintf("%v / %v", pct(r.ready, 50).Round(time.Millisecond), pct(r.ready, 99).Round(time.Millisecond)))
		}
	}
	if kubeletNote != "" {
		fmt.Println(kubeletNote)
	}
	last := podStartSizes[len(podStartSizes)-1]
	floor, skiff := results["floor"][last], results["skiff"][last]
	fmt.Printf("skiff/floor at %d pods, Ready p99: %.2fx\n", last, pct(skiff.ready, 99).Seconds()/pct(floor.ready, 99).Seconds())
	if k, ok := results["kubelet"][last]; ok {
		fmt.Printf("skiff/kubelet at %d pods, Ready p99: %.2fx\n", last, pct(skiff.ready, 99).Seconds()/pct(k.ready, 99).Seconds())
	}
	b.ReportMetric(float64(pct(skiff.ready, 99).Milliseconds()), "skiff-30-ready-p99-ms")
	b.ReportMetric(float64(pct(floor.ready, 99).Milliseconds()), "floor-30-p99-ms")
}

func moduleRootDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// floor starts n pods with the bare CRI calls, all at once, and removes
// them again. Running and Ready are the same moment here: StartContainer
// returned.
func (e *podStartEnv) floor(b *testing.B, n int) startLatency {
	b.Helper()
	var mu sync.Mutex
	var lat []time.Duration
	var ids []string
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			name := fmt.Sprintf("floor-%d-%d", n, i)
			uid := rand.String(16)
			logDir := filepath.Join(e.work, "floor-logs", uid)
			if err := os.MkdirAll(logDir, 0o755); err != nil {
				errs <- err
				return
			}
			sc := &runtimeapi.PodSandboxConfig{
				Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench", Uid: uid},
				Hostname:     name,
				LogDirectory: logDir,
				Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}}},
			}
			id, err := e.rt.RunPodSandbox(e.ctx, sc, "")
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
			cc := &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
				Image:    &runtimeapi.ImageSpec{Image: busyboxImage},
				Command:  []string{"sleep", "3600"},
				LogPath:  "c/0.log",
			}
			cid, err := e.rt.CreateContainer(e.ctx, id, cc, sc)
			if err != nil {
				errs <- err
				return
			}
			if err := e.rt.StartContainer(e.ctx, cid); err != nil {
				errs <- err
				return
			}
			d := time.Since(start)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for _, id := range ids {
		_ = e.rt.StopPodSandbox(e.ctx, id)
		_ = e.rt.RemovePodSandbox(e.ctx, id)
	}
	for err := range errs {
		b.Fatalf("floor: %v", err)
	}
	return startLatency{running: lat, ready: lat}
}

// start runs a program of the benchmark in its own process group, its
// output in <work>/<logName>. done closes when it exits; stop ends it
// (SIGTERM, then SIGKILL after 30 s) and waits, so that it never outlives
// the side it measured, even when the benchmark fails.
func (e *podStartEnv) start(b *testing.B, logName, bin string, args ...string) (done <-chan struct{}, stop func()) {
	b.Helper()
	logf, err := os.Create(filepath.Join(e.work, logName))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	return exited, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
}

// withSkiffAgent runs skiff-agent on the benchmark's containerd while f runs.
func (e *podStartEnv) withSkiffAgent(b *testing.B, f func()) {
	b.Helper()
	done, stop := e.start(b, "agent.log", filepath.Join(e.binDir, "skiff-agent"),
		"--kubeconfig", e.kubecfg, "--node-name", e.node, "--root-dir", filepath.Join(e.work, "agent"),
		"--containerd=external", "--cri-endpoint", e.cd.Endpoint(), "--pod-cidr", e.cidr,
		"--node-ip", "127.0.0.1", "--proxy-mode", "none", "-v=1")
	defer stop()
	e.waitFor(b, "skiff node Ready", func() bool {
		n := &corev1alpha1.Node{}
		if err := e.c.Get(e.ctx, client.ObjectKey{Name: e.node}, n); err != nil {
			return false
		}
		return conditionTrue(n.Status.Conditions, conditions.Ready)
	}, done)
	f()
}

func conditionTrue(cs []metav1.Condition, t string) bool {
	for _, c := range cs {
		if c.Type == t {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func (e *podStartEnv) waitFor(b *testing.B, what string, ok func() bool, exited <-chan struct{}) {
	b.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !ok() {
		select {
		case <-exited:
			b.Fatalf("waiting for %s: the process exited; see %s", what, e.work)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not after 90s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// skiffPods creates n skiff pods bound to the node at once and waits until
// all are Ready, then deletes them and waits until they are gone.
func (e *podStartEnv) skiffPods(b *testing.B, n int) startLatency {
	b.Helper()
	ns := fmt.Sprintf("skiff-%d", n)
	if err := e.c.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	created := e.createAll(b, n, func(i int) client.Object {
		return &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: ns}, Spec: benchPodSpec(e.node)}
	})
	lat := collect(b, func() (watch.Interface, error) {
		return e.c.Watch(e.ctx, &corev1alpha1.PodList{}, client.InNamespace(ns))
	}, created, func(o any) (string, bool, bool) {
		p := o.(*corev1alpha1.Pod)
		return p.Name, p.Status.Phase == corev1.PodRunning, conditionTrue(p.Status.Conditions, conditions.Ready)
	})
	e.deleteAll(b, &corev1alpha1.Pod{}, &corev1alpha1.PodList{}, ns)
	return lat
}

func benchPodSpec(node string) corev1.PodSpec {
	grace := int64(1)
	no := false
	return corev1.PodSpec{
		NodeName:                      node,
		TerminationGracePeriodSeconds: &grace,
		AutomountServiceAccountToken:  &no,
		RestartPolicy:                 corev1.RestartPolicyAlways,
		Containers: []corev1.Container{{Name: "c", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"sleep", "3600"}}},
	}
}

// createAll creates n objects at once and returns when each create was sent.
func (e *podStartEnv) createAll(b *testing.B, n int, obj func(i int) client.Object) map[string]time.Time {
	b.Helper()
	created := map[string]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := obj(i)
			t := time.Now()
			if err := e.c.Create(e.ctx, o); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			created[o.GetName()] = t
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return created
}

// collect reads the watch until every created pod was seen Ready, and
// returns each pod's create-to-Running and create-to-Ready latency. A watch
// the server ends is started again.
func collect(b *testing.B, rewatch func() (watch.Interface, error), created map[string]time.Time, state func(any) (name string, running, ready bool)) startLatency {
	b.Helper()
	running, ready := map[string]time.Duration{}, map[string]time.Duration{}
	timeout := time.After(5 * time.Minute)
	w, err := rewatch()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { w.Stop() }()
	for len(ready) < len(created) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				time.Sleep(50 * time.Millisecond)
				if w, err = rewatch(); err != nil {
					b.Fatal(err)
				}
				continue
			}
			if ev.Type == watch.Error {
				b.Logf("pod watch: %v", ev.Object)
				continue
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			now := time.Now()
			name, isRunning, isReady := state(ev.Object)
			t0, ok := created[name]
			if !ok {
				continue
			}
			if _, seen := running[name]; !seen && isRunning {
				running[name] = now.Sub(t0)
			}
			if _, seen := ready[name]; !seen && isReady {
				ready[name] = now.Sub(t0)
			}
		case <-timeout:
			b.Fatalf("only %d of %d pods Ready after 5 minutes", len(ready), len(created))
		}
	}
	var out startLatency
	for name := range created {
		out.running = append(out.running, running[name])
		out.ready = append(out.ready, ready[name])
	}
	return out
}

// deleteAll deletes every object of the list's kind in ns and waits until
// they are gone, so the next row starts on an empty node.
func (e *podStartEnv) deleteAll(b *testing.B, obj client.Object, list client.ObjectList, ns string) {
	b.Helper()
	if err := e.c.DeleteAllOf(e.ctx, obj, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
	e.waitFor(b, "pods deleted in "+ns, func() bool {
		if err := e.c.List(e.ctx, list, client.InNamespace(ns)); err != nil {
			return false
		}
		return meta.LenList(list) == 0
	}, nil)
}

// kubeletSysctls are the kernel settings the kubelet writes on start
// (protectKernelDefaults false); the benchmark puts the machine's values back.
var kubeletSysctls = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

// withKubelet runs the upstream kubelet on the benchmark's containerd while
// f runs, with the settings these machines need (cgroup v1 and cgroupfs,
// swap allowed), and undoes what it leaves on the host.
func (e *podStartEnv) withKubelet(b *testing.B, f func()) {
	b.Helper()
	e.sysctls = map[string]string{}
	for _, s := range kubeletSysctls {
		if v, err := os.ReadFile("/proc/sys/" + s); err == nil {
			e.sysctls[s] = strings.TrimSpace(string(v))
		}
	}
	node := e.node + "-kubelet"
	dir := filepath.Join(e.work, "kubelet")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: %s
podCIDR: %s
address: 127.0.0.1
port: 0
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
resolvConf: /etc/resolv.conf
enableServer: false
`, e.cd.Endpoint(), e.cidr)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		b.Fatal(err)
	}
	e.kubeletRan = true
	done, stop := e.start(b, "kubelet.log", filepath.Join(e.assets, "kubelet"), "--kubeconfig", e.kubecfg, "--config", cfgPath,
		"--root-dir", filepath.Join(dir, "root"), "--cert-dir", filepath.Join(dir, "pki"), "--hostname-override", node, "--v=1")
	defer stop()
	e.waitFor(b, "kubelet node Ready", func() bool {
		n := &corev1.Node{}
		if err := e.c.Get(e.ctx, client.ObjectKey{Name: node}, n); err != nil {
			return false
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	}, done)
	e.node, node = node, e.node
	defer func() { e.node = node }()
	f()
}

// kubeletPods is skiffPods for core pods and the kubelet.
func (e *podStartEnv) kubeletPods(b *testing.B, n int) startLatency {
	b.Helper()
	ns := fmt.Sprintf("kubelet-%d", n)
	if err := e.c.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	created := e.createAll(b, n, func(i int) client.Object {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: ns}, Spec: benchPodSpec(e.node)}
	})
	lat := collect(b, func() (watch.Interface, error) {
		return e.c.Watch(e.ctx, &corev1.PodList{}, client.InNamespace(ns))
	}, created, func(o any) (string, bool, bool) {
		p := o.(*corev1.Pod)
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				ready = c.Status == corev1.ConditionTrue
			}
		}
		return p.Name, p.Status.Phase == corev1.PodRunning, ready
	})
	e.deleteAll(b, &corev1.Pod{}, &corev1.PodList{}, ns)
	return lat
}

// cleanup removes everything the benchmark started or changed, also after
// a failure: containers and sandboxes, containerd and its shims, mounts,
// the bridge, the kubelet's cgroups and sysctls, the control plane.
func (e *podStartEnv) cleanup(b *testing.B) {
	cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer ccancel()
	if e.cd != nil {
		if err := containerd.Cleanup(cctx, e.cdRoot, e.node); err != nil {
			b.Logf("cleanup: %v", err)
		}
		e.cd.Stop()
	}
	for s, v := range e.sysctls {
		_ = os.WriteFile("/proc/sys/"+s, []byte(v), 0o644)
	}
	if e.kubeletRan {
		removeKubeletCgroups(b)
	}
	unmountUnder(b, e.work)
	if e.cp != nil {
		_ = e.cp.Stop()
	}
	_ = os.RemoveAll(e.work)
}

// removeKubeletCgroups removes the kubepods cgroups the kubelet created, deepest first.
func removeKubeletCgroups(b *testing.B) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*")
	dirs2, _ := filepath.Glob("/sys/fs/cgroup/kubepods*")
	for _, d := range append(dirs, dirs2...) {
		var all []string
		_ = filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			if err := os.Remove(all[i]); err != nil && !os.IsNotExist(err) {
				b.Logf("removing cgroup %s: %v", all[i], err)
			}
		}
	}
}

// unmountUnder detaches every mount below dir, deepest first; one that is
// already gone (a bind of a parent taken with it) is not an error.
func unmountUnder(b *testing.B, dir string) {
	points, _ := mounts.Under(dir)
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			b.Logf("unmounting %s: %v", p, err)
		}
	}
}
