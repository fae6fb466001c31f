package cli_test

import (
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
	"github.com/skiff-dev/skiff/internal/scheme"
	testutils "github.com/skiff-dev/skiff/test/utils"
)

// The drain specs run serially after the rest: they cordon nodes.
var _ = Describe("kubectl skiff drain with PodDisruptionBudgets", Ordered, func() {
	BeforeEach(func() {
		for _, n := range simNodes {
			mustSkiff("uncordon", n)
		}
		DeferCleanup(func() {
			for _, n := range simNodes {
				mustSkiff("uncordon", n)
			}
		})
	})

	// deployOn runs a Deployment of replicas pods, all on node, and a
	// budget over them once they are ready.
	deployOn := func(ns, node, app string, replicas int32, pdbSpec func(*policyv1alpha1.PodDisruptionBudget)) *policyv1alpha1.PodDisruptionBudget {
		for _, n := range simNodes {
			if n != node {
				mustSkiff("cordon", n)
			}
		}
		d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns}}
		d.Spec.Replicas = ptr.To(replicas)
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
		d.Spec.Template = podTemplate(app, "skiff.local/"+app+":v1")
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		mustSkiff("rollout", "status", "deployment/"+app, "-n", ns, "--timeout", "60s")
		pdb := &policyv1alpha1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns}}
		pdb.Spec.Selector = d.Spec.Selector
		pdbSpec(pdb)
		Expect(k8sClient.Create(ctx, pdb)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pdb), pdb)).To(Succeed())
			g.Expect(pdb.Status.ObservedGeneration).To(Equal(pdb.Generation))
			g.Expect(pdb.Status.CurrentHealthy).To(Equal(replicas))
		}, 30*time.Second).Should(Succeed())
		for _, n := range simNodes {
			mustSkiff("uncordon", n)
		}
		return pdb
	}

	It("evicts one pod at a time under maxUnavailable 1: never fewer than desiredHealthy ready pods, 429s retried", func() {
		ns := newNamespace()
		target := simNodes[0]
		deployOn(ns, target, "web", 3, func(p *policyv1alpha1.PodDisruptionBudget) {
			p.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
		})

		// The invariant, at every pod event: at least 2 of the 3 pods are
		// ready and not being deleted.
		wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: scheme.New()})
		Expect(err).NotTo(HaveOccurred())
		var mu sync.Mutex
		fewest := 3
		// Each pod's DisruptionTarget condition when it was first seen
		// being deleted: the eviction marks it before the delete.
		marked := map[types.UID]*metav1.Condition{}
		pw, err := testutils.WatchPods(ctx, wc, ns, func(pods map[types.UID]*corev1alpha1.Pod) {
			mu.Lock()
			defer mu.Unlock()
			healthy := 0
			for uid, p := range pods {
				if podutil.IsReady(p) && p.DeletionTimestamp == nil {
					healthy++
				}
				if _, seen := marked[uid]; !seen && p.DeletionTimestamp != nil {
					marked[uid] = meta.FindStatusCondition(p.Status.Conditions, string(corev1.DisruptionTarget))
				}
			}
			fewest = min(fewest, healthy)
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(pw.Stop)

		// The other node stays cordoned at first, so the first evicted pod's
		// replacement cannot run and the budget stays spent: the two other
		// pods must wait, through 429s, until the node takes pods again.
		other := simNodes[1]
		mustSkiff("cordon", other)
		var out string
		var drainErr error
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			out, drainErr = skiff("drain", target, "--pod-selector", "app=web", "--timeout", "90s")
		}()
		going := func() int {
			var pods corev1alpha1.PodList
			Expect(k8sClient.List(ctx, &pods, client.InNamespace(ns), client.MatchingFields{"spec.nodeName": target})).To(Succeed())
			n := 3 - len(pods.Items)
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					n++
				}
			}
			return n
		}
		Eventually(going, 30*time.Second).Should(Equal(1))
		Consistently(going, 7*time.Second, 200*time.Millisecond).Should(Equal(1), "a pod was evicted while the budget allowed none")
		mustSkiff("uncordon", other)
		Eventually(done, 60*time.Second).Should(BeClosed())
		Expect(drainErr).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("Cannot evict pod as it would violate the pod's disruption budget."))
		Expect(out).To(MatchRegexp(`error when evicting pods/"web-[a-z0-9-]+" -n "` + ns + `" \(will retry after 5s\)`))
		// Pods that other specs left on the node match the selector too (it
		// spans namespaces, as kubectl's does): count this namespace's
		// evictions, and that every eviction started ended.
		Expect(strings.Count(out, "evicting pod "+ns+"/")).To(Equal(3), out)
		Expect(strings.Count(out, "evicted\n")).To(Equal(strings.Count(out, "evicting pod ")), out)
		Expect(out).To(HaveSuffix("node/" + target + " drained\n"))
		mu.Lock()
		Expect(fewest).To(Equal(2), "ready pods fell below the budget's desiredHealthy during the drain")
		Expect(marked).To(HaveLen(3))
		for uid, c := range marked {
			Expect(c).NotTo(BeNil(), "pod %s was deleted without DisruptionTarget", uid)
			Expect(c.Status).To(Equal(metav1.ConditionTrue))
			Expect(c.Reason).To(Equal("EvictionByEvictionAPI"))
			Expect(c.Message).To(Equal("Eviction API: evicting"))
		}
		mu.Unlock()
		Expect(pw.Events()).To(BeNumerically(">", 3))
		var pods corev1alpha1.PodList
		Expect(k8sClient.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				Expect(p.Spec.NodeName).NotTo(Equal(target))
			}
		}
	})

	It("gives up at --timeout while the budget allows nothing, and --disable-eviction deletes anyway", func() {
		ns := newNamespace()
		target := simNodes[1]
		deployOn(ns, target, "db", 2, func(p *policyv1alpha1.PodDisruptionBudget) {
			p.Spec.MinAvailable = ptr.To(intstr.FromString("100%"))
		})
		out, err := skiff("drain", target, "--pod-selector", "app=db", "--timeout", "7s")
		Expect(err).To(MatchError(And(ContainSubstring("global timeout reached"),
			ContainSubstring("The disruption budget db needs 2 healthy pods and has 2 currently"))), out)
		Expect(out).To(ContainSubstring("Cannot evict pod as it would violate the pod's disruption budget."))
		var pods corev1alpha1.PodList
		Expect(k8sClient.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
		Expect(pods.Items).To(HaveLen(2))
		for _, p := range pods.Items {
			Expect(p.DeletionTimestamp).To(BeNil(), "pod %s was evicted against its budget", p.Name)
		}

		out = mustSkiff("drain", target, "--pod-selector", "app=db", "--disable-eviction", "--timeout", "60s")
		Expect(strings.Count(out, "deleting pod "+ns+"/db-")).To(Equal(2), out)
		Expect(out).To(HaveSuffix("node/" + target + " drained\n"))
	})

	It("refuses to evict a pod that two budgets select", func() {
		ns := newNamespace()
		target := simNodes[0]
		deployOn(ns, target, "api", 1, func(p *policyv1alpha1.PodDisruptionBudget) {
			p.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
		})
		second := &policyv1alpha1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "api-2", Namespace: ns}}
		second.Spec.Selector = &metav1.LabelSelector{}
		Expect(k8sClient.Create(ctx, second)).To(Succeed())
		out, err := skiff("drain", target, "--pod-selector", "app=api", "--timeout", "30s")
		Expect(err).To(MatchError(ContainSubstring("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")), out)
	})
})
