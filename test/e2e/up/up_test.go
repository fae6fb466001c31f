// Package up_test is the end-to-end test of `skiff up`, run as a user runs
// it: the skiff, skiff-agent and skiff-pause binaries built into one
// directory, `skiff up` in the foreground as root with a real containerd,
// an image built by `skiff image build`, the README's Deployment and
// Service applied with plain `kubectl apply`, an HTTP request to the
// Service's ClusterIP from the host (through the agent's nftables proxy),
// `kubectl skiff` rollout status, get nodes, exec and logs,
// a restart that brings the objects back, Ctrl-C, and `skiff down --purge`,
// after which nothing of the cluster remains on the host.
//
// It needs root, the packages of hack/deps.sh and the control-plane
// binaries of hack/envtest.sh; without them it skips and says why. Take
// /tmp/skiff-heavy.lock to run it: it starts a control plane and containerd.
package up_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/skiff-dev/skiff/agent/containerd"
	"github.com/skiff-dev/skiff/internal/controlplane"
)

// cluster is one `skiff up` data directory and the binaries that run it.
type cluster struct {
	t       *testing.T
	root    string // module root: examples/ lives there
	bin     string
	dataDir string
	node    string
	kubectl string

	up     *exec.Cmd
	upDone chan struct{}
	mu     sync.Mutex
	upOut  strings.Builder
}

func TestSkiffUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skiff up runs containers: run this test as root")
	}
	for _, bin := range []string{"containerd", "runc", "ctr", "nft", "ip", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed: run hack/deps.sh (as root)", bin)
		}
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = controlplane.DefaultAssetsDir()
	}
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		t.Skipf("no control-plane binaries in %s: run hack/envtest.sh", assets)
	}

	// One end-to-end suite at a time owns the host's nftables table of the
	// service proxy (make test runs packages in parallel).
	hostLock, err := os.OpenFile(filepath.Join(os.TempDir(), "skiff-e2e-host.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer hostLock.Close()
	if err := syscall.Flock(int(hostLock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	work, err := os.MkdirTemp("/tmp", "skf-up-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, root: moduleRoot(t), bin: filepath.Join(work, "bin"), dataDir: filepath.Join(work, "data"),
		node: "e2e-up-" + rand.String(5), kubectl: filepath.Join(assets, "kubectl")}
	if _, err := os.Stat("/usr/bin/kubectl"); err == nil {
		c.kubectl = "/usr/bin/kubectl"
	}
	t.Cleanup(func() {
		c.stopUp()
		if _, err := os.Stat(c.dataDir); err == nil {
			out, err := c.skiff("down", "--purge")
			t.Logf("cleanup: skiff down --purge: %v\n%s", err, out)
		}
		if t.Failed() {
			for _, f := range []string{"agent.log", "manager.log"} {
				if b, err := os.ReadFile(filepath.Join(c.dataDir, "logs", f)); err == nil {
					t.Logf("last lines of %s:\n%s", f, tail(string(b), 30))
				}
			}
		}
		_ = os.RemoveAll(work)
	})
	c.build()

	// 1. skiff up, as README's `make run` does.
	start := time.Now()
	c.startUp()
	t.Logf("skiff up: node Ready in %.1fs", time.Since(start).Seconds())
	out := c.output()
	kubeconfig := regexp.MustCompile(`export KUBECONFIG=(\S+)`).FindStringSubmatch(out)
	if kubeconfig == nil || kubeconfig[1] != filepath.Join(c.dataDir, "kubeconfig") {
		t.Fatalf("skiff up did not say where the kubeconfig is:\n%s", out)
	}
	for _, step := range []string{"Starting etcd, kube-apiserver and kube-controller-manager, installing the CRDs: done in", "waiting for node " + c.node + " to be Ready: done in"} {
		if !strings.Contains(out, step) {
			t.Errorf("skiff up did not report the step %q:\n%s", step, out)
		}
	}
	state := c.state()

	// 2. The README's path: an image, the Deployment and Service, a request.
	mustRun(t, c.skiffCmd("image", "build", "skiff.local/hello:v1", "--from-busybox",
		"--add", "examples/hello/www:/www", "--cmd", "httpd -f -v -p 8080 -h /www"))
	mustRun(t, c.kubectlCmd("apply", "-f", "examples/hello/hello.yaml"))
	// The plugin as kubectl finds it: kubectl-skiff on PATH.
	rollout := c.kubectlCmd("skiff", "rollout", "status", "deployment/hello", "--timeout", "2m")
	if got := mustRun(t, rollout); !strings.Contains(got, `deployment "hello" successfully rolled out`) {
		t.Fatalf("kubectl skiff rollout status: %s", got)
	}
	nodes := mustRun(t, c.kubectlCmd("skiff", "get", "nodes"))
	if !regexp.MustCompile(c.node + ` +Ready +`).MatchString(nodes) {
		t.Errorf("kubectl skiff get nodes:\n%s", nodes)
	}
	c.expectServed("hello from skiff\n")

	// logs and exec through the node's agent API, with the kubeconfig's user.
	pod := strings.TrimSpace(mustRun(t, c.kubectlCmd("get", "spod", "-l", "app=hello", "-o", "jsonpath={.items[0].metadata.name}")))
	if got := mustRun(t, c.kubectlCmd("skiff", "exec", pod, "--", "cat", "/www/index.html")); got != "hello from skiff\n" {
		t.Errorf("kubectl skiff exec: %q", got)
	}
	exit := c.kubectlCmd("skiff", "exec", pod, "--", "sh", "-c", "exit 3")
	if out, err := exit.CombinedOutput(); exit.ProcessState == nil || exit.ProcessState.ExitCode() != 3 {
		t.Errorf("kubectl skiff exec of a command that exits 3: %v\n%s", err, out)
	}
	if got := mustRun(t, c.kubectlCmd("skiff", "logs", "deployment/hello", "--tail", "5")); !strings.Contains(got, "response:200") {
		t.Errorf("kubectl skiff logs shows no request httpd served:\n%s", got)
	}

	// The agent runs as its own node identity, not as the administrator,
	// and reads no Secret its pods do not use.
	nodeKubeconfig := filepath.Join(c.dataDir, "node.kubeconfig")
	if got := mustRun(t, c.kubectlCmd("--kubeconfig", nodeKubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")); got != "system:skiff-node:"+c.node {
		t.Errorf("the agent's kubeconfig is user %q, want system:skiff-node:%s", got, c.node)
	}
	secrets := c.kubectlCmd("--kubeconfig", nodeKubeconfig, "get", "secrets", "--all-namespaces")
	if out, err := secrets.CombinedOutput(); err == nil || !strings.Contains(string(out), "forbidden") {
		t.Errorf("the node identity lists Secrets: %v\n%s", err, out)
	}

	// 3. skiff down keeps the data; skiff up brings the objects back and
	// the agent runs the pods again.
	if got := mustRun(t, c.skiffCmd("down")); !strings.Contains(got, "Stopped; the data stays in") {
		t.Errorf("skiff down: %s", got)
	}
	// skiff down returns once skiff up has exited (a zombie counts as
	// gone); this test's Wait reaps it a moment later.
	select {
	case <-c.upDone:
	case <-time.After(10 * time.Second):
		t.Fatal("skiff down returned with skiff up still running")
	}
	c.checkNothingRuns(state)
	if mounts := mountsUnder(c.dataDir); len(mounts) > 0 {
		t.Errorf("mounts left after skiff down: %v", mounts)
	}
	start = time.Now()
	c.startUp()
	t.Logf("skiff up again: node Ready in %.1fs", time.Since(start).Seconds())
	state = c.state()
	mustRun(t, c.kubectlCmd("skiff", "rollout", "status", "deployment/hello", "--timeout", "2m"))
	c.expectServed("hello from skiff\n")

	// 4. Ctrl-C, as a terminal sends it: SIGINT to skiff up's whole process
	// group (etcd, kube-apiserver and kube-controller-manager too).
	if err := syscall.Kill(-c.up.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.upDone:
	case <-time.After(2 * time.Minute):
		t.Fatalf("skiff up did not stop within 2 minutes of Ctrl-C:\n%s", c.output())
	}
	if out := c.output(); !strings.Contains(out, "Stopping the control plane") || strings.Contains(out, "warning:") {
		t.Errorf("skiff up did not stop cleanly on Ctrl-C:\n%s", out)
	}
	if c.up.ProcessState.ExitCode() != 0 {
		t.Errorf("skiff up exited %d on Ctrl-C", c.up.ProcessState.ExitCode())
	}
	c.checkNothingRuns(state)

	// 5. skiff down --purge on the stopped cluster leaves nothing behind.
	if got := mustRun(t, c.skiffCmd("down", "--purge")); !strings.Contains(got, "Purged") {
		t.Errorf("skiff down --purge: %s", got)
	}
	c.checkNothingRuns(state)
	if _, err := os.Stat(c.dataDir); !os.IsNotExist(err) {
		t.Errorf("data directory still there: %v", err)
	}
	if mounts := mountsUnder(c.dataDir); len(mounts) > 0 {
		t.Errorf("mounts left: %v", mounts)
	}
	if _, err := os.Stat("/sys/class/net/" + containerd.BridgeName(c.node)); err == nil {
		t.Errorf("bridge %s left", containerd.BridgeName(c.node))
	}
	if out, err := exec.Command("nft", "list", "table", "ip", "skiff-proxy").CombinedOutput(); err == nil {
		t.Errorf("nftables table ip skiff-proxy left:\n%s", out)
	}
	if pids := shimsOf(c.dataDir); len(pids) > 0 {
		t.Errorf("containerd shims left: %v", pids)
	}
}

func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// build puts the binaries in one directory, as make build does in bin/.
func (c *cluster) build() {
	for _, b := range []struct{ out, pkg, cgo string }{
		{"skiff", "./cmd/skiff", "1"}, {"skiff-agent", "./cmd/agent", "1"}, {"skiff-pause", "./cmd/agent/pause", "0"},
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(c.bin, b.out), b.pkg)
		cmd.Dir = c.root
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			c.t.Fatalf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	if err := os.Symlink("skiff", filepath.Join(c.bin, "kubectl-skiff")); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) env() []string {
	return append(os.Environ(), "PATH="+c.bin+":"+os.Getenv("PATH"), "KUBECONFIG="+filepath.Join(c.dataDir, "kubeconfig"), "SKIFF_DATA_DIR="+c.dataDir)
}

func (c *cluster) skiffCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, "skiff"), args...)
	cmd.Dir, cmd.Env = c.root, c.env()
	return cmd
}

func (c *cluster) skiff(args ...string) (string, error) {
	out, err := c.skiffCmd(args...).CombinedOutput()
	return string(out), err
}

func (c *cluster) kubectlCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.kubectl, args...)
	cmd.Dir, cmd.Env = c.root, c.env()
	return cmd
}

