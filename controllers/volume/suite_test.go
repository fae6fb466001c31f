// The integration suite of the volume controllers: a real kube-apiserver
// with skiff's CRDs, a manager running the claim and volume controllers
// through their real SetupWithManager, and the agent's skiff.dev/local-path
// provisioner of one node ("n1") with its root in a temporary directory.
// Nodes and Pods are written by the test in place of an agent and the
// scheduler. Assertions read through an uncached client.
package volume_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/skiff-dev/skiff/agent/localpath"
	"github.com/skiff-dev/skiff/controllers/volume"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

const provisionerNode = "n1"

var (
	cp          *controlplane.ControlPlane
	k8sClient   client.Client
	ctx         context.Context
	cancel      context.CancelFunc
	localRoot   string
	provisioner *localpath.Provisioner
)

func TestVolumeIntegration(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Volume binding and local-path provisioning integration suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	opts := controlplane.Options{}
	if os.Getenv("SKIFF_TEST_VERBOSE") != "" {
		opts.Output = GinkgoWriter
	}
	var err error
	cp, err = controlplane.Start(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	s := scheme.New()
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: s})
	Expect(err).NotTo(HaveOccurred())
	localRoot, err = os.MkdirTemp("", "skiff-local-path-")
	Expect(err).NotTo(HaveOccurred())

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: s, Metrics: metricsserver.Options{BindAddress: "0"}})
	Expect(err).NotTo(HaveOccurred())
	Expect(volume.IndexPodClaims(ctx, mgr)).To(Succeed())
	rec := mgr.GetEventRecorder("persistentvolume-controller")
	Expect(volume.NewClaimReconciler(mgr.GetClient(), mgr.GetAPIReader(), rec).SetupWithManager(mgr)).To(Succeed())
	Expect(volume.NewVolumeReconciler(mgr.GetClient(), mgr.GetAPIReader(), rec, clock.RealClock{}).SetupWithManager(mgr)).To(Succeed())
	provisioner = localpath.New(mgr.GetClient(), mgr.GetEventRecorder("local-path-provisioner"), provisionerNode, localRoot)
	Expect(provisioner.SetupWithManager(mgr)).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
	if localRoot != "" {
		Expect(os.RemoveAll(localRoot)).To(Succeed())
	}
})
