// Package agent_test is the end-to-end suite of skiff-agent: a real
// kube-apiserver (internal/controlplane), the skiff-agent binary with a
// managed containerd, runc and CNI, and images the suite builds from
// busybox-static's root file system and imports. It needs root; without
// it, or without containerd, runc, ctr or busybox, it skips and says why.
//
// Every run cleans up its pods, containers, mounts, bridge and processes,
// even when a spec fails; it stops only processes it started, by PID.
package agent_test

import (
	"bytes"
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/containerd"
	"github.com/skiff-dev/skiff/agent/cri"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/imagebuild"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// nodeName and podCIDR differ between runs, so that two runs on one
// machine get different bridges and subnets.
var (
	nodeName = "e2e-" + rand.String(5)
	subnet   = fmt.Sprintf("10.247.%d.", 1+mathrand.IntN(254))
	podCIDR  = subnet + "0/24"
)

const (
	// busyboxImage is built by the suite; its tag makes the default pull
	// policy IfNotPresent, so the imported image is used.
	busyboxImage = "skiff.local/busybox:e2e"
)

var (
	cp         *controlplane.ControlPlane
	k8sClient  client.Client
	ctx        context.Context
	cancel     context.CancelFunc
	workDir    string
	rootDir    string
	binDir     string
	runtime    cri.Runtime
	agentCmd   *exec.Cmd
	agentDone  chan struct{}
	kubeconfig string
	// clientCA is a copy of the API server's client CA, for the agent API.
	clientCA string
	// reg is nil when docker-registry is not installed.
	reg *registry
)

func TestAgentE2E(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skiff-agent end-to-end tests need root (containerd, mounts, network namespaces); run them as root")
	}
	for _, bin := range []string{"containerd", "runc", "ctr", "busybox", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skiff-agent end-to-end tests need %s on PATH: run hack/deps.sh (as root) to install it", bin)
		}
	}
	if _, err := os.Stat(filepath.Join(containerd.DefaultCNIBinDir, "bridge")); err != nil {
		t.Skip("skiff-agent end-to-end tests need the CNI plugins in /usr/lib/cni: run hack/deps.sh (as root)")
	}
	// One end-to-end suite at a time owns the host's nftables table of the
	// service proxy (make test runs packages in parallel; test/e2e/up too).
	hostLock, err := os.OpenFile(filepath.Join(os.TempDir(), "skiff-e2e-host.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer hostLock.Close()
	if err := syscall.Flock(int(hostLock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Agent end-to-end suite")
}

func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	Expect(err).NotTo(HaveOccurred())
	return filepath.Dir(strings.TrimSpace(string(out)))
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	// A short path: containerd's socket lives under it.
	workDir, err = os.MkdirTemp("/tmp", "skf-e2e-")
	Expect(err).NotTo(HaveOccurred())
	rootDir = filepath.Join(workDir, "root")
	binDir = filepath.Join(workDir, "bin")
	DeferCleanup(cleanupAll)

	By("building skiff-agent and skiff-pause")
	root := moduleRoot()
	for _, b := range []struct{ out, pkg, cgo string }{{"skiff-agent", "./cmd/agent", "1"}, {"skiff-pause", "./cmd/agent/pause", "0"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b.out), b.pkg)
		cmd.Dir = root
		// The pause binary runs alone in the sandbox image: it must be static.
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
	}

	By("starting the control plane")
	opts := controlplane.Options{}
	if os.Getenv("SKIFF_TEST_VERBOSE") != "" {
		opts.Output = GinkgoWriter
	}
	cp, err = controlplane.Start(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: scheme.New()})
	Expect(err).NotTo(HaveOccurred())
	// The agent reads its own copy: the control plane's directory is
	// shared /tmp space that other suites may tidy.
	kc, err := os.ReadFile(cp.KubeconfigPath)
	Expect(err).NotTo(HaveOccurred())
	kubeconfig = filepath.Join(workDir, "kubeconfig")
	Expect(os.WriteFile(kubeconfig, kc, 0o600)).To(Succeed())
	ca, err := cp.ClientCAFile()
	Expect(err).NotTo(HaveOccurred())
	caPEM, err := os.ReadFile(ca)
	Expect(err).NotTo(HaveOccurred())
	clientCA = filepath.Join(workDir, "client-ca.crt")
	Expect(os.WriteFile(clientCA, caPEM, 0o600)).To(Succeed())

	By("starting a registry on 127.0.0.1 and pushing the busybox image to it")
	reg = startRegistry(filepath.Join(workDir, "registry"))
	if reg != nil {
		files, cfg, err := busyboxFiles()
		Expect(err).NotTo(HaveOccurred())
		Expect(reg.push("skiff/busybox", "e2e", files, cfg)).To(Succeed())
	}

	By("starting skiff-agent with a managed containerd")
	startAgent()
	Eventually(func(g Gomega) {
		g.Expect(agentDone).NotTo(BeClosed(), "skiff-agent exited; see its log below")
		n := &corev1alpha1.Node{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: nodeName}, n)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(n.Status.Conditions, conditions.Ready)).To(BeTrue())
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	runtime, err = cri.Connect(ctx, "unix://"+filepath.Join(rootDir, "containerd", "containerd.sock"), 10*time.Second)
	Expect(err).NotTo(HaveOccurred())

	By("building and importing the busybox image")
	archive := filepath.Join(workDir, "busybox.tar")
	Expect(buildBusybox(archive)).To(Succeed())
	Expect(containerd.ImportImage(ctx, filepath.Join(rootDir, "containerd", "containerd.sock"), archive)).To(Succeed())
})

