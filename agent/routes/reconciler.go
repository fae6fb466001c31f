package routes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Protocol tags the routes this package programs (the rtnetlink protocol
// field, shown by `ip route` as "proto 77"), so that it finds them again
// after a restart and never touches anyone else's.
const Protocol netlink.RouteProtocol = 77

// ResyncPeriod is how often the routes are checked without a Node change,
// which repairs a route someone else removed.
const ResyncPeriod = 5 * time.Minute

// Table reads and writes the routes this package owns.
type Table interface {
	// List returns the routes tagged with Protocol.
	List() ([]Route, error)
	// Replace writes r, replacing a route to the same destination.
	Replace(r Route) error
	// Delete removes r.
	Delete(r Route) error
}

// Reconciler keeps this node's routes to the other nodes' pod CIDRs in line
// with the Nodes. Every Node event leads to one reconcile of the whole
// route set (requests share one key), and the manager runs it as a
// Runnable too, to remove the routes when the agent stops.
type Reconciler struct {
	reader client.Reader
	table  Table
	self   Self

	mu      sync.Mutex
	stopped bool
	skipped map[string]string // node → reason last reported
}

var (
	_ reconcile.Reconciler = (*Reconciler)(nil)
	_ manager.Runnable     = (*Reconciler)(nil)
)

// New returns a reconciler for node self that reads Nodes from reader (the
// agent's cache) and writes table. Each reconcile adds the InternalIP of
// this node's Node and the addresses of the network namespace to
// self.Addresses.
func New(reader client.Reader, table Table, self Self) *Reconciler {
	return &Reconciler{reader: reader, table: table, self: self, skipped: map[string]string{}}
}

// requestKey is the one key every Node event enqueues.
var requestKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "node-routes"}}

// SetupWithManager watches Nodes (only what a route depends on: creation,
// deletion, pod CIDR, addresses and labels) and adds the shutdown cleanup.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	relevant := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*corev1alpha1.Node), e.ObjectNew.(*corev1alpha1.Node)
			oi, _ := InternalIP(o)
			ni, _ := InternalIP(n)
			return o.Spec.PodCIDR != n.Spec.PodCIDR || oi != ni || o.Labels[LabelSimulated] != n.Labels[LabelSimulated]
		},
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("node-routes").
		Watches(&corev1alpha1.Node{}, handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
			return []reconcile.Request{requestKey}
		}), builder.WithPredicates(relevant)).
		Complete(r)
	if err != nil {
		return err
	}
	return mgr.Add(r)
}

// Reconcile brings the route table in line with the Nodes.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return reconcile.Result{}, nil
	}
	nodes := &corev1alpha1.NodeList{}
	if err := r.reader.List(ctx, nodes); err != nil {
		return reconcile.Result{}, err
	}
	self := r.self
	self.Addresses = append(slices.Clone(self.Addresses), localAddresses()...)
	for i := range nodes.Items {
		if n := &nodes.Items[i]; n.Name == self.Name {
			if ip, ok := InternalIP(n); ok {
				self.Addresses = append(self.Addresses, ip)
			}
		}
	}
	desired, skipped := Desired(self, nodes.Items)
	r.reportSkipped(ctx, skipped)
	actual, err := r.table.List()
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("listing routes: %w", err)
	}
	write, remove := Diff(desired, actual)
	var errs []error
	for _, rt := range remove {
		log.V(2).Info("Removing route", "route", rt.String())
		if err := r.table.Delete(rt); err != nil {
			errs = append(errs, fmt.Errorf("removing route %s: %w", rt, err))
		}
	}
	for _, rt := range write {
		log.V(2).Info("Adding route to the pods of a node", "node", klog.KRef("", rt.Node), "route", rt.String())
		if err := r.table.Replace(rt); err != nil {
			// A gateway the node cannot reach directly (not on its link)
			// gets no route; the others still do.
			errs = append(errs, fmt.Errorf("adding route %s to node %s: %w", rt, rt.Node, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: ResyncPeriod}, nil
}

// reportSkipped logs each Node that gets no route, once per reason.
func (r *Reconciler) reportSkipped(ctx context.Context, skipped []Skipped) {
	now := make(map[string]string, len(skipped))
	for _, s := range skipped {
		now[s.Node] = s.Reason
		if r.skipped[s.Node] != s.Reason {
			ctrl.LoggerFrom(ctx).Info("No route to the pods of a node", "node", klog.KRef("", s.Node), "reason", s.Reason)
		}
	}
	r.skipped = now
}

// NeedLeaderElection is false: every node programs its own routes.
func (r *Reconciler) NeedLeaderElection() bool { return false }

// Start turns on IPv4 forwarding (pods of other nodes are reached through
// this node), waits until the agent stops, then removes every route this
// package owns.
func (r *Reconciler) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("node-routes")
	if err := enableForwarding(); err != nil {
		log.Info("Cannot turn on IPv4 forwarding: pods of other nodes may not reach this node's pods", "err", err.Error())
	}
	<-ctx.Done()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	return Cleanup(r.table)
}

// Cleanup removes every route of table, as a clean stop does.
func Cleanup(table Table) error {
	routes, err := table.List()
	if err != nil {
		return fmt.Errorf("listing routes: %w", err)
	}
	var errs []error
	for _, rt := range routes {
		if err := table.Delete(rt); err != nil {
			errs = append(errs, fmt.Errorf("removing route %s: %w", rt, err))
		}
	}
	return errors.Join(errs...)
}

// localAddresses are the IPv4 addresses of this network namespace.
func localAddresses() []netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok {
				out = append(out, ip)
			}
		}
	}
	return out
}

func enableForwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	return os.WriteFile(path, []byte("1"), 0o644)
}

// NetlinkTable is the main routing table of the current network namespace.
type NetlinkTable struct{}

var _ Table = NetlinkTable{}

// List returns the IPv4 routes of the main table tagged with Protocol.
func (NetlinkTable) List() ([]Route, error) {
	filter := &netlink.Route{Protocol: Protocol, Table: unix.RT_TABLE_MAIN}
	list, err := netlink.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(list))
	for _, l := range list {
		if l.Dst == nil {
			continue
		}
		dst, ok := netip.AddrFromSlice(l.Dst.IP.To4())
		ones, _ := l.Dst.Mask.Size()
		if !ok {
			continue
		}
		via, _ := netip.AddrFromSlice(l.Gw.To4())
		out = append(out, Route{Dst: netip.PrefixFrom(dst, ones), Via: via})
	}
	return out, nil
}

// Replace writes r into the main table, tagged with Protocol. A route to
// the same destination that someone else programmed (another network
// plugin) is left alone and reported.
func (NetlinkTable) Replace(r Route) error {
	nr := toNetlink(r)
	existing, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: nr.Dst, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return err
	}
	for _, e := range existing {
		if e.Protocol != Protocol {
			return fmt.Errorf("a route to %s that skiff-agent did not program exists (protocol %s): another network plugin routes the pods", r.Dst, e.Protocol)
		}
	}
	return netlink.RouteReplace(nr)
}

// Delete removes r from the main table.
func (NetlinkTable) Delete(r Route) error {
	err := netlink.RouteDel(toNetlink(r))
	if errors.Is(err, unix.ESRCH) {
		return nil // gone already
	}
	return err
}

func toNetlink(r Route) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), 32)},
		Gw:       r.Via.AsSlice(),
		Protocol: Protocol,
		Table:    unix.RT_TABLE_MAIN,
	}
}
