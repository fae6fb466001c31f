// Package health_test checks what GitOps tools and monitoring see of skiff,
// through the real controllers: skiff-controller-manager with every
// controller and a simulated agent (fake runtime) against a real API
// server. Every kind must follow the kstatus conventions, the Argo CD health
// checks of config/argocd must judge the statuses the controllers really
// write, and skiff's Prometheus metrics must carry values after real work.
package health_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/manager"
	"github.com/skiff-dev/skiff/internal/scheme"
)

const simNodes = 2

var (
	cp         *controlplane.ControlPlane
	k8sClient  client.Client
	ctx        context.Context
	cancel     context.CancelFunc
	testScheme *runtime.Scheme
	// agentMetrics and agentProbes are where the simulated agent serves
	// /metrics and /healthz.
	agentMetrics, agentProbes string
	stopped                   = make(chan error, 2)
	started                   int
)

func TestHealth(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Health and observability integration suite")
}

// freeAddr returns a loopback address with a port the kernel reports free.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
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
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := manager.New(cp.Config, manager.Options{MetricsAddr: "0", ProbeAddr: "0", NodeMonitorGracePeriod: time.Minute})
	Expect(err).NotTo(HaveOccurred())
	started++
	go func() { stopped <- mgr.Start(ctx) }()

	agentMetrics, agentProbes = freeAddr(), freeAddr()
	res := node.Resources{CPU: resource.MustParse("8"), Memory: resource.MustParse("32Gi"), EphemeralStorage: resource.MustParse("100Gi")}
	ready := make(chan struct{})
	started++
	go func() {
		stopped <- agent.Run(ctx, agent.Options{
			Config:        cp.Config,
			Nodes:         agent.SimulatedNodes("health-", simNodes, res),
			Simulated:     true,
			Runtime:       fake.New(fake.Options{StartDelay: 100 * time.Millisecond, RunDuration: time.Second}),
			Events:        true,
			LeaseInterval: time.Second,
			MetricsAddr:   agentMetrics,
			ProbeAddr:     agentProbes,
			Ready:         ready,
		})
	}()
	Eventually(ready).WithTimeout(time.Minute).Should(BeClosed())
})

var _ = AfterSuite(func() {
	cancel()
	for range started {
		select {
		case err := <-stopped:
			Expect(err).NotTo(HaveOccurred())
		case <-time.After(30 * time.Second):
			Fail("the manager or the agent did not stop")
		}
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// name makes a name unique within the suite.
var seq int

func name(prefix string) string {
	seq++
	return fmt.Sprintf("%s-%d", prefix, seq)
}
