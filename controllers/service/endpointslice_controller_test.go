package service

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// runPod creates a pod of app and plays its node: bound, with an IP, and ready or not.
func runPod(ns, app, name, ip string, ready bool) *corev1alpha1.Pod {
	GinkgoHelper()
	pod := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
	}
	Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	setReady(pod, ip, ready)
	return pod
}

func setReady(pod *corev1alpha1.Pod, ip string, ready bool) {
	GinkgoHelper()
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	pod.Status.Phase, pod.Status.PodIP = corev1.PodRunning, ip
	pod.Status.Conditions = []metav1.Condition{{Type: conditions.Ready, Status: status, Reason: "Test", LastTransitionTime: metav1.Now()}}
	Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())
}

// endpointsOf returns address → ready of every endpoint in the Service's slices.
func endpointsOf(ns, svc string) func() map[string]bool {
	return func() map[string]bool {
		list := &corev1alpha1.EndpointSliceList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{LabelServiceName: svc})).To(Succeed())
		out := map[string]bool{}
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				out[ep.Addresses[0]] = *ep.Conditions.Ready
			}
		}
		return out
	}
}

var _ = Describe("EndpointSlices", func() {
	It("follow the readiness and the deletion of the selected pods", func() {
		ns := newNamespace()
		newService(ns, "web", func(s *corev1alpha1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}
		})
		a := runPod(ns, "web", "a", "10.244.0.5", true)
		b := runPod(ns, "web", "b", "10.244.0.6", false)
		runPod(ns, "other", "c", "10.244.0.7", true)
		Eventually(endpointsOf(ns, "web"), wait, poll).Should(Equal(map[string]bool{"10.244.0.5": true, "10.244.0.6": false}))

		setReady(b, "10.244.0.6", true)
		Eventually(endpointsOf(ns, "web"), wait, poll).Should(Equal(map[string]bool{"10.244.0.5": true, "10.244.0.6": true}))

		Expect(k8sClient.Delete(ctx, a)).To(Succeed())
		Eventually(endpointsOf(ns, "web"), wait, poll).Should(Equal(map[string]bool{"10.244.0.6": true}))

		list := &corev1alpha1.EndpointSliceList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{LabelServiceName: "web"})).To(Succeed())
		Expect(list.Items).To(HaveLen(1))
		s := list.Items[0]
		Expect(*s.Ports[0].Port).To(BeEquivalentTo(8080), "the named target port resolved")
		Expect(*s.Endpoints[0].NodeName).To(Equal("node-1"))
		Expect(s.Labels).To(HaveKeyWithValue(LabelSliceManagedBy, EndpointSliceManager))
		Expect(metav1.IsControlledBy(&s, &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{UID: s.OwnerReferences[0].UID}})).To(BeTrue())
	})

	It("split more than a hundred endpoints into slices", func() {
		ns := newNamespace()
		newService(ns, "big", nil)
		for i := range 120 {
			runPod(ns, "big", fmt.Sprintf("p%03d", i), fmt.Sprintf("10.245.%d.%d", i/200, i%200+1), true)
		}
		Eventually(func() []int {
			list := &corev1alpha1.EndpointSliceList{}
			Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{LabelServiceName: "big"})).To(Succeed())
			var sizes []int
			for _, s := range list.Items {
				sizes = append(sizes, len(s.Endpoints))
			}
			return sizes
		}, wait, poll).Should(ConsistOf(100, 20))
	})
})
