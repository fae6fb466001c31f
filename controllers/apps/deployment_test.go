package apps_test

import (
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/apps"
)

func newDeployment(ns, name string, replicas int32, image string) *appsv1alpha1.Deployment {
	d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	d.Spec.Replicas = int32p(replicas)
	d.Spec.Selector = selectorFor(name)
	d.Spec.Template = podTemplate(name, image)
	return d
}

func getDeployment(ns, name string) *appsv1alpha1.Deployment {
	d := &appsv1alpha1.Deployment{}
	ExpectWithOffset(1, k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, d)).To(Succeed())
	return d
}

// updateDeployment applies mutate to the stored Deployment, retrying on conflicts.
func updateDeployment(ns, name string, mutate func(*appsv1alpha1.Deployment)) {
	EventuallyWithOffset(1, func() error {
		d := getDeployment(ns, name)
		mutate(d)
		return k8sClient.Update(ctx, d)
	}).Should(Succeed())
}

func replicaSetsOf(ns string) []appsv1alpha1.ReplicaSet {
	var list appsv1alpha1.ReplicaSetList
	ExpectWithOffset(1, k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	return list.Items
}

func replicaSetWithImage(ns, image string) *appsv1alpha1.ReplicaSet {
	for _, rs := range replicaSetsOf(ns) {
		if rs.Spec.Template.Spec.Containers[0].Image == image {
			return &rs
		}
	}
	return nil
}

// waitComplete waits until the Deployment's rollout is complete at its
// current generation, as `kubectl rollout status` does, and Ready is True.
func waitComplete(ns, name string) *appsv1alpha1.Deployment {
	var d *appsv1alpha1.Deployment
	EventuallyWithOffset(1, func(g Gomega) {
		d = getDeployment(ns, name)
		r := *d.Spec.Replicas
		g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
		g.Expect(d.Status.UpdatedReplicas).To(Equal(r))
		g.Expect(d.Status.Replicas).To(Equal(r))
		g.Expect(d.Status.AvailableReplicas).To(Equal(r))
		g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, conditions.Ready)).To(BeTrue(), "Ready condition: %+v", d.Status.Conditions)
		g.Expect(len(podList(ns))).To(BeNumerically("==", r), describePods(podList(ns)))
	}).Should(Succeed())
	return d
}

