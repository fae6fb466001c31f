package apps_test

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
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// daemonFixture is a DaemonSet whose nodeSelector matches only the nodes
// this test creates (nodes are cluster-wide; tests run in one cluster).
type daemonFixture struct {
	ns, pool string
}

func newDaemonFixture() *daemonFixture {
	return &daemonFixture{ns: newNamespace("daemon"), pool: "pool-" + rand.String(6)}
}

func (f *daemonFixture) addNode(name string, taints ...corev1.Taint) string {
	node := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: f.pool + "-" + name, Labels: map[string]string{"pool": f.pool}}}
	node.Spec.Taints = taints
	Expect(k8sClient.Create(ctx, node)).To(Succeed())
	DeferCleanup(func() { _ = client.IgnoreNotFound(k8sClient.Delete(ctx, node)) })
	return node.Name
}

func (f *daemonFixture) daemonSet(image string) *appsv1alpha1.DaemonSet {
	ds := &appsv1alpha1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "agent"}}
	ds.Spec.Selector = selectorFor("agent")
	ds.Spec.Template = podTemplate("agent", image)
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"pool": f.pool}
	return ds
}

func (f *daemonFixture) get() *appsv1alpha1.DaemonSet {
	ds := &appsv1alpha1.DaemonSet{}
	ExpectWithOffset(1, k8sClient.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "agent"}, ds)).To(Succeed())
	return ds
}

func (f *daemonFixture) update(mutate func(*appsv1alpha1.DaemonSet)) {
	EventuallyWithOffset(1, func() error {
		ds := f.get()
		mutate(ds)
		return k8sClient.Update(ctx, ds)
	}).Should(Succeed())
}

// podNodes maps each active pod's node to its images.
func (f *daemonFixture) podNodes() map[string][]string {
	out := map[string][]string{}
	for _, p := range podList(f.ns) {
		if podutil.IsActive(&p) {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Spec.Containers[0].Image)
		}
	}
	return out
}

// waitRolledOut waits until every wanted node runs one ready pod of image
// and the status says so.
func (f *daemonFixture) waitRolledOut(image string, nodes ...string) {
	EventuallyWithOffset(1, func(g Gomega) {
		want := map[string][]string{}
		for _, n := range nodes {
			want[n] = []string{image}
		}
		g.Expect(f.podNodes()).To(Equal(want))
		ds := f.get()
		n := int32(len(nodes))
		g.Expect(ds.Status.ObservedGeneration).To(Equal(ds.Generation))
		g.Expect(ds.Status).To(And(
			HaveField("DesiredNumberScheduled", n), HaveField("CurrentNumberScheduled", n),
			HaveField("NumberReady", n), HaveField("NumberAvailable", n),
			HaveField("UpdatedNumberScheduled", n), HaveField("NumberMisscheduled", int32(0)),
			HaveField("NumberUnavailable", int32(0))))
		g.Expect(meta.IsStatusConditionTrue(ds.Status.Conditions, conditions.Ready)).To(BeTrue())
	}).Should(Succeed())
}

