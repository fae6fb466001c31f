package agent_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
	"github.com/skiff-dev/skiff/agent/pods"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sim-" + rand.String(6)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func simPod(ns, name, nodeName string, mutate ...func(*corev1alpha1.Pod)) *corev1alpha1.Pod {
	p := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			NodeName:   nodeName,
			Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	Expect(k8sClient.Create(ctx, p)).To(Succeed())
	return p
}

func getPod(p *corev1alpha1.Pod) func(g Gomega) *corev1alpha1.Pod {
	return func(g Gomega) *corev1alpha1.Pod {
		got := &corev1alpha1.Pod{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), got)).To(Succeed())
		return got
	}
}

var _ = Describe("Simulated nodes", func() {
	It("registers every node with capacity, system info and Ready conditions", func() {
		for i := range simNodes {
			name := fmt.Sprintf("sim-%d", i)
			n := &corev1alpha1.Node{}
			Eventually(func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, n)).To(Succeed())
				g.Expect(meta.IsStatusConditionTrue(n.Status.Conditions, conditions.Ready)).To(BeTrue())
			}).Should(Succeed())
			Expect(n.Status.DisplayStatus).To(Equal("Ready"))
			Expect(n.Labels).To(HaveKeyWithValue("skiff.dev/simulated", "true"))
			Expect(n.Status.Capacity.Pods().Value()).To(BeEquivalentTo(110))
			Expect(n.Status.Allocatable.Cpu().Equal(resource.MustParse("8"))).To(BeTrue())
			Expect(n.Status.NodeInfo.ContainerRuntimeVersion).To(Equal("skiff-fake://0.1.0"))
			Expect(n.Status.NodeInfo.KernelVersion).NotTo(BeEmpty())
			for _, t := range []string{corev1alpha1.NodeMemoryPressure, corev1alpha1.NodeDiskPressure, corev1alpha1.NodePIDPressure} {
				Expect(meta.IsStatusConditionFalse(n.Status.Conditions, t)).To(BeTrue(), t)
			}
			Expect(n.Status.Addresses).To(ContainElement(HaveField("Type", corev1.NodeInternalIP)))
		}
	})

	It("renews each node's Lease", func() {
		lease := &coordinationv1.Lease{}
		key := client.ObjectKey{Namespace: node.LeaseNamespace, Name: "sim-1"}
		Eventually(func() error { return k8sClient.Get(ctx, key, lease) }).Should(Succeed())
		Expect(*lease.Spec.HolderIdentity).To(Equal("sim-1"))
		Expect(lease.OwnerReferences).To(ContainElement(HaveField("Kind", "Node")))
		first := lease.Spec.RenewTime.Time
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, key, lease)).To(Succeed())
			g.Expect(lease.Spec.RenewTime.After(first)).To(BeTrue())
		}, 5*time.Second).Should(Succeed())
	})

	It("runs a bound pod to Running and Ready, then removes it on deletion", func() {
		ns := newNamespace()
		p := simPod(ns, "web", "sim-1", func(p *corev1alpha1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}
		})
		Eventually(func(g Gomega) {
			got := getPod(p)(g)
			g.Expect(got.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, conditions.Ready)).To(BeTrue())
			g.Expect(got.Status.Ready).To(Equal("1/1"))
			g.Expect(got.Status.DisplayStatus).To(Equal("Running"))
			g.Expect(got.Status.PodIP).NotTo(BeEmpty())
			g.Expect(got.Status.HostIP).NotTo(BeEmpty())
			g.Expect(got.Status.QOSClass).To(Equal(corev1.PodQOSGuaranteed))
			g.Expect(got.Status.StartTime).NotTo(BeNil())
			g.Expect(got.Finalizers).To(ContainElement(pods.Finalizer))
		}, 10*time.Second).Should(Succeed())
		for _, t := range []string{corev1alpha1.PodScheduled, corev1alpha1.PodInitialized, corev1alpha1.ContainersReady} {
			Expect(meta.IsStatusConditionTrue(getPod(p)(Default).Status.Conditions, t)).To(BeTrue(), t)
		}

		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), &corev1alpha1.Pod{}))
		}, 10*time.Second).Should(BeTrue())
	})

	It("shows a pending pod as ContainerCreating before its containers run", func() {
		ns := newNamespace()
		p := simPod(ns, "slow", "sim-0", func(p *corev1alpha1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "example.com/init:1"}}
		})
		Eventually(func(g Gomega) {
			got := getPod(p)(g)
			g.Expect(got.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(got.Status.InitContainerStatuses).To(HaveLen(1))
			g.Expect(got.Status.InitContainerStatuses[0].State.Terminated).NotTo(BeNil())
			g.Expect(got.Status.InitContainerStatuses[0].State.Terminated.Reason).To(Equal("Completed"))
		}, 10*time.Second).Should(Succeed())
	})

	DescribeTable("ends pods that ask for it in the phase their exit code gives",
		func(code string, policy corev1.RestartPolicy, phase corev1.PodPhase, display string) {
			ns := newNamespace()
			p := simPod(ns, "job", "sim-2", func(p *corev1alpha1.Pod) {
				p.Annotations = map[string]string{fake.AnnotationExitCode: code}
				p.Spec.RestartPolicy = policy
			})
			Eventually(func(g Gomega) {
				got := getPod(p)(g)
				g.Expect(got.Status.Phase).To(Equal(phase))
				g.Expect(got.Status.DisplayStatus).To(Equal(display))
				g.Expect(meta.IsStatusConditionFalse(got.Status.Conditions, conditions.Ready)).To(BeTrue())
			}, 10*time.Second).Should(Succeed())
		},
		Entry("exit 0 under Never succeeds", "0", corev1.RestartPolicyNever, corev1.PodSucceeded, "Completed"),
		Entry("exit 3 under Never fails", "3", corev1.RestartPolicyNever, corev1.PodFailed, "Error"),
		Entry("exit 0 under OnFailure succeeds", "0", corev1.RestartPolicyOnFailure, corev1.PodSucceeded, "Completed"),
	)

	It("backs off a crashing container into CrashLoopBackOff", func() {
		ns := newNamespace()
		p := simPod(ns, "crash", "sim-0", func(p *corev1alpha1.Pod) {
			p.Annotations = map[string]string{fake.AnnotationExitCode: "1", fake.AnnotationRunSeconds: "0.2"}
		})
		Eventually(func(g Gomega) {
			got := getPod(p)(g)
			g.Expect(got.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(got.Status.DisplayStatus).To(Equal("CrashLoopBackOff"))
			g.Expect(got.Status.RestartCount).To(BeNumerically(">=", 1))
			cs := got.Status.ContainerStatuses[0]
			g.Expect(cs.State.Waiting).NotTo(BeNil())
			g.Expect(cs.LastTerminationState.Terminated).NotTo(BeNil())
			g.Expect(cs.LastTerminationState.Terminated.ExitCode).To(BeEquivalentTo(1))
		}, 10*time.Second).Should(Succeed())
	})

	It("keeps a DisruptionTarget condition another writer adds while the agent keeps writing status", func() {
		ns := newNamespace()
		p := simPod(ns, "disrupted", "sim-1", func(p *corev1alpha1.Pod) {
			p.Annotations = map[string]string{fake.AnnotationExitCode: "1", fake.AnnotationRunSeconds: "0.2"}
		})
		Eventually(func(g Gomega) {
			g.Expect(getPod(p)(g).Status.ContainerStatuses).NotTo(BeEmpty())
		}, 10*time.Second).Should(Succeed())
		// Another writer (preemption, pod GC, eviction) adds its condition
		// with an optimistic lock, as they do.
		var restarts int32
		Eventually(func(g Gomega) {
			got := getPod(p)(g)
			restarts = got.Status.RestartCount
			meta.SetStatusCondition(&got.Status.Conditions, metav1.Condition{
				Type: string(corev1.DisruptionTarget), Status: metav1.ConditionTrue,
				Reason: "PreemptionByScheduler", Message: "test: another writer",
			})
			g.Expect(k8sClient.Status().Update(ctx, got)).To(Succeed())
		}).Should(Succeed())
		hasDisruption := func(g Gomega, got *corev1alpha1.Pod) {
			c := meta.FindStatusCondition(got.Status.Conditions, string(corev1.DisruptionTarget))
			g.Expect(c).NotTo(BeNil(), "conditions %v", got.Status.Conditions)
			g.Expect(c.Reason).To(Equal("PreemptionByScheduler"))
		}
		// The crash loop makes the agent rewrite Ready and ContainersReady
		// on every restart; the condition outlives them.
		Eventually(func(g Gomega) {
			got := getPod(p)(g)
			hasDisruption(g, got)
			g.Expect(got.Status.RestartCount).To(BeNumerically(">=", restarts+1))
		}, 40*time.Second, 100*time.Millisecond).Should(Succeed())
		Consistently(func(g Gomega) { hasDisruption(g, getPod(p)(g)) }, 2*time.Second, 100*time.Millisecond).Should(Succeed())
	})

	It("removes what the runtime holds of pods deleted behind its back", func() {
		ns := newNamespace()
		p := simPod(ns, "gone", "sim-2")
		Eventually(func(g Gomega) {
			g.Expect(getPod(p)(g).Status.Phase).To(Equal(corev1.PodRunning))
		}, 10*time.Second).Should(Succeed())
		before, _ := fakeRT.Counts()
		// Drop the finalizer and delete: the agent only sees the pod vanish.
		got := getPod(p)(Default)
		got.Finalizers = nil
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Expect(k8sClient.Delete(ctx, got)).To(Succeed())
		Eventually(func() int { n, _ := fakeRT.Counts(); return n }, 10*time.Second).Should(BeNumerically("<", before))
	})
})
