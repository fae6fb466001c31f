package utils

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
)

// SimulatedNodesOptions describe a group of simulated nodes.
type SimulatedNodesOptions struct {
	// Names of the nodes.
	Names []string
	// StartDelay is how long a container takes to run (and its pod to
	// become ready); RunDuration how long a pod with the fake runtime's
	// exit-code annotation runs. Zero means 200 ms and 500 ms.
	StartDelay, RunDuration time.Duration
	// Resources of each node; zero means 8 CPUs, 32 GiB, 100 GiB.
	Resources node.Resources
	// Runtime, when set, is the fake runtime of an earlier group of the
	// same names: nodes that come back after a crash or a partition find
	// the sandboxes and containers they left (StartDelay and RunDuration
	// are then the runtime's).
	Runtime *fake.Runtime
}

// SimulatedNodes are skiff-agent's simulated nodes (agent.Run with the
// fake runtime, as `skiff-agent --runtime=fake`) running in this process:
// real Node objects, Leases, and pods run to Running and Ready, or to
// Succeeded and Failed by the exit-code annotation. Pods carry the agent's
// finalizer, as on real nodes, so deletions go through Terminating.
type SimulatedNodes struct {
	// Names are the nodes' names.
	Names []string
	// Runtime is the fake runtime they share.
	Runtime *fake.Runtime

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

// machineIndex numbers simulated machines across groups, so that every
// node of the process gets addresses of its own.
var machineIndex atomic.Int32

// StartSimulatedNodes registers the nodes and runs them until Stop.
func StartSimulatedNodes(ctx context.Context, cfg *rest.Config, opts SimulatedNodesOptions) (*SimulatedNodes, error) {
	if opts.StartDelay == 0 {
		opts.StartDelay = 200 * time.Millisecond
	}
	if opts.RunDuration == 0 {
		opts.RunDuration = 500 * time.Millisecond
	}
	res := opts.Resources
	if res.CPU.IsZero() {
		res = node.Resources{CPU: resource.MustParse("8"), Memory: resource.MustParse("32Gi"), EphemeralStorage: resource.MustParse("100Gi")}
	}
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 200, 400
	rt := opts.Runtime
	if rt == nil {
		rt = fake.New(fake.Options{StartDelay: opts.StartDelay, RunDuration: opts.RunDuration})
	}
	aopts := agent.Options{
		Config: c, Simulated: true, Runtime: rt, Events: true, UseFinalizer: true,
		Resync: 200 * time.Millisecond, SteadyResync: time.Second, Housekeeping: 2 * time.Second,
		LeaseInterval: time.Second, StatusInterval: time.Second, Workers: 16,
	}
	for _, name := range opts.Names {
		i := int(machineIndex.Add(1))
		aopts.Nodes = append(aopts.Nodes, agent.NodeSpec{Name: name, Machine: node.SimulatedMachine(name, i, res)})
	}
	ready := make(chan struct{})
	aopts.Ready = ready
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(actx, aopts) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("simulated nodes %v stopped before registering: %w", opts.Names, err)
	case <-time.After(time.Minute):
		cancel()
		<-done
		return nil, fmt.Errorf("simulated nodes %v did not register within a minute", opts.Names)
	}
	return &SimulatedNodes{Names: opts.Names, Runtime: rt, cancel: cancel, done: done}, nil
}

// Stop stops the nodes' agent as a crash would: their Nodes, Leases and
// pods stay as they are in the API.
func (n *SimulatedNodes) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cancel == nil {
		return nil
	}
	n.cancel()
	err := <-n.done
	n.cancel = nil
	return err
}