var _ = Describe("DaemonSet", func() {
	It("runs one pod per eligible node, pinned to it by node affinity, with the default tolerations", func() {
		f := newDaemonFixture()
		n1, n2 := f.addNode("a"), f.addNode("b")
		other := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: f.pool + "-other"}}
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, other) })
		Expect(k8sClient.Create(ctx, f.daemonSet("agent:1"))).To(Succeed())
		f.waitRolledOut("agent:1", n1, n2)

		for _, p := range podList(f.ns) {
			terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
			Expect(terms).To(HaveLen(1))
			Expect(terms[0].MatchFields).To(ConsistOf(corev1.NodeSelectorRequirement{
				Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{p.Spec.NodeName}}))
			Expect(p.Spec.Tolerations).To(ContainElements(
				corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
				corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
				corev1.Toleration{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
				corev1.Toleration{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
				corev1.Toleration{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
				corev1.Toleration{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
			))
			Expect(p.Labels).To(HaveKey(appsv1.DefaultDaemonSetUniqueLabelKey))
		}
	})

	It("follows nodes being added, removed and tainted", func() {
		f := newDaemonFixture()
		n1 := f.addNode("a")
		Expect(k8sClient.Create(ctx, f.daemonSet("agent:1"))).To(Succeed())
		f.waitRolledOut("agent:1", n1)

		By("adding a node")
		n2 := f.addNode("b")
		f.waitRolledOut("agent:1", n1, n2)

		By("adding a node with a NoSchedule taint the pod does not tolerate")
		f.addNode("tainted", corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule})
		Consistently(f.podNodes, "1s").Should(HaveLen(2))

		By("tainting a node NoSchedule: the running pod stays")
		node := &corev1alpha1.Node{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: n2}, node)).To(Succeed())
		node.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
		Expect(k8sClient.Update(ctx, node)).To(Succeed())
		Consistently(f.podNodes, "1s").Should(HaveKey(n2))

		By("tainting a node NoExecute: the pod is removed")
		Expect(k8sClient.Get(ctx, types.NamespacedName{Name: n2}, node)).To(Succeed())
		node.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute}}
		Expect(k8sClient.Update(ctx, node)).To(Succeed())
		f.waitRolledOut("agent:1", n1)

		By("tolerating the taint: the pod comes back")
		f.update(func(ds *appsv1alpha1.DaemonSet) {
			ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
		})
		tainted := f.pool + "-tainted"
		f.waitRolledOut("agent:1", n1, n2, tainted)

		By("removing a node")
		Expect(k8sClient.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: n1}})).To(Succeed())
		f.waitRolledOut("agent:1", n2, tainted)
	})

	DescribeTable("a rolling update stays within maxUnavailable and maxSurge at every pod change",
		func(maxUnavailable, maxSurge int, nodes int) {
			f := newDaemonFixture()
			var names []string
			for i := range nodes {
				names = append(names, f.addNode(string(rune('a'+i))))
			}
			ds := f.daemonSet("agent:1")
			mu, ms := intstr.FromInt32(int32(maxUnavailable)), intstr.FromInt32(int32(maxSurge))
			ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &mu, MaxSurge: &ms}}
			Expect(k8sClient.Create(ctx, ds)).To(Succeed())
			f.waitRolledOut("agent:1", names...)

			worstUnavailable, worstPerNode := 0, 0
			obs := observePods(f.ns, func(pods map[types.UID]*corev1alpha1.Pod) {
				availableOn, perNode := map[string]bool{}, map[string]int{}
				for _, p := range pods {
					if !podutil.IsActive(p) {
						continue
					}
					perNode[targetNode(p)]++
					worstPerNode = max(worstPerNode, perNode[targetNode(p)])
					if podutil.IsReady(p) {
						availableOn[p.Spec.NodeName] = true
					}
				}
				worstUnavailable = max(worstUnavailable, nodes-len(availableOn))
			})
			f.update(func(ds *appsv1alpha1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "agent:2" })
			f.waitRolledOut("agent:2", names...)
			maxActive, _ := obs.Stop()
			Expect(worstUnavailable).To(BeNumerically("<=", maxUnavailable), "nodes without an available daemon pod")
			Expect(maxActive).To(BeNumerically("<=", nodes+maxSurge))
			if maxSurge == 0 {
				Expect(worstPerNode).To(Equal(1))
			}
		},
		Entry("maxUnavailable 1", 1, 0, 3),
		Entry("maxUnavailable 2", 2, 0, 4),
		Entry("maxSurge 1", 0, 1, 3),
	)

	It("replaces pods only when they are deleted with OnDelete", func() {
		f := newDaemonFixture()
		n1, n2 := f.addNode("a"), f.addNode("b")
		ds := f.daemonSet("agent:1")
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		Expect(k8sClient.Create(ctx, ds)).To(Succeed())
		f.waitRolledOut("agent:1", n1, n2)
		f.update(func(ds *appsv1alpha1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "agent:2" })
		Eventually(func() int32 { ds := f.get(); return int32(ds.Status.ObservedGeneration - ds.Generation) }).Should(BeZero())
		Consistently(f.podNodes, "1s").Should(Equal(map[string][]string{n1: {"agent:1"}, n2: {"agent:1"}}))
		Expect(f.get().Status.UpdatedNumberScheduled).To(BeZero())

		for _, p := range podList(f.ns) {
			if p.Spec.NodeName == n1 {
				Expect(k8sClient.Delete(ctx, &p)).To(Succeed())
			}
		}
		Eventually(f.podNodes).Should(Equal(map[string][]string{n1: {"agent:2"}, n2: {"agent:1"}}))
		Eventually(func() int32 { return f.get().Status.UpdatedNumberScheduled }).Should(BeEquivalentTo(1))
	})
})
