package routes

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// LabelSimulated marks the Nodes of simulated nodes (agent.LabelSimulated):
// their addresses and pod CIDRs exist nowhere, so no route leads to them.
const LabelSimulated = "skiff.dev/simulated"

// Route is one route to another node's pods.
type Route struct {
	// Dst is the other node's pod CIDR.
	Dst netip.Prefix
	// Via is the other node's InternalIP.
	Via netip.Addr
	// Node names the other node; empty for a route read from the kernel.
	Node string
}

func (r Route) String() string { return fmt.Sprintf("%s via %s", r.Dst, r.Via) }

// Self is the node that programs the routes.
type Self struct {
	// Name of this node's Node.
	Name string
	// PodCIDR is this node's own pod range, served by its bridge: no route
	// may cover it.
	PodCIDR netip.Prefix
	// Addresses are this node's own (its InternalIP, and every address of
	// its network namespace): no route goes through them. Another Node on
	// one of them shares this node's host (a kubelet or a second agent next
	// to it) and needs no route.
	Addresses []netip.Addr
}

// Skipped is a Node that gets no route, and why.
type Skipped struct {
	Node   string
	Reason string
}

// Desired is the route set of self among nodes: one route per other real
// Node that has an IPv4 spec.podCIDR and an IPv4 InternalIP. Nodes are taken
// in name order; a Node whose pod CIDR overlaps this node's own, or one an
// earlier Node's route covers, is skipped with the reason, so that two
// Nodes claiming one range never make routes flap between them.
func Desired(self Self, nodes []corev1alpha1.Node) ([]Route, []Skipped) {
	sorted := make([]*corev1alpha1.Node, 0, len(nodes))
	for i := range nodes {
		sorted = append(sorted, &nodes[i])
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var (
		routes  []Route
		skipped []Skipped
	)
	for _, n := range sorted {
		if n.Name == self.Name || n.Labels[LabelSimulated] == "true" {
			continue
		}
		skip := func(format string, args ...any) {
			skipped = append(skipped, Skipped{Node: n.Name, Reason: fmt.Sprintf(format, args...)})
		}
		if n.Spec.PodCIDR == "" {
			skip("it has no spec.podCIDR yet")
			continue
		}
		dst, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil || !dst.Addr().Is4() {
			skip("its spec.podCIDR %q is not an IPv4 prefix", n.Spec.PodCIDR)
			continue
		}
		dst = dst.Masked()
		via, ok := InternalIP(n)
		if !ok {
			skip("it has no IPv4 InternalIP address")
			continue
		}
		switch {
		case slices.Contains(self.Addresses, via):
			skip("its InternalIP %s is an address of this node", via)
			continue
		case self.PodCIDR.IsValid() && dst.Overlaps(self.PodCIDR):
			skip("its podCIDR %s overlaps this node's %s", dst, self.PodCIDR)
			continue
		}
		if r, ok := overlapping(routes, dst); ok {
			skip("its podCIDR %s overlaps %s of node %s", dst, r.Dst, r.Node)
			continue
		}
		routes = append(routes, Route{Dst: dst, Via: via, Node: n.Name})
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].Dst.String() < routes[j].Dst.String() })
	return routes, skipped
}

func overlapping(routes []Route, dst netip.Prefix) (Route, bool) {
	for _, r := range routes {
		if r.Dst.Overlaps(dst) {
			return r, true
		}
	}
	return Route{}, false
}

// InternalIP is the Node's first IPv4 InternalIP address.
func InternalIP(n *corev1alpha1.Node) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// Diff says which routes to write (missing, or through another gateway) and
// which to delete (programmed earlier, for a destination no Node has now).
func Diff(desired, actual []Route) (write, remove []Route) {
	have := make(map[netip.Prefix]netip.Addr, len(actual))
	for _, r := range actual {
		have[r.Dst] = r.Via
	}
	want := make(map[netip.Prefix]bool, len(desired))
	for _, r := range desired {
		want[r.Dst] = true
		if via, ok := have[r.Dst]; !ok || via != r.Via {
			write = append(write, r)
		}
	}
	for _, r := range actual {
		if !want[r.Dst] {
			remove = append(remove, r)
		}
	}
	return write, remove
}
