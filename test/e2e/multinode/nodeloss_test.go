package multinode_test

import (
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/containerd"
	"github.com/skiff-dev/skiff/agent/cri"
	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// addLossNode adds a node of the spec's own (specs leave the shared three
// alone), with the busybox image, and removes it at the end.
func addLossNode(name string) *Node {
	GinkgoHelper()
	n, err := cluster.AddNode(ctx, name)
	DeferCleanup(func() {
		_ = n.Kill()
		_ = client.IgnoreNotFound(cluster.Client.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(n.WaitReady(ctx, 2*time.Minute)).To(Succeed())
	Expect(containerd.ImportImage(ctx, n.socket(), cluster.image)).To(Succeed())
	return n
}

// lossTemplate prefers node prefer (so the pods start there), tolerates
// its loss for 2 s instead of 300, and stops within 1 s.
func lossTemplate(app, prefer string) corev1.PodTemplateSpec {
	c := whoamiContainer()
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			AutomountServiceAccountToken:  ptr.To(false),
			Containers:                    []corev1.Container{c},
			Tolerations: []corev1.Toleration{
				{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](2)},
				{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](2)},
			},
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 100, Preference: corev1.NodeSelectorTerm{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{prefer}}},
				}}},
			}},
		},
	}
}

// readyPods returns the app's pods (name and node), failing unless every
// one is active and ready.
func readyPods(g Gomega, ns, app string) map[string]string {
	list := &corev1alpha1.PodList{}
	g.Expect(cluster.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{"app": app})).To(Succeed())
	out := map[string]string{}
	for _, p := range list.Items {
		g.Expect(podutil.IsActive(&p) && podutil.IsReady(&p)).To(BeTrue(), "pod %s on %s", p.Name, p.Spec.NodeName)
		out[p.Name] = p.Spec.NodeName
	}
	return out
}

// answering asks the Service 20 times from the caller and returns who
// answered; a failed request fails.
func answering(g Gomega, from *Node, caller *corev1alpha1.Pod, clusterIP string) []string {
	seen := map[string]bool{}
	for range 20 {
		who, _, err := httpFromPod(from, containerIDOf(caller), clusterIP, 80, "/")
		g.Expect(err).NotTo(HaveOccurred())
		seen[who] = true
	}
	var out []string
	for who := range seen {
		out = append(out, who)
	}
	sort.Strings(out)
	return out
}

func uidContainers(g Gomega, n *Node, uid types.UID) (containers, sandboxes int) {
	cs, err := n.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{cri.LabelPodUID: string(uid)}})
	g.Expect(err).NotTo(HaveOccurred())
	ss, err := n.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{cri.LabelPodUID: string(uid)}})
	g.Expect(err).NotTo(HaveOccurred())
	return len(cs), len(ss)
}

