package workloads_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
	"github.com/skiff-dev/skiff/test/utils"
)

// poolTaintKey keeps the pods of other specs off a DaemonSet spec's own
// nodes: only the spec's DaemonSet tolerates it.
const poolTaintKey = "skiff.test/pool"

// daemonPool is a DaemonSet spec's own simulated nodes, each run by an
// agent of its own so that a node can be added, stopped and removed
// alone. Its nodes are labelled pool=<name> and tainted so that only the
// spec's DaemonSet runs there.
type daemonPool struct {
	name, ns string
	agents   map[string]*utils.SimulatedNodes
}

func newDaemonPool() *daemonPool {
	return &daemonPool{name: "pool-" + rand.String(5), ns: newNamespace("daemon"), agents: map[string]*utils.SimulatedNodes{}}
}

// addNode starts a simulated node <pool>-<suffix> and joins it to the pool.
func (p *daemonPool) addNode(suffix string) string {
	GinkgoHelper()
	name := p.name + "-" + suffix
	a, err := utils.StartSimulatedNodes(ctx, cp.Config, utils.SimulatedNodesOptions{Names: []string{name}})
	Expect(err).NotTo(HaveOccurred())
	p.agents[name] = a
	DeferCleanup(func() {
		_ = a.Stop()
		_ = client.IgnoreNotFound(k8sClient.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	})
	update(&corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, func(n *corev1alpha1.Node) {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels["pool"] = p.name
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: poolTaintKey, Value: p.name, Effect: corev1.TaintEffectNoSchedule})
	})
	return name
}

// restartNode starts the agent of a stopped node again (with an empty runtime).
func (p *daemonPool) restartNode(name string) {
	GinkgoHelper()
	a, err := utils.StartSimulatedNodes(ctx, cp.Config, utils.SimulatedNodesOptions{Names: []string{name}})
	Expect(err).NotTo(HaveOccurred())
	p.agents[name] = a
	DeferCleanup(func() { _ = a.Stop() })
}

func (p *daemonPool) setTaint(node string, effect corev1.TaintEffect) {
	GinkgoHelper()
	update(&corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, func(n *corev1alpha1.Node) {
		var taints []corev1.Taint
		for _, t := range n.Spec.Taints {
			if t.Key != "dedicated" {
				taints = append(taints, t)
			}
		}
		if effect != "" {
			taints = append(taints, corev1.Taint{Key: "dedicated", Value: "db", Effect: effect})
		}
		n.Spec.Taints = taints
	})
}

func (p *daemonPool) newDaemonSet(image string, mutate ...func(*appsv1alpha1.DaemonSet)) *appsv1alpha1.DaemonSet {
	GinkgoHelper()
	ds := &appsv1alpha1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: "agent"}}
	ds.Spec.Selector = selectorFor("agent")
	ds.Spec.Template = podTemplate("agent", image)
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"pool": p.name}
	ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: poolTaintKey, Operator: corev1.TolerationOpExists}}
	for _, m := range mutate {
		m(ds)
	}
	Expect(k8sClient.Create(ctx, ds)).To(Succeed())
	return ds
}

// podNodes maps each node to the images of the active daemon pods bound there.
func (p *daemonPool) podNodes() map[string][]string {
	GinkgoHelper()
	out := map[string][]string{}
	for _, pod := range activePods(p.ns) {
		out[pod.Spec.NodeName] = append(out[pod.Spec.NodeName], pod.Spec.Containers[0].Image)
	}
	return out
}

// waitRolledOut waits until each of nodes runs one ready pod of image,
// bound by the scheduler, and the status says so.
func (p *daemonPool) waitRolledOut(ds *appsv1alpha1.DaemonSet, image string, nodes ...string) {
	GinkgoHelper()
	want := map[string][]string{}
	for _, n := range nodes {
		want[n] = []string{image}
	}
	Eventually(func(g Gomega) {
		g.Expect(p.podNodes()).To(Equal(want), describePods(pods(p.ns)))
		for _, pod := range activePods(p.ns) {
			g.Expect(podutil.IsReady(&pod)).To(BeTrue(), pod.Name)
		}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ds), ds)).To(Succeed())
		n := int32(len(nodes))
		g.Expect(ds.Status.ObservedGeneration).To(Equal(ds.Generation))
		g.Expect(ds.Status).To(And(
			HaveField("DesiredNumberScheduled", n), HaveField("CurrentNumberScheduled", n),
			HaveField("NumberReady", n), HaveField("NumberAvailable", n),
			HaveField("UpdatedNumberScheduled", n), HaveField("NumberMisscheduled", int32(0))))
		g.Expect(meta.IsStatusConditionTrue(ds.Status.Conditions, conditions.Ready)).To(BeTrue())
	}).Should(Succeed())
}

