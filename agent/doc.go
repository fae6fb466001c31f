// Package agent wires skiff-agent, skiff's kubelet: it registers one or more
// Nodes (agent/node), runs the pods bound to them through a container runtime
// (agent/pods above agent/cri), and shares one pod informer among every node
// the process simulates. It owns the process-wide pieces (manager, cache,
// clients, work queue) and must not hold node- or pod-level logic itself.
//
// Tests and benchmarks that need simulated nodes run them in-process:
//
//	opts := agent.Options{
//		Config:    cfg,
//		Simulated: true,
//		Runtime:   fake.New(fake.Options{StartDelay: 100 * time.Millisecond}),
//		Nodes:     agent.SimulatedNodes("sim-", 100, node.Resources{CPU: resource.MustParse("32"), ...}),
//	}
//	go agent.Run(ctx, opts)
//
// Pods bound to sim-<i> then go Pending, Running and Ready; a pod annotated
// sim.skiff.dev/exit-code ends Succeeded or Failed.
package agent
