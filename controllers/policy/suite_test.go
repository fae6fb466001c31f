package policy_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/manager"
	testutils "github.com/skiff-dev/skiff/test/utils"
)

// The suite runs the disruption controller inside the real manager, with
// the workload controllers and the scheduler, against a real API server
// and two simulated nodes whose pods turn Ready.

var (
	ctx       context.Context
	cancel    context.CancelFunc
	cp        *controlplane.ControlPlane
	k8sClient client.WithWatch
	mgr       *testutils.Manager
	nodes     *testutils.SimulatedNodes
)

func TestDisruption(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Disruption controller integration suite")
}

var _ = BeforeSuite(func() {
	testutils.SetLogger(GinkgoWriter)
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	cp, k8sClient, err = testutils.StartControlPlane(ctx, controlplane.Options{}, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	mgr, err = testutils.StartManager(ctx, cp.Config, manager.Options{Areas: []string{"apps", "scheduler", "policy"}})
	Expect(err).NotTo(HaveOccurred())
	nodes, err = testutils.StartSimulatedNodes(ctx, cp.Config, testutils.SimulatedNodesOptions{
		Names: []string{"pdb-0", "pdb-1"}, StartDelay: 100 * time.Millisecond})
	Expect(err).NotTo(HaveOccurred())
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
})

var _ = AfterSuite(func() {
	if nodes != nil {
		Expect(nodes.Stop()).To(Succeed())
	}
	if mgr != nil {
		Expect(mgr.Stop()).To(Succeed())
	}
	if cancel != nil {
		cancel()
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})
