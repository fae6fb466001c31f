package apps_test

import (
	"fmt"
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
)

func newStatefulSet(ns string, replicas int32, image string) *appsv1alpha1.StatefulSet {
	set := &appsv1alpha1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}}
	set.Spec.Replicas = int32p(replicas)
	set.Spec.ServiceName = "db-headless"
	set.Spec.Selector = selectorFor("db")
	set.Spec.Template = podTemplate("db", image)
	return set
}

func getStatefulSet(ns string) *appsv1alpha1.StatefulSet {
	set := &appsv1alpha1.StatefulSet{}
	ExpectWithOffset(1, k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "db"}, set)).To(Succeed())
	return set
}

func updateStatefulSet(ns string, mutate func(*appsv1alpha1.StatefulSet)) {
	EventuallyWithOffset(1, func() error {
		set := getStatefulSet(ns)
		mutate(set)
		return k8sClient.Update(ctx, set)
	}).Should(Succeed())
}

// statefulImages maps pod names to images.
func statefulImages(ns string) map[string]string {
	out := map[string]string{}
	for _, p := range podList(ns) {
		if podutil.IsActive(&p) {
			out[p.Name] = p.Spec.Containers[0].Image
		}
	}
	return out
}

func waitStatefulReady(ns string, images map[string]string) *appsv1alpha1.StatefulSet {
	var set *appsv1alpha1.StatefulSet
	EventuallyWithOffset(1, func(g Gomega) {
		g.Expect(statefulImages(ns)).To(Equal(images))
		set = getStatefulSet(ns)
		n := *set.Spec.Replicas
		g.Expect(set.Status.ObservedGeneration).To(Equal(set.Generation))
		g.Expect(set.Status).To(And(HaveField("Replicas", n), HaveField("ReadyReplicas", n), HaveField("AvailableReplicas", n)))
		g.Expect(meta.IsStatusConditionTrue(set.Status.Conditions, conditions.Ready)).To(BeTrue(), "%+v", set.Status)
	}).Should(Succeed())
	return set
}

// orderedCreationChecker fails when a pod appears while a lower ordinal is not ready.
func orderedCreationChecker(violation *string) func(map[types.UID]*corev1alpha1.Pod) {
	seen := map[types.UID]bool{}
	return func(pods map[types.UID]*corev1alpha1.Pod) {
		byOrdinal := map[int]*corev1alpha1.Pod{}
		for _, p := range pods {
			ord, _ := strconv.Atoi(p.Labels[appsv1.PodIndexLabel])
			byOrdinal[ord] = p
		}
		for uid, p := range pods {
			if seen[uid] {
				continue
			}
			seen[uid] = true
			ord, _ := strconv.Atoi(p.Labels[appsv1.PodIndexLabel])
			for lower := 0; lower < ord; lower++ {
				if q := byOrdinal[lower]; q == nil || !podutil.IsReady(q) {
					*violation = fmt.Sprintf("%s created while ordinal %d was not ready", p.Name, lower)
				}
			}
		}
	}
}

