package policy_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
)

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pdb-" + rand.String(5)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func template(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/app:1"}},
			TerminationGracePeriodSeconds: ptr.To[int64](0)},
	}
}

func selector(app string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
}

func budget(ns, name, app string, minAvailable, maxUnavailable string) *policyv1alpha1.PodDisruptionBudget {
	pdb := &policyv1alpha1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	pdb.Spec.Selector = selector(app)
	if minAvailable != "" {
		pdb.Spec.MinAvailable = ptr.To(intstr.Parse(minAvailable))
	}
	if maxUnavailable != "" {
		pdb.Spec.MaxUnavailable = ptr.To(intstr.Parse(maxUnavailable))
	}
	return pdb
}

// counts is the part of a budget's status the specs compare.
type counts struct{ Expected, Desired, Current, Allowed int32 }

func statusOf(pdb *policyv1alpha1.PodDisruptionBudget) func(Gomega) counts {
	return func(g Gomega) counts {
		cur := &policyv1alpha1.PodDisruptionBudget{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pdb), cur)).To(Succeed())
		g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
		st := cur.Status
		allowed := meta.FindStatusCondition(st.Conditions, policyv1alpha1.DisruptionAllowed)
		g.Expect(allowed).NotTo(BeNil())
		g.Expect(allowed.Status == metav1.ConditionTrue).To(Equal(st.DisruptionsAllowed > 0), "DisruptionAllowed %+v", allowed)
		return counts{Expected: st.ExpectedPods, Desired: st.DesiredHealthy, Current: st.CurrentHealthy, Allowed: st.DisruptionsAllowed}
	}
}

