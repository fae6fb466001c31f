package core_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/core"
)

const (
	timeout  = 20 * time.Second
	interval = 100 * time.Millisecond
)

var nodeCount int

// agent stands in for a node's agent: it registers the node as Ready and
// renews its Lease until stopped.
type agent struct {
	node   *corev1alpha1.Node
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startAgent(name string, taints ...corev1.Taint) *agent {
	node := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints}}
	Expect(k8sClient.Create(ctx, node)).To(Succeed())
	setReady(node, metav1.ConditionTrue)
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, node))).To(Succeed()) })
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: core.NodeLeaseNamespace},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &name, RenewTime: &metav1.MicroTime{Time: time.Now()}}}
	Expect(k8sClient.Create(ctx, lease)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, lease))).To(Succeed()) })
	a := &agent{node: node}
	a.resume()
	DeferCleanup(a.stop)
	return a
}

func setReady(node *corev1alpha1.Node, status metav1.ConditionStatus) {
	setCondition(node, conditions.Ready, status)
}

// setCondition posts one node condition, as the node's agent would.
func setCondition(node *corev1alpha1.Node, typ string, status metav1.ConditionStatus) {
	Eventually(func(g Gomega) {
		fresh := &corev1alpha1.Node{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(node), fresh)).To(Succeed())
		fresh.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourcePods: resource.MustParse("110")}
		fresh.Status.Allocatable = fresh.Status.Capacity
		meta.SetStatusCondition(&fresh.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: "Test"})
		g.Expect(k8sClient.Status().Update(ctx, fresh)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

// resume starts renewing the Lease every 500 ms.
func (a *agent) resume() {
	c, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	a.wg.Add(1)
	go func() {
		defer GinkgoRecover()
		defer a.wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-c.Done():
				return
			case <-t.C:
				lease := &coordinationv1.Lease{}
				if err := k8sClient.Get(c, types.NamespacedName{Namespace: core.NodeLeaseNamespace, Name: a.node.Name}, lease); err != nil {
					continue
				}
				lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
				_ = k8sClient.Update(c, lease)
			}
		}
	}()
}

// stop stops renewing the Lease, as a crashed agent would.
func (a *agent) stop() {
	a.cancel()
	a.wg.Wait()
}

func getNode(name string) func(Gomega) *corev1alpha1.Node {
	return func(g Gomega) *corev1alpha1.Node {
		n := &corev1alpha1.Node{}
		g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: name}, n)).To(Succeed())
		return n
	}
}

func taintKeys(name string) func(Gomega) []string {
	return func(g Gomega) []string {
		var keys []string
		for _, t := range getNode(name)(g).Spec.Taints {
			keys = append(keys, t.Key+":"+string(t.Effect))
		}
		return keys
	}
}

func podOn(ns, name, node string, tolerations ...corev1.Toleration) *corev1alpha1.Pod {
	pod := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: node, Tolerations: tolerations,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	// Right after the admission policy is installed, the API server may
	// answer 503 while it loads the CRD's schema for the policy: retry.
	Eventually(func() error {
		err := k8sClient.Create(ctx, pod)
		if apierrors.IsServiceUnavailable(err) {
			return err
		}
		Expect(err).NotTo(HaveOccurred())
		return nil
	}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	return pod
}

func exists(pod *corev1alpha1.Pod) func() bool {
	return func() bool {
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1alpha1.Pod{})
		Expect(client.IgnoreNotFound(err)).To(Succeed())
		return !apierrors.IsNotFound(err)
	}
}

