package workloads_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/apps"
	"github.com/skiff-dev/skiff/internal/podutil"
	"github.com/skiff-dev/skiff/test/utils"
)

func newDeployment(ns string, replicas int32, image string, mutate ...func(*appsv1alpha1.Deployment)) *appsv1alpha1.Deployment {
	GinkgoHelper()
	d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
	d.Spec.Replicas = ptr.To(replicas)
	d.Spec.Selector = selectorFor("web")
	d.Spec.Template = podTemplate("web", image)
	for _, m := range mutate {
		m(d)
	}
	Expect(k8sClient.Create(ctx, d)).To(Succeed())
	return d
}

func rolling(surge, unavailable string) func(*appsv1alpha1.Deployment) {
	return func(d *appsv1alpha1.Deployment) {
		s, u := intstr.Parse(surge), intstr.Parse(unavailable)
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &s, MaxUnavailable: &u}}
	}
}

func setImage(image string) func(*appsv1alpha1.Deployment) {
	return func(d *appsv1alpha1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image }
}

func replicaSets(ns string) []appsv1alpha1.ReplicaSet {
	GinkgoHelper()
	var list appsv1alpha1.ReplicaSetList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	return list.Items
}

// replicaSetOf returns the ReplicaSet running image, or nil.
func replicaSetOf(ns, image string) *appsv1alpha1.ReplicaSet {
	GinkgoHelper()
	for _, rs := range replicaSets(ns) {
		if rs.Spec.Template.Spec.Containers[0].Image == image {
			return &rs
		}
	}
	return nil
}

// waitRolledOut waits until the rollout is complete at the Deployment's
// generation, as `kubectl rollout status` judges, with exactly replicas
// active pods of the Deployment's image, all Running and Ready on a
// simulated node.
func waitRolledOut(d *appsv1alpha1.Deployment) *appsv1alpha1.Deployment {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		r := *d.Spec.Replicas
		g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
		g.Expect(d.Status).To(And(HaveField("UpdatedReplicas", r), HaveField("Replicas", r), HaveField("AvailableReplicas", r)))
		g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, conditions.Ready)).To(BeTrue(), "%+v", d.Status.Conditions)
		active := activePods(d.Namespace)
		g.Expect(active).To(HaveLen(int(r)), describePods(pods(d.Namespace)))
		for _, p := range active {
			g.Expect(p.Spec.Containers[0].Image).To(Equal(d.Spec.Template.Spec.Containers[0].Image))
		}
	}).Should(Succeed())
	expectScheduledOnSimulatedNodes(d.Namespace, sharedNodes...)
	return d
}

