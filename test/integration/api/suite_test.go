// Package api_test is the integration suite of skiff's API: it starts a real
// kube-apiserver with skiff's CRDs (and kube-controller-manager's garbage
// collector) and checks what users meet first: that manifests apply, that
// invalid ones are refused with the field and the reason, and that the
// subresources, field selectors and cascading deletion work.
package api_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
)

func TestAPI(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "API integration suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	opts := controlplane.Options{}
	if os.Getenv("SKIFF_TEST_VERBOSE") != "" {
		opts.Output = GinkgoWriter
	}
	cp, err = controlplane.Start(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	testScheme = scheme.New()
	Expect(apiextensionsv1.AddToScheme(testScheme)).To(Succeed())
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	cancel()
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})