var _ = Describe("Disruption controller", func() {
	It("scales maxUnavailable and percentages from the Deployment's replicas, and follows a scale-up", func() {
		ns := newNamespace()
		d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
		d.Spec.Replicas = ptr.To[int32](4)
		d.Spec.Selector = selector("web")
		d.Spec.Template = template("web")
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		byMax := budget(ns, "by-max", "web", "", "25%")
		byMin := budget(ns, "by-min", "web", "50%", "")
		byCount := budget(ns, "by-count", "web", "3", "")
		for _, pdb := range []*policyv1alpha1.PodDisruptionBudget{byMax, byMin, byCount} {
			Expect(k8sClient.Create(ctx, pdb)).To(Succeed())
		}
		Eventually(statusOf(byMax)).Should(Equal(counts{Expected: 4, Desired: 3, Current: 4, Allowed: 1}))
		Eventually(statusOf(byMin)).Should(Equal(counts{Expected: 4, Desired: 2, Current: 4, Allowed: 2}))
		Eventually(statusOf(byCount)).Should(Equal(counts{Expected: 4, Desired: 3, Current: 4, Allowed: 1}))

		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		d.Spec.Replicas = ptr.To[int32](7)
		Expect(k8sClient.Update(ctx, d)).To(Succeed())
		// 25% of 7 rounds up to 2 unavailable; 50% of 7 rounds up to 4 available.
		Eventually(statusOf(byMax)).Should(Equal(counts{Expected: 7, Desired: 5, Current: 7, Allowed: 2}))
		Eventually(statusOf(byMin)).Should(Equal(counts{Expected: 7, Desired: 4, Current: 7, Allowed: 3}))
		Eventually(statusOf(byCount)).Should(Equal(counts{Expected: 7, Desired: 3, Current: 7, Allowed: 4}))
		cur := &policyv1alpha1.PodDisruptionBudget{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(byMax), cur)).To(Succeed())
		Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, conditions.Ready)).To(BeTrue())
	})

	It("counts a StatefulSet's replicas, not only its pods, so a missing replica spends the budget", func() {
		ns := newNamespace()
		ss := &appsv1alpha1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}}
		ss.Spec.Replicas = ptr.To[int32](3)
		ss.Spec.Selector = selector("db")
		ss.Spec.Template = template("db")
		ss.Spec.PodManagementPolicy = "Parallel"
		Expect(k8sClient.Create(ctx, ss)).To(Succeed())
		pdb := budget(ns, "db", "db", "", "1")
		Expect(k8sClient.Create(ctx, pdb)).To(Succeed())
		Eventually(statusOf(pdb)).Should(Equal(counts{Expected: 3, Desired: 2, Current: 3, Allowed: 1}))

		// A pod that is going does not count as healthy.
		p := &corev1alpha1.Pod{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-0"}, p)).To(Succeed())
		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
		Eventually(statusOf(pdb)).Should(HaveField("Current", BeNumerically("<", 3)))
		Eventually(statusOf(pdb)).Should(Equal(counts{Expected: 3, Desired: 2, Current: 3, Allowed: 1}))
	})

	It("keeps an evicted pod out of currentHealthy through disruptedPods and drops entries of pods that are gone", func() {
		ns := newNamespace()
		rs := &appsv1alpha1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"}}
		rs.Spec.Replicas = ptr.To[int32](3)
		rs.Spec.Selector = selector("api")
		rs.Spec.Template = template("api")
		Expect(k8sClient.Create(ctx, rs)).To(Succeed())
		pdb := budget(ns, "api", "api", "2", "")
		Expect(k8sClient.Create(ctx, pdb)).To(Succeed())
		Eventually(statusOf(pdb)).Should(Equal(counts{Expected: 3, Desired: 2, Current: 3, Allowed: 1}))

		var pods corev1alpha1.PodList
		Expect(k8sClient.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
		Expect(pods.Items).To(HaveLen(3))
		// What an eviction writes: one disruption spent, the pod recorded.
		Eventually(func() error {
			cur := &policyv1alpha1.PodDisruptionBudget{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pdb), cur); err != nil {
				return err
			}
			cur.Status.DisruptionsAllowed = 0
			cur.Status.DisruptedPods = map[string]metav1.Time{pods.Items[0].Name: metav1.Now(), "gone": metav1.Now()}
			return k8sClient.Status().Update(ctx, cur)
		}).Should(Succeed())
		Eventually(func(g Gomega) map[string]metav1.Time {
			cur := &policyv1alpha1.PodDisruptionBudget{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pdb), cur)).To(Succeed())
			g.Expect(cur.Status.CurrentHealthy).To(Equal(int32(2)))
			g.Expect(cur.Status.DisruptionsAllowed).To(BeZero())
			return cur.Status.DisruptedPods
		}).Should(HaveLen(1))
	})

	It("counts bare pods for an integer minAvailable, and fails safe for a controller without scale", func() {
		ns := newNamespace()
		for _, n := range []string{"a", "b"} {
			p := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n, Labels: map[string]string{"app": "bare"}}, Spec: template("bare").Spec}
			Expect(k8sClient.Create(ctx, p)).To(Succeed())
		}
		byCount := budget(ns, "by-count", "bare", "1", "")
		Expect(k8sClient.Create(ctx, byCount)).To(Succeed())
		Eventually(statusOf(byCount)).Should(Equal(counts{Expected: 2, Desired: 1, Current: 2, Allowed: 1}))

		// Unmanaged pods leave a percentage nothing to scale from: it expects none.
		byPercent := budget(ns, "by-percent", "bare", "50%", "")
		Expect(k8sClient.Create(ctx, byPercent)).To(Succeed())
		Eventually(statusOf(byPercent)).Should(Equal(counts{Expected: 0, Desired: 0, Current: 2, Allowed: 0}))

		// A DaemonSet has no scale subresource: its pods cannot be counted
		// against maxUnavailable, and the budget allows nothing.
		ds := &appsv1alpha1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agents"}}
		ds.Spec.Selector = selector("agents")
		ds.Spec.Template = template("agents")
		Expect(k8sClient.Create(ctx, ds)).To(Succeed())
		byMax := budget(ns, "by-max", "agents", "", "1")
		Expect(k8sClient.Create(ctx, byMax)).To(Succeed())
		Eventually(func(g Gomega) {
			cur := &policyv1alpha1.PodDisruptionBudget{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(byMax), cur)).To(Succeed())
			c := meta.FindStatusCondition(cur.Status.Conditions, policyv1alpha1.DisruptionAllowed)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(policyv1.SyncFailedReason))
			g.Expect(c.Message).To(Equal("daemonsets.apps.skiff.dev does not implement the scale subresource"))
			g.Expect(cur.Status.DisruptionsAllowed).To(BeZero())
			g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, conditions.Stalled)).To(BeTrue())
		}).Should(Succeed())
	})

	It("refuses invalid budgets at admission, naming the field", func() {
		ns := newNamespace()
		both := budget(ns, "both", "x", "1", "1")
		Expect(k8sClient.Create(ctx, both)).To(MatchError(ContainSubstring("minAvailable and maxUnavailable cannot be both set")))
		over := budget(ns, "over", "x", "150%", "")
		Expect(k8sClient.Create(ctx, over)).To(MatchError(And(ContainSubstring("spec.minAvailable"), ContainSubstring("percentage from 0% to 100%"))))
		negative := budget(ns, "negative", "x", "", "-1")
		Expect(k8sClient.Create(ctx, negative)).To(MatchError(ContainSubstring("spec.maxUnavailable")))
		policy := budget(ns, "policy", "x", "1", "")
		policy.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.UnhealthyPodEvictionPolicyType("Sometimes"))
		Expect(k8sClient.Create(ctx, policy)).To(MatchError(ContainSubstring("spec.unhealthyPodEvictionPolicy")))
	})
})