func mustRun(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

// startUp starts skiff up in the foreground, as a terminal would, and
// waits until it says the cluster is up.
func (c *cluster) startUp() {
	c.mu.Lock()
	c.upOut.Reset()
	c.mu.Unlock()
	cmd := c.skiffCmd("up", "--node-name", c.node)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.up, c.upDone = cmd, make(chan struct{})
	upIsUp := make(chan struct{})
	go func() {
		s := bufio.NewScanner(pr)
		signalled := false
		for s.Scan() {
			c.mu.Lock()
			c.upOut.WriteString(s.Text() + "\n")
			c.mu.Unlock()
			if !signalled && strings.HasPrefix(s.Text(), "skiff is up") {
				signalled = true
				close(upIsUp)
			}
		}
	}()
	done := c.upDone
	go func() { _ = cmd.Wait(); _ = pw.Close(); close(done) }()
	select {
	case <-upIsUp:
	case <-done:
		c.t.Fatalf("skiff up exited:\n%s", c.output())
	case <-time.After(4 * time.Minute):
		c.t.Fatalf("skiff up was not up within 4 minutes:\n%s", c.output())
	}
}

func (c *cluster) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.upOut.String()
}

// stopUp ends a skiff up this test started and still runs, by PID.
func (c *cluster) stopUp() {
	if c.up == nil || c.up.Process == nil {
		return
	}
	select {
	case <-c.upDone:
		return
	default:
	}
	_ = c.up.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.upDone:
	case <-time.After(2 * time.Minute):
		_ = c.up.Process.Kill()
		<-c.upDone
	}
}

// upState is the part of <data-dir>/up.json the test reads.
type upState struct {
	Processes []struct {
		PID   int    `json:"pid"`
		Start uint64 `json:"start"`
		Name  string `json:"name"`
	} `json:"processes"`
}

func (c *cluster) state() upState {
	b, err := os.ReadFile(filepath.Join(c.dataDir, "up.json"))
	if err != nil {
		c.t.Fatalf("skiff up keeps no state: %v", err)
	}
	var s upState
	if err := json.Unmarshal(b, &s); err != nil {
		c.t.Fatal(err)
	}
	if len(s.Processes) < 4 {
		c.t.Errorf("skiff up recorded %d processes, want itself, etcd, kube-apiserver, kube-controller-manager and skiff-agent: %+v", len(s.Processes), s.Processes)
	}
	return s
}

// checkNothingRuns fails when a process skiff up started, or a containerd
// of its data directory, still runs.
func (c *cluster) checkNothingRuns(s upState) {
	c.t.Helper()
	for _, p := range s.Processes {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID)); err == nil {
			f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+1:])
			if len(f) > 19 && f[19] == fmt.Sprint(p.Start) && f[0] != "Z" {
				c.t.Errorf("%s (pid %d) still runs", p.Name, p.PID)
			}
		}
	}
	if pids := processesWith(c.dataDir); len(pids) > 0 {
		c.t.Errorf("processes of %s still run: %v", c.dataDir, pids)
	}
}

// expectServed fetches the hello Service through its ClusterIP from the
// host until it answers want.
func (c *cluster) expectServed(want string) {
	c.t.Helper()
	ip := strings.TrimSpace(mustRun(c.t, c.kubectlCmd("get", "ssvc", "hello", "-o", "jsonpath={.spec.clusterIP}")))
	if ip == "" {
		c.t.Fatal("Service hello has no ClusterIP")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + ip + "/")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == want {
				return
			}
			last = fmt.Sprintf("%s: %q", resp.Status, body)
		} else {
			last = err.Error()
		}
		time.Sleep(500 * time.Millisecond)
	}
	c.t.Fatalf("http://%s/ did not answer %q within a minute; last: %s", ip, want, last)
}

func mountsUnder(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// processesWith lists processes whose command line mentions dir.
func processesWith(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), dir) {
			continue
		}
		out = append(out, e.Name()+" "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

func shimsOf(dir string) []string {
	var out []string
	for _, p := range processesWith(dir) {
		if strings.Contains(p, "containerd-shim") {
			out = append(out, p)
		}
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
