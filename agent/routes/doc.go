// Package routes is the pod network across nodes of skiff-agent, in the
// host-gateway style: on each node it programs one route per other Node,
// to that Node's spec.podCIDR through that Node's InternalIP, follows Nodes
// as they come, change and go, and removes its routes when the agent stops
// cleanly. Nodes must share a link (one L2 segment) for their addresses to
// be usable as gateways.
//
// The route set is a pure function of the Nodes (Desired, Diff in
// routes.go); the Reconciler (reconciler.go) reads the Nodes from the
// agent's cache and applies the difference through netlink. It owns the
// routes of the main table tagged with Protocol and nothing else: not the
// node's own pod bridge (the CNI plugin's), not the service proxy's
// nftables table, not any other route.
package routes
