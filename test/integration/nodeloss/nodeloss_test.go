package nodeloss_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri"
	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
	"github.com/skiff-dev/skiff/test/utils"
)

func template(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{Name: "main", Image: "skiff.test/" + app + ":1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
		},
	}
}

// startNodes starts simulated nodes (a group that crashes together) and
// removes their Nodes at the end of the spec.
func startNodes(opts utils.SimulatedNodesOptions) *utils.SimulatedNodes {
	GinkgoHelper()
	nodes, err := utils.StartSimulatedNodes(ctx, cp.Config, opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		By(fmt.Sprintf("stopping simulated nodes %v", nodes.Names))
		Expect(nodes.Stop()).To(Succeed())
		for _, name := range nodes.Names {
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}))).To(Succeed())
		}
	})
	return nodes
}

func podsOf(ns, app string) []corev1alpha1.Pod {
	GinkgoHelper()
	list := &corev1alpha1.PodList{}
	Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{"app": app})).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

// readyPodsOn returns the names of the app's pods by node, failing unless
// every pod is active and ready.
func readyPodsOn(g Gomega, ns, app string) map[string][]string {
	out := map[string][]string{}
	list := &corev1alpha1.PodList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{"app": app})).To(Succeed())
	for _, p := range list.Items {
		g.Expect(podutil.IsActive(&p) && podutil.IsReady(&p)).To(BeTrue(), "pod %s on %q: phase %s, deleting %v", p.Name, p.Spec.NodeName, p.Status.Phase, p.DeletionTimestamp != nil)
		out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Name)
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out
}

// endpoint is what a spec looks at in an EndpointSlice endpoint.
type endpoint struct {
	Node                        string
	UID                         types.UID
	Ready, Serving, Terminating bool
}

func endpointsOf(g Gomega, ns, svc string) []endpoint {
	list := &corev1alpha1.EndpointSliceList{}
	g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{"kubernetes.io/service-name": svc})).To(Succeed())
	var out []endpoint
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			out = append(out, toEndpoint(e.NodeName, e.TargetRef, e.Conditions.Ready, e.Conditions.Serving, e.Conditions.Terminating))
		}
	}
	return out
}

func toEndpoint(node *string, ref *corev1.ObjectReference, ready, serving, terminating *bool) endpoint {
	e := endpoint{Node: ptr.Deref(node, ""), Ready: ptr.Deref(ready, false), Serving: ptr.Deref(serving, false), Terminating: ptr.Deref(terminating, false)}
	if ref != nil {
		e.UID = ref.UID
	}
	return e
}

// watchEndpoints records every endpoint state of the Service's slices. A
// watch the API server ends (a watch cache behind, a timeout) is started
// again from a fresh list, so no state between is lost for good: the list
// shows the current one.
func watchEndpoints(ns, svc string) func() []endpoint {
	GinkgoHelper()
	var mu sync.Mutex
	var seen []endpoint
	record := func(s *corev1alpha1.EndpointSlice) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range s.Endpoints {
			seen = append(seen, toEndpoint(e.NodeName, e.TargetRef, e.Conditions.Ready, e.Conditions.Serving, e.Conditions.Terminating))
		}
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	opts := []client.ListOption{client.InNamespace(ns), client.MatchingLabels{"kubernetes.io/service-name": svc}}
	go func() {
		defer close(done)
		for wctx.Err() == nil {
			list := &corev1alpha1.EndpointSliceList{}
			if err := k8sClient.List(wctx, list, opts...); err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for i := range list.Items {
				record(&list.Items[i])
			}
			w, err := k8sClient.Watch(wctx, &corev1alpha1.EndpointSliceList{},
				append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})...)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					break
				}
				if s, ok := ev.Object.(*corev1alpha1.EndpointSlice); ok && ev.Type != watch.Deleted {
					record(s)
				}
			}
			w.Stop()
		}
	}()
	DeferCleanup(func() { By("stopping the EndpointSlice watch"); stop(); <-done })
	return func() []endpoint {
		mu.Lock()
		defer mu.Unlock()
		return append([]endpoint(nil), seen...)
	}
}

