package nodeaccess_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
	"github.com/skiff-dev/skiff/agent/pods"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/nodeaccess"
	"github.com/skiff-dev/skiff/internal/nodeid"
	"github.com/skiff-dev/skiff/internal/scheme"
)

const (
	nodeA = "node-a"
	nodeB = "node-b"
	ns    = "tenant"
)

// refused asserts that err is a 403 whose message names the reason.
func refused(err error, reason string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the request was allowed")
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "not a 403: %v", err)
	Expect(err.Error()).To(ContainSubstring(reason))
}

func podUsing(name, nodeName, secret, configMap string) *corev1alpha1.Pod {
	return &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{
			Name: "app", Image: "example.com/app:1",
			Env: []corev1.EnvVar{
				{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "k"}}},
			},
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: configMap}}}},
		}}},
	}
}

var _ = Describe("Node identities", Ordered, func() {
	var (
		credsA, credsB *nodeid.Credentials
		asA, asB       client.Client
		podA, podB     *corev1alpha1.Pod
	)

	BeforeAll(func() {
		var err error
		credsA, err = nodeid.Issue(ctx, clientset, nodeA, nodeid.Options{Expiration: time.Hour})
		Expect(err).NotTo(HaveOccurred())
		credsB, err = nodeid.Issue(ctx, clientset, nodeB, nodeid.Options{})
		Expect(err).NotTo(HaveOccurred())
		asA, err = client.New(credsA.Config(cp.Config), client.Options{Scheme: scheme.New()})
		Expect(err).NotTo(HaveOccurred())
		asB, err = client.New(credsB.Config(cp.Config), client.Options{Scheme: scheme.New()})
		Expect(err).NotTo(HaveOccurred())

		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		for _, n := range []string{"a", "b"} {
			Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "secret-" + n}, StringData: map[string]string{"k": n}})).To(Succeed())
			Expect(k8sClient.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "config-" + n}, Data: map[string]string{"K": n}})).To(Succeed())
		}
		DeferCleanup(func() {
			_ = k8sClient.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			for _, n := range []string{nodeA, nodeB} {
				_ = k8sClient.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
			}
		})
	})

	It("are issued by the cluster signer as system:skiff-node:<name> in system:skiff-nodes", func() {
		block, _ := pem.Decode(credsA.CertPEM)
		Expect(block).NotTo(BeNil())
		cert, err := x509.ParseCertificate(block.Bytes)
		Expect(err).NotTo(HaveOccurred())
		Expect(cert.Subject.CommonName).To(Equal("system:skiff-node:node-a"))
		Expect(cert.Subject.Organization).To(Equal([]string{"system:skiff-nodes"}))
		Expect(cert.NotAfter).To(BeTemporally("<=", time.Now().Add(time.Hour+time.Minute)), "the requested expiration")

		cs, err := kubernetes.NewForConfig(credsA.Config(cp.Config))
		Expect(err).NotTo(HaveOccurred())
		review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(review.Status.UserInfo.Username).To(Equal("system:skiff-node:node-a"))
		Expect(review.Status.UserInfo.Groups).To(ContainElement("system:skiff-nodes"))

		csrs, err := clientset.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(csrs.Items).To(BeEmpty(), "the requests are removed once the certificates are read")
	})

	It("let node B register its own Node and Lease", func() {
		Expect(node.EnsureLeaseNamespace(ctx, asB)).To(Succeed(), "a node may create the node lease namespace")
		Expect(asB.Create(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeB, Labels: map[string]string{"team": "b"}}})).To(Succeed())
		Expect(asB.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: node.LeaseNamespace, Name: nodeB},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(nodeB), LeaseDurationSeconds: ptr.To[int32](40)},
		})).To(Succeed())
		podB = podUsing("web-b", nodeB, "secret-b", "config-b")
		Expect(k8sClient.Create(ctx, podB)).To(Succeed())
	})

	It("run node A's agent with only its identity: Node, Lease, a pod reading its Secret and ConfigMap, finalizer and events", func() {
		res := node.Resources{CPU: resource.MustParse("4"), Memory: resource.MustParse("8Gi"), EphemeralStorage: resource.MustParse("100Gi")}
		actx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		ready := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			done <- agent.Run(actx, agent.Options{
				Config:        credsA.Config(cp.Config),
				Nodes:         []agent.NodeSpec{{Name: nodeA, Machine: node.SimulatedMachine(nodeA, 0, res)}},
				Runtime:       fake.New(fake.Options{StartDelay: 50 * time.Millisecond}),
				UseFinalizer:  true,
				Events:        true,
				LeaseInterval: time.Second,
				Ready:         ready,
			})
		}()
		DeferCleanup(func() {
			stop()
			Eventually(done).WithTimeout(30 * time.Second).Should(Receive(Not(HaveOccurred())))
		})
		Eventually(ready).WithTimeout(30 * time.Second).Should(BeClosed())
		// Bound while the agent runs: it may ask for the Secret before the
		// node-access controller has granted it, and must get there.
		podA = podUsing("web-a", nodeA, "secret-a", "config-a")
		Expect(k8sClient.Create(ctx, podA)).To(Succeed())

		Eventually(func(g Gomega) {
			n := &corev1alpha1.Node{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: nodeA}, n)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(n.Status.Conditions, conditions.Ready)).To(BeTrue())
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: node.LeaseNamespace, Name: nodeA}, &coordinationv1.Lease{})).To(Succeed())
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			got := &corev1alpha1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(podA), got)).To(Succeed())
			g.Expect(got.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(got.Finalizers).To(ContainElement(pods.Finalizer))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			events := &corev1.EventList{}
			g.Expect(k8sClient.List(ctx, events, client.InNamespace(ns))).To(Succeed())
			g.Expect(events.Items).To(ContainElement(HaveField("InvolvedObject.Name", "web-a")))
		}).Should(Succeed())

		By("keeping one Role per node and namespace naming exactly its pods' Secrets and ConfigMaps")
		role := &rbacv1.Role{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: nodeaccess.ObjectName(nodeA)}, role)).To(Succeed())
		Expect(role.Rules).To(ConsistOf(
			HaveField("ResourceNames", []string{"secret-a"}),
			HaveField("ResourceNames", []string{"config-a"}),
		))

		By("refusing node A what belongs to node B")
		refused(asA.Get(ctx, client.ObjectKey{Namespace: ns, Name: "secret-b"}, &corev1.Secret{}), `cannot get resource "secrets"`)
		refused(asA.Get(ctx, client.ObjectKey{Namespace: ns, Name: "config-b"}, &corev1.ConfigMap{}), `cannot get resource "configmaps"`)
		refused(asA.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)), `cannot list resource "secrets"`)

		nodeBObj := &corev1alpha1.Node{}
		Expect(asA.Get(ctx, client.ObjectKey{Name: nodeB}, nodeBObj)).To(Succeed(), "nodes may read Nodes")
		patched := nodeBObj.DeepCopy()
		patched.Labels["team"] = "a"
		refused(asA.Patch(ctx, patched, client.MergeFrom(nodeBObj)), `node "node-a" is not allowed to modify node "node-b"`)
		patched = nodeBObj.DeepCopy()
		patched.Status.Conditions = append(patched.Status.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionFalse, Reason: "Hijacked", LastTransitionTime: metav1.Now()})
		refused(asA.Status().Patch(ctx, patched, client.MergeFrom(nodeBObj)), `node "node-a" is not allowed to modify node "node-b"`)
		refused(asA.Create(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-c"}}), `node "node-a" is not allowed to modify node "node-c"`)
		refused(asA.Delete(ctx, nodeBObj), `cannot delete resource "nodes"`)

		leaseB := &coordinationv1.Lease{}
		Expect(asA.Get(ctx, client.ObjectKey{Namespace: node.LeaseNamespace, Name: nodeB}, leaseB)).To(Succeed())
		leaseB.Spec.HolderIdentity = ptr.To(nodeA)
		refused(asA.Update(ctx, leaseB), `node "node-a" can only access the node lease with its own name, not "node-b"`)
		refused(asA.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: nodeA}}), `can only access leases in the "skiff-node-lease" namespace`)

		gotB := &corev1alpha1.Pod{}
		Expect(asA.Get(ctx, client.ObjectKeyFromObject(podB), gotB)).To(Succeed())
		withStatus := gotB.DeepCopy()
		withStatus.Status.Phase = corev1.PodFailed
		refused(asA.Status().Patch(ctx, withStatus, client.MergeFrom(gotB)),
			`node "node-a" can only update pod status for pods with spec.nodeName set to itself; pod tenant/web-b is bound to "node-b"`)
		withFinalizer := gotB.DeepCopy()
		withFinalizer.Finalizers = append(withFinalizer.Finalizers, pods.Finalizer)
		refused(asA.Patch(ctx, withFinalizer, client.MergeFrom(gotB)), `node "node-a" can only update pods with spec.nodeName set to itself`)
		refused(asA.Delete(ctx, gotB), `cannot delete resource "pods"`)
		refused(asA.Create(ctx, podUsing("sneaky", nodeA, "secret-b", "config-b")), `cannot create resource "pods"`)

		By("refusing node A changes to its own objects that upstream's NodeRestriction refuses")
		ownNode := &corev1alpha1.Node{}
		Expect(asA.Get(ctx, client.ObjectKey{Name: nodeA}, ownNode)).To(Succeed())
		tainted := ownNode.DeepCopy()
		tainted.Spec.Taints = append(tainted.Spec.Taints, corev1.Taint{Key: "example.com/mine", Effect: corev1.TaintEffectNoSchedule})
		refused(asA.Patch(ctx, tainted, client.MergeFrom(ownNode)), `node "node-a" is not allowed to modify taints`)
		relabeled := ownNode.DeepCopy()
		relabeled.Labels["node-restriction.kubernetes.io/secure"] = "true"
		refused(asA.Patch(ctx, relabeled, client.MergeFrom(ownNode)), `node "node-a" is not allowed to modify labels: node-restriction.kubernetes.io/secure`)
		ownPod := &corev1alpha1.Pod{}
		Expect(asA.Get(ctx, client.ObjectKeyFromObject(podA), ownPod)).To(Succeed())
		labeled := ownPod.DeepCopy()
		labeled.Labels = map[string]string{"app": "other"}
		refused(asA.Patch(ctx, labeled, client.MergeFrom(ownPod)), `may only add or remove the core.skiff.dev/agent finalizer of pod tenant/web-a`)
		respecced := ownPod.DeepCopy()
		respecced.Spec.ActiveDeadlineSeconds = ptr.To[int64](5)
		refused(asA.Patch(ctx, respecced, client.MergeFrom(ownPod)), `node "node-a" is not allowed to change the spec of pod tenant/web-a`)
		refused(asA.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "node-a-ns"}}), `may only create the namespace skiff-node-lease`)

		By("allowing node B what is its own, and refusing it node A's Secret")
		Eventually(func() error {
			return asB.Get(ctx, client.ObjectKey{Namespace: ns, Name: "secret-b"}, &corev1.Secret{})
		}).Should(Succeed())
		Expect(asB.Get(ctx, client.ObjectKey{Namespace: ns, Name: "config-b"}, &corev1.ConfigMap{})).To(Succeed())
		refused(asB.Get(ctx, client.ObjectKey{Namespace: ns, Name: "secret-a"}, &corev1.Secret{}), `cannot get resource "secrets"`)
		Expect(asB.Get(ctx, client.ObjectKeyFromObject(podB), gotB)).To(Succeed())
		withStatus = gotB.DeepCopy()
		withStatus.Status.Message = "seen by node-b"
		Expect(asB.Status().Patch(ctx, withStatus, client.MergeFrom(gotB))).To(Succeed())

		By("taking node A's access away once its pod is gone")
		Expect(k8sClient.Delete(ctx, podA)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(podA), &corev1alpha1.Pod{}))
		}).WithTimeout(30*time.Second).Should(BeTrue(), "node A's agent removes its finalizer")
		Eventually(func() bool {
			return apierrors.IsForbidden(asA.Get(ctx, client.ObjectKey{Namespace: ns, Name: "secret-a"}, &corev1.Secret{}))
		}).Should(BeTrue())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: nodeaccess.ObjectName(nodeA)}, &rbacv1.RoleBinding{}))
		}).Should(BeTrue())
	})
})
