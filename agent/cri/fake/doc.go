// Package fake is an in-memory CRI runtime for simulated nodes: sandboxes get
// an address at once, started containers become running after a configurable
// delay, and the containers of a pod whose annotations ask for it
// (sim.skiff.dev/exit-code) exit with that code. No process, mount or network
// namespace is ever created. It is safe for concurrent use by every simulated
// node of a process.
package fake
