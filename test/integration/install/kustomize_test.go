package install_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/knftables"
	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
	"github.com/skiff-dev/skiff/agent/pods"
	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/config"
	"github.com/skiff-dev/skiff/controllers/proxy"
)

// agentUser is the user name of the agent's ServiceAccount in config/rbac,
// which RBAC matches against the binding's ServiceAccount subject.
const agentUser = "system:serviceaccount:skiff-system:skiff-agent"

// crdNames are the names of skiff's generated CRDs.
func crdNames() []string {
	crds, err := config.CRDs()
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, c := range crds {
		out = append(out, c.Name)
	}
	return out
}

// fileRules reads the rules of the ClusterRole in a file of config/rbac.
func fileRules(name string) []rbacv1.PolicyRule {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", name))
	Expect(err).NotTo(HaveOccurred())
	role := &rbacv1.ClusterRole{}
	Expect(yaml.UnmarshalStrict(raw, role)).To(Succeed())
	Expect(role.Rules).NotTo(BeEmpty())
	return role.Rules
}

// rulesOf converts the rules of a rendered ClusterRole.
func rulesOf(o interface{ UnstructuredContent() map[string]any }) []rbacv1.PolicyRule {
	role := &rbacv1.ClusterRole{}
	Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.UnstructuredContent(), role)).To(Succeed())
	return role.Rules
}

// waitCRDsGone waits until no skiff CRD is left, so that the next install
// does not meet a terminating one.
// kube-apiserver can take minutes: its CRD finalizer backs off
// exponentially while the custom resources' storage is (re)initializing
// ("InstanceDeletionFailed ... storage is (re)initializing", seen in
// operator-controller's e2e too, which waits 5 minutes). A CRD that stays
// is described: its finalizers, its Terminating condition and the
// instances it still has, with theirs.
func waitCRDsGone() {
	Eventually(func(g Gomega) {
		list := &apiextensionsv1.CustomResourceDefinitionList{}
		g.Expect(k8sClient.List(ctx, list)).To(Succeed())
		var left []string
		for i := range list.Items {
			if c := &list.Items[i]; strings.HasSuffix(c.Spec.Group, "skiff.dev") {
				left = append(left, describeCRD(c))
			}
		}
		g.Expect(left).To(BeEmpty())
	}).WithTimeout(5 * time.Minute).WithPolling(time.Second).Should(Succeed())
}

// describeCRD says why a CRD is still there.
func describeCRD(c *apiextensionsv1.CustomResourceDefinition) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (deletionTimestamp %v, finalizers %v)", c.Name, c.DeletionTimestamp, c.Finalizers)
	for _, cond := range c.Status.Conditions {
		if cond.Type == apiextensionsv1.Terminating {
			fmt.Fprintf(&b, " Terminating=%s %s: %s", cond.Status, cond.Reason, cond.Message)
		}
	}
	for _, v := range c.Spec.Versions {
		if !v.Storage {
			continue
		}
		items := &unstructured.UnstructuredList{}
		items.SetGroupVersionKind(schema.GroupVersionKind{Group: c.Spec.Group, Version: v.Name, Kind: c.Spec.Names.ListKind})
		if err := k8sClient.List(ctx, items); err != nil {
			fmt.Fprintf(&b, "; listing instances: %v", err)
			continue
		}
		for _, o := range items.Items {
			fmt.Fprintf(&b, "; instance %s/%s (deletionTimestamp %v, finalizers %v)", o.GetNamespace(), o.GetName(), o.GetDeletionTimestamp(), o.GetFinalizers())
		}
	}
	return b.String()
}

