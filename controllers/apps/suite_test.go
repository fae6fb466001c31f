// Package apps_test is the integration suite of the workload controllers:
// a real kube-apiserver with skiff's CRDs and kube-controller-manager's
// garbage collector, the real SetupWithManager on a real manager, and a
// fake node (fakeNodeReconciler) that plays scheduler and agent: it binds
// pods and marks them Running and Ready so that rollouts progress.
package apps_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	skiffconfig "github.com/skiff-dev/skiff/config"
	"github.com/skiff-dev/skiff/controllers/apps"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

var (
	cp          *controlplane.ControlPlane
	k8sClient   client.WithWatch
	clientset   *kubernetes.Clientset
	ctx         context.Context
	cancel      context.CancelFunc
	testScheme  *runtime.Scheme
	stopApps    context.CancelFunc
	appsStopped chan struct{}
)

func TestApps(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "apps controllers integration suite")
}

var _ = BeforeSuite(func() {
	if os.Getenv("SKIFF_TEST_VERBOSE") != "" {
		ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	} else {
		ctrl.SetLogger(logr.Discard())
	}
	ctx, cancel = context.WithCancel(context.Background())
	// Only the groups these controllers use: the suite must not depend on
	// the state of other areas' CRDs.
	all, err := skiffconfig.CRDs()
	Expect(err).NotTo(HaveOccurred())
	opts := controlplane.Options{WithoutCRDs: true}
	for _, crd := range all {
		if crd.Spec.Group == "core.skiff.dev" || crd.Spec.Group == "apps.skiff.dev" {
			opts.ExtraCRDs = append(opts.ExtraCRDs, crd)
		}
	}
	if os.Getenv("SKIFF_TEST_VERBOSE") != "" {
		opts.Output = GinkgoWriter
	}
	cp, err = controlplane.Start(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	testScheme = scheme.New()
	k8sClient, err = client.NewWithWatch(cp.Config, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
	clientset, err = kubernetes.NewForConfig(cp.Config)
	Expect(err).NotTo(HaveOccurred())

	startFakeNode()
	startAppsManager()
})

var _ = AfterSuite(func() {
	if stopApps != nil {
		stopApps()
	}
	cancel()
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// newManager returns a manager on the test API server; several may be
// created in one process (the apps manager is restarted by a test).
func newManager() ctrl.Manager {
	cfg := *cp.Config
	cfg.QPS, cfg.Burst = 200, 400
	mgr, err := ctrl.NewManager(&cfg, ctrl.Options{
		Scheme:                 testScheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	return mgr
}

// startAppsManager runs the workload controllers as skiff-controller-manager does.
func startAppsManager() {
	mgr := newManager()
	mctx, mcancel := context.WithCancel(ctx)
	Expect(apps.SetupWithManager(mctx, mgr)).To(Succeed())
	stopApps = mcancel
	appsStopped = make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(appsStopped)
		Expect(mgr.Start(mctx)).To(Succeed())
	}()
}

// restartAppsManager stops the workload controllers and starts new ones
// with empty caches and expectations.
func restartAppsManager() {
	stopApps()
	Eventually(appsStopped).Should(BeClosed())
	startAppsManager()
}

// podList lists the pods of a namespace, uncached.
func podList(ns string) []corev1alpha1.Pod {
	var list corev1alpha1.PodList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	return list.Items
}
