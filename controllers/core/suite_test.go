// The integration suite of the node lifecycle and IPAM controllers: a real
// kube-apiserver with skiff's CRDs, a manager running the controllers
// through their real SetupWithManager with a 3 s grace period, a pod
// garbage collector with a 1 s delay and a small cluster CIDR, and Nodes and Leases written by the test in place of an
// agent. Assertions read through an uncached client.
package core_test

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/skiff-dev/skiff/controllers/core"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

const (
	gracePeriod = 3 * time.Second
	// gcDelay and orphanQuarantine are the pod garbage collector's.
	gcDelay          = time.Second
	orphanQuarantine = 2 * time.Second
	// clusterCIDR holds four node CIDRs, so the suite can exhaust it.
	clusterCIDR = "10.250.0.0/22"
	maskSize    = 24
)

// disruption lets the specs, which lose nodes one after another, taint at
// once: upstream's 0.1 nodes a second would hold a spec's node back for
// up to 10 s after the previous spec's.
var disruption = core.DisruptionOptions{EvictionRate: 100, SecondaryEvictionRate: 100, UnhealthyZoneThreshold: 0.55, LargeClusterSizeThreshold: 50}

var (
	cp        *controlplane.ControlPlane
	k8sClient client.Client
	dc        discovery.DiscoveryInterface
	ctx       context.Context
	cancel    context.CancelFunc
)

func TestCoreIntegration(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Node lifecycle and IPAM integration suite")
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
	dc, err = discovery.NewDiscoveryClientForConfig(cp.Config)
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: core.NodeLeaseNamespace}})).To(Succeed())

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: s, Metrics: metricsserver.Options{BindAddress: "0"}})
	Expect(err).NotTo(HaveOccurred())
	alloc, err := core.NewCIDRAllocator(clusterCIDR, maskSize)
	Expect(err).NotTo(HaveOccurred())
	Expect(core.NewNodeIPAMReconciler(mgr.GetClient(), mgr.GetEventRecorder("node-ipam-controller"), alloc).SetupWithManager(mgr)).To(Succeed())
	Expect(core.NewNodeLifecycleReconciler(mgr.GetClient(), mgr.GetEventRecorder("node-lifecycle-controller"),
		clock.RealClock{}, gracePeriod, nil).WithAPIReader(mgr.GetAPIReader()).WithDisruption(disruption).SetupWithManager(mgr)).To(Succeed())
	Expect(core.NewPodGCReconciler(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetEventRecorder("pod-garbage-collector"), clock.RealClock{},
		core.PodGCOptions{TerminatingDelay: gcDelay, OrphanQuarantine: orphanQuarantine}).SetupWithManager(mgr)).To(Succeed())
	Expect(mgr.Add(core.NewTolerationPolicyInstaller(mgr.GetClient(), mgr.GetAPIReader(), dc))).To(Succeed())
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
