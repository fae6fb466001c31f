package scheduler_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

const (
	timeout  = 20 * time.Second
	interval = 100 * time.Millisecond
)

var testCount int

// newNode creates a ready node with the given cpu, and optional taints.
func newNode(name, cpu string, taints ...corev1.Taint) *corev1alpha1.Node {
	node := &corev1alpha1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Spec:       corev1.NodeSpec{Taints: taints},
	}
	Expect(k8sClient.Create(ctx, node)).To(Succeed())
	node.Status = corev1alpha1.NodeStatus{
		Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")},
		Conditions:  []metav1.Condition{{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: corev1alpha1.ReasonAgentReady, LastTransitionTime: metav1.Now()}},
	}
	Expect(k8sClient.Status().Update(ctx, node)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, node))).To(Succeed()) })
	return node
}

// newPod creates a pod requesting cpu, with an optional priority.
func newPod(ns, name, cpu string, mutate ...func(*corev1alpha1.Pod)) *corev1alpha1.Pod {
	pod := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
	}
	for _, m := range mutate {
		m(pod)
	}
	Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	return pod
}

func withPriority(p int32) func(*corev1alpha1.Pod) {
	return func(pod *corev1alpha1.Pod) { pod.Spec.Priority = &p }
}

func get(pod *corev1alpha1.Pod) func(Gomega) *corev1alpha1.Pod {
	return func(g Gomega) *corev1alpha1.Pod {
		out := &corev1alpha1.Pod{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), out)).To(Succeed())
		return out
	}
}

func nodeNameOf(pod *corev1alpha1.Pod) func(Gomega) string {
	return func(g Gomega) string { return get(pod)(g).Spec.NodeName }
}

func scheduledCondition(pod *corev1alpha1.Pod) func(Gomega) metav1.Condition {
	return func(g Gomega) metav1.Condition {
		c := meta.FindStatusCondition(get(pod)(g).Status.Conditions, corev1alpha1.PodScheduled)
		g.Expect(c).NotTo(BeNil())
		return *c
	}
}

// eventNotes returns the notes of the events of a reason about an object.
func eventNotes(ns, name, reason string) func(Gomega) []string {
	return func(g Gomega) []string {
		list := &eventsv1.EventList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var notes []string
		for _, e := range list.Items {
			if e.Regarding.Name == name && e.Reason == reason {
				notes = append(notes, e.Note)
			}
		}
		return notes
	}
}

