package workloads_test

import (
	"fmt"
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
	"github.com/skiff-dev/skiff/test/utils"
)

func newStatefulSet(ns string, replicas int32, image string, mutate ...func(*appsv1alpha1.StatefulSet)) *appsv1alpha1.StatefulSet {
	GinkgoHelper()
	set := &appsv1alpha1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}}
	set.Spec.Replicas = ptr.To(replicas)
	set.Spec.ServiceName = "db"
	set.Spec.Selector = selectorFor("db")
	set.Spec.Template = podTemplate("db", image)
	for _, m := range mutate {
		m(set)
	}
	Expect(k8sClient.Create(ctx, set)).To(Succeed())
	return set
}

// statefulImages maps the active pods' names to their images.
func statefulImages(ns string) map[string]string {
	GinkgoHelper()
	out := map[string]string{}
	for _, p := range activePods(ns) {
		out[p.Name] = p.Spec.Containers[0].Image
	}
	return out
}

// waitStatefulReady waits for exactly the pods in images, Running and
// Ready, and a status that says the set is ready.
func waitStatefulReady(set *appsv1alpha1.StatefulSet, images map[string]string) *appsv1alpha1.StatefulSet {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(statefulImages(set.Namespace)).To(Equal(images))
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), set)).To(Succeed())
		n := *set.Spec.Replicas
		g.Expect(set.Status.ObservedGeneration).To(Equal(set.Generation))
		g.Expect(set.Status).To(And(HaveField("Replicas", n), HaveField("ReadyReplicas", n), HaveField("AvailableReplicas", n)))
		g.Expect(meta.IsStatusConditionTrue(set.Status.Conditions, conditions.Ready)).To(BeTrue(), "%+v", set.Status)
	}).Should(Succeed())
	expectScheduledOnSimulatedNodes(set.Namespace, sharedNodes...)
	return set
}

func ordinalOf(p *corev1alpha1.Pod) int {
	n, _ := strconv.Atoi(p.Labels[appsv1.PodIndexLabel])
	return n
}

// sequenceWatch records the order in which pods are created and deleted,
// and the first moment a pod is created while a lower ordinal is not
// Running and Ready.
type sequenceWatch struct {
	created, deleted []string
	violation        string
}

func watchSequence(ns string) (*utils.PodWatch, *sequenceWatch) {
	GinkgoHelper()
	s := &sequenceWatch{}
	known := map[types.UID]bool{}
	present := map[string]bool{}
	w, err := utils.WatchPods(ctx, k8sClient, ns, func(all map[types.UID]*corev1alpha1.Pod) {
		byOrdinal := map[int]*corev1alpha1.Pod{}
		now := map[string]bool{}
		for _, p := range all {
			if podutil.IsActive(p) {
				byOrdinal[ordinalOf(p)] = p
				now[p.Name] = true
			}
		}
		for uid, p := range all {
			if known[uid] {
				continue
			}
			known[uid] = true
			s.created = append(s.created, p.Name)
			for lower := range ordinalOf(p) {
				if q := byOrdinal[lower]; (q == nil || !podutil.IsReady(q)) && s.violation == "" {
					s.violation = fmt.Sprintf("%s created while ordinal %d was not Running and Ready", p.Name, lower)
				}
			}
		}
		for name := range present {
			if !now[name] {
				s.deleted = append(s.deleted, name)
			}
		}
		present = now
	})
	Expect(err).NotTo(HaveOccurred())
	return w, s
}

