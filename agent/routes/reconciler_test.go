package routes

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/skiff-dev/skiff/internal/scheme"
)

// memTable is a route table in memory.
type memTable struct {
	mu     sync.Mutex
	routes map[netip.Prefix]netip.Addr
}

func (m *memTable) List() ([]Route, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Route
	for d, v := range m.routes {
		out = append(out, Route{Dst: d, Via: v})
	}
	return out, nil
}

func (m *memTable) Replace(r Route) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes[r.Dst] = r.Via
	return nil
}

func (m *memTable) Delete(r Route) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.routes, r.Dst)
	return nil
}

func (m *memTable) strings() []string {
	rs, _ := m.List()
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	sort.Strings(out)
	return out
}

func TestReconcilerFollowsNodesAndCleansUp(t *testing.T) {
	ctx := context.Background()
	a := MakeNode("a").CIDR("10.244.0.0/24").IP("192.168.1.10").Obj()
	b := MakeNode("b").CIDR("10.244.1.0/24").IP("192.168.1.11").Obj()
	c := MakeNode("c").CIDR("10.244.2.0/24").IP("192.168.1.12").Obj()
	cl := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(&a, &b, &c).Build()
	// A route of an earlier run, to a node that is gone.
	table := &memTable{routes: map[netip.Prefix]netip.Addr{netip.MustParsePrefix("10.244.9.0/24"): netip.MustParseAddr("192.168.1.19")}}
	r := New(cl, table, Self{Name: "a", PodCIDR: netip.MustParsePrefix("10.244.0.0/24")})

	reconcileAndExpect := func(want ...string) {
		t.Helper()
		if _, err := r.Reconcile(ctx, requestKey); err != nil {
			t.Fatal(err)
		}
		if got := table.strings(); !slices.Equal(got, want) {
			t.Fatalf("routes %v, want %v", got, want)
		}
	}
	reconcileAndExpect("10.244.1.0/24 via 192.168.1.11", "10.244.2.0/24 via 192.168.1.12")

	// b moves to another address; c goes away.
	b.Status.Addresses[0].Address = "192.168.1.21"
	if err := cl.Update(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(ctx, &c); err != nil {
		t.Fatal(err)
	}
	reconcileAndExpect("10.244.1.0/24 via 192.168.1.21")

	// A clean stop removes every route.
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- r.Start(sctx) }()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := table.strings(); len(got) != 0 {
		t.Fatalf("routes left after stop: %v", got)
	}
	// And nothing comes back after it.
	reconcileAndExpect()
	var _ client.Reader = cl
}

// TestNetlinkTable programs real routes in a network namespace the test
// makes (as root), through a veth pair whose ends both stay inside it.
func TestNetlinkTable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command")
	}
	name := "skiff-routes-" + rand.String(6)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	for _, args := range [][]string{
		{"link", "add", "vra", "type", "veth", "peer", "name", "vrb"},
		{"addr", "add", "192.168.77.1/24", "dev", "vra"},
		{"link", "set", "vra", "up"},
		{"link", "set", "vrb", "up"},
		// A route of someone else's, which the table must not see or touch.
		{"route", "add", "10.99.0.0/24", "via", "192.168.77.3"},
	} {
		run(append([]string{"-n", name}, args...)...)
	}
	err := inNetns(name, func() error {
		tbl := NetlinkTable{}
		r := Route{Dst: netip.MustParsePrefix("10.244.1.0/24"), Via: netip.MustParseAddr("192.168.77.2")}
		if err := tbl.Replace(r); err != nil {
			return err
		}
		// A new gateway for the same destination replaces the route.
		r.Via = netip.MustParseAddr("192.168.77.4")
		if err := tbl.Replace(r); err != nil {
			return err
		}
		got, err := tbl.List()
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Dst != r.Dst || got[0].Via != r.Via {
			return fmt.Errorf("List = %v, want [%v]", got, r)
		}
		// Someone else's route to a destination is left alone.
		if err := tbl.Replace(Route{Dst: netip.MustParsePrefix("10.99.0.0/24"), Via: netip.MustParseAddr("192.168.77.2")}); err == nil {
			return fmt.Errorf("another plugin's route was replaced")
		}
		// A gateway off the link is refused.
		if err := tbl.Replace(Route{Dst: netip.MustParsePrefix("10.244.2.0/24"), Via: netip.MustParseAddr("172.31.0.1")}); err == nil {
			return fmt.Errorf("a route through an unreachable gateway was accepted")
		}
		if err := Cleanup(tbl); err != nil {
			return err
		}
		if got, _ := tbl.List(); len(got) != 0 {
			return fmt.Errorf("routes left: %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-n", name, "route", "show", "10.99.0.0/24").CombinedOutput()
	if err != nil || len(out) == 0 {
		t.Fatalf("someone else's route is gone: %v %s", err, out)
	}
}

// inNetns runs f on an OS thread inside the named network namespace; the
// thread is discarded afterwards.
func inNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open("/var/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering %s: %w", name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
