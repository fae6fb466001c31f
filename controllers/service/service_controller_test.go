package service

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

const (
	wait = 15 * time.Second
	poll = 100 * time.Millisecond
)

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "svc-" + rand.String(6)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func newService(ns, name string, mutate func(*corev1alpha1.Service)) *corev1alpha1.Service {
	svc := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	svc.Spec.Selector = map[string]string{"app": name}
	svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}}
	if mutate != nil {
		mutate(svc)
	}
	Expect(k8sClient.Create(ctx, svc)).To(Succeed())
	return svc
}

func readyService(svc *corev1alpha1.Service) *corev1alpha1.Service {
	GinkgoHelper()
	got := &corev1alpha1.Service{}
	Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(svc), got)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, conditions.Ready)).To(BeTrue(), "%v", got.Status.Conditions)
	}, wait, poll).Should(Succeed())
	return got
}

func claimOf(ip string) *networkingv1.IPAddress {
	c := &networkingv1.IPAddress{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: ip}, c); err != nil {
		return nil
	}
	return c
}

var _ = Describe("Service allocation", func() {
	It("gives a ClusterIP from the range, claimed by an IPAddress", func() {
		ns := newNamespace()
		svc := readyService(newService(ns, "web", nil))
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		Expect(err).NotTo(HaveOccurred())
		Expect(testRange.ServiceCIDR.Contains(ip)).To(BeTrue())
		Expect(svc.Spec.ClusterIPs).To(Equal([]string{svc.Spec.ClusterIP}))
		Expect(svc.Finalizers).To(ContainElement(AllocationFinalizer))
		claim := claimOf(svc.Spec.ClusterIP)
		Expect(claim).NotTo(BeNil())
		Expect(claim.Spec.ParentRef.Name).To(Equal("web"))
		Expect(claim.Spec.ParentRef.Group).To(Equal("core.skiff.dev"))
	})

	It("honours a requested ClusterIP and refuses it to a second Service", func() {
		ns := newNamespace()
		first := readyService(newService(ns, "first", func(s *corev1alpha1.Service) { s.Spec.ClusterIP = "10.112.0.10" }))
		Expect(first.Spec.ClusterIP).To(Equal("10.112.0.10"))
		second := newService(ns, "second", func(s *corev1alpha1.Service) { s.Spec.ClusterIP = "10.112.0.10" })
		Eventually(func(g Gomega) {
			got := &corev1alpha1.Service{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(second), got)).To(Succeed())
			c := meta.FindStatusCondition(got.Status.Conditions, conditions.Ready)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Message).To(ContainSubstring("clusterIP 10.112.0.10 is already allocated"))
		}, wait, poll).Should(Succeed())
		Expect(claimOf("10.112.0.10").Spec.ParentRef.Name).To(Equal("first"))
	})

	It("refuses a requested ClusterIP outside the range", func() {
		ns := newNamespace()
		svc := newService(ns, "outside", func(s *corev1alpha1.Service) { s.Spec.ClusterIP = "192.0.2.10" })
		Eventually(func() string {
			got := &corev1alpha1.Service{}
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(svc), got)).To(Succeed())
			if c := meta.FindStatusCondition(got.Status.Conditions, conditions.Ready); c != nil {
				return c.Message
			}
			return ""
		}, wait, poll).Should(ContainSubstring("is not in the range 10.112.0.0/16"))
	})

	It("gives 200 Services created at once 200 distinct ClusterIPs", func() {
		const n = 200
		ns := newNamespace()
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer GinkgoRecover()
				newService(ns, fmt.Sprintf("c%d", i), nil)
			}()
		}
		wg.Wait()
		Eventually(func(g Gomega) {
			list := &corev1alpha1.ServiceList{}
			g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			g.Expect(list.Items).To(HaveLen(n))
			seen := map[string]string{}
			for _, svc := range list.Items {
				g.Expect(meta.IsStatusConditionTrue(svc.Status.Conditions, conditions.Ready)).To(BeTrue(), "%s: %v", svc.Name, svc.Status.Conditions)
				Expect(seen).NotTo(HaveKey(svc.Spec.ClusterIP), "ClusterIP %s given to %s and %s", svc.Spec.ClusterIP, seen[svc.Spec.ClusterIP], svc.Name)
				seen[svc.Spec.ClusterIP] = svc.Name
				claim := claimOf(svc.Spec.ClusterIP)
				g.Expect(claim).NotTo(BeNil(), "no claim for %s", svc.Spec.ClusterIP)
				g.Expect(claim.Spec.ParentRef).NotTo(BeNil())
				Expect(claim.Spec.ParentRef.Name).To(Equal(svc.Name), "the claim of %s names another Service", svc.Spec.ClusterIP)
			}
		}, 3*time.Minute, time.Second).Should(Succeed())
	})

	It("never gives one address twice from two allocators racing over a small range", func() {
		small, err := ParseRange("10.113.0.0/27", "30000-30010") // 30 addresses
		Expect(err).NotTo(HaveOccurred())
		a1, a2 := NewAllocator(k8sClient, k8sClient, small), NewAllocator(k8sClient, k8sClient, small)
		ns := newNamespace()
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer GinkgoRecover()
				svc := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("race-%d", i)}}
				alloc := a1
				if i%2 == 1 {
					alloc = a2
				}
				ip, err := alloc.ClaimClusterIP(ctx, svc, "")
				Expect(err).NotTo(HaveOccurred())
				mu.Lock()
				got[ip]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		Expect(got).To(HaveLen(30))
		_, err = a1.ClaimClusterIP(ctx, &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "one-too-many"}}, "")
		Expect(err).To(MatchError(ErrFull{Range: "10.113.0.0/27"}))
	})

	It("gives NodePorts from the range and releases them when the type changes", func() {
		ns := newNamespace()
		svc := readyService(newService(ns, "np", func(s *corev1alpha1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 81, NodePort: 31234}}
		}))
		Expect(svc.Spec.Ports[0].NodePort).To(BeNumerically(">=", 30000))
		Expect(svc.Spec.Ports[0].NodePort).To(BeNumerically("<=", 32767))
		Expect(svc.Spec.Ports[1].NodePort).To(BeEquivalentTo(31234))
		lease := &coordinationv1.Lease{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: SystemNamespace, Name: "nodeport-31234"}, lease)).To(Succeed())
		Expect(*lease.Spec.HolderIdentity).To(Equal(ns + "/np"))

		other := newService(ns, "np2", func(s *corev1alpha1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports = []corev1.ServicePort{{Port: 80, NodePort: 31234}}
		})
		Eventually(func() string {
			got := &corev1alpha1.Service{}
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(other), got)).To(Succeed())
			if c := meta.FindStatusCondition(got.Status.Conditions, conditions.Ready); c != nil {
				return c.Message
			}
			return ""
		}, wait, poll).Should(ContainSubstring("nodePort 31234 is already allocated"))

		patch := client.MergeFrom(svc.DeepCopy())
		svc.Spec.Type = corev1.ServiceTypeClusterIP
		Expect(k8sClient.Patch(ctx, svc, patch)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: SystemNamespace, Name: "nodeport-31234"}, &coordinationv1.Lease{}))
		}, wait, poll).Should(BeTrue())
		got := &corev1alpha1.Service{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(svc), got)).To(Succeed())
		Expect(got.Spec.Ports[1].NodePort).To(BeZero())
	})

	It("allocates nothing to a headless Service", func() {
		ns := newNamespace()
		svc := readyService(newService(ns, "headless", func(s *corev1alpha1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }))
		Expect(svc.Spec.ClusterIP).To(Equal(corev1.ClusterIPNone))
	})

	It("releases the claims of a deleted Service", func() {
		ns := newNamespace()
		svc := readyService(newService(ns, "gone", func(s *corev1alpha1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports = []corev1.ServicePort{{Port: 80, NodePort: 31999}}
		}))
		ip := svc.Spec.ClusterIP
		Expect(k8sClient.Delete(ctx, svc)).To(Succeed())
		Eventually(func() bool { return claimOf(ip) == nil }, wait, poll).Should(BeTrue())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: SystemNamespace, Name: "nodeport-31999"}, &coordinationv1.Lease{}))
		}, wait, poll).Should(BeTrue())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(svc), &corev1alpha1.Service{}))
		}, wait, poll).Should(BeTrue())
	})

	It("repairs leaked claims and restores missing ones", func() {
		leaked := &networkingv1.IPAddress{
			ObjectMeta: metav1.ObjectMeta{Name: "10.112.200.1", Labels: map[string]string{LabelManagedBy: ManagedBy}},
			Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{
				Group: "core.skiff.dev", Resource: "services", Namespace: "nowhere", Name: "nothing"}},
		}
		Expect(k8sClient.Create(ctx, leaked)).To(Succeed())
		Eventually(func() bool { return claimOf("10.112.200.1") == nil }, wait, poll).Should(BeTrue(), "the leaked claim was not removed")

		ns := newNamespace()
		svc := readyService(newService(ns, "restored", nil))
		Expect(k8sClient.Delete(ctx, claimOf(svc.Spec.ClusterIP))).To(Succeed())
		Eventually(func() *networkingv1.IPAddress { return claimOf(svc.Spec.ClusterIP) }, wait, poll).ShouldNot(BeNil(), "the missing claim was not restored")
	})
})
