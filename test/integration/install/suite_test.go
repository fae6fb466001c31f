// Package install_test checks the ways operators install skiff into an
// existing cluster, against a real kube-apiserver: the kustomize bases of
// config/ (kubectl apply -k), the agent's least-privilege ClusterRole (the
// agent runs bound to it alone), and the Helm chart (helm lint, template,
// install and uninstall with the pinned helm the Makefile builds).
package install_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

var (
	cp         *controlplane.ControlPlane
	k8sClient  client.Client
	ctx        context.Context
	cancel     context.CancelFunc
	testScheme *runtime.Scheme
	repoRoot   string
)

func TestInstall(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Install integration suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	repoRoot, err = filepath.Abs("../../..")
	Expect(err).NotTo(HaveOccurred())
	opts := controlplane.Options{WithoutCRDs: true}
	if os.Getenv("SKIFF_TEST_VERBOSE") != "" {
		opts.Output = GinkgoWriter
	}
	cp, err = controlplane.Start(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	testScheme = scheme.New()
	Expect(apiextensionsv1.AddToScheme(testScheme)).To(Succeed())
	Expect(authenticationv1.AddToScheme(testScheme)).To(Succeed())
	Expect(authorizationv1.AddToScheme(testScheme)).To(Succeed())
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	cancel()
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// run runs a command in the repository root and returns its standard
// output; a failure carries standard error.
func run(name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = repoRoot
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(err.Error() + ": " + stderr.String()))
	}
	return stdout.String(), nil
}

// decodeAll reads every object of a multi-document YAML stream.
func decodeAll(manifests string) []*unstructured.Unstructured {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		Expect(err).NotTo(HaveOccurred())
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// find returns the object of that kind and name, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// names lists the names of the objects of one kind.
func names(objs []*unstructured.Unstructured, kind string) []string {
	var out []string
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o.GetName())
		}
	}
	return out
}

// containerArgs returns the arguments of the first container of a
// Deployment or DaemonSet.
func containerArgs(o *unstructured.Unstructured) []string {
	containers, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	Expect(err).NotTo(HaveOccurred())
	Expect(containers).NotTo(BeEmpty())
	args, _, err := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	Expect(err).NotTo(HaveOccurred())
	return args
}
