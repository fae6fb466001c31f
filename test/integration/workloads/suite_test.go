// Package workloads_test is the integration suite of the workload and
// batch controllers as users run them: a real kube-apiserver with skiff's
// CRDs and kube-controller-manager's garbage collector, the real
// skiff-controller-manager (internal/manager with the apps, batch,
// scheduler and nodes areas) that specs stop and restart mid-rollout, and
// simulated nodes (skiff-agent over the fake runtime) on which the real
// scheduler places every pod. Nothing plays scheduler or kubelet for the
// controllers: pods run, become ready, succeed and fail as the agent says.
//
// Invariants that must hold at every moment (surge, unavailability,
// ordering, parallelism, counting) are checked on every pod event through
// a watch; results are read through an uncached client inside Eventually;
// no assertion depends on how long something took.
package workloads_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/manager"
	"github.com/skiff-dev/skiff/test/utils"
)

// The shared simulated nodes every spec's pods may land on.
var sharedNodes = []string{"sim-0", "sim-1", "sim-2"}

var (
	ctx       context.Context
	cancel    context.CancelFunc
	cp        *controlplane.ControlPlane
	k8sClient client.WithWatch
	mgr       *utils.Manager
	nodes     *utils.SimulatedNodes
	jobClock  *utils.OffsetClock
)

func TestWorkloads(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	SetDefaultConsistentlyDuration(time.Second)
	SetDefaultConsistentlyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Workloads integration suite (real manager, scheduler and simulated nodes)")
}

var _ = BeforeSuite(func() {
	utils.SetLogger(GinkgoWriter)
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	cp, k8sClient, err = utils.StartControlPlane(ctx, controlplane.Options{}, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(cp.Stop()).To(Succeed()) })

	nodes, err = utils.StartSimulatedNodes(ctx, cp.Config, utils.SimulatedNodesOptions{Names: sharedNodes})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(nodes.Stop()).To(Succeed()) })

	jobClock = &utils.OffsetClock{}
	cfg := *cp.Config
	cfg.QPS, cfg.Burst = 200, 400
	mgr, err = utils.StartManager(ctx, &cfg, manager.Options{
		Areas:    []string{"apps", "batch", "scheduler", "nodes"},
		JobClock: jobClock,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(mgr.Stop()).To(Succeed()); cancel() })
})

// restartManager stops skiff-controller-manager and starts a new one with
// empty caches and expectations, as a crash and restart would.
func restartManager() {
	GinkgoHelper()
	Expect(mgr.Restart(ctx)).To(Succeed())
}

// newNamespace creates a namespace with a unique name.
func newNamespace(prefix string) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + rand.String(5)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}