func eventReasons(ns, name string) func(Gomega) []string {
	return func(g Gomega) []string {
		list := &eventsv1.EventList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.Regarding.Name == name {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}
}

func secs(s int64) *int64 { return &s }

var _ = Describe("Node lifecycle", func() {
	var ns, name string
	var steady *agent

	BeforeEach(func() {
		nodeCount++
		name = fmt.Sprintf("lc-%d", nodeCount)
		// Another node stays ready: while no node is, the controller adds
		// no NoExecute taint (master disruption mode, as upstream).
		steady = startAgent(name + "-steady")
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lifecycle-"}}
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		ns = n.Name
		DeferCleanup(func() {
			Expect(k8sClient.DeleteAllOf(ctx, &corev1alpha1.Pod{}, client.InNamespace(ns))).To(Succeed())
			Expect(k8sClient.Delete(ctx, n)).To(Succeed())
		})
	})

	It("marks a silent node Ready=Unknown, taints it, evicts by tolerationSeconds, and untaints it when it is back", func() {
		a := startAgent(name)
		short := podOn(ns, "short", name, corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(1)})
		forever := podOn(ns, "forever", name, corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists})
		defaulted := podOn(ns, "defaulted", name)

		By("a node that renews its Lease stays untainted")
		Consistently(taintKeys(name), gracePeriod+time.Second, 250*time.Millisecond).Should(BeEmpty())

		By("the agent stops")
		a.stop()
		Eventually(func(g Gomega) *metav1.Condition {
			return meta.FindStatusCondition(getNode(name)(g).Status.Conditions, conditions.Ready)
		}, timeout, interval).Should(And(
			HaveField("Status", metav1.ConditionUnknown), HaveField("Reason", corev1alpha1.ReasonNodeStatusUnknown)))
		Eventually(taintKeys(name), timeout, interval).Should(ConsistOf(
			corev1.TaintNodeUnreachable+":NoSchedule", corev1.TaintNodeUnreachable+":NoExecute"))

		By("the pod tolerating for 1 s is evicted, the others stay")
		Eventually(exists(short), timeout, interval).Should(BeFalse())
		Eventually(eventReasons(ns, "short"), timeout, interval).Should(ContainElement("TaintManagerEviction"))
		Consistently(exists(defaulted), 3*time.Second, 250*time.Millisecond).Should(BeTrue(), "the default toleration is 300 s")
		Expect(exists(forever)()).To(BeTrue())

		By("the agent comes back")
		a.resume()
		setReady(a.node, metav1.ConditionTrue)
		Eventually(taintKeys(name), timeout, interval).Should(BeEmpty())
		Consistently(exists(defaulted), time.Second, 250*time.Millisecond).Should(BeTrue())
	})

	It("adds no NoExecute taint and evicts nothing while no node at all is ready, and taints a grace period after one is", func() {
		a := startAgent(name)
		pod := podOn(ns, "kept", name, corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(0)})

		By("both agents stop")
		a.stop()
		steady.stop()
		for _, n := range []string{name, steady.node.Name} {
			Eventually(taintKeys(n), timeout, interval).Should(ConsistOf(corev1.TaintNodeUnreachable + ":NoSchedule"))
		}
		Consistently(taintKeys(name), 2*gracePeriod, 250*time.Millisecond).Should(ConsistOf(corev1.TaintNodeUnreachable+":NoSchedule"),
			"every node is silent: more likely the controller's view than every node at once")
		Expect(exists(pod)()).To(BeTrue())

		By("one node is back: the silent one is tainted after a fresh grace period, and its pod goes")
		back := time.Now()
		steady.resume()
		Eventually(func(g Gomega) {
			lease := &coordinationv1.Lease{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: core.NodeLeaseNamespace, Name: steady.node.Name}, lease)).To(Succeed())
			g.Expect(lease.Spec.RenewTime.Time).To(BeTemporally(">", back))
		}, timeout, interval).Should(Succeed())
		setReady(steady.node, metav1.ConditionTrue) // as an agent posts its status once it reaches the API server
		Eventually(taintKeys(name), timeout, interval).Should(ContainElement(corev1.TaintNodeUnreachable + ":NoExecute"))
		Eventually(exists(pod), timeout, interval).Should(BeFalse())
	})

	It("evicts at once the pods that do not tolerate a NoExecute taint, marked DisruptionTarget first", func() {
		startAgent(name, corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute})
		tolerant := podOn(ns, "tolerant", name, corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpExists})
		victim := podOn(ns, "victim", name)
		// A finalizer of its own keeps this one visible once deleted.
		held := &corev1alpha1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "held", Namespace: ns, Finalizers: []string{"skiff.test/keep"}},
			Spec:       corev1.PodSpec{NodeName: name, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		Expect(k8sClient.Create(ctx, held)).To(Succeed())
		Eventually(exists(victim), timeout, interval).Should(BeFalse())
		Eventually(func(g Gomega) *metav1.Condition {
			fresh := &corev1alpha1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(held), fresh)).To(Succeed())
			g.Expect(fresh.DeletionTimestamp).NotTo(BeNil())
			return meta.FindStatusCondition(fresh.Status.Conditions, string(corev1.DisruptionTarget))
		}, timeout, interval).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", "DeletionByTaintManager"), HaveField("Message", "Taint manager: deleting due to NoExecute taint")))
		Eventually(func(g Gomega) {
			fresh := &corev1alpha1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(held), fresh)).To(Succeed())
			fresh.Finalizers = nil
			g.Expect(k8sClient.Update(ctx, fresh)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(exists(held), timeout, interval).Should(BeFalse())
		Consistently(exists(tolerant), 2*time.Second, 250*time.Millisecond).Should(BeTrue())
	})

	It("taints a node whose agent reports Ready=False not-ready", func() {
		a := startAgent(name)
		setReady(a.node, metav1.ConditionFalse)
		Eventually(taintKeys(name), timeout, interval).Should(ConsistOf(
			corev1.TaintNodeNotReady+":NoSchedule", corev1.TaintNodeNotReady+":NoExecute"))
		setReady(a.node, metav1.ConditionTrue)
		Eventually(taintKeys(name), timeout, interval).Should(BeEmpty())
	})

	It("keeps new pods off a node under pressure with NoSchedule taints while the pressure lasts", func() {
		a := startAgent(name)
		setReady(a.node, metav1.ConditionTrue)
		setCondition(a.node, corev1alpha1.NodeDiskPressure, metav1.ConditionTrue)
		setCondition(a.node, corev1alpha1.NodeMemoryPressure, metav1.ConditionTrue)
		Eventually(taintKeys(name), timeout, interval).Should(ConsistOf(
			corev1.TaintNodeDiskPressure+":NoSchedule", corev1.TaintNodeMemoryPressure+":NoSchedule"))
		setCondition(a.node, corev1alpha1.NodeDiskPressure, metav1.ConditionFalse)
		Eventually(taintKeys(name), timeout, interval).Should(ConsistOf(corev1.TaintNodeMemoryPressure + ":NoSchedule"))
		setCondition(a.node, corev1alpha1.NodeMemoryPressure, metav1.ConditionFalse)
		Eventually(taintKeys(name), timeout, interval).Should(BeEmpty())
	})
})