var _ = Describe("StatefulSet on simulated nodes", func() {
	It("creates pods one at a time in ordinal order, each after the one before is ready, and removes them from the highest", func() {
		ns := newNamespace("sts")
		w, seq := watchSequence(ns)
		set := waitStatefulReady(newStatefulSet(ns, 3, "db:1"), map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:1"})
		Expect(seq.created).To(Equal([]string{"db-0", "db-1", "db-2"}))
		Expect(seq.violation).To(BeEmpty())
		for _, p := range pods(ns) {
			Expect(p.Spec.Hostname).To(Equal(p.Name))
			Expect(p.Spec.Subdomain).To(Equal("db"))
			Expect(p.Labels).To(HaveKeyWithValue(appsv1.ControllerRevisionHashLabelKey, set.Status.UpdateRevision))
		}

		update(set, func(s *appsv1alpha1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](1) })
		waitStatefulReady(set, map[string]string{"db-0": "db:1"})
		stopWatch(w)
		Expect(seq.deleted).To(Equal([]string{"db-2", "db-1"}))
	})

	It("updates from the highest ordinal down to the partition, one pod at a time", func() {
		ns := newNamespace("sts-partition")
		set := newStatefulSet(ns, 3, "db:1", func(s *appsv1alpha1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](2)}}
		})
		before := waitStatefulReady(set, map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:1"}).Status.CurrentRevision

		update(set, func(s *appsv1alpha1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2" })
		set = waitStatefulReady(set, map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:2"})
		Consistently(func() map[string]string { return statefulImages(ns) }).Should(HaveKeyWithValue("db-1", "db:1"))
		Expect(get(set).Status).To(And(HaveField("CurrentRevision", before), HaveField("UpdatedReplicas", int32(1)), HaveField("CurrentReplicas", int32(2))))
		Expect(set.Status.UpdateRevision).NotTo(Equal(before))

		By("deleting a pod below the partition: it comes back at the current revision")
		Expect(k8sClient.Delete(ctx, &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-0"}})).To(Succeed())
		waitStatefulReady(set, map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:2"})

		By("lowering the partition to 0: db-1, then db-0, at most one unavailable")
		w, seq := watchSequence(ns)
		w2, x := watchExtremes(ns, nil)
		update(set, func(s *appsv1alpha1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To[int32](0) })
		waitStatefulReady(set, map[string]string{"db-0": "db:2", "db-1": "db:2", "db-2": "db:2"})
		stopWatch(w)
		stopWatch(w2)
		Expect(seq.deleted).To(Equal([]string{"db-1", "db-0"}))
		Expect(x.minAvailable).To(BeNumerically(">=", 2))
		Eventually(func(g Gomega) {
			s := get(set)
			g.Expect(s.Status.CurrentRevision).To(Equal(s.Status.UpdateRevision))
			g.Expect(s.Status).To(And(HaveField("CurrentReplicas", int32(3)), HaveField("UpdatedReplicas", int32(3))))
		}).Should(Succeed())
		var revs appsv1.ControllerRevisionList
		Expect(k8sClient.List(ctx, &revs, client.InNamespace(ns))).To(Succeed())
		Expect(revs.Items).To(HaveLen(2))
	})

	It("replaces pods only when they are deleted with OnDelete", func() {
		ns := newNamespace("sts-ondelete")
		set := newStatefulSet(ns, 2, "db:1", func(s *appsv1alpha1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		})
		waitStatefulReady(set, map[string]string{"db-0": "db:1", "db-1": "db:1"})
		update(set, func(s *appsv1alpha1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "db:2" })
		Consistently(func() map[string]string { return statefulImages(ns) }).Should(Equal(map[string]string{"db-0": "db:1", "db-1": "db:1"}))
		Expect(k8sClient.Delete(ctx, &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-1"}})).To(Succeed())
		waitStatefulReady(set, map[string]string{"db-0": "db:1", "db-1": "db:2"})
		Eventually(func() int32 { return get(set).Status.UpdatedReplicas }).Should(BeEquivalentTo(1))
	})

	It("keeps its order across a manager restart mid-scale-up", func() {
		ns := newNamespace("sts-restart")
		w, seq := watchSequence(ns)
		set := newStatefulSet(ns, 4, "db:1")
		Eventually(func() int { return len(activePods(ns)) }).Should(BeNumerically(">=", 2))
		restartManager()
		waitStatefulReady(set, map[string]string{"db-0": "db:1", "db-1": "db:1", "db-2": "db:1", "db-3": "db:1"})
		stopWatch(w)
		Expect(seq.created).To(Equal([]string{"db-0", "db-1", "db-2", "db-3"}))
		Expect(seq.violation).To(BeEmpty())
	})
})