// Node loss on real nodes: the manager runs with --terminating-pod-gc-delay
// of 1 s and the default 40 s grace period; the pods tolerate their node's
// loss for 2 s.
var _ = Describe("Node loss", Ordered, func() {
	var ns string
	BeforeAll(func() { ns = newNamespace() })

	It("moves a lost node's Deployment pods and StatefulSet pod to the other nodes, and its Service stops answering from them", func() {
		lost := addLossNode("mn-" + cluster.ID + "-lost")
		n0 := cluster.Nodes[0]
		caller := waitRunning(createPodOn(ns, "caller", n0, map[string]string{"app": "caller"}, whoamiContainer()))

		d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
		d.Spec.Replicas = ptr.To[int32](2)
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		d.Spec.Template = lossTemplate("web", lost.Name)
		Expect(cluster.Client.Create(ctx, d)).To(Succeed())
		set := &appsv1alpha1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}}
		set.Spec.Replicas = ptr.To[int32](1)
		set.Spec.ServiceName = "db"
		set.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
		set.Spec.Template = lossTemplate("db", lost.Name)
		Expect(cluster.Client.Create(ctx, set)).To(Succeed())
		svc := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
		svc.Spec.Selector = map[string]string{"app": "web"}
		svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}
		Expect(cluster.Client.Create(ctx, svc)).To(Succeed())

		var before map[string]string
		Eventually(func(g Gomega) {
			before = readyPods(g, ns, "web")
			g.Expect(before).To(HaveLen(2))
			g.Expect(readyPods(g, ns, "db")).To(Equal(map[string]string{"db-0": lost.Name}))
		}, 3*time.Minute, 500*time.Millisecond).Should(Succeed())
		var lostWeb []string
		for name, node := range before {
			if node == lost.Name {
				lostWeb = append(lostWeb, name)
			}
		}
		Expect(lostWeb).NotTo(BeEmpty(), "the scheduler placed no web pod on the preferred node: %v", before)
		Eventually(func(g Gomega) {
			g.Expect(cluster.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc)).To(Succeed())
			g.Expect(svc.Spec.ClusterIP).NotTo(BeEmpty())
			g.Expect(answering(g, n0, caller, svc.Spec.ClusterIP)).To(ContainElements(lostWeb))
		}, 2*time.Minute, time.Second).Should(Succeed())

		By("killing the node: agent, containers, containerd and network namespace gone")
		Expect(lost.Kill()).To(Succeed())
		Eventually(func(g Gomega) {
			n := &corev1alpha1.Node{}
			g.Expect(cluster.Client.Get(ctx, types.NamespacedName{Name: lost.Name}, n)).To(Succeed())
			g.Expect(meta.FindStatusCondition(n.Status.Conditions, conditions.Ready)).To(HaveField("Status", metav1.ConditionUnknown))
		}, 2*time.Minute, time.Second).Should(Succeed())

		By("the pods come back on the other nodes, db-0 under its name, and the Service answers only from live pods")
		Eventually(func(g Gomega) {
			web := readyPods(g, ns, "web")
			g.Expect(web).To(HaveLen(2))
			for name, node := range web {
				g.Expect(node).NotTo(Equal(lost.Name), name)
			}
			db := readyPods(g, ns, "db")
			g.Expect(db).To(HaveKey("db-0"))
			g.Expect(db["db-0"]).NotTo(Equal(lost.Name))
		}, 3*time.Minute, time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			who := answering(g, n0, caller, svc.Spec.ClusterIP)
			for _, name := range lostWeb {
				g.Expect(who).NotTo(ContainElement(name))
			}
		}, time.Minute, time.Second).Should(Succeed())
	})

	It("after a partition heals, the node removes the containers of its pods that were evicted and force-deleted meanwhile", func() {
		part := addLossNode("mn-" + cluster.ID + "-part")
		p := &corev1alpha1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stray"},
			Spec:       lossTemplate("stray", part.Name).Spec,
		}
		p.Spec.NodeName = part.Name
		Expect(cluster.Client.Create(ctx, p)).To(Succeed())
		uid := waitRunning(p).UID

		By("partitioning the node: the pod is evicted and force-deleted while its container still runs there")
		Expect(part.Partition()).To(Succeed())
		DeferCleanup(func() { _ = part.Heal() })
		Eventually(func() bool {
			err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(p), &corev1alpha1.Pod{})
			return err != nil && client.IgnoreNotFound(err) == nil
		}, 3*time.Minute, time.Second).Should(BeTrue())
		Expect(func(g Gomega) int { c, _ := uidContainers(g, part, uid); return c }(Default)).To(BeNumerically(">", 0))

		By("healing: the agent finds the containers of a pod that no longer exists and removes them")
		Expect(part.Heal()).To(Succeed())
		Eventually(func(g Gomega) {
			c, s := uidContainers(g, part, uid)
			g.Expect(c).To(BeZero())
			g.Expect(s).To(BeZero())
		}, 2*time.Minute, time.Second).Should(Succeed())
		Eventually(func(g Gomega) []corev1.Taint {
			n := &corev1alpha1.Node{}
			g.Expect(cluster.Client.Get(ctx, types.NamespacedName{Name: part.Name}, n)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(n.Status.Conditions, conditions.Ready)).To(BeTrue())
			return n.Spec.Taints
		}, time.Minute, time.Second).Should(BeEmpty())
	})
})