// setPodReady posts a Running status with the Ready condition, as the
// pod's agent would.
func setPodReady(pod *corev1alpha1.Pod) {
	Eventually(func(g Gomega) {
		fresh := &corev1alpha1.Pod{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), fresh)).To(Succeed())
		fresh.Status.Phase = corev1.PodRunning
		meta.SetStatusCondition(&fresh.Status.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: "Test"})
		g.Expect(k8sClient.Status().Update(ctx, fresh)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

func podReady(pod *corev1alpha1.Pod) func(Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		fresh := &corev1alpha1.Pod{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), fresh)).To(Succeed())
		return meta.FindStatusCondition(fresh.Status.Conditions, conditions.Ready)
	}
}

// withAgentFinalizer adds the finalizer the agent puts on bound pods.
func withAgentFinalizer(pod *corev1alpha1.Pod) {
	Eventually(func(g Gomega) {
		fresh := &corev1alpha1.Pod{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), fresh)).To(Succeed())
		fresh.Finalizers = append(fresh.Finalizers, core.AgentFinalizer)
		g.Expect(k8sClient.Update(ctx, fresh)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

var _ = Describe("Node loss", func() {
	var ns, name string

	BeforeEach(func() {
		nodeCount++
		name = fmt.Sprintf("loss-%d", nodeCount)
		startAgent(name + "-steady") // as in Node lifecycle
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "nodeloss-"}}
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		ns = n.Name
		DeferCleanup(func() {
			list := &corev1alpha1.PodList{}
			Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			for i := range list.Items {
				p := &list.Items[i]
				if len(p.Finalizers) > 0 {
					p.Finalizers = nil
					Expect(client.IgnoreNotFound(k8sClient.Update(ctx, p))).To(Succeed())
				}
			}
			Expect(k8sClient.DeleteAllOf(ctx, &corev1alpha1.Pod{}, client.InNamespace(ns))).To(Succeed())
			Expect(k8sClient.Delete(ctx, n)).To(Succeed())
		})
	})

	It("marks the pods of an unreachable node not ready at once, long before it evicts them", func() {
		a := startAgent(name)
		pod := podOn(ns, "web", name)
		setPodReady(pod)
		done := podOn(ns, "done", name)
		Eventually(func(g Gomega) {
			fresh := &corev1alpha1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(done), fresh)).To(Succeed())
			fresh.Status.Phase = corev1.PodSucceeded
			meta.SetStatusCondition(&fresh.Status.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: "Test"})
			g.Expect(k8sClient.Status().Update(ctx, fresh)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Consistently(podReady(pod), gracePeriod/2, 250*time.Millisecond).Should(HaveField("Status", metav1.ConditionTrue))

		a.stop()
		Eventually(podReady(pod), timeout, interval).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", corev1alpha1.ReasonNodeUnreachable)))
		Expect(podReady(done)(Default)).To(HaveField("Status", metav1.ConditionTrue), "a finished pod keeps its status")
		Expect(exists(pod)()).To(BeTrue(), "the default toleration is 300 s")
	})

	It("force-deletes an evicted pod that its lost node will not finish, once its grace period and the delay are over", func() {
		a := startAgent(name)
		grace := int64(1)
		pod := &corev1alpha1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns, Finalizers: []string{core.AgentFinalizer, "skiff.test/keep"}},
			Spec: corev1.PodSpec{NodeName: name, TerminationGracePeriodSeconds: &grace,
				Tolerations: []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
					Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(0)}},
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		setPodReady(pod)

		By("a Ready node's terminating pod waits for its agent")
		healthy := podOn(ns, "healthy", name)
		withAgentFinalizer(healthy)
		Expect(k8sClient.Delete(ctx, healthy)).To(Succeed())
		Consistently(func(g Gomega) []string {
			fresh := &corev1alpha1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(healthy), fresh)).To(Succeed())
			return fresh.Finalizers
		}, 3*time.Second, 250*time.Millisecond).Should(ContainElement(core.AgentFinalizer))

		By("the node is lost: the pod is evicted and, a second after its grace period, released by the collector")
		a.stop()
		Eventually(func(g Gomega) []string {
			fresh := &corev1alpha1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), fresh)).To(Succeed())
			g.Expect(fresh.DeletionTimestamp).NotTo(BeNil())
			g.Expect(fresh.Status.Phase).To(Equal(corev1.PodFailed))
			return fresh.Finalizers
		}, timeout, interval).Should(Equal([]string{"skiff.test/keep"}), "other finalizers stay for their owners")
		Eventually(eventReasons(ns, "web-0"), timeout, interval).Should(ContainElements("TaintManagerEviction", "ForceDeleted"))
	})

	It("force-deletes terminating pods at once on a not-ready node tainted out-of-service", func() {
		a := startAgent(name)
		pod := podOn(ns, "stuck", name)
		withAgentFinalizer(pod)
		a.stop()
		Eventually(taintKeys(name), timeout, interval).Should(ContainElement(corev1.TaintNodeUnreachable + ":NoExecute"))
		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
		Consistently(exists(pod), 2*time.Second, 250*time.Millisecond).Should(BeTrue(), "30 s grace period and the delay are not over")
		Eventually(func(g Gomega) {
			node := getNode(name)(g)
			node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute})
			g.Expect(k8sClient.Update(ctx, node)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		Eventually(exists(pod), timeout, interval).Should(BeFalse())
	})

	It("force-deletes the pods of a deleted Node after the quarantine, and not those of a Node that comes", func() {
		a := startAgent(name)
		orphan := podOn(ns, "orphan", name)
		withAgentFinalizer(orphan)
		a.stop()
		Expect(k8sClient.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
		Eventually(exists(orphan), timeout, interval).Should(BeFalse())
		Eventually(eventReasons(ns, "orphan"), timeout, interval).Should(ContainElement("ForceDeleted"))

		early := podOn(ns, "early", name+"-late")
		withAgentFinalizer(early)
		startAgent(name + "-late")
		Consistently(exists(early), 2*orphanQuarantine, 250*time.Millisecond).Should(BeTrue(), "its Node registered within the quarantine")
	})
})

