package workloads_test

import (
	"fmt"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
	"github.com/skiff-dev/skiff/test/utils"
)

// podTemplate is a one-container template labelled app=name.
func podTemplate(name, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image}}},
	}
}

// unschedulable keeps a template's pods Pending: they select a node label
// no node has, so they never run nor become ready. (A crash-looping
// container is no substitute: it is ready for the moments it runs.)
func unschedulable(t *corev1.PodTemplateSpec) {
	t.Spec.NodeSelector = map[string]string{"skiff.test/no-such-node": "true"}
}

func selectorFor(name string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
}

// pods lists the pods of a namespace, uncached.
func pods(ns string) []corev1alpha1.Pod {
	GinkgoHelper()
	var list corev1alpha1.PodList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	return list.Items
}

// activePods are the pods that count towards replicas: neither
// terminating nor finished.
func activePods(ns string) []corev1alpha1.Pod {
	GinkgoHelper()
	var out []corev1alpha1.Pod
	for _, p := range pods(ns) {
		if podutil.IsActive(&p) {
			out = append(out, p)
		}
	}
	return out
}

func describePods(ps []corev1alpha1.Pod) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s node=%q phase=%s ready=%v deleting=%v image=%s\n", p.Name, p.Spec.NodeName, p.Status.Phase,
			podutil.IsReady(&p), p.DeletionTimestamp != nil, p.Spec.Containers[0].Image)
	}
	return b.String()
}

func describePodMap(all map[types.UID]*corev1alpha1.Pod) string {
	ps := make([]corev1alpha1.Pod, 0, len(all))
	for _, p := range all {
		ps = append(ps, *p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return describePods(ps)
}

// expectScheduledOnSimulatedNodes checks that the real scheduler bound
// every active pod to one of the given nodes, with PodScheduled.
func expectScheduledOnSimulatedNodes(ns string, nodeNames ...string) {
	GinkgoHelper()
	for _, p := range activePods(ns) {
		Expect(nodeNames).To(ContainElement(p.Spec.NodeName), "pod %s", p.Name)
		Expect(meta.IsStatusConditionTrue(p.Status.Conditions, corev1alpha1.PodScheduled)).To(BeTrue(), "pod %s", p.Name)
	}
}

// extremes records the most active and the fewest available pods seen at
// any pod change, and the pods at those moments.
type extremes struct {
	maxActive, minAvailable int
	atMax, atMin            string
}

// watchExtremes starts a pod watch of ns that records extremes; filter,
// when set, limits which pods count.
func watchExtremes(ns string, filter func(*corev1alpha1.Pod) bool) (*utils.PodWatch, *extremes) {
	GinkgoHelper()
	x := &extremes{minAvailable: 1 << 30}
	w, err := utils.WatchPods(ctx, k8sClient, ns, func(all map[types.UID]*corev1alpha1.Pod) {
		active, available := 0, 0
		for _, p := range all {
			if filter != nil && !filter(p) {
				continue
			}
			if podutil.IsActive(p) {
				active++
				if podutil.IsReady(p) {
					available++
				}
			}
		}
		if active > x.maxActive {
			x.maxActive, x.atMax = active, describePodMap(all)
		}
		if available < x.minAvailable {
			x.minAvailable, x.atMin = available, describePodMap(all)
		}
	})
	Expect(err).NotTo(HaveOccurred())
	return w, x
}

// stopWatch stops w and fails when it missed changes or saw none.
func stopWatch(w *utils.PodWatch) {
	GinkgoHelper()
	Expect(w.Stop()).To(Succeed())
	Expect(w.Events()).To(BeNumerically(">", 0), "the watch saw no pod change")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// update applies mutate to the stored object, retrying on conflicts.
func update[T client.Object](obj T, mutate func(T)) {
	GinkgoHelper()
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate(obj)
		return k8sClient.Update(ctx, obj)
	}).Should(Succeed())
}

// get reads obj afresh.
func get[T client.Object](obj T) T {
	GinkgoHelper()
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	return obj
}
