package scheduler_test

import (
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/node"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
	"github.com/skiff-dev/skiff/test/utils"
)

// podHistory records every version of a namespace's pods that a watch
// delivered, so a spec can tell what a pod went through on its way out.
type podHistory struct {
	mu   sync.Mutex
	seen map[string][]*corev1alpha1.Pod
}

func watchHistory(ns string) *podHistory {
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: scheme.New()})
	Expect(err).NotTo(HaveOccurred())
	h := &podHistory{seen: map[string][]*corev1alpha1.Pod{}}
	pw, err := utils.WatchPods(ctx, wc, ns, func(pods map[types.UID]*corev1alpha1.Pod) {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, p := range pods {
			versions := h.seen[p.Name]
			if n := len(versions); n == 0 || versions[n-1].ResourceVersion != p.ResourceVersion {
				h.seen[p.Name] = append(versions, p)
			}
		}
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(pw.Stop()).To(Succeed()) })
	return h
}

// any tells whether some recorded version of the pod satisfies f.
func (h *podHistory) any(name string, f func(*corev1alpha1.Pod) bool) func() bool {
	return func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, p := range h.seen[name] {
			if f(p) {
				return true
			}
		}
		return false
	}
}

// versions describes what the watch saw of a pod, for failure messages.
func (h *podHistory) versions(name string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := fmt.Sprintf("%d versions of %s:", len(h.seen[name]), name)
	for _, p := range h.seen[name] {
		out += fmt.Sprintf(" [node=%q nominated=%q deleting=%v conditions=%d]", p.Spec.NodeName, p.Status.NominatedNodeName, p.DeletionTimestamp != nil, len(p.Status.Conditions))
	}
	return out
}

func preemptedByScheduler(p *corev1alpha1.Pod) bool {
	c := meta.FindStatusCondition(p.Status.Conditions, string(corev1.DisruptionTarget))
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason == corev1.PodReasonPreemptionByScheduler
}

func gone(pod *corev1alpha1.Pod) func() bool {
	return func() bool {
		return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1alpha1.Pod{}))
	}
}

func running(pod *corev1alpha1.Pod) func(Gomega) corev1.PodPhase {
	return func(g Gomega) corev1.PodPhase { return get(pod)(g).Status.Phase }
}

func onNode(n string) func(*corev1alpha1.Pod) {
	return func(p *corev1alpha1.Pod) { p.Spec.NodeSelector = map[string]string{corev1.LabelHostname: n} }
}

