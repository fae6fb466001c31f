package routes

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// nodeBuilder makes Nodes for the tables: MakeNode("b").CIDR(...).IP(...).Obj().
type nodeBuilder struct{ n corev1alpha1.Node }

func MakeNode(name string) *nodeBuilder {
	return &nodeBuilder{n: corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}}
}

func (b *nodeBuilder) CIDR(c string) *nodeBuilder { b.n.Spec.PodCIDR = c; return b }

func (b *nodeBuilder) IP(ip string) *nodeBuilder {
	b.n.Status.Addresses = append(b.n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	return b
}

func (b *nodeBuilder) Hostname() *nodeBuilder {
	b.n.Status.Addresses = append(b.n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: b.n.Name})
	return b
}

func (b *nodeBuilder) Simulated() *nodeBuilder { b.n.Labels[LabelSimulated] = "true"; return b }

func (b *nodeBuilder) Obj() corev1alpha1.Node { return b.n }

func route(dst, via, node string) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via), Node: node}
}

func TestDesired(t *testing.T) {
	self := Self{Name: "a", PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), Addresses: []netip.Addr{netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("127.0.0.1")}}
	tests := map[string]struct {
		nodes   []corev1alpha1.Node
		want    []Route
		skipped []Skipped
	}{
		"alone: no route": {
			nodes: []corev1alpha1.Node{MakeNode("a").CIDR("10.244.0.0/24").IP("192.168.1.10").Obj()},
		},
		"one route per other node, through its InternalIP, sorted by destination": {
			nodes: []corev1alpha1.Node{
				MakeNode("c").CIDR("10.244.2.0/24").Hostname().IP("192.168.1.12").Obj(),
				MakeNode("a").CIDR("10.244.0.0/24").IP("192.168.1.10").Obj(),
				MakeNode("b").CIDR("10.244.1.0/24").IP("192.168.1.11").Obj(),
			},
			want: []Route{route("10.244.1.0/24", "192.168.1.11", "b"), route("10.244.2.0/24", "192.168.1.12", "c")},
		},
		"the first IPv4 InternalIP; a pod CIDR with host bits is masked": {
			nodes: []corev1alpha1.Node{MakeNode("b").CIDR("10.244.1.7/24").IP("fd00::1").IP("192.168.1.11").IP("192.168.1.99").Obj()},
			want:  []Route{route("10.244.1.0/24", "192.168.1.11", "b")},
		},
		"a node without a pod CIDR or an address yet is skipped, with the reason": {
			nodes: []corev1alpha1.Node{
				MakeNode("b").IP("192.168.1.11").Obj(),
				MakeNode("c").CIDR("10.244.2.0/24").Hostname().Obj(),
				MakeNode("d").CIDR("fd00:1::/64").IP("192.168.1.13").Obj(),
			},
			skipped: []Skipped{
				{Node: "b", Reason: "it has no spec.podCIDR yet"},
				{Node: "c", Reason: "it has no IPv4 InternalIP address"},
				{Node: "d", Reason: `its spec.podCIDR "fd00:1::/64" is not an IPv4 prefix`},
			},
		},
		"simulated nodes get no route and no report": {
			nodes: []corev1alpha1.Node{MakeNode("sim-0").CIDR("10.244.5.0/24").IP("10.64.0.1").Simulated().Obj()},
		},
		"a node on this node's own address or pod range is skipped": {
			nodes: []corev1alpha1.Node{
				MakeNode("b").CIDR("10.244.1.0/24").IP("192.168.1.10").Obj(),
				MakeNode("c").CIDR("10.244.0.0/16").IP("192.168.1.12").Obj(),
			},
			skipped: []Skipped{
				{Node: "b", Reason: "its InternalIP 192.168.1.10 is an address of this node"},
				{Node: "c", Reason: "its podCIDR 10.244.0.0/16 overlaps this node's 10.244.0.0/24"},
			},
		},
		"two nodes claiming one range: the first by name keeps it": {
			nodes: []corev1alpha1.Node{
				MakeNode("c").CIDR("10.244.1.0/24").IP("192.168.1.12").Obj(),
				MakeNode("b").CIDR("10.244.1.0/24").IP("192.168.1.11").Obj(),
			},
			want:    []Route{route("10.244.1.0/24", "192.168.1.11", "b")},
			skipped: []Skipped{{Node: "c", Reason: "its podCIDR 10.244.1.0/24 overlaps 10.244.1.0/24 of node b"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, skipped := Desired(self, tc.nodes)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.skipped, skipped); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	tests := map[string]struct {
		desired, actual []Route
		write, remove   []Route
	}{
		"nothing either side": {},
		"missing routes are written": {
			desired: []Route{route("10.244.1.0/24", "192.168.1.11", "b")},
			write:   []Route{route("10.244.1.0/24", "192.168.1.11", "b")},
		},
		"a route in place is left alone": {
			desired: []Route{route("10.244.1.0/24", "192.168.1.11", "b")},
			actual:  []Route{route("10.244.1.0/24", "192.168.1.11", "")},
		},
		"a node with a new address: its route is rewritten, not removed": {
			desired: []Route{route("10.244.1.0/24", "192.168.1.21", "b")},
			actual:  []Route{route("10.244.1.0/24", "192.168.1.11", "")},
			write:   []Route{route("10.244.1.0/24", "192.168.1.21", "b")},
		},
		"routes of nodes that are gone are removed": {
			desired: []Route{route("10.244.1.0/24", "192.168.1.11", "b")},
			actual:  []Route{route("10.244.1.0/24", "192.168.1.11", ""), route("10.244.2.0/24", "192.168.1.12", "")},
			remove:  []Route{route("10.244.2.0/24", "192.168.1.12", "")},
		},
	}
	cmpAddr := cmp.Options{cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			write, remove := Diff(tc.desired, tc.actual)
			if diff := cmp.Diff(tc.write, write, cmpAddr); diff != "" {
				t.Errorf("write (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.remove, remove, cmpAddr); diff != "" {
				t.Errorf("remove (-want +got):\n%s", diff)
			}
		})
	}
}