// watchDaemonUnavailability records the most nodes of names that lacked
// an available daemon pod at any pod change, and the most daemon pods
// one node ran at once.
func watchDaemonUnavailability(ns string, names []string) (*utils.PodWatch, *int, *int) {
	GinkgoHelper()
	worstUnavailable, worstPerNode := new(int), new(int)
	daemonWorstAt = ""
	w, err := utils.WatchPods(ctx, k8sClient, ns, func(all map[types.UID]*corev1alpha1.Pod) {
		available, perNode := map[string]bool{}, map[string]int{}
		for _, p := range all {
			if !podutil.IsActive(p) {
				continue
			}
			perNode[p.Spec.NodeName]++
			*worstPerNode = max(*worstPerNode, perNode[p.Spec.NodeName])
			if podutil.IsReady(p) {
				available[p.Spec.NodeName] = true
			}
		}
		missing := 0
		for _, n := range names {
			if !available[n] {
				missing++
			}
		}
		if missing > *worstUnavailable {
			*worstUnavailable, daemonWorstAt = missing, describePodMap(all)
		}
	})
	Expect(err).NotTo(HaveOccurred())
	return w, worstUnavailable, worstPerNode
}

// daemonWorstAt describes the pods when the most recent daemon watch saw
// its worst unavailability.
var daemonWorstAt string

func rollingDaemon(maxUnavailable, maxSurge int32) func(*appsv1alpha1.DaemonSet) {
	return func(ds *appsv1alpha1.DaemonSet) {
		mu, ms := intstr.FromInt32(maxUnavailable), intstr.FromInt32(maxSurge)
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &mu, MaxSurge: &ms}}
	}
}

func setDaemonImage(image string) func(*appsv1alpha1.DaemonSet) {
	return func(ds *appsv1alpha1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = image }
}