func withLabels(kv ...string) func(*corev1alpha1.Pod) {
	return func(p *corev1alpha1.Pod) {
		p.Labels = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

// Preemption on skiff-agent's simulated nodes: victims carry the agent's
// finalizer, so they go through Terminating as on real nodes, and the
// preemptor waits for them on its nominated node.
var _ = Describe("Preemption on simulated nodes", func() {
	var ns, nodeA, nodeB string

	BeforeEach(func() {
		testCount++
		nodeA, nodeB = fmt.Sprintf("t%d-sim-a", testCount), fmt.Sprintf("t%d-sim-b", testCount)
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "preempt-"}}
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		ns = n.Name
		sim, err := utils.StartSimulatedNodes(ctx, cp.Config, utils.SimulatedNodesOptions{
			Names:      []string{nodeA, nodeB},
			StartDelay: 50 * time.Millisecond,
			Resources:  node.Resources{CPU: resource.MustParse("2"), Memory: resource.MustParse("8Gi"), EphemeralStorage: resource.MustParse("10Gi")},
		})
		Expect(err).NotTo(HaveOccurred())
		// Pods go while the agent still runs (it releases their finalizer),
		// then the agent stops and its Nodes go, so later specs never see them.
		DeferCleanup(func() {
			Expect(k8sClient.DeleteAllOf(ctx, &corev1alpha1.Pod{}, client.InNamespace(ns))).To(Succeed())
			Eventually(func(g Gomega) {
				list := &corev1alpha1.PodList{}
				g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
				g.Expect(list.Items).To(BeEmpty())
			}, timeout, interval).Should(Succeed())
			Expect(sim.Stop()).To(Succeed())
			for _, name := range []string{nodeA, nodeB} {
				Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}))).To(Succeed())
			}
			Expect(k8sClient.Delete(ctx, n)).To(Succeed())
		})
	})

	It("evicts the pod a required anti-affinity rejects, though cpu is free, and nominates the node", func() {
		history := watchHistory(ns)
		batch := newPod(ns, "batch", "100m", withPriority(1), withLabels("app", "batch"), onNode(nodeA))
		other := newPod(ns, "other", "100m", withPriority(1), onNode(nodeA))
		guard := newPod(ns, "guard", "100m", withPriority(1000), withLabels("app", "batch"), onNode(nodeB))
		for _, p := range []*corev1alpha1.Pod{batch, other, guard} {
			Eventually(running(p), timeout, interval).Should(Equal(corev1.PodRunning))
		}

		web := newPod(ns, "web", "100m", withPriority(100), func(p *corev1alpha1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					TopologyKey: corev1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "batch"}}}}}}
		})
		Eventually(gone(batch), timeout, interval).Should(BeTrue(), "the pod the anti-affinity rejects is evicted")
		Eventually(nodeNameOf(web), timeout, interval).Should(Equal(nodeA))
		Eventually(running(web), timeout, interval).Should(Equal(corev1.PodRunning))
		Expect(history.any("web", func(p *corev1alpha1.Pod) bool { return p.Status.NominatedNodeName == nodeA })()).To(BeTrue(),
			"status.nominatedNodeName named the node while the victim terminated: %s", history.versions("web"))
		Expect(history.any("batch", preemptedByScheduler)()).To(BeTrue(), "the victim got DisruptionTarget=True, reason PreemptionByScheduler")
		Eventually(eventNotes(ns, "batch", "Preempted"), timeout, interval).Should(ContainElement(
			fmt.Sprintf("Preempted by %s/web (priority 100) on node %s", ns, nodeA)))
		Expect(nodeNameOf(other)(Default)).To(Equal(nodeA), "the pod that does not conflict stays")
		Expect(nodeNameOf(guard)(Default)).To(Equal(nodeB), "the more important pod stays")
		Eventually(func(g Gomega) string { return get(web)(g).Status.NominatedNodeName }, timeout, interval).Should(BeEmpty(), "binding clears the nomination")
	})

	It("evicts only the pod a DoNotSchedule topology spread needs gone, the one started last", func() {
		history := watchHistory(ns)
		spread := func(p *corev1alpha1.Pod) {
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: corev1.LabelHostname,
				WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
		}
		first := newPod(ns, "web-1", "100m", withPriority(1), withLabels("app", "web"), onNode(nodeA))
		Eventually(running(first), timeout, interval).Should(Equal(corev1.PodRunning))
		second := newPod(ns, "web-2", "100m", withPriority(1), withLabels("app", "web"), onNode(nodeA))
		Eventually(running(second), timeout, interval).Should(Equal(corev1.PodRunning))
		// node B holds one more important app=web pod and has no cpu left.
		full := newPod(ns, "full", "2", withPriority(1000), withLabels("app", "web"), onNode(nodeB))
		Eventually(running(full), timeout, interval).Should(Equal(corev1.PodRunning))

		// On A the skew would be 2+1-1 = 2 > 1; B has no room and nothing to preempt.
		pod := newPod(ns, "web-3", "1", withPriority(100), withLabels("app", "web"), spread)
		Eventually(gone(second), timeout, interval).Should(BeTrue(), "the pod started last is the victim")
		Eventually(nodeNameOf(pod), timeout, interval).Should(Equal(nodeA))
		Expect(history.any("web-3", func(p *corev1alpha1.Pod) bool { return p.Status.NominatedNodeName == nodeA })()).To(BeTrue())
		Expect(history.any("web-2", preemptedByScheduler)()).To(BeTrue())
		Consistently(gone(first), 2*time.Second, 200*time.Millisecond).Should(BeFalse(), "the pod that keeps the skew within 1 is reprieved")
		Expect(nodeNameOf(full)(Default)).To(Equal(nodeB))
	})
	It("spares the pod a PodDisruptionBudget protects and preempts on the other node", func() {
		minAvailable := intstr.FromInt32(1)
		pdb := &policyv1alpha1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}}
		pdb.Spec.MinAvailable = &minAvailable
		pdb.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
		Expect(k8sClient.Create(ctx, pdb)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, pdb))).To(Succeed()) })
		// No disruption controller runs in this suite: the status is what
		// it would write for the one healthy db pod.
		pdb.Status = policyv1alpha1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation,
			DisruptionsAllowed: 0, CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1}
		Expect(k8sClient.Status().Update(ctx, pdb)).To(Succeed())

		// Unprotected, db-0 (priority 1) would be the victim rather than mid (50).
		db := newPod(ns, "db-0", "2", withPriority(1), withLabels("app", "db"), onNode(nodeA))
		mid := newPod(ns, "mid", "2", withPriority(50), onNode(nodeB))
		for _, p := range []*corev1alpha1.Pod{db, mid} {
			Eventually(running(p), timeout, interval).Should(Equal(corev1.PodRunning))
		}
		web := newPod(ns, "web", "2", withPriority(100))
		Eventually(gone(mid), timeout, interval).Should(BeTrue(), "the unprotected pod is the victim")
		Eventually(nodeNameOf(web), timeout, interval).Should(Equal(nodeB))
		Expect(get(db)(Default).DeletionTimestamp).To(BeNil(), "the protected pod stays")
	})
})
