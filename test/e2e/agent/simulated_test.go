package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

var _ = Describe("skiff-agent --runtime=fake", func() {
	It("runs simulated nodes in one process and their pods to Ready", func() {
		logf, err := os.Create(filepath.Join(workDir, "sim-agent.log"))
		Expect(err).NotTo(HaveOccurred())
		defer logf.Close()
		cmd := exec.Command(filepath.Join(binDir, "skiff-agent"), "--kubeconfig", kubeconfig,
			"--runtime=fake", "--nodes=3", "--node-name-prefix=e2esim-", "--sim-start-delay=200ms")
		cmd.Stdout, cmd.Stderr = logf, logf
		Expect(cmd.Start()).To(Succeed())
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		DeferCleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM) // The process this spec started, by PID.
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		for _, name := range []string{"e2esim-0", "e2esim-1", "e2esim-2"} {
			Eventually(func(g Gomega) {
				g.Expect(done).NotTo(BeClosed(), "the simulated agent exited")
				n := &corev1alpha1.Node{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, n)).To(Succeed())
				g.Expect(meta.IsStatusConditionTrue(n.Status.Conditions, conditions.Ready)).To(BeTrue())
				g.Expect(n.Status.NodeInfo.ContainerRuntimeVersion).To(HavePrefix("skiff-fake://"))
			}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
		}
		ns := newNamespace()
		p := createPod(ns, "simulated", []corev1.Container{{Name: "app", Image: "example.com/app:1"}},
			func(p *corev1alpha1.Pod) { p.Spec.NodeName = "e2esim-1" })
		Eventually(func(g Gomega) {
			got := get(p)(g)
			g.Expect(got.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, conditions.Ready)).To(BeTrue())
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
	})
})