var _ = Describe("Default tolerations at admission", func() {
	It("adds 300 s not-ready and unreachable tolerations to pods that lack them", func() {
		installer := core.NewTolerationPolicyInstaller(k8sClient, k8sClient, dc)
		served, err := installer.Served()
		Expect(err).NotTo(HaveOccurred())
		if !served {
			Skip("this API server does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy; eviction applies the default instead")
		}
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tolerations-"}}
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		want := []corev1.Toleration{
			{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(300)},
			{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(300)},
		}
		i := 0
		Eventually(func(g Gomega) []corev1.Toleration {
			i++
			pod := podOn(n.Name, fmt.Sprintf("plain-%d", i), "")
			return pod.Spec.Tolerations
		}, timeout, 500*time.Millisecond).Should(Equal(want), "the policy takes effect once the API server has loaded it")

		own := corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs(10)}
		pod := podOn(n.Name, "own", "", own)
		Expect(pod.Spec.Tolerations).To(Equal([]corev1.Toleration{own, want[1]}))

		all := podOn(n.Name, "all", "", corev1.Toleration{Operator: corev1.TolerationOpExists})
		Expect(all.Spec.Tolerations).To(HaveLen(1), "a pod tolerating everything gets nothing more")
	})
})

var _ = Describe("Node IPAM", func() {
	It("gives each node its own pod CIDR, waits when none is left, and reuses a deleted node's", func() {
		var nodes []*corev1alpha1.Node
		for i := 0; i < 5; i++ {
			node := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ipam-%d", i)}}
			Expect(k8sClient.Create(ctx, node)).To(Succeed())
			DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, node))).To(Succeed()) })
			nodes = append(nodes, node)
		}
		cluster := netip.MustParsePrefix(clusterCIDR)
		cidrs := func(g Gomega) map[string]string {
			out := map[string]string{}
			for _, n := range nodes {
				got := &corev1alpha1.Node{}
				if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(n), got); apierrors.IsNotFound(err) {
					continue
				}
				if got.Spec.PodCIDR != "" {
					p := netip.MustParsePrefix(got.Spec.PodCIDR)
					g.Expect(p.Bits()).To(Equal(maskSize))
					g.Expect(cluster.Contains(p.Addr())).To(BeTrue())
					g.Expect(got.Spec.PodCIDRs).To(Equal([]string{got.Spec.PodCIDR}))
					out[n.Name] = got.Spec.PodCIDR
				}
			}
			return out
		}
		distinct := func(m map[string]string) int {
			set := map[string]bool{}
			for _, c := range m {
				set[c] = true
			}
			return len(set)
		}
		By("four of five nodes get the four CIDRs")
		Eventually(func(g Gomega) int { return len(cidrs(g)) }, timeout, interval).Should(Equal(4))
		Consistently(func(g Gomega) int { return len(cidrs(g)) }, time.Second, 200*time.Millisecond).Should(Equal(4))
		assigned := cidrs(Default)
		Expect(distinct(assigned)).To(Equal(4))
		var waiting string
		for _, n := range nodes {
			if _, ok := assigned[n.Name]; !ok {
				waiting = n.Name
			}
		}
		Eventually(eventReasons("default", waiting), timeout, interval).Should(ContainElement("CIDRNotAvailable"))

		By("a restarted allocator rebuilds the assignments from the Nodes")
		restarted, err := core.NewCIDRAllocator(clusterCIDR, maskSize)
		Expect(err).NotTo(HaveOccurred())
		r := core.NewNodeIPAMReconciler(k8sClient, events.NewFakeRecorder(10), restarted)
		_, err = r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: nodes[0].Name}})
		Expect(err).NotTo(HaveOccurred())
		Expect(restarted.Used()).To(Equal(4))
		_, err = restarted.Allocate("another")
		Expect(err).To(MatchError(core.ErrCIDRsExhausted))

		By("deleting a node frees its CIDR for the waiting one")
		var victim string
		for n := range assigned {
			victim = n
			break
		}
		freed := assigned[victim]
		Expect(k8sClient.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: victim}})).To(Succeed())
		Eventually(func(g Gomega) string { return cidrs(g)[waiting] }, timeout, interval).Should(Equal(freed))
		Expect(distinct(cidrs(Default))).To(Equal(4))
	})
})
