// Package service holds the controllers that give skiff Services their
// addresses and endpoints, in skiff-controller-manager:
//
//   - the Service reconciler (service_controller.go) claims ClusterIPs and
//     NodePorts through the allocator (allocator.go), one API object per
//     address, so the API server's create is the lock; repair.go removes
//     claims whose Service is gone and restores missing ones on start;
//   - the EndpointSlice reconciler (endpointslice_controller.go) lists the
//     pods each Service selects into EndpointSlices of at most 100
//     endpoints, from the pure computation in endpointslice_desired.go.
//
// It writes Service spec.clusterIP(s) and nodePorts (which upstream's API
// server fills in at admission), Service status, EndpointSlices, and its
// claim objects (networking.k8s.io IPAddresses labelled
// ipaddress.kubernetes.io/managed-by=allocator.skiff.dev, and Leases in
// skiff-system). It must not touch core Services or their claims. The proxy
// that programs these addresses on each node lives in the agent.
package service
