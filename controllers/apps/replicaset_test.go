package apps_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func newReplicaSet(ns string, replicas int32) *appsv1alpha1.ReplicaSet {
	rs := &appsv1alpha1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
	rs.Spec.Replicas = int32p(replicas)
	rs.Spec.Selector = selectorFor("web")
	rs.Spec.Template = podTemplate("web", "web:1")
	return rs
}

func getReplicaSet(ns string) *appsv1alpha1.ReplicaSet {
	rs := &appsv1alpha1.ReplicaSet{}
	ExpectWithOffset(1, k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, rs)).To(Succeed())
	return rs
}

func scaleReplicaSet(ns string, replicas int32) {
	EventuallyWithOffset(1, func() error {
		rs := getReplicaSet(ns)
		rs.Spec.Replicas = int32p(replicas)
		return k8sClient.Update(ctx, rs)
	}).Should(Succeed())
}

func podNamesOf(ns string) []string {
	var out []string
	for _, p := range podList(ns) {
		out = append(out, p.Name)
	}
	return out
}

var _ = Describe("ReplicaSet", func() {
	It("keeps replicas pods and reports the counters", func() {
		ns := newNamespace("rs")
		Expect(k8sClient.Create(ctx, newReplicaSet(ns, 3))).To(Succeed())
		Eventually(func(g Gomega) {
			rs := getReplicaSet(ns)
			g.Expect(rs.Status).To(And(HaveField("Replicas", int32(3)), HaveField("FullyLabeledReplicas", int32(3)),
				HaveField("ReadyReplicas", int32(3)), HaveField("AvailableReplicas", int32(3)),
				HaveField("ObservedGeneration", rs.Generation), HaveField("Selector", "app=web")))
			g.Expect(meta.IsStatusConditionTrue(rs.Status.Conditions, conditions.Ready)).To(BeTrue())
		}).Should(Succeed())
		Consistently(func() int { return len(podList(ns)) }, "1s").Should(Equal(3))

		By("replacing a deleted pod")
		victim := podList(ns)[0]
		Expect(k8sClient.Delete(ctx, &victim)).To(Succeed())
		Eventually(func() []string { return podNamesOf(ns) }).Should(And(HaveLen(3), Not(ContainElement(victim.Name))))
	})

	It("deletes unscheduled pods before running ones when scaling down", func() {
		ns := newNamespace("rs-rank")
		Expect(k8sClient.Create(ctx, newReplicaSet(ns, 2))).To(Succeed())
		Eventually(func() int32 { return getReplicaSet(ns).Status.ReadyReplicas }).Should(BeEquivalentTo(2))
		running := podNamesOf(ns)
		holdNode(ns, true)
		scaleReplicaSet(ns, 4)
		Eventually(func() int { return len(podList(ns)) }).Should(Equal(4))
		scaleReplicaSet(ns, 2)
		Eventually(func() []string { return podNamesOf(ns) }).Should(ConsistOf(running))
	})

	It("adopts matching orphans and releases pods that stop matching", func() {
		ns := newNamespace("rs-adopt")
		orphan := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orphan", Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "web:1"}}}}
		Expect(k8sClient.Create(ctx, orphan)).To(Succeed())
		Expect(k8sClient.Create(ctx, newReplicaSet(ns, 2))).To(Succeed())
		rs := getReplicaSet(ns)
		Eventually(func(g Gomega) {
			p := &corev1alpha1.Pod{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "orphan"}, p)).To(Succeed())
			g.Expect(metav1.IsControlledBy(p, rs)).To(BeTrue())
			g.Expect(podList(ns)).To(HaveLen(2))
		}).Should(Succeed())
		Consistently(func() int { return len(podList(ns)) }, "1s").Should(Equal(2))

		By("relabelling the adopted pod")
		Eventually(func() error {
			p := &corev1alpha1.Pod{}
			if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "orphan"}, p); err != nil {
				return err
			}
			p.Labels = map[string]string{"app": "debug"}
			return k8sClient.Update(ctx, p)
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			p := &corev1alpha1.Pod{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "orphan"}, p)).To(Succeed())
			g.Expect(metav1.GetControllerOf(p)).To(BeNil())
			g.Expect(podList(ns)).To(HaveLen(3)) // a replacement came
		}).Should(Succeed())
	})

	It("reports ReplicaFailure when pods cannot be created, and clears it", func() {
		ns := newNamespace("rs-quota")
		quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pods"},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/pods.core.skiff.dev": resource.MustParse("1")}}}
		Expect(k8sClient.Create(ctx, quota)).To(Succeed())
		// No quota controller runs here: record the usage ourselves.
		quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{"count/pods.core.skiff.dev": resource.MustParse("1")}}
		Expect(k8sClient.Status().Update(ctx, quota)).To(Succeed())

		Expect(k8sClient.Create(ctx, newReplicaSet(ns, 2))).To(Succeed())
		Eventually(func(g Gomega) {
			rs := getReplicaSet(ns)
			c := meta.FindStatusCondition(rs.Status.Conditions, appsv1alpha1.ReplicaFailure)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(appsv1alpha1.ReasonFailedCreate))
			g.Expect(c.Message).To(ContainSubstring("quota"))
			g.Expect(meta.IsStatusConditionTrue(rs.Status.Conditions, conditions.Stalled)).To(BeTrue())
		}).Should(Succeed())
		Expect(podList(ns)).To(BeEmpty())

		Expect(k8sClient.Delete(ctx, quota)).To(Succeed())
		Eventually(func(g Gomega) {
			rs := getReplicaSet(ns)
			g.Expect(rs.Status.AvailableReplicas).To(BeEquivalentTo(2))
			g.Expect(meta.FindStatusCondition(rs.Status.Conditions, appsv1alpha1.ReplicaFailure)).To(BeNil())
			g.Expect(meta.IsStatusConditionTrue(rs.Status.Conditions, conditions.Ready)).To(BeTrue())
		}, "90s").Should(Succeed())
	})

	It("counts pods available only after minReadySeconds", func() {
		ns := newNamespace("rs-minready")
		rs := newReplicaSet(ns, 2)
		rs.Spec.MinReadySeconds = 3
		Expect(k8sClient.Create(ctx, rs)).To(Succeed())
		Eventually(func() int32 { return getReplicaSet(ns).Status.ReadyReplicas }).Should(BeEquivalentTo(2))
		Expect(getReplicaSet(ns).Status.AvailableReplicas).To(BeZero())
		start := time.Now()
		Eventually(func() int32 { return getReplicaSet(ns).Status.AvailableReplicas }, "15s").Should(BeEquivalentTo(2))
		Expect(time.Since(start)).To(BeNumerically(">=", 1*time.Second))
	})
})