var _ = Describe("DaemonSet on simulated nodes", func() {
	It("follows nodes being added, removed and tainted", func() {
		p := newDaemonPool()
		a := p.addNode("a")
		ds := p.newDaemonSet("agent:1")
		p.waitRolledOut(ds, "agent:1", a)

		By("adding a node")
		b := p.addNode("b")
		p.waitRolledOut(ds, "agent:1", a, b)

		By("tainting a node NoSchedule: the running pod stays")
		p.setTaint(b, corev1.TaintEffectNoSchedule)
		Consistently(p.podNodes).Should(HaveKey(b))

		By("tainting it NoExecute: the pod goes")
		p.setTaint(b, corev1.TaintEffectNoExecute)
		p.waitRolledOut(ds, "agent:1", a)

		By("removing the taint: the pod comes back")
		p.setTaint(b, "")
		p.waitRolledOut(ds, "agent:1", a, b)

		By("removing a node: its agent stops and the Node is deleted")
		Expect(p.agents[a].Stop()).To(Succeed())
		Expect(k8sClient.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: a}})).To(Succeed())
		p.waitRolledOut(ds, "agent:1", b)
	})

	DescribeTable("a rolling update keeps every node but maxUnavailable served, with at most maxSurge extra pods",
		func(maxUnavailable, maxSurge int32) {
			p := newDaemonPool()
			names := []string{p.addNode("a"), p.addNode("b"), p.addNode("c")}
			ds := p.newDaemonSet("agent:1", rollingDaemon(maxUnavailable, maxSurge))
			p.waitRolledOut(ds, "agent:1", names...)

			w, worstUnavailable, worstPerNode := watchDaemonUnavailability(p.ns, names)
			update(ds, setDaemonImage("agent:2"))
			p.waitRolledOut(ds, "agent:2", names...)
			stopWatch(w)
			Expect(*worstUnavailable).To(BeNumerically("<=", maxUnavailable), "nodes without an available daemon pod:\n%s", daemonWorstAt)
			if maxSurge == 0 {
				Expect(*worstPerNode).To(Equal(1))
			} else {
				Expect(*worstPerNode).To(BeNumerically("<=", 2))
			}
		},
		Entry("maxUnavailable 1", int32(1), int32(0)),
		Entry("maxSurge 1", int32(0), int32(1)),
	)

	It("counts a node whose daemon pod is already unavailable against maxUnavailable", func() {
		p := newDaemonPool()
		names := []string{p.addNode("a"), p.addNode("b"), p.addNode("c")}
		ds := p.newDaemonSet("agent:1", rollingDaemon(1, 0))
		p.waitRolledOut(ds, "agent:1", names...)

		By("node a's agent dies after reporting its daemon pod not ready")
		Expect(p.agents[names[0]].Stop()).To(Succeed())
		for _, pod := range activePods(p.ns) {
			if pod.Spec.NodeName == names[0] {
				meta.SetStatusCondition(&pod.Status.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionFalse, Reason: "ReadinessFailed"})
				Expect(k8sClient.Status().Update(ctx, &pod)).To(Succeed())
			}
		}
		Eventually(func() int32 { return get(ds).Status.NumberAvailable }).Should(BeEquivalentTo(2))

		w, worstUnavailable, _ := watchDaemonUnavailability(p.ns, names)
		update(ds, setDaemonImage("agent:2"))
		By("the update replaces the unavailable pod only: no other node may go")
		Eventually(func() bool {
			for _, pod := range pods(p.ns) {
				if pod.Spec.NodeName == names[0] && pod.DeletionTimestamp != nil {
					return true
				}
			}
			return false
		}).Should(BeTrue())
		Consistently(func() int { return *worstUnavailable }, "2s").Should(Equal(1), func() string { return daemonWorstAt })

		By("node a comes back and the update goes on")
		p.restartNode(names[0])
		p.waitRolledOut(ds, "agent:2", names...)
		stopWatch(w)
		Expect(*worstUnavailable).To(Equal(1), daemonWorstAt)
	})

	It("keeps its template history as ControllerRevisions, renumbers a template that comes back, and prunes beyond the limit", func() {
		p := newDaemonPool()
		a := p.addNode("a")
		ds := p.newDaemonSet("agent:1", func(ds *appsv1alpha1.DaemonSet) { ds.Spec.RevisionHistoryLimit = ptr.To[int32](1) })
		p.waitRolledOut(ds, "agent:1", a)
		revisions := func() map[string]int64 {
			var list appsv1.ControllerRevisionList
			Expect(k8sClient.List(ctx, &list, client.InNamespace(p.ns))).To(Succeed())
			out := map[string]int64{}
			for _, r := range list.Items {
				Expect(metav1.IsControlledBy(&r, ds)).To(BeTrue())
				out[r.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] = r.Revision
			}
			return out
		}
		hashOfPods := func() string {
			ps := activePods(p.ns)
			Expect(ps).To(HaveLen(1))
			return ps[0].Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
		}
		h1 := hashOfPods()
		Expect(revisions()).To(Equal(map[string]int64{h1: 1}))

		update(ds, setDaemonImage("agent:2"))
		p.waitRolledOut(ds, "agent:2", a)
		h2 := hashOfPods()
		Eventually(revisions).Should(Equal(map[string]int64{h1: 1, h2: 2}))

		By("going back to the first template: its revision becomes the newest")
		update(ds, setDaemonImage("agent:1"))
		p.waitRolledOut(ds, "agent:1", a)
		Expect(hashOfPods()).To(Equal(h1))
		Eventually(revisions).Should(Equal(map[string]int64{h1: 3, h2: 2}))

		By("a third template: the oldest unused revision beyond the limit goes")
		update(ds, setDaemonImage("agent:3"))
		p.waitRolledOut(ds, "agent:3", a)
		h3 := hashOfPods()
		Eventually(revisions).Should(Equal(map[string]int64{h1: 3, h3: 4}))
	})
})
