// Package multinode_test is the multi-node end-to-end suite: one API
// server on a test bridge, skiff-controller-manager in this process, and
// three nodes, each a network namespace joined to the bridge by a veth
// pair, with its own managed containerd, CNI bridge and skiff-agent. It
// needs root; without it, or without containerd, runc, ctr, busybox, ip,
// nsenter or nft, it skips and says why.
//
// The cluster starts once for the whole suite, in BeforeSuite; the harness
// is in cluster_test.go:
//
//   - StartCluster(ctx, ClusterOptions) and Cluster.Stop; ClusterOptions
//     carries the manager's options, extra agent flags, and NodeConfig, the
//     credentials each agent gets (the administrator's by default).
//   - Cluster.AddNode adds a node (then Node.WaitReady); Cluster.Nodes,
//     Cluster.LiveNodes, Cluster.Node(name).
//   - Node.Kill loses a node: agent killed, containers, containerd and
//     mounts removed, network namespace deleted; its Node stays in the API.
//   - Node.Partition drops the node's traffic to and from the API server
//     (pod traffic goes on); Node.Heal ends it.
//   - Node.StopAgent(SIGTERM or SIGKILL) and Node.StartAgent restart an
//     agent on the same containerd; Node.Exec runs a command in a
//     container of the node, Node.Output a command in its namespace.
//
// Specs that kill or partition nodes should add nodes of their own with
// AddNode and leave the first three, which other specs share, alone.
// Everything the suite made is removed at the end, also when a spec fails,
// and at the start of the next run when a run crashed (CleanupLeftovers).
package multinode_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/skiff-dev/skiff/agent/containerd"
	"github.com/skiff-dev/skiff/internal/manager"
	"github.com/skiff-dev/skiff/test/utils"
)

var (
	ctx     context.Context
	cancel  context.CancelFunc
	cluster *Cluster
)

func TestMultinode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the multi-node end-to-end suite needs root (network namespaces, containerd, mounts); run it as root")
	}
	for _, bin := range []string{"containerd", "runc", "ctr", "busybox", "ip", "nsenter", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("the multi-node end-to-end suite needs %s on PATH: run hack/deps.sh (as root) to install it", bin)
		}
	}
	if _, err := os.Stat(filepath.Join(containerd.DefaultCNIBinDir, "bridge")); err != nil {
		t.Skip("the multi-node end-to-end suite needs the CNI plugins in /usr/lib/cni: run hack/deps.sh (as root)")
	}
	// One end-to-end suite at a time owns the host (make test runs
	// packages in parallel).
	hostLock, err := os.OpenFile(filepath.Join(os.TempDir(), "skiff-e2e-host.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer hostLock.Close()
	if err := syscall.Flock(int(hostLock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Multi-node end-to-end suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	DeferCleanup(func() { cancel() })
	utils.SetLogger(GinkgoWriter)
	var err error
	cluster, err = StartCluster(ctx, ClusterOptions{
		Nodes: 3,
		// Node loss specs (nodeloss_test.go) release a lost node's
		// terminating pods a second after their grace period.
		Manager: manager.Options{TerminatingPodGCDelay: time.Second},
		// Every agent runs as its own node identity, restricted as a
		// kubelet is (RBAC and the skiff-node-restriction policy).
		NodeConfig: nodeIdentity,
		Log:        GinkgoWriter,
	})
	if err != nil && cluster != nil {
		cluster.PrintAgentLogs(GinkgoWriter)
	}
	// Stop runs even when the start failed half way.
	DeferCleanup(func() {
		if cluster != nil {
			cluster.Stop()
		}
	})
	Expect(err).NotTo(HaveOccurred())
})

// A failed spec prints what every agent logged, so that a refusal or a
// crash of an agent shows in the failure.
var _ = AfterEach(func() {
	if CurrentSpecReport().Failed() && cluster != nil {
		cluster.PrintAgentLogs(GinkgoWriter)
	}
})

// newNamespace creates a namespace for one Describe.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "mn-" + rand.String(6)}}
	Expect(cluster.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}