var _ = Describe("Deployment on simulated nodes", func() {
	DescribeTable("a rolling update never has more than replicas+maxSurge pods nor fewer than replicas-maxUnavailable available",
		func(replicas int32, surge, unavailable string, wantSurge, wantUnavailable int) {
			ns := newNamespace("rolling")
			d := waitRolledOut(newDeployment(ns, replicas, "web:1", rolling(surge, unavailable)))

			w, x := watchExtremes(ns, nil)
			update(d, setImage("web:2"))
			d = waitRolledOut(d)
			stopWatch(w)
			Expect(x.maxActive).To(BeNumerically("<=", int(replicas)+wantSurge), "more pods than replicas+maxSurge:\n%s", x.atMax)
			Expect(x.minAvailable).To(BeNumerically(">=", int(replicas)-wantUnavailable), "fewer available pods than replicas-maxUnavailable:\n%s", x.atMin)

			Expect(d.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "2"))
			Expect(replicaSetOf(ns, "web:1").Spec.Replicas).To(HaveValue(BeZero()))
			Expect(replicaSetOf(ns, "web:2").Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "2"))
		},
		Entry("maxSurge 2, maxUnavailable 1", int32(6), "2", "1", 2, 1),
		Entry("25% each: surge rounds up, unavailable down", int32(6), "25%", "25%", 2, 1),
		Entry("no surge", int32(4), "0", "1", 0, 1),
		Entry("no unavailability", int32(4), "1", "0", 1, 0),
	)

	It("counts a new pod as available only minReadySeconds after it became ready", func() {
		ns := newNamespace("minready")
		d := waitRolledOut(newDeployment(ns, 2, "web:1", rolling("1", "0"), func(d *appsv1alpha1.Deployment) { d.Spec.MinReadySeconds = 2 }))
		// At each pod change, the pods ready for minReadySeconds are the available ones.
		minAvailable, at := 1<<30, ""
		w, err := utils.WatchPods(ctx, k8sClient, ns, func(all map[types.UID]*corev1alpha1.Pod) {
			now, available := time.Now(), 0
			for _, p := range all {
				if podutil.IsActive(p) && podutil.IsAvailable(p, 2, now) {
					available++
				}
			}
			if available < minAvailable {
				minAvailable, at = available, describePodMap(all)
			}
		})
		Expect(err).NotTo(HaveOccurred())
		update(d, setImage("web:2"))
		d = waitRolledOut(d)
		stopWatch(w)
		Expect(minAvailable).To(BeNumerically(">=", 2), "an old pod went before its replacement was available:\n%s", at)
		Expect(d.Status.AvailableReplicas).To(BeEquivalentTo(2))
	})

	It("rolls over a rollout in flight to the newest template, within the surge", func() {
		ns := newNamespace("rollover")
		d := waitRolledOut(newDeployment(ns, 4, "web:1", rolling("1", "1")))
		w, x := watchExtremes(ns, nil)
		// web:2 never becomes ready: its rollout stops part-way.
		update(d, func(d *appsv1alpha1.Deployment) { setImage("web:2")(d); unschedulable(&d.Spec.Template) })
		Eventually(func(g Gomega) {
			rs := replicaSetOf(ns, "web:2")
			g.Expect(rs).NotTo(BeNil())
			g.Expect(rs.Status.Replicas).To(BeNumerically(">", 0))
		}).Should(Succeed())
		update(d, func(d *appsv1alpha1.Deployment) {
			setImage("web:3")(d)
			d.Spec.Template.Spec.NodeSelector = nil
		})
		d = waitRolledOut(d)
		stopWatch(w)
		Expect(x.maxActive).To(BeNumerically("<=", 5), x.atMax)
		Expect(x.minAvailable).To(BeNumerically(">=", 3), x.atMin)
		Expect(replicaSetOf(ns, "web:2").Spec.Replicas).To(HaveValue(BeZero()))
		Expect(replicaSetOf(ns, "web:1").Spec.Replicas).To(HaveValue(BeZero()))
		Expect(d.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "3"))
	})

	It("rolls back through the rollback-to annotation, to the previous revision and to a named one", func() {
		ns := newNamespace("rollback")
		d := waitRolledOut(newDeployment(ns, 2, "web:1"))
		update(d, setImage("web:2"))
		d = waitRolledOut(d)

		By("rolling back to the previous revision (0)")
		update(d, func(d *appsv1alpha1.Deployment) { d.Annotations[appsv1alpha1.AnnotationRollbackTo] = "0" })
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			g.Expect(d.Annotations).NotTo(HaveKey(appsv1alpha1.AnnotationRollbackTo))
			g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("web:1"))
		}).Should(Succeed())
		d = waitRolledOut(d)
		Expect(d.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "3"))
		Expect(replicaSetOf(ns, "web:1").Annotations).To(And(
			HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "3"), HaveKeyWithValue(apps.AnnotationRevisionHistory, "1")))
		Expect(replicaSets(ns)).To(HaveLen(2), "a rollback reuses the old ReplicaSet")

		By("rolling back to revision 2 by number")
		update(d, func(d *appsv1alpha1.Deployment) { d.Annotations[appsv1alpha1.AnnotationRollbackTo] = "2" })
		Eventually(func() string { return get(d).Spec.Template.Spec.Containers[0].Image }).Should(Equal("web:2"))
		d = waitRolledOut(d)
		Expect(d.Annotations).To(HaveKeyWithValue(appsv1alpha1.AnnotationRevision, "4"))

		By("naming a revision that does not exist: the annotation goes, nothing else changes")
		update(d, func(d *appsv1alpha1.Deployment) { d.Annotations[appsv1alpha1.AnnotationRollbackTo] = "42" })
		Eventually(func() map[string]string { return get(d).Annotations }).ShouldNot(HaveKey(appsv1alpha1.AnnotationRollbackTo))
		Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("web:2"))
	})

	It("scales proportionally during a rollout", func() {
		ns := newNamespace("proportional")
		d := waitRolledOut(newDeployment(ns, 10, "web:1", rolling("3", "2")))
		// The new pods never become ready: the rollout rests at 8 old and 5 new.
		update(d, func(d *appsv1alpha1.Deployment) { setImage("web:2")(d); unschedulable(&d.Spec.Template) })
		Eventually(func(g Gomega) {
			g.Expect(replicaSetOf(ns, "web:1").Spec.Replicas).To(HaveValue(BeEquivalentTo(8)))
			g.Expect(replicaSetOf(ns, "web:2").Spec.Replicas).To(HaveValue(BeEquivalentTo(5)))
		}).Should(Succeed())
		Consistently(func() int32 { return *replicaSetOf(ns, "web:2").Spec.Replicas }).Should(BeEquivalentTo(5))

		// 33 allowed pods (30 + surge 3) shared 8:5 gives 20 and 13, as upstream's e2e test expects.
		update(d, func(d *appsv1alpha1.Deployment) { d.Spec.Replicas = ptr.To[int32](30) })
		Eventually(func(g Gomega) {
			g.Expect(replicaSetOf(ns, "web:1").Spec.Replicas).To(HaveValue(BeEquivalentTo(20)))
			g.Expect(replicaSetOf(ns, "web:2").Spec.Replicas).To(HaveValue(BeEquivalentTo(13)))
			g.Expect(activePods(ns)).To(HaveLen(33))
		}).Should(Succeed())
	})

	It("does not roll out while paused, scales while paused, and rolls out once resumed", func() {
		ns := newNamespace("paused")
		d := waitRolledOut(newDeployment(ns, 2, "web:1"))
		update(d, func(d *appsv1alpha1.Deployment) { d.Spec.Paused = true; setImage("web:2")(d) })
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
			g.Expect(meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing)).To(HaveField("Reason", appsv1alpha1.ReasonDeploymentPaused))
		}).Should(Succeed())
		update(d, func(d *appsv1alpha1.Deployment) { d.Spec.Replicas = ptr.To[int32](3) })
		Eventually(func() int { return len(activePods(ns)) }).Should(Equal(3))
		Consistently(func() int { return len(replicaSets(ns)) }).Should(Equal(1))
		for _, p := range activePods(ns) {
			Expect(p.Spec.Containers[0].Image).To(Equal("web:1"))
		}
		update(d, func(d *appsv1alpha1.Deployment) { d.Spec.Paused = false })
		waitRolledOut(d)
	})

	It("reports ProgressDeadlineExceeded when a rollout stops progressing, and progresses again on a new template", func() {
		ns := newNamespace("deadline")
		d := waitRolledOut(newDeployment(ns, 2, "web:1", func(d *appsv1alpha1.Deployment) { d.Spec.ProgressDeadlineSeconds = ptr.To[int32](3) }))
		update(d, func(d *appsv1alpha1.Deployment) { setImage("web:2")(d); unschedulable(&d.Spec.Template) })
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			c := meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(appsv1alpha1.ReasonProgressDeadlineExceeded))
			g.Expect(meta.IsStatusConditionTrue(d.Status.Conditions, conditions.Stalled)).To(BeTrue())
		}).Should(Succeed())
		Expect(meta.IsStatusConditionTrue(d.Status.Conditions, appsv1alpha1.DeploymentAvailable)).To(BeTrue(), "the old pods keep serving")

		update(d, func(d *appsv1alpha1.Deployment) { setImage("web:3")(d); d.Spec.Template.Spec.NodeSelector = nil })
		d = waitRolledOut(d)
		Expect(meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing)).To(HaveField("Reason", appsv1alpha1.ReasonNewReplicaSetAvailable))
	})

	It("finishes a rollout across manager restarts without exceeding the surge", func() {
		ns := newNamespace("restart")
		d := waitRolledOut(newDeployment(ns, 6, "web:1", rolling("2", "1")))
		w, x := watchExtremes(ns, nil)
		update(d, setImage("web:2"))
		By("restarting as soon as the new ReplicaSet exists")
		Eventually(func() *appsv1alpha1.ReplicaSet { return replicaSetOf(ns, "web:2") }).ShouldNot(BeNil())
		restartManager()
		By("restarting again half-way")
		Eventually(func() int32 {
			if rs := replicaSetOf(ns, "web:2"); rs != nil {
				return rs.Status.AvailableReplicas
			}
			return 0
		}).Should(BeNumerically(">=", 2))
		restartManager()
		waitRolledOut(d)
		stopWatch(w)
		Expect(x.maxActive).To(BeNumerically("<=", 8), x.atMax)
		Expect(x.minAvailable).To(BeNumerically(">=", 5), x.atMin)
		Expect(replicaSets(ns)).To(HaveLen(2))
	})

	It("salts the pod-template hash with collisionCount when a ReplicaSet of the same name holds another template", func() {
		ns := newNamespace("collision")
		d := waitRolledOut(newDeployment(ns, 1, "web:1"))
		rs := &replicaSets(ns)[0]
		// The new ReplicaSet's name is taken by one whose template is not the Deployment's.
		update(rs, func(rs *appsv1alpha1.ReplicaSet) {
			rs.Spec.Template.Annotations = map[string]string{"changed": "by the test"}
		})
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			g.Expect(d.Status.CollisionCount).To(HaveValue(BeEquivalentTo(1)))
			g.Expect(replicaSets(ns)).To(HaveLen(2))
		}).Should(Succeed())
		d = waitRolledOut(d)
		var fresh *appsv1alpha1.ReplicaSet
		for _, r := range replicaSets(ns) {
			if r.Name != rs.Name {
				fresh = &r
			}
		}
		Expect(fresh).NotTo(BeNil())
		hash := fresh.Labels[apps.LabelPodTemplateHash]
		Expect(fresh.Name).To(Equal("web-" + hash))
		Expect(hash).NotTo(Equal(rs.Labels[apps.LabelPodTemplateHash]))
		Expect(fresh.Spec.Replicas).To(HaveValue(BeEquivalentTo(1)))
		Expect(get(rs).Spec.Replicas).To(HaveValue(BeZero()))
	})
})
