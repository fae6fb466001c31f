package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
	"github.com/skiff-dev/skiff/internal/cli"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/manager"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// The suite runs the kubectl plugin commands against a real API server
// with the real workload controllers and scheduler, and two simulated
// nodes of the agent's real wiring above its in-memory runtime.

var simNodes = []string{"cli-0", "cli-1"}

var (
	cp         *controlplane.ControlPlane
	k8sClient  client.Client
	ctx        context.Context
	cancel     context.CancelFunc
	kubeconfig string
	done       []chan error
)

func TestCLI(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kubectl skiff commands against the controllers")
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
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: scheme.New()})
	Expect(err).NotTo(HaveOccurred())
	raw, err := os.ReadFile(cp.KubeconfigPath)
	Expect(err).NotTo(HaveOccurred())
	kubeconfig = filepath.Join(GinkgoT().TempDir(), "kubeconfig")
	Expect(os.WriteFile(kubeconfig, raw, 0o600)).To(Succeed())

	mgr, err := manager.New(cp.Config, manager.Options{MetricsAddr: "0", ProbeAddr: "0", Areas: []string{"apps", "scheduler", "policy"}})
	Expect(err).NotTo(HaveOccurred())
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()

	res := node.Resources{CPU: resource.MustParse("8"), Memory: resource.MustParse("32Gi"), EphemeralStorage: resource.MustParse("100Gi")}
	aopts := agent.Options{
		// The finalizer, as on real nodes: a deleted pod stays until the
		// agent has stopped it, so a StatefulSet recreates it only then.
		Config: cp.Config, Simulated: true, Runtime: fake.New(fake.Options{StartDelay: 100 * time.Millisecond}), UseFinalizer: true,
		Resync: 200 * time.Millisecond, SteadyResync: time.Second, LeaseInterval: time.Second, StatusInterval: time.Second,
	}
	for i, name := range simNodes {
		aopts.Nodes = append(aopts.Nodes, agent.NodeSpec{Name: name, Machine: node.SimulatedMachine(name, i, res)})
	}
	ready := make(chan struct{})
	aopts.Ready = ready
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Run(ctx, aopts) }()
	done = []chan error{mgrDone, agentDone}
	select {
	case <-ready:
	case err := <-agentDone:
		Fail(fmt.Sprintf("agent.Run ended before registering its nodes: %v", err))
	case <-time.After(30 * time.Second):
		Fail("agent did not register its nodes within 30s")
	}
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	for _, d := range done {
		Eventually(d, 30*time.Second).Should(Receive())
	}
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// skiff runs the skiff command line (as kubectl runs the plugin) against
// the suite's API server and returns what it printed.
func skiff(args ...string) (string, error) {
	root := cli.NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--kubeconfig", kubeconfig))
	err := root.ExecuteContext(ctx)
	return out.String(), err
}
