package batch

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

var (
	cp        *controlplane.ControlPlane
	k8sClient client.Client
	fakeClock *clocktesting.FakeClock
	ctx       context.Context
	cancel    context.CancelFunc
)

func TestBatch(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "batch controllers suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	cp, err = controlplane.Start(ctx, controlplane.Options{Webhooks: true})
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: scheme.New()})
	Expect(err).NotTo(HaveOccurred())

	wh := cp.WebhookServer()
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme:        scheme.New(),
		Metrics:       metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{Host: wh.Host, Port: wh.Port, CertDir: wh.CertDir}),
	})
	Expect(err).NotTo(HaveOccurred())
	fakeClock = clocktesting.NewFakeClock(time.Now())
	Expect(NewCronJobReconciler(mgr.GetClient(), mgr.GetAPIReader(), fakeClock, mgr.GetEventRecorder("cronjob-controller")).SetupWithManager(mgr)).To(Succeed())
	Expect(CronJobValidator{}.SetupWebhookWithManager(mgr)).To(Succeed())
	Expect(JobDefaulter{}.SetupWebhookWithManager(mgr)).To(Succeed())
	Expect(NewJobReconciler(mgr.GetClient(), fakeClock, mgr.GetEventRecorder("job-controller")).SetupWithManager(ctx, mgr)).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	// The webhook server is up once a valid CronJob can be created.
	Eventually(func() error { return dryRunCronJob("*/5 * * * *") }, 30*time.Second, 200*time.Millisecond).Should(Succeed())
})

var _ = AfterSuite(func() {
	cancel()
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})
