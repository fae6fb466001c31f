// Package agent_test is the integration suite of skiff-agent with simulated
// nodes: a real kube-apiserver with skiff's CRDs, the agent's real wiring
// (agent.Run) above the in-memory fake runtime, and assertions through an
// uncached client.
package agent_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

const simNodes = 3

var (
	cp        *controlplane.ControlPlane
	k8sClient client.Client
	ctx       context.Context
	cancel    context.CancelFunc
	fakeRT    *fake.Runtime
	agentDone chan error
)

func TestAgent(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Agent integration suite (simulated nodes)")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	opts := controlplane.Options{}
	if os.Getenv("SKIFF_TEST_VERBOSE") != "" {
		opts.Output = GinkgoWriter
	}
	var err error
	cp, err = controlplane.Start(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: scheme.New()})
	Expect(err).NotTo(HaveOccurred())

	fakeRT = fake.New(fake.Options{StartDelay: 300 * time.Millisecond, RunDuration: 500 * time.Millisecond})
	res := node.Resources{CPU: resource.MustParse("8"), Memory: resource.MustParse("32Gi"), EphemeralStorage: resource.MustParse("100Gi")}
	aopts := agent.Options{
		Config: cp.Config, Simulated: true, Runtime: fakeRT, Events: true, UseFinalizer: true,
		Resync: 200 * time.Millisecond, SteadyResync: time.Second, Housekeeping: 2 * time.Second,
		LeaseInterval: time.Second, StatusInterval: time.Second,
	}
	for i := range simNodes {
		name := "sim-" + string(rune('0'+i))
		aopts.Nodes = append(aopts.Nodes, agent.NodeSpec{Name: name, Machine: node.SimulatedMachine(name, i, res)})
	}
	ready := make(chan struct{})
	aopts.Ready = ready
	agentDone = make(chan error, 1)
	go func() { agentDone <- agent.Run(ctx, aopts) }()
	select {
	case <-ready:
	case err := <-agentDone:
		agentDone = nil
		Fail(fmt.Sprintf("agent.Run ended before registering its nodes: %v", err))
	case <-time.After(30 * time.Second):
		Fail("agent did not register its nodes within 30s")
	}
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if agentDone != nil {
		Eventually(agentDone, 30*time.Second).Should(Receive())
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})