// startAgent starts the agent binary; its log goes to <workDir>/agent.log.
func startAgent() {
	logf, err := os.OpenFile(filepath.Join(workDir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	Expect(err).NotTo(HaveOccurred())
	agentCmd = exec.Command(filepath.Join(binDir, "skiff-agent"),
		"--kubeconfig", kubeconfig, "--node-name", nodeName, "--root-dir", rootDir,
		"--containerd=managed", "--pause-binary", filepath.Join(binDir, "skiff-pause"),
		"--pod-cidr", podCIDR, "--node-ip", "127.0.0.1", "-v=3",
		// The agent API: a free port, the API server's client CA, denials
		// cached briefly so a spec can grant rights and retry, and small
		// logs rotated often (agentapi_test.go).
		"--port=0", "--client-ca-file", clientCA, "--authorization-webhook-cache-unauthorized-ttl=1s",
		"--container-log-max-size=16Ki", "--container-log-monitor-interval=1s")
	if reg != nil {
		agentCmd.Args = append(agentCmd.Args, "--insecure-registry", reg.host)
	}
	agentCmd.Stdout, agentCmd.Stderr = logf, logf
	agentCmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	Expect(agentCmd.Start()).To(Succeed())
	done := make(chan struct{})
	agentDone = done
	cmd := agentCmd
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }()
}

// stopAgent ends the agent process this suite started, by PID.
func stopAgent(sig syscall.Signal) {
	if agentCmd == nil || agentCmd.Process == nil {
		return
	}
	_ = agentCmd.Process.Signal(sig)
	select {
	case <-agentDone:
	case <-time.After(30 * time.Second):
		_ = agentCmd.Process.Kill()
		<-agentDone
	}
	agentCmd = nil
}

func cleanupAll() {
	if k8sClient != nil {
		// Let the agent remove the pods' containers while it still runs.
		deleteAllPods()
	}
	stopAgent(syscall.SIGTERM)
	reg.stop()
	if rootDir != "" {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if err := containerd.Cleanup(cctx, filepath.Join(rootDir, "containerd"), nodeName); err != nil {
			GinkgoWriter.Printf("Cleanup: %v\n", err)
		}
		// Volumes (tmpfs) the agent mounted.
		if out, err := exec.Command("sh", "-c", "grep -o ' "+rootDir+"[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l").CombinedOutput(); err != nil {
			GinkgoWriter.Printf("Unmounting: %v %s\n", err, out)
		}
	}
	if cancel != nil {
		cancel()
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
	if workDir != "" {
		if b, err := os.ReadFile(filepath.Join(workDir, "agent.log")); err == nil {
			// Kept for a look after a failure; the next run overwrites it.
			_ = os.WriteFile(filepath.Join(os.TempDir(), "skiff-e2e-agent.log"), b, 0o644)
			lines := bytes.Split(b, []byte("\n"))
			GinkgoWriter.Printf("Last lines of agent.log (all of it in %s):\n%s\n", filepath.Join(os.TempDir(), "skiff-e2e-agent.log"), bytes.Join(lines[max(0, len(lines)-40):], []byte("\n")))
		}
		_ = os.RemoveAll(workDir)
	}
}

func deleteAllPods() {
	list := &corev1alpha1.PodList{}
	if err := k8sClient.List(ctx, list); err != nil {
		return
	}
	for i := range list.Items {
		_ = k8sClient.Delete(ctx, &list.Items[i])
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if err := k8sClient.List(ctx, list); err != nil || len(list.Items) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	GinkgoWriter.Printf("Pods still present after 90s: %d\n", len(list.Items))
}

// busyboxFiles is a root file system of busybox-static (internal/imagebuild).
func busyboxFiles() ([]containerd.File, containerd.ImageConfig, error) {
	return imagebuild.Busybox()
}

// buildBusybox writes the busybox image as a docker-archive for import.
func buildBusybox(archive string) error {
	files, cfg, err := busyboxFiles()
	if err != nil {
		return err
	}
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	return containerd.BuildImage(f, busyboxImage, files, cfg)
}
