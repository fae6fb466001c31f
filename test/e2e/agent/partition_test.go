package agent_test

import (
	"net/url"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri"
	"github.com/skiff-dev/skiff/agent/node"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/test/utils"
)

// runtimeObjects counts what the runtime holds of a pod UID: containers
// (running ones apart) and sandboxes.
func runtimeObjects(g Gomega, uid types.UID) (containers, running, sandboxes int) {
	cs, err := runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{cri.LabelPodUID: string(uid)}})
	g.Expect(err).NotTo(HaveOccurred())
	for _, c := range cs {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			running++
		}
	}
	ss, err := runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{cri.LabelPodUID: string(uid)}})
	g.Expect(err).NotTo(HaveOccurred())
	return len(cs), running, len(ss)
}

// forceDelete removes every finalizer and deletes the pod, as the pod
// garbage collector does for a pod whose node is lost.
func forceDelete(p *corev1alpha1.Pod) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		got := get(p)(g)
		got.Finalizers = nil
		g.Expect(k8sClient.Update(ctx, got)).To(Succeed())
	}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
	Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, p))).To(Succeed())
}

// The agent reaches the API server through a proxy that the spec cuts, as
// a network partition would; the API server goes on without it.
var _ = Describe("skiff-agent cut off from the API server", Ordered, func() {
	var (
		ns    string
		proxy *utils.CutProxy
	)

	BeforeAll(func() {
		ns = newNamespace()
		u, err := url.Parse(cp.Config.Host)
		Expect(err).NotTo(HaveOccurred())
		proxy, err = utils.StartCutProxy(u.Host)
		Expect(err).NotTo(HaveOccurred())
		kc, err := clientcmd.LoadFromFile(kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		for _, c := range kc.Clusters {
			c.Server = "https://" + proxy.Addr()
		}
		proxied := filepath.Join(workDir, "kubeconfig-proxied")
		Expect(clientcmd.WriteToFile(*kc, proxied)).To(Succeed())

		By("restarting the agent through the proxy")
		direct := kubeconfig
		stopAgent(syscall.SIGKILL)
		kubeconfig = proxied
		DeferCleanup(func() {
			proxy.Heal()
			stopAgent(syscall.SIGKILL)
			kubeconfig = direct
			restarted := time.Now()
			startAgent()
			proxy.Stop()
			waitLeaseRenewedSince(restarted)
		})
		restarted := time.Now()
		startAgent()
		waitLeaseRenewedSince(restarted)
	})

	It("removes the containers and sandboxes of pods deleted, or recreated with a new UID, while it was cut off", func() {
		sleeper := []corev1.Container{{Name: "app", Image: busyboxImage, Command: []string{"sleep", "3600"}}}
		gone := createPod(ns, "gone", sleeper)
		again := createPod(ns, "again", sleeper)
		kept := createPod(ns, "kept", sleeper)
		for _, p := range []*corev1alpha1.Pod{gone, again, kept} {
			Eventually(func(g Gomega) bool { return isReady(g, p) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue(), p.Name)
		}
		goneUID, oldUID := get(gone)(Default).UID, get(again)(Default).UID
		keptID := get(kept)(Default).Status.ContainerStatuses[0].ContainerID

		By("cutting the agent off; meanwhile one pod is force-deleted and another replaced under its name")
		proxy.Cut()
		forceDelete(gone)
		forceDelete(again)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(again), &corev1alpha1.Pod{})).NotTo(Succeed())
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
		again = createPod(ns, "again", sleeper)
		Expect(again.UID).NotTo(Equal(oldUID))
		Consistently(func(g Gomega) {
			for _, uid := range []types.UID{goneUID, oldUID} {
				_, running, _ := runtimeObjects(g, uid)
				g.Expect(running).To(Equal(1), "the agent cannot know yet")
			}
		}, 3*time.Second, 500*time.Millisecond).Should(Succeed())

		By("healing: the agent removes what it runs for pods that no longer exist and starts the new one")
		proxy.Heal()
		Eventually(func(g Gomega) {
			for _, uid := range []types.UID{goneUID, oldUID} {
				containers, _, sandboxes := runtimeObjects(g, uid)
				g.Expect(containers).To(BeZero(), "containers of %s", uid)
				g.Expect(sandboxes).To(BeZero(), "sandboxes of %s", uid)
			}
		}, 90*time.Second, 500*time.Millisecond).Should(Succeed())
		Eventually(func(g Gomega) bool { return isReady(g, again) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		got := get(kept)(Default)
		Expect(got.Status.ContainerStatuses[0].ContainerID).To(Equal(keptID), "a pod that still exists keeps its container")
		Expect(got.Status.ContainerStatuses[0].RestartCount).To(BeZero())
	})
})

// waitLeaseRenewedSince waits until the agent renewed its Lease after t:
// it runs and reaches the API server.
func waitLeaseRenewedSince(t time.Time) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(agentDone).NotTo(BeClosed(), "skiff-agent exited; see its log")
		lease := &coordinationv1.Lease{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: node.LeaseNamespace, Name: nodeName}, lease)).To(Succeed())
		g.Expect(lease.Spec.RenewTime).NotTo(BeNil())
		g.Expect(lease.Spec.RenewTime.Time).To(BeTemporally(">", t))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
}