var _ = Describe("StatefulSet", func() {
	It("creates pods one at a time in ordinal order with stable identities", func() {
		ns := newNamespace("sts")
		holdNode(ns, true)
		violation := ""
		obs := observePods(ns, orderedCreationChecker(&violation))
		Expect(k8sClient.Create(ctx, newStatefulSet(ns, 3, "db:1"))).To(Succeed())
		Eventually(func() []string { return keys(statefulImages(ns)) }).Should(ConsistOf("db-0"))
		Consistently(func() int { return len(podList(ns)) }, "1s").Should(Equal(1))
		holdNode(ns, false)
		// Nudge the fake node: it reconciles pods on events.
		pod := &corev1alpha1.Pod{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "db-0"}, pod)).To(Succeed())
		pod.Annotations = map[string]string{"nudge": "1"}
		Expect(k8sClient.Update(ctx, pod)).To(Succeed())
		set := waitStatefulReady(ns, map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:1"})
		obs.Stop()
		Expect(violation).To(BeEmpty())

		for i, p := range podList(ns) {
			_ = i
			Expect(p.Spec.Hostname).To(Equal(p.Name))
			Expect(p.Spec.Subdomain).To(Equal("db-headless"))
			Expect(p.Labels).To(HaveKeyWithValue(appsv1.StatefulSetPodNameLabel, p.Name))
			Expect(p.Labels).To(HaveKeyWithValue(appsv1.PodIndexLabel, p.Name[len("db-"):]))
			Expect(p.Labels).To(HaveKeyWithValue(appsv1.ControllerRevisionHashLabelKey, set.Status.UpdateRevision))
			Expect(metav1.IsControlledBy(&p, set)).To(BeTrue())
		}
		Expect(set.Status.CurrentRevision).To(Equal(set.Status.UpdateRevision))
		Expect(set.Status.Ready).To(Equal("3/3"))
		rev := &appsv1.ControllerRevision{}
		Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: set.Status.UpdateRevision}, rev)).To(Succeed())
		Expect(metav1.IsControlledBy(rev, set)).To(BeTrue())
		Expect(rev.Revision).To(BeEquivalentTo(1))

		By("scaling down from the highest ordinal")
		var deleted []string
		obs = observePods(ns, func(pods map[types.UID]*corev1alpha1.Pod) {
			present := map[string]bool{}
			for _, p := range pods {
				present[p.Name] = true
			}
			for _, name := range []string{"db-2", "db-1"} {
				if !present[name] && !contains(deleted, name) {
					deleted = append(deleted, name)
				}
			}
		})
		updateStatefulSet(ns, func(s *appsv1alpha1.StatefulSet) { s.Spec.Replicas = int32p(1) })
		waitStatefulReady(ns, map[string]string{"db-0": "db:1"})
		obs.Stop()
		Expect(deleted).To(Equal([]string{"db-2", "db-1"}))
	})

	It("starts ordinals at ordinals.start", func() {
		ns := newNamespace("sts-start")
		set := newStatefulSet(ns, 2, "db:1")
		set.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5}
		Expect(k8sClient.Create(ctx, set)).To(Succeed())
		waitStatefulReady(ns, map[string]string{"db-5": "db:1", "db-6": "db:1"})
	})

	It("creates every pod at once with Parallel", func() {
		ns := newNamespace("sts-parallel")
		holdNode(ns, true)
		set := newStatefulSet(ns, 3, "db:1")
		set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
		Expect(k8sClient.Create(ctx, set)).To(Succeed())
		Eventually(func() []string { return keys(statefulImages(ns)) }).Should(ConsistOf("db-0", "db-1", "db-2"))
	})

	It("updates from the highest ordinal down to the partition", func() {
		ns := newNamespace("sts-partition")
		set := newStatefulSet(ns, 3, "db:1")
		set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: int32p(2)}}
		Expect(k8sClient.Create(ctx, set)).To(Succeed())
		before := waitStatefulReady(ns, map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:1"})

		updateStatefulSet(ns, func(s *appsv1alpha1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2" })
		set = waitStatefulReady(ns, map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:2"})
		Consistently(func() map[string]string { return statefulImages(ns) }, "1s").Should(HaveKeyWithValue("db-1", "db:1"))
		set = getStatefulSet(ns)
		Expect(set.Status.CurrentRevision).To(Equal(before.Status.CurrentRevision))
		Expect(set.Status.UpdateRevision).NotTo(Equal(set.Status.CurrentRevision))
		Expect(set.Status.UpdatedReplicas).To(BeEquivalentTo(1))
		Expect(set.Status.CurrentReplicas).To(BeEquivalentTo(2))

		By("deleting a pod below the partition: it comes back at the current revision")
		Expect(k8sClient.Delete(ctx, &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-0"}})).To(Succeed())
		waitStatefulReady(ns, map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:2"})

		By("lowering the partition to 0")
		updateStatefulSet(ns, func(s *appsv1alpha1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = int32p(0) })
		set = waitStatefulReady(ns, map[string]string{"db-0": "db:2", "db-1": "db:2", "db-2": "db:2"})
		Eventually(func(g Gomega) {
			set := getStatefulSet(ns)
			g.Expect(set.Status.CurrentRevision).To(Equal(set.Status.UpdateRevision))
			g.Expect(set.Status.CurrentReplicas).To(BeEquivalentTo(3))
			g.Expect(set.Status.UpdatedReplicas).To(BeEquivalentTo(3))
		}).Should(Succeed())
		var revs appsv1.ControllerRevisionList
		Expect(k8sClient.List(ctx, &revs, client.InNamespace(ns))).To(Succeed())
		Expect(revs.Items).To(HaveLen(2))
	})

	It("updates at most maxUnavailable pods at a time", func() {
		ns := newNamespace("sts-maxunavailable")
		set := newStatefulSet(ns, 4, "db:1")
		mu := intstr.FromInt32(2)
		set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: &mu}}
		Expect(k8sClient.Create(ctx, set)).To(Succeed())
		waitStatefulReady(ns, map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:1", "db-3": "db:1"})
		obs := observePods(ns, nil)
		updateStatefulSet(ns, func(s *appsv1alpha1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2" })
		waitStatefulReady(ns, map[string]string{"db-0": "db:2", "db-1": "db:2", "db-2": "db:2", "db-3": "db:2"})
		_, minAvailable := obs.Stop()
		Expect(minAvailable).To(BeNumerically(">=", 2))
	})

	It("replaces pods only when they are deleted with OnDelete", func() {
		ns := newNamespace("sts-ondelete")
		set := newStatefulSet(ns, 2, "db:1")
		set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		Expect(k8sClient.Create(ctx, set)).To(Succeed())
		waitStatefulReady(ns, map[string]string{"db-0": "db:1", "db-1": "db:1"})
		updateStatefulSet(ns, func(s *appsv1alpha1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2" })
		Consistently(func() map[string]string { return statefulImages(ns) }, "1s").Should(Equal(map[string]string{"db-0": "db:1", "db-1": "db:1"}))
		Expect(k8sClient.Delete(ctx, &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-1"}})).To(Succeed())
		set = waitStatefulReady(ns, map[string]string{"db-0": "db:1", "db-1": "db:2"})
		Eventually(func() int32 { return getStatefulSet(ns).Status.UpdatedReplicas }).Should(BeEquivalentTo(1))
	})

	It("creates a claim per ordinal and follows the retention policy", func() {
		ns := newNamespace("sts-claims")
		set := newStatefulSet(ns, 2, "db:1")
		set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		}}
		set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType}
		Expect(k8sClient.Create(ctx, set)).To(Succeed())
		waitStatefulReady(ns, map[string]string{"db-0": "db:1", "db-1": "db:1"})
		claims := func() []string {
			var list corev1alpha1.PersistentVolumeClaimList
			Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			var names []string
			for _, c := range list.Items {
				names = append(names, c.Name)
				Expect(c.Labels).To(HaveKeyWithValue("app", "db"))
			}
			return names
		}
		Expect(claims()).To(ConsistOf("data-db-0", "data-db-1"))
		for _, p := range podList(ns) {
			Expect(p.Spec.Volumes).To(ContainElement(corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-" + p.Name}}}))
		}

		By("scaling down: whenScaled Delete removes the claim with its pod")
		updateStatefulSet(ns, func(s *appsv1alpha1.StatefulSet) { s.Spec.Replicas = int32p(1) })
		Eventually(claims).Should(ConsistOf("data-db-0"))

		By("deleting the set: whenDeleted Retain keeps the claim")
		Expect(k8sClient.Delete(ctx, getStatefulSet(ns))).To(Succeed())
		Eventually(func() int { return len(podList(ns)) }).Should(BeZero())
		Consistently(claims, "1s").Should(ConsistOf("data-db-0"))
	})
})

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
