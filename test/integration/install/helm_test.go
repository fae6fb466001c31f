package install_test

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/config"
)

const (
	chartDir         = "config/helm/skiff"
	releaseName      = "skiff"
	releaseNamespace = "skiff-helm"
)

// helmBinary returns the pinned helm: $SKIFF_HELM (make test sets it), or
// the one `make helm` builds into bin/. It skips the specs when helm cannot
// be built (no Go module proxy).
func helmBinary() string {
	if h := os.Getenv("SKIFF_HELM"); h != "" {
		return h
	}
	if _, err := run("make", "-s", "helm"); err != nil {
		Skip("helm could not be built with `make helm`: " + err.Error())
	}
	return filepath.Join(repoRoot, "bin", "helm")
}

var _ = Describe("the Helm chart", Ordered, func() {
	var helm func(args ...string) (string, error)

	BeforeAll(func() {
		waitCRDsGone() // another spec's install is gone
		bin := helmBinary()
		home := GinkgoT().TempDir()
		helm = func(args ...string) (string, error) {
			cmd := append([]string{"--kubeconfig", cp.KubeconfigPath}, args...)
			os.Setenv("HELM_CACHE_HOME", filepath.Join(home, "cache"))
			os.Setenv("HELM_CONFIG_HOME", filepath.Join(home, "config"))
			os.Setenv("HELM_DATA_HOME", filepath.Join(home, "data"))
			return run(bin, cmd...)
		}
	})

	It("passes helm lint --strict", func() {
		out, err := helm("lint", "--strict", chartDir)
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("0 chart(s) failed"))
	})

	It("renders the generated CRDs, RBAC and webhooks unchanged, and every component", func() {
		out, err := helm("template", releaseName, chartDir, "--namespace", releaseNamespace)
		Expect(err).NotTo(HaveOccurred())
		objs := decodeAll(out)

		crds, err := config.CRDs()
		Expect(err).NotTo(HaveOccurred())
		Expect(names(objs, "CustomResourceDefinition")).To(HaveLen(len(crds)))
		for _, want := range crds {
			got := &apiextensionsv1.CustomResourceDefinition{}
			o := find(objs, "CustomResourceDefinition", want.Name)
			Expect(o).NotTo(BeNil(), want.Name)
			Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, got)).To(Succeed())
			Expect(got.Spec).To(Equal(want.Spec), "the chart's copy of %s is stale: run make manifests", want.Name)
			Expect(got.Annotations).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
		}
		Expect(rulesOf(find(objs, "ClusterRole", "skiff-manager"))).To(Equal(fileRules("role.yaml")))
		Expect(rulesOf(find(objs, "ClusterRole", "skiff-agent"))).To(Equal(fileRules("agent/role.yaml")))
		restriction, err := config.NodeRestriction()
		Expect(err).NotTo(HaveOccurred())
		vap := &admissionregistrationv1.ValidatingAdmissionPolicy{}
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(find(objs, "ValidatingAdmissionPolicy", "skiff-node-restriction").Object, vap)).To(Succeed())
		Expect(vap.Spec).To(Equal(restriction.Policy.Spec), "the chart's copy of the node restriction policy is stale: run make manifests")
		Expect(find(objs, "ClusterRoleBinding", "skiff-nodes")).NotTo(BeNil())

		wantHooks, err := config.ValidatingWebhooks()
		Expect(err).NotTo(HaveOccurred())
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(find(objs, "ValidatingWebhookConfiguration", config.WebhookConfigurationName).Object, vwc)).To(Succeed())
		Expect(vwc.Webhooks).To(HaveLen(len(wantHooks.Webhooks)))
		for i, w := range vwc.Webhooks {
			Expect(w.Name).To(Equal(wantHooks.Webhooks[i].Name))
			Expect(w.Rules).To(Equal(wantHooks.Webhooks[i].Rules))
			Expect(w.ClientConfig.Service.Namespace).To(Equal(releaseNamespace))
			Expect(w.ClientConfig.CABundle).NotTo(BeEmpty())
		}

		wantDefaulters, err := config.MutatingWebhooks()
		Expect(err).NotTo(HaveOccurred())
		mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(find(objs, "MutatingWebhookConfiguration", config.MutatingWebhookConfigurationName).Object, mwc)).To(Succeed())
		Expect(mwc.Webhooks).To(HaveLen(len(wantDefaulters.Webhooks)))
		for i, w := range mwc.Webhooks {
			Expect(w.Name).To(Equal(wantDefaulters.Webhooks[i].Name))
			Expect(w.Rules).To(Equal(wantDefaulters.Webhooks[i].Rules))
			Expect(w.ClientConfig.Service.Namespace).To(Equal(releaseNamespace))
			Expect(w.ClientConfig.CABundle).NotTo(BeEmpty())
		}

		deploy := &appsv1.Deployment{}
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(find(objs, "Deployment", "skiff-controller-manager").Object, deploy)).To(Succeed())
		c := deploy.Spec.Template.Spec.Containers[0]
		Expect(c.Args).To(ContainElements("--leader-elect=true", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081", "--webhooks=true"))
		Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
		Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
		Expect(find(objs, "Service", "skiff-controller-manager-metrics")).NotTo(BeNil())
	})

	It("makes the agent's CRI socket configurable", func() {
		out, err := helm("template", releaseName, chartDir, "--namespace", releaseNamespace,
			"--set", "agent.criSocket=/run/k3s/containerd/containerd.sock", "--set", "crds.install=false")
		Expect(err).NotTo(HaveOccurred())
		objs := decodeAll(out)
		Expect(names(objs, "CustomResourceDefinition")).To(BeEmpty())
		ds := &appsv1.DaemonSet{}
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(find(objs, "DaemonSet", "skiff-agent").Object, ds)).To(Succeed())
		spec := ds.Spec.Template.Spec
		Expect(spec.Containers[0].Args).To(ContainElement("--cri-endpoint=unix:///run/k3s/containerd/containerd.sock"))
		Expect(spec.Containers[0].VolumeMounts).To(ContainElement(HaveField("MountPath", "/run/k3s/containerd/containerd.sock")))
		Expect(spec.Volumes).To(ContainElement(HaveField("VolumeSource.HostPath.Path", "/run/k3s/containerd/containerd.sock")))
	})

	It("runs the agent as its node identity from a kubeconfig on the host when asked", func() {
		out, err := helm("template", releaseName, chartDir, "--namespace", releaseNamespace,
			"--set", "agent.nodeKubeconfig=/etc/skiff/node.kubeconfig", "--set", "crds.install=false")
		Expect(err).NotTo(HaveOccurred())
		ds := &appsv1.DaemonSet{}
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(find(decodeAll(out), "DaemonSet", "skiff-agent").Object, ds)).To(Succeed())
		spec := ds.Spec.Template.Spec
		Expect(spec.Containers[0].Args).To(ContainElement("--kubeconfig=/etc/skiff/node.kubeconfig"))
		Expect(spec.Containers[0].VolumeMounts).To(ContainElement(HaveField("MountPath", "/etc/skiff/node.kubeconfig")))
		Expect(spec.Volumes).To(ContainElement(HaveField("VolumeSource.HostPath.Path", "/etc/skiff/node.kubeconfig")))
	})

	It("installs into the API server and uninstalls without leaving objects behind", func() {
		out, err := helm("install", releaseName, chartDir, "--namespace", releaseNamespace, "--create-namespace",
			"--set", "crds.keep=false", "--wait=false")
		Expect(err).NotTo(HaveOccurred(), out)
		DeferCleanup(func() { _, _ = helm("uninstall", releaseName, "--namespace", releaseNamespace) })

		for _, name := range crdNames() {
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, &apiextensionsv1.CustomResourceDefinition{})).To(Succeed(), name)
		}
		installed := []client.Object{
			&appsv1.Deployment{}, &appsv1.DaemonSet{}, &corev1.ServiceAccount{}, &corev1.Service{}, &corev1.Secret{},
			&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}, &admissionregistrationv1.ValidatingWebhookConfiguration{},
			&admissionregistrationv1.MutatingWebhookConfiguration{},
			&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{},
			&admissionregistrationv1.ValidatingAdmissionPolicy{}, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{},
		}
		keys := []client.ObjectKey{
			{Namespace: releaseNamespace, Name: "skiff-controller-manager"}, {Namespace: releaseNamespace, Name: "skiff-agent"},
			{Namespace: releaseNamespace, Name: "skiff-agent"}, {Namespace: releaseNamespace, Name: "skiff-webhook"},
			{Namespace: releaseNamespace, Name: "skiff-webhook-cert"},
			{Name: "skiff-manager"}, {Name: "skiff-agent"}, {Name: config.WebhookConfigurationName},
			{Name: config.MutatingWebhookConfigurationName},
			{Name: "skiff-agent-serviceaccount"}, {Name: "skiff-nodes"},
			{Name: "skiff-node-restriction"}, {Name: "skiff-node-restriction"},
		}
		for i, obj := range installed {
			Expect(k8sClient.Get(ctx, keys[i], obj)).To(Succeed(), "%T %s", obj, keys[i])
			Expect(obj.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"))
		}
		status, err := helm("status", releaseName, "--namespace", releaseNamespace)
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(ContainSubstring("STATUS: deployed"))

		out, err = helm("uninstall", releaseName, "--namespace", releaseNamespace, "--wait")
		Expect(err).NotTo(HaveOccurred(), out)
		for i, obj := range installed {
			err := k8sClient.Get(ctx, keys[i], obj)
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T %s is left: %v", obj, keys[i], err)
		}
		waitCRDsGone()
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("v1")
		list.SetKind("SecretList")
		Expect(k8sClient.List(ctx, list, client.InNamespace(releaseNamespace))).To(Succeed())
		for _, s := range list.Items {
			Expect(strings.HasPrefix(s.GetName(), "sh.helm.release")).To(BeFalse(), "release record %s is left", s.GetName())
		}
	})
})
