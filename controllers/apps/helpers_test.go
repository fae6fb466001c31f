package apps_test

import (
	"fmt"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// newNamespace creates a namespace with a unique name and returns the name.
func newNamespace(prefix string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + rand.String(5)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// podTemplate is a one-container template labelled app=name.
func podTemplate(name, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: image}}},
	}
}

func selectorFor(name string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
}

func int32p(v int32) *int32 { return &v }

// podObserver watches every pod event of a namespace and records the most
// active pods and the fewest available pods seen at any moment, and
// whatever else check inspects.
type podObserver struct {
	mu           sync.Mutex
	pods         map[types.UID]*corev1alpha1.Pod
	maxActive    int
	minAvailable int
	events       int
	check        func(pods map[types.UID]*corev1alpha1.Pod)
	stop         func()
	done         chan struct{}
}

// observePods starts an observer; call it once the workload is at rest so
// that the starting state is complete before the change under test.
func observePods(ns string, check func(pods map[types.UID]*corev1alpha1.Pod)) *podObserver {
	var list corev1alpha1.PodList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	w, err := k8sClient.Watch(ctx, &corev1alpha1.PodList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	Expect(err).NotTo(HaveOccurred())
	o := &podObserver{pods: map[types.UID]*corev1alpha1.Pod{}, minAvailable: 1 << 30, check: check, stop: w.Stop, done: make(chan struct{})}
	for i := range list.Items {
		o.pods[list.Items[i].UID] = &list.Items[i]
	}
	o.record()
	go func() {
		defer GinkgoRecover()
		defer close(o.done)
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1alpha1.Pod)
			if !ok {
				continue
			}
			o.mu.Lock()
			if ev.Type == watch.Deleted {
				delete(o.pods, pod.UID)
			} else {
				o.pods[pod.UID] = pod
			}
			o.events++
			o.record()
			o.mu.Unlock()
		}
	}()
	return o
}

func (o *podObserver) record() {
	active, available := 0, 0
	for _, p := range o.pods {
		if podutil.IsActive(p) {
			active++
			if podutil.IsReady(p) {
				available++
			}
		}
	}
	o.maxActive = max(o.maxActive, active)
	o.minAvailable = min(o.minAvailable, available)
	if o.check != nil {
		o.check(o.pods)
	}
}

// Stop ends the watch and returns the extremes seen.
func (o *podObserver) Stop() (maxActive, minAvailable int) {
	o.stop()
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	Expect(o.events).To(BeNumerically(">", 0), "the observer saw no pod event")
	return o.maxActive, o.minAvailable
}

func describePods(pods []corev1alpha1.Pod) string {
	s := ""
	for _, p := range pods {
		s += fmt.Sprintf("%s node=%q phase=%s ready=%v deleting=%v labels=%v\n", p.Name, p.Spec.NodeName, p.Status.Phase, podutil.IsReady(&p), p.DeletionTimestamp != nil, p.Labels)
	}
	return s
}

func rollingUpdate(surge, unavailable string) appsv1.DeploymentStrategy {
	s, u := intstrOf(surge), intstrOf(unavailable)
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &s, MaxUnavailable: &u}}
}

func intstrOf(s string) intstr.IntOrString { return intstr.Parse(s) }
