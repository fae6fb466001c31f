// The integration suite of the scheduler: a real kube-apiserver with
// skiff's CRDs, a controller-runtime manager running the scheduler through
// its real SetupWithManager, and Nodes created directly with capacity and
// conditions (no agent). Assertions read through an uncached client.
package scheduler_test

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

	"github.com/skiff-dev/skiff/controllers/scheduler"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

var (
	cp        *controlplane.ControlPlane
	k8sClient client.Client
	ctx       context.Context
	cancel    context.CancelFunc
)

func TestSchedulerIntegration(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Scheduler integration suite")
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

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: s, Metrics: metricsserver.Options{BindAddress: "0"}})
	Expect(err).NotTo(HaveOccurred())
	Expect(scheduler.New(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetCache(),
		mgr.GetEventRecorder(scheduler.Name), clock.RealClock{}).SetupWithManager(mgr)).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	cancel()
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})