var _ = Describe("Scheduler", func() {
	var ns string
	var prefix string

	BeforeEach(func() {
		testCount++
		prefix = fmt.Sprintf("t%d-", testCount)
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sched-"}}
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		ns = n.Name
		// Pods left pending by a test must not take the next test's nodes.
		DeferCleanup(func() {
			Expect(k8sClient.DeleteAllOf(ctx, &corev1alpha1.Pod{}, client.InNamespace(ns))).To(Succeed())
			Expect(k8sClient.Delete(ctx, n)).To(Succeed())
		})
	})

	It("binds a pending pod: spec.nodeName, PodScheduled=True and a Scheduled event", func() {
		node := newNode(prefix+"n1", "4")
		pod := newPod(ns, "web", "1")
		Eventually(nodeNameOf(pod), timeout, interval).Should(Equal(node.Name))
		Eventually(scheduledCondition(pod), timeout, interval).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", corev1alpha1.ReasonScheduled)))
		Eventually(eventNotes(ns, "web", "Scheduled"), timeout, interval).Should(ContainElement(
			fmt.Sprintf("Successfully assigned %s/web to %s", ns, node.Name)))
	})

	It("counts pods it has just assumed, so a burst never overcommits a node", func() {
		for i := 1; i <= 3; i++ {
			newNode(fmt.Sprintf("%sn%d", prefix, i), "1")
		}
		pods := make([]*corev1alpha1.Pod, 4)
		for i := range pods {
			pods[i] = newPod(ns, fmt.Sprintf("p%d", i), "1")
		}
		Eventually(func(g Gomega) map[string]int {
			perNode := map[string]int{}
			for _, p := range pods {
				if n := nodeNameOf(p)(g); n != "" {
					perNode[n]++
				}
			}
			return perNode
		}, timeout, interval).Should(Equal(map[string]int{prefix + "n1": 1, prefix + "n2": 1, prefix + "n3": 1}))
		Consistently(func(g Gomega) int {
			bound := 0
			for _, p := range pods {
				if nodeNameOf(p)(g) != "" {
					bound++
				}
			}
			return bound
		}, 2*time.Second, 200*time.Millisecond).Should(Equal(3))
	})

	It("reports why a pod does not fit, then binds it when a node is added", func() {
		newNode(prefix+"small-1", "1")
		newNode(prefix+"small-2", "1")
		newNode(prefix+"gpu", "8", corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule})
		pod := newPod(ns, "big", "2")
		want := "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
		Eventually(scheduledCondition(pod), timeout, interval).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", corev1alpha1.ReasonUnschedulable),
			HaveField("Message", want)))
		Eventually(eventNotes(ns, "big", "FailedScheduling"), timeout, interval).Should(ContainElement(want))
		Expect(nodeNameOf(pod)(Default)).To(BeEmpty())

		// Another writer's condition survives the bind: the scheduler sets
		// PodScheduled alone, by its key in the conditions map.
		cur := get(pod)(Default)
		orig := cur.DeepCopy()
		meta.SetStatusCondition(&cur.Status.Conditions, metav1.Condition{Type: "Initialized", Status: metav1.ConditionTrue, Reason: "Test"})
		Expect(k8sClient.Status().Patch(ctx, cur, client.MergeFrom(orig))).To(Succeed())

		large := newNode(prefix+"large", "4")
		Eventually(nodeNameOf(pod), timeout, interval).Should(Equal(large.Name))
		Eventually(scheduledCondition(pod), timeout, interval).Should(And(
			HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", corev1alpha1.ReasonScheduled),
			HaveField("Message", "Bound to node "+large.Name)))
		Expect(meta.FindStatusCondition(get(pod)(Default).Status.Conditions, "Initialized")).NotTo(BeNil())
	})

	It("retries an unschedulable pod when a pod on the node is deleted", func() {
		node := newNode(prefix+"n1", "1")
		first := newPod(ns, "first", "1")
		Eventually(nodeNameOf(first), timeout, interval).Should(Equal(node.Name))
		second := newPod(ns, "second", "1")
		Eventually(scheduledCondition(second), timeout, interval).Should(HaveField("Reason", corev1alpha1.ReasonUnschedulable))
		Expect(k8sClient.Delete(ctx, first)).To(Succeed())
		Eventually(nodeNameOf(second), timeout, interval).Should(Equal(node.Name))
	})

	It("retries an unschedulable pod when a pod on the node finishes", func() {
		node := newNode(prefix+"n1", "1")
		job := newPod(ns, "job", "1")
		Eventually(nodeNameOf(job), timeout, interval).Should(Equal(node.Name))
		next := newPod(ns, "next", "1")
		Eventually(scheduledCondition(next), timeout, interval).Should(HaveField("Reason", corev1alpha1.ReasonUnschedulable))
		done := get(job)(Default)
		done.Status.Phase = corev1.PodSucceeded
		Expect(k8sClient.Status().Update(ctx, done)).To(Succeed())
		Eventually(nodeNameOf(next), timeout, interval).Should(Equal(node.Name))
	})

	It("leaves pods of other schedulers alone", func() {
		newNode(prefix+"n1", "4")
		pod := newPod(ns, "other", "100m", func(p *corev1alpha1.Pod) { p.Spec.SchedulerName = "someone-else" })
		mine := newPod(ns, "mine", "100m", func(p *corev1alpha1.Pod) { p.Spec.SchedulerName = "skiff-scheduler" })
		Eventually(nodeNameOf(mine), timeout, interval).ShouldNot(BeEmpty())
		Consistently(nodeNameOf(pod), 2*time.Second, 200*time.Millisecond).Should(BeEmpty())
		Expect(get(pod)(Default).Status.Conditions).To(BeEmpty())
	})

	It("preempts the lowest-priority pod to make room, and records why", func() {
		node := newNode(prefix+"n1", "2")
		low := newPod(ns, "low", "1", withPriority(1))
		mid := newPod(ns, "mid", "1", withPriority(50))
		Eventually(nodeNameOf(low), timeout, interval).Should(Equal(node.Name))
		Eventually(nodeNameOf(mid), timeout, interval).Should(Equal(node.Name))

		high := newPod(ns, "high", "1", withPriority(1000))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(low), &corev1alpha1.Pod{}))
		}, timeout, interval).Should(BeTrue(), "the lowest-priority pod is evicted")
		Eventually(nodeNameOf(high), timeout, interval).Should(Equal(node.Name))
		Expect(nodeNameOf(mid)(Default)).To(Equal(node.Name), "the pod of middle priority stays")
		Eventually(func(g Gomega) string { return get(high)(g).Status.NominatedNodeName }, timeout, interval).Should(BeEmpty(), "binding clears the nomination")
		Eventually(eventNotes(ns, "low", "Preempted"), timeout, interval).Should(ContainElement(
			fmt.Sprintf("Preempted by %s/high (priority 1000) on node %s", ns, node.Name)))
		Eventually(eventNotes(ns, "high", "Preempting"), timeout, interval).Should(ContainElement(
			ContainSubstring(fmt.Sprintf("%s/low (priority 1)", ns))))
	})

	It("does not preempt pods of equal priority", func() {
		node := newNode(prefix+"n1", "1")
		first := newPod(ns, "first", "1", withPriority(10))
		Eventually(nodeNameOf(first), timeout, interval).Should(Equal(node.Name))
		second := newPod(ns, "second", "1", withPriority(10))
		Eventually(scheduledCondition(second), timeout, interval).Should(HaveField("Reason", corev1alpha1.ReasonUnschedulable))
		Consistently(nodeNameOf(first), 2*time.Second, 200*time.Millisecond).Should(Equal(node.Name))
	})

	It("keeps a pod whose claim does not exist pending, with the reason", func() {
		newNode(prefix+"n1", "4")
		pod := newPod(ns, "claims", "100m", func(p *corev1alpha1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "missing"}}}}
		})
		Eventually(scheduledCondition(pod), timeout, interval).Should(HaveField("Message",
			`0/1 nodes are available: persistentvolumeclaim "missing" not found.`))
	})
})
