// Package nodeloss_test is the integration suite of node loss: a real
// kube-apiserver with skiff's CRDs and kube-controller-manager's garbage
// collector, the real skiff-controller-manager (apps, scheduler, nodes and
// services areas) with short node-loss timings, and simulated nodes
// (skiff-agent over the fake runtime) that a spec crashes and brings back
// with the runtime they left. Nothing plays a controller: the manager
// notices the silent node, marks its pods not ready, evicts them, force-
// deletes them, and the workload controllers and the scheduler replace
// them on the nodes that remain.
//
// What happens on the way (a pod marked not ready before it is evicted,
// an endpoint served not ready) is recorded by watches, so it is proven
// at the moment it happened rather than sampled.
package nodeloss_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/manager"
	"github.com/skiff-dev/skiff/test/utils"
)

// The node-loss timings of the suite's manager: a node is Unknown 4 s
// after its last heartbeat (simulated agents renew every second), its pods
// are evicted 5 s later, and force-deleted once their 1 s grace period is
// over.
const (
	gracePeriod       = 4 * time.Second
	tolerationSeconds = 5
	gcDelay           = time.Millisecond
)

var (
	ctx       context.Context
	cancel    context.CancelFunc
	cp        *controlplane.ControlPlane
	k8sClient client.WithWatch
	mgr       *utils.Manager
)

func TestNodeLoss(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(90 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Node loss integration suite (real manager, scheduler and simulated nodes)")
}

var _ = BeforeSuite(func() {
	utils.SetLogger(GinkgoWriter)
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	cp, k8sClient, err = utils.StartControlPlane(ctx, controlplane.Options{}, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(cp.Stop()).To(Succeed()) })

	cfg := *cp.Config
	cfg.QPS, cfg.Burst = 200, 400
	mgr, err = utils.StartManager(ctx, &cfg, manager.Options{
		Areas:                               []string{"apps", "scheduler", "nodes", "services"},
		NodeMonitorGracePeriod:              gracePeriod,
		DefaultNotReadyTolerationSeconds:    ptr.To[int64](tolerationSeconds),
		DefaultUnreachableTolerationSeconds: ptr.To[int64](tolerationSeconds),
		TerminatingPodGCDelay:               gcDelay,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(mgr.Stop()).To(Succeed()); cancel() })
})