var _ = Describe("Losing a node", func() {
	It("moves its Deployment and StatefulSet pods to the other nodes, the StatefulSet's under their names, drops them from the Service first, and untaints the node when it returns", func() {
		suffix := rand.String(5)
		lost := "lost-" + suffix
		ns := "nodeloss-" + suffix
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())

		By("running a Deployment, a StatefulSet and a Service on one node")
		victim := startNodes(utils.SimulatedNodesOptions{Names: []string{lost}})
		d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
		d.Spec.Replicas = ptr.To[int32](3)
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		d.Spec.Template = template("web")
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		set := &appsv1alpha1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}}
		set.Spec.Replicas = ptr.To[int32](2)
		set.Spec.ServiceName = "db"
		set.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
		set.Spec.Template = template("db")
		Expect(k8sClient.Create(ctx, set)).To(Succeed())
		svc := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
		svc.Spec.Selector = map[string]string{"app": "web"}
		svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}
		Expect(k8sClient.Create(ctx, svc)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(readyPodsOn(g, ns, "web")).To(HaveKeyWithValue(lost, HaveLen(3)))
			g.Expect(readyPodsOn(g, ns, "db")).To(Equal(map[string][]string{lost: {"db-0", "db-1"}}))
			eps := endpointsOf(g, ns, "web")
			g.Expect(eps).To(HaveLen(3))
			g.Expect(eps).To(HaveEach(HaveField("Ready", true)))
		}).Should(Succeed())
		lostUIDs := map[types.UID]string{}
		for _, app := range []string{"web", "db"} {
			for _, p := range podsOf(ns, app) {
				lostUIDs[p.UID] = p.Name
			}
		}

		By("adding two nodes, then crashing the first: its agent and pods are gone, its Node and pods stay in the API")
		others := startNodes(utils.SimulatedNodesOptions{Names: []string{"a-" + suffix, "b-" + suffix}})
		// What each lost pod was seen as, from the watch.
		var mu sync.Mutex
		markedNotReady := map[types.UID]bool{}
		pw, err := utils.WatchPods(ctx, k8sClient, ns, func(all map[types.UID]*corev1alpha1.Pod) {
			mu.Lock()
			defer mu.Unlock()
			for uid, p := range all {
				ready := meta.FindStatusCondition(p.Status.Conditions, conditions.Ready)
				if _, ok := lostUIDs[uid]; ok && p.DeletionTimestamp == nil && ready != nil &&
					ready.Status == metav1.ConditionFalse && ready.Reason == corev1alpha1.ReasonNodeUnreachable {
					markedNotReady[uid] = true
				}
			}
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(pw.Stop()).To(Succeed()) })
		seenEndpoints := watchEndpoints(ns, "web")
		Expect(victim.Stop()).To(Succeed())

		By("the node goes Unknown and is tainted unreachable")
		Eventually(func(g Gomega) {
			n := &corev1alpha1.Node{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: lost}, n)).To(Succeed())
			g.Expect(meta.FindStatusCondition(n.Status.Conditions, conditions.Ready)).To(HaveField("Status", metav1.ConditionUnknown))
			g.Expect(n.Spec.Taints).To(ContainElement(HaveField("Key", corev1.TaintNodeUnreachable)))
		}).Should(Succeed())

		By("the pods come back on the other nodes, the StatefulSet's under their names")
		Eventually(func(g Gomega) {
			web := readyPodsOn(g, ns, "web")
			g.Expect(web).NotTo(HaveKey(lost))
			g.Expect(len(web[others.Names[0]]) + len(web[others.Names[1]])).To(Equal(3))
			db := readyPodsOn(g, ns, "db")
			g.Expect(db).NotTo(HaveKey(lost))
			var names []string
			for _, n := range db {
				names = append(names, n...)
			}
			sort.Strings(names)
			g.Expect(names).To(Equal([]string{"db-0", "db-1"}))
		}).Should(Succeed())
		for uid, name := range lostUIDs {
			p := &corev1alpha1.Pod{}
			err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, p)
			if !apierrors.IsNotFound(err) {
				Expect(err).NotTo(HaveOccurred())
				Expect(p.UID).NotTo(Equal(uid), "pod %s is still the lost one", name)
			}
		}

		By("the Service lists only the new pods; the lost ones were served not ready before they were evicted")
		Eventually(func(g Gomega) {
			eps := endpointsOf(g, ns, "web")
			g.Expect(eps).To(HaveLen(3))
			for _, e := range eps {
				g.Expect(e.Node).NotTo(Equal(lost))
				g.Expect(lostUIDs).NotTo(HaveKey(e.UID))
				g.Expect(e.Ready).To(BeTrue())
			}
		}).Should(Succeed())
		mu.Lock()
		for uid, name := range lostUIDs {
			Expect(markedNotReady).To(HaveKey(uid), "pod %s was never seen Ready=False/%s before its eviction", name, corev1alpha1.ReasonNodeUnreachable)
		}
		mu.Unlock()
		notReadyNotTerminating := 0
		for _, e := range seenEndpoints() {
			if _, ok := lostUIDs[e.UID]; ok && !e.Ready && !e.Serving && !e.Terminating {
				notReadyNotTerminating++
			}
		}
		Expect(notReadyNotTerminating).To(BeNumerically(">", 0), "no endpoint of a lost pod was seen not ready before the eviction: %+v", seenEndpoints())

		By("the node returns with what its runtime still holds: it is untainted and removes the lost pods' sandboxes")
		leftBehind := func(g Gomega) []string {
			sandboxes, err := victim.Runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{cri.LabelNodeName: lost}})
			g.Expect(err).NotTo(HaveOccurred())
			var left []string
			for _, s := range sandboxes {
				if name, ok := lostUIDs[types.UID(s.GetLabels()[cri.LabelPodUID])]; ok {
					left = append(left, fmt.Sprintf("%s (%s)", name, s.State))
				}
			}
			return left
		}
		Expect(leftBehind(Default)).To(HaveLen(len(lostUIDs)), "the crashed node's runtime still holds the lost pods")
		startNodes(utils.SimulatedNodesOptions{Names: []string{lost}, Runtime: victim.Runtime})
		Eventually(func(g Gomega) {
			n := &corev1alpha1.Node{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: lost}, n)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(n.Status.Conditions, conditions.Ready)).To(BeTrue())
			g.Expect(n.Spec.Taints).To(BeEmpty())
		}).Should(Succeed())
		By("the lost pods' sandboxes are removed")
		Eventually(leftBehind).Should(BeEmpty())
	})
})