var _ = Describe("config/default with kustomize", Ordered, func() {
	var objs []*unstructured.Unstructured

	BeforeAll(func() {
		out, err := run(cp.KubectlPath, "kustomize", "config/default")
		Expect(err).NotTo(HaveOccurred())
		objs = decodeAll(out)
	})

	It("builds every CRD, RBAC per binary, the manager Deployment and the agent DaemonSet", func() {
		Expect(names(objs, "CustomResourceDefinition")).To(ConsistOf(crdNames()))
		Expect(names(objs, "ClusterRole")).To(ConsistOf("skiff-manager", "skiff-agent", "skiff-agent-serviceaccount"))
		Expect(names(objs, "ClusterRoleBinding")).To(ConsistOf("skiff-manager", "skiff-agent", "skiff-nodes", "skiff-agent-serviceaccount"))
		restriction, err := config.NodeRestriction()
		Expect(err).NotTo(HaveOccurred())
		vap := &admissionregistrationv1.ValidatingAdmissionPolicy{}
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(find(objs, "ValidatingAdmissionPolicy", "skiff-node-restriction").Object, vap)).To(Succeed())
		Expect(vap.Spec).To(Equal(restriction.Policy.Spec))
		Expect(find(objs, "ValidatingAdmissionPolicyBinding", "skiff-node-restriction")).NotTo(BeNil())
		Expect(names(objs, "ServiceAccount")).To(ConsistOf("skiff-controller-manager", "skiff-agent"))
		Expect(rulesOf(find(objs, "ClusterRole", "skiff-manager"))).To(Equal(fileRules("role.yaml")))
		Expect(rulesOf(find(objs, "ClusterRole", "skiff-agent"))).To(Equal(fileRules("agent/role.yaml")))
		deploy := find(objs, "Deployment", "skiff-controller-manager")
		Expect(deploy).NotTo(BeNil())
		Expect(deploy.GetNamespace()).To(Equal("skiff-system"))
		args := containerArgs(deploy)
		Expect(args).To(ContainElements("--leader-elect", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"))
		ds := find(objs, "DaemonSet", "skiff-agent")
		Expect(ds).NotTo(BeNil())
		args = containerArgs(ds)
		Expect(args).To(ContainElement("--cri-endpoint=unix:///run/containerd/containerd.sock"))
	})

	It("builds the samples", func() {
		out, err := run(cp.KubectlPath, "kustomize", "config/samples")
		Expect(err).NotTo(HaveOccurred())
		files, err := filepath.Glob(filepath.Join(repoRoot, "config", "samples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(decodeAll(out)).To(HaveLen(len(files) - 1)) // all but kustomization.yaml; subdirectories are examples of their own
	})

	It("applies to the API server with kubectl apply -k", func() {
		_, err := run(cp.KubectlPath, "--kubeconfig", cp.KubeconfigPath, "apply", "-k", "config/default")
		Expect(err).NotTo(HaveOccurred())
		for _, name := range crdNames() {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			Eventually(func(g Gomega) {
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, crd)).To(Succeed())
				established := false
				for _, c := range crd.Status.Conditions {
					established = established || (c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue)
				}
				g.Expect(established).To(BeTrue(), name)
			}).Should(Succeed())
		}
	})

	It("lets the agent do its work with only its ClusterRole, and nothing more", func() {
		restricted, err := cp.AddUser(agentUser)
		Expect(err).NotTo(HaveOccurred())
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "agent-rbac"}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, ns) })
		Expect(k8sClient.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "cfg"}, Data: map[string]string{"k": "v"}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "sec"}, StringData: map[string]string{"k": "v"}})).To(Succeed())

		const nodeName = "rbac-node"
		res := node.Resources{CPU: resource.MustParse("4"), Memory: resource.MustParse("8Gi"), EphemeralStorage: resource.MustParse("100Gi")}
		actx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		ready := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			done <- agent.Run(actx, agent.Options{
				Config:        restricted,
				Nodes:         []agent.NodeSpec{{Name: nodeName, Machine: node.SimulatedMachine(nodeName, 0, res)}},
				Runtime:       fake.New(fake.Options{StartDelay: 100 * time.Millisecond}),
				UseFinalizer:  true,
				Events:        true,
				LeaseInterval: time.Second,
				Ready:         ready,
			})
		}()
		DeferCleanup(func() {
			stop()
			Eventually(done).WithTimeout(30 * time.Second).Should(Receive(Not(HaveOccurred())))
			_ = k8sClient.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}})
		})
		Eventually(ready).WithTimeout(30 * time.Second).Should(BeClosed())

		By("registering the Node, posting its status and renewing its Lease")
		Eventually(func(g Gomega) {
			n := &corev1alpha1.Node{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: nodeName}, n)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(n.Status.Conditions, conditions.Ready)).To(BeTrue())
		}).Should(Succeed())
		lease := &coordinationv1.Lease{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: node.LeaseNamespace, Name: nodeName}, lease)).To(Succeed())
		first := lease.Spec.RenewTime.Time
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: node.LeaseNamespace, Name: nodeName}, lease)).To(Succeed())
			g.Expect(lease.Spec.RenewTime.Time).To(BeTemporally(">", first))
		}).WithTimeout(20 * time.Second).Should(Succeed())

		By("running a bound pod that reads a ConfigMap and a Secret, with the finalizer and events")
		pod := &corev1alpha1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "web"},
			Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{
				Name: "app", Image: "example.com/app:1",
				Env: []corev1.EnvVar{
					{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "k"}}},
					{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "k"}}},
				},
			}}},
		}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		Eventually(func(g Gomega) {
			got := &corev1alpha1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), got)).To(Succeed())
			g.Expect(got.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, conditions.Ready)).To(BeTrue())
			g.Expect(got.Finalizers).To(ContainElement(pods.Finalizer))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			events := &corev1.EventList{}
			g.Expect(k8sClient.List(ctx, events, client.InNamespace(ns.Name))).To(Succeed())
			g.Expect(events.Items).To(ContainElement(HaveField("InvolvedObject.Name", "web")))
		}).Should(Succeed())
		Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1alpha1.Pod{}))
		}).WithTimeout(30*time.Second).Should(BeTrue(), "the agent removes its finalizer")

		By("following Services and EndpointSlices for the proxy")
		c, err := cache.New(restricted, cache.Options{Scheme: testScheme})
		Expect(err).NotTo(HaveOccurred())
		cctx, cstop := context.WithCancel(ctx)
		defer cstop()
		go func() { _ = c.Start(cctx) }()
		Expect(c.WaitForCacheSync(cctx)).To(BeTrue())
		p := proxy.New(knftables.NewFake(knftables.IPv4Family, proxy.TableName), c, proxy.Config{NodeName: nodeName})
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		defer scancel()
		Expect(p.Sync(sctx)).To(Succeed())

		By("reviewing the tokens and access of callers of the agent API")
		rc, err := client.New(restricted, client.Options{Scheme: testScheme})
		Expect(err).NotTo(HaveOccurred())
		Expect(rc.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "not-a-token"}})).To(Succeed())
		Expect(rc.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "alice", ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "core.skiff.dev", Resource: "pods", Subresource: "exec", Verb: "create", Namespace: ns.Name, Name: "web"},
		}})).To(Succeed())

		By("being refused what the agent does not need")
		Expect(apierrors.IsForbidden(rc.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "x"}}))).To(BeTrue(), "create secrets")
		Expect(apierrors.IsForbidden(rc.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName}}))).To(BeTrue(), "delete nodes")
		Expect(apierrors.IsForbidden(rc.Create(ctx, &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "x"}, Spec: pod.Spec}))).To(BeTrue(), "create pods")
		Expect(apierrors.IsForbidden(rc.List(ctx, &appsv1alpha1.DeploymentList{}))).To(BeTrue(), "list deployments")
	})

	It("is removed with kubectl delete -k", func() {
		_, err := run(cp.KubectlPath, "--kubeconfig", cp.KubeconfigPath, "delete", "-k", "config/default", "--wait=false")
		Expect(err).NotTo(HaveOccurred())
		waitCRDsGone()
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: "skiff-agent"}, &rbacv1.ClusterRole{}))).To(BeTrue())
	})
})