var _ = Describe("Deployment", func() {
	It("creates a ReplicaSet named by pod-template hash and reports status", func() {
		ns := newNamespace("deploy")
		d := newDeployment(ns, "web", 3, "web:1")
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		d = waitComplete(ns, "web")

		rss := replicaSetsOf(ns)
		Expect(rss).To(HaveLen(1))
		rs := rss[0]
		hash := rs.Labels[apps.LabelPodTemplateHash]
		Expect(hash).NotTo(BeEmpty())
		Expect(rs.Name).To(Equal("web-" + hash))
		Expect(rs.Spec.Selector.MatchLabels).To(HaveKeyWithValue(apps.LabelPodTemplateHash, hash))
		Expect(metav1.IsControlledBy(&rs, d)).To(BeTrue())
		Expect(rs.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "1"))
		Expect(rs.Annotations).To(HaveKeyWithValue(apps.AnnotationDesiredReplicas, "3"))
		Expect(rs.Annotations).To(HaveKeyWithValue(apps.AnnotationMaxReplicas, "4")) // 3 + 25% rounded up
		for _, p := range podList(ns) {
			Expect(p.Labels).To(HaveKeyWithValue(apps.LabelPodTemplateHash, hash))
			Expect(metav1.IsControlledBy(&p, &rs)).To(BeTrue())
		}

		Expect(d.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "1"))
		Expect(d.Status.Ready).To(Equal("3/3"))
		Expect(d.Status.Selector).To(Equal("app=web"))
		Expect(meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentAvailable)).To(
			HaveField("Reason", appsv1alpha1.ReasonMinimumReplicasAvailable))
		Expect(meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing)).To(
			HaveField("Reason", appsv1alpha1.ReasonNewReplicaSetAvailable))
		Expect(meta.FindStatusCondition(d.Status.Conditions, conditions.Reconciling)).To(BeNil())
	})

	DescribeTable("a rolling update stays within maxSurge and maxUnavailable at every pod change",
		func(replicas int32, surge, unavailable string, wantSurge, wantUnavailable int) {
			ns := newNamespace("rolling")
			d := newDeployment(ns, "web", replicas, "web:1")
			d.Spec.Strategy = rollingUpdate(surge, unavailable)
			Expect(k8sClient.Create(ctx, d)).To(Succeed())
			waitComplete(ns, "web")

			obs := observePods(ns, nil)
			updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:2" })
			d = waitComplete(ns, "web")
			maxActive, minAvailable := obs.Stop()
			Expect(maxActive).To(BeNumerically("<=", int(replicas)+wantSurge), "more pods than replicas+maxSurge")
			Expect(minAvailable).To(BeNumerically(">=", int(replicas)-wantUnavailable), "fewer available pods than replicas-maxUnavailable")

			Expect(d.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "2"))
			old := replicaSetWithImage(ns, "web:1")
			Expect(old).NotTo(BeNil())
			Expect(*old.Spec.Replicas).To(BeZero())
			Expect(old.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "1"))
			Expect(replicaSetWithImage(ns, "web:2").Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "2"))
			for _, p := range podList(ns) {
				Expect(p.Spec.Containers[0].Image).To(Equal("web:2"))
			}
		},
		Entry("numbers", int32(6), "2", "1", 2, 1),
		Entry("percentages round surge up and unavailable down", int32(6), "25%", "25%", 2, 1),
		Entry("no surge", int32(4), "0", "1", 0, 1),
		Entry("no unavailability", int32(4), "1", "0", 1, 0),
	)

	It("rolls over a rollout in flight to the newest template", func() {
		ns := newNamespace("rollover")
		d := newDeployment(ns, "web", 4, "web:1")
		d.Spec.Strategy = rollingUpdate("1", "1")
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitComplete(ns, "web")

		obs := observePods(ns, nil)
		// web:2 never becomes ready, so its rollout stops part-way.
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "unready:2" })
		Eventually(func() int32 {
			rs := replicaSetWithImage(ns, "unready:2")
			if rs == nil {
				return 0
			}
			return rs.Status.Replicas
		}).Should(BeNumerically(">", 0))
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:3" })
		d = waitComplete(ns, "web")
		maxActive, minAvailable := obs.Stop()
		Expect(maxActive).To(BeNumerically("<=", 5))
		Expect(minAvailable).To(BeNumerically(">=", 3))
		Expect(*replicaSetWithImage(ns, "unready:2").Spec.Replicas).To(BeZero())
		Expect(*replicaSetWithImage(ns, "web:1").Spec.Replicas).To(BeZero())
		Expect(d.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "3"))
	})

	It("rolls back to the previous revision and to a named one through the rollback-to annotation", func() {
		ns := newNamespace("rollback")
		Expect(k8sClient.Create(ctx, newDeployment(ns, "web", 2, "web:1"))).To(Succeed())
		waitComplete(ns, "web")
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:2" })
		waitComplete(ns, "web")

		By("rolling back to the previous revision (0)")
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) {
			d.Annotations = map[string]string{appsv1alpha1.AnnotationRollbackTo: "0"}
		})
		Eventually(func(g Gomega) {
			d := getDeployment(ns, "web")
			g.Expect(d.Annotations).NotTo(HaveKey(appsv1alpha1.AnnotationRollbackTo))
			g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("web:1"))
			g.Expect(d.Spec.Template.Labels).NotTo(HaveKey(apps.LabelPodTemplateHash))
		}).Should(Succeed())
		d := waitComplete(ns, "web")
		Expect(d.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "3"))
		rs1 := replicaSetWithImage(ns, "web:1")
		Expect(rs1.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "3"))
		Expect(rs1.Annotations).To(HaveKeyWithValue(apps.AnnotationRevisionHistory, "1"))
		Expect(replicaSetsOf(ns)).To(HaveLen(2))

		By("rolling back to revision 2 by number")
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Annotations[appsv1alpha1.AnnotationRollbackTo] = "2" })
		Eventually(func() string { return getDeployment(ns, "web").Spec.Template.Spec.Containers[0].Image }).Should(Equal("web:2"))
		d = waitComplete(ns, "web")
		Expect(d.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "4"))

		By("asking for a revision that does not exist")
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Annotations[appsv1alpha1.AnnotationRollbackTo] = "42" })
		Eventually(func() map[string]string { return getDeployment(ns, "web").Annotations }).ShouldNot(HaveKey(appsv1alpha1.AnnotationRollbackTo))
		Expect(getDeployment(ns, "web").Spec.Template.Spec.Containers[0].Image).To(Equal("web:2"))
	})

	It("scales proportionally during a rollout", func() {
		ns := newNamespace("proportional")
		d := newDeployment(ns, "web", 10, "web:1")
		d.Spec.Strategy = rollingUpdate("3", "2")
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitComplete(ns, "web")

		// The new pods never become ready: the rollout rests at 8 old and 5 new.
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "unready:2" })
		Eventually(func(g Gomega) {
			g.Expect(replicaSetWithImage(ns, "web:1").Spec.Replicas).To(HaveValue(BeEquivalentTo(8)))
			g.Expect(replicaSetWithImage(ns, "unready:2").Spec.Replicas).To(HaveValue(BeEquivalentTo(5)))
		}).Should(Succeed())
		Consistently(func() int32 { return *replicaSetWithImage(ns, "unready:2").Spec.Replicas }, "1s").Should(BeEquivalentTo(5))

		// 33 allowed pods (30 + surge 3) shared as 8:5: 20 and 13, as upstream's e2e test expects.
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Replicas = int32p(30) })
		Eventually(func(g Gomega) {
			g.Expect(replicaSetWithImage(ns, "web:1").Spec.Replicas).To(HaveValue(BeEquivalentTo(20)))
			g.Expect(replicaSetWithImage(ns, "unready:2").Spec.Replicas).To(HaveValue(BeEquivalentTo(13)))
		}).Should(Succeed())
	})

	It("does not roll out while paused, and does once resumed", func() {
		ns := newNamespace("paused")
		Expect(k8sClient.Create(ctx, newDeployment(ns, "web", 2, "web:1"))).To(Succeed())
		waitComplete(ns, "web")
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) {
			d.Spec.Paused = true
			d.Spec.Template.Spec.Containers[0].Image = "web:2"
		})
		Eventually(func(g Gomega) {
			d := getDeployment(ns, "web")
			g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
			g.Expect(meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing)).To(HaveField("Reason", appsv1alpha1.ReasonDeploymentPaused))
		}).Should(Succeed())
		By("scaling while paused")
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Replicas = int32p(3) })
		Eventually(func() int { return len(podList(ns)) }).Should(Equal(3))
		Consistently(func() int { return len(replicaSetsOf(ns)) }, "1s").Should(Equal(1))
		for _, p := range podList(ns) {
			Expect(p.Spec.Containers[0].Image).To(Equal("web:1"))
		}

		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Paused = false })
		waitComplete(ns, "web")
		Expect(replicaSetWithImage(ns, "web:2").Spec.Replicas).To(HaveValue(BeEquivalentTo(3)))
	})

	It("reports ProgressDeadlineExceeded when a rollout stops progressing", func() {
		ns := newNamespace("deadline")
		d := newDeployment(ns, "web", 2, "web:1")
		d.Spec.ProgressDeadlineSeconds = int32p(3)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitComplete(ns, "web")
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "unready:2" })
		Eventually(func(g Gomega) {
			d := getDeployment(ns, "web")
			c := meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(appsv1alpha1.ReasonProgressDeadlineExceeded))
			g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, conditions.Stalled)).To(BeTrue())
			g.Expect(meta.IsStatusConditionFalse(d.Status.Conditions, conditions.Ready)).To(BeTrue())
		}, "20s").Should(Succeed())
		// The old pods keep serving: minimum availability holds.
		Expect(meta.IsStatusConditionTrue(getDeployment(ns, "web").Status.Conditions, appsv1alpha1.DeploymentAvailable)).To(BeTrue())

		By("a new template progressing again")
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:3" })
		d = waitComplete(ns, "web")
		Expect(meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing)).To(HaveField("Reason", appsv1alpha1.ReasonNewReplicaSetAvailable))
	})

	It("Recreate never runs old and new pods together", func() {
		ns := newNamespace("recreate")
		d := newDeployment(ns, "web", 3, "web:1")
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitComplete(ns, "web")
		mixed := false
		obs := observePods(ns, func(pods map[types.UID]*corev1alpha1.Pod) {
			images := map[string]bool{}
			for _, p := range pods {
				images[p.Spec.Containers[0].Image] = true
			}
			mixed = mixed || len(images) > 1
		})
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:2" })
		waitComplete(ns, "web")
		obs.Stop()
		Expect(mixed).To(BeFalse(), "old and new pods existed at the same time")
	})

	It("restarts through the restartedAt template annotation", func() {
		ns := newNamespace("restart")
		Expect(k8sClient.Create(ctx, newDeployment(ns, "web", 2, "web:1"))).To(Succeed())
		waitComplete(ns, "web")
		before := map[types.UID]bool{}
		for _, p := range podList(ns) {
			before[p.UID] = true
		}
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) {
			d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().Format(time.RFC3339)}
		})
		waitComplete(ns, "web")
		Expect(replicaSetsOf(ns)).To(HaveLen(2))
		for _, p := range podList(ns) {
			Expect(before).NotTo(HaveKey(p.UID))
		}
	})

	It("keeps revisionHistoryLimit old ReplicaSets", func() {
		ns := newNamespace("history")
		d := newDeployment(ns, "web", 1, "web:1")
		d.Spec.RevisionHistoryLimit = int32p(1)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		for i := 2; i <= 4; i++ {
			waitComplete(ns, "web")
			updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:" + strconv.Itoa(i) })
		}
		waitComplete(ns, "web")
		Eventually(func() []string {
			var images []string
			for _, rs := range replicaSetsOf(ns) {
				images = append(images, rs.Spec.Template.Spec.Containers[0].Image)
			}
			return images
		}).Should(ConsistOf("web:3", "web:4"))
	})

	It("finishes a rollout after a manager restart without exceeding the surge", func() {
		ns := newNamespace("restart-mgr")
		d := newDeployment(ns, "web", 6, "web:1")
		d.Spec.Strategy = rollingUpdate("2", "1")
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		waitComplete(ns, "web")
		obs := observePods(ns, nil)
		updateDeployment(ns, "web", func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "web:2" })
		Eventually(func() *appsv1alpha1.ReplicaSet { return replicaSetWithImage(ns, "web:2") }).ShouldNot(BeNil())
		restartAppsManager()
		waitComplete(ns, "web")
		maxActive, minAvailable := obs.Stop()
		Expect(maxActive).To(BeNumerically("<=", 8))
		Expect(minAvailable).To(BeNumerically(">=", 5))
	})

	It("is deleted with its ReplicaSets and pods by the garbage collector", func() {
		ns := newNamespace("cascade")
		Expect(k8sClient.Create(ctx, newDeployment(ns, "web", 2, "web:1"))).To(Succeed())
		waitComplete(ns, "web")
		Expect(k8sClient.Delete(ctx, getDeployment(ns, "web"))).To(Succeed())
		Eventually(func() int { return len(replicaSetsOf(ns)) + len(podList(ns)) }).Should(BeZero())
		err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, &appsv1alpha1.Deployment{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
	})
})
