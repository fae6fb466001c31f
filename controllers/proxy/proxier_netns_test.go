package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/knftables"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// netns is a network namespace the test made: a loopback with the "pod"
// address, and a veth pair whose ends both stay inside, to give the
// namespace a default route. No packet leaves it.
type netns struct{ name string }

func newNetns(t testing.TB) *netns {
	t.Helper()
	n := &netns{name: "skiff-proxy-" + rand.String(6)}
	run(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.name).Run() })
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "vpa", "type", "veth", "peer", "name", "vpb"},
		{"addr", "add", "10.250.0.1/30", "dev", "vpa"},
		{"addr", "add", "10.250.0.2/30", "dev", "vpb"},
		{"link", "set", "vpa", "up"},
		{"link", "set", "vpb", "up"},
		{"route", "add", "default", "via", "10.250.0.2"},
		{"addr", "add", "10.244.1.10/32", "dev", "lo"},
	} {
		run(t, "ip", append([]string{"-n", n.name}, args...)...)
	}
	return n
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// do runs f on an OS thread inside the namespace; the thread is discarded
// afterwards, so no other goroutine ever runs in the namespace by accident.
func (n *netns) do(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open("/var/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			panic(err)
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			panic(err)
		}
		f()
	}()
	<-done
}

// get sends one HTTP request over a connection made inside the namespace.
func (n *netns) get(addr string) (body string, err error) {
	n.do(func() {
		var conn net.Conn
		conn, err = net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: test\r\n\r\n")
		var resp *http.Response
		resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
	})
	return body, err
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func TestProxyInNetworkNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace and program nftables")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft tool (Debian package nftables)")
	}
	ns := newNetns(t)

	// The "pod": an HTTP server on 10.244.1.10:8080 inside the namespace.
	var ln net.Listener
	ns.do(func() {
		var err error
		ln, err = net.Listen("tcp", "10.244.1.10:8080")
		if err != nil {
			panic(err)
		}
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello from the pod") })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	c, err := client.New(cp.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}

	svc := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.ClusterIP = "10.112.0.20"
	svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, NodePort: 30080}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	eps := &corev1alpha1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.10"}, NodeName: ptr.To("n1"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	if err := c.Create(ctx, eps); err != nil {
		t.Fatal(err)
	}

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: scheme.New(), Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	nft, err := knftables.New(knftables.IPv4Family, TableName)
	if err != nil {
		t.Fatal(err)
	}
	p := New(nft, mgr.GetCache(), Config{ServiceCIDR: netip.MustParsePrefix("10.112.0.0/16"), NodeName: "n1"})
	p.MinSyncPeriod = 100 * time.Millisecond
	if err := p.watch(mgr); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	stopped := make(chan struct{})
	go ns.do(func() {
		defer close(stopped)
		_ = p.Start(ctx)
	})

	eventually(t, "ClusterIP reaches the pod", func() error {
		body, err := ns.get("10.112.0.20:80")
		if err == nil && body != "hello from the pod" {
			err = fmt.Errorf("unexpected body %q", body)
		}
		return err
	})
	eventually(t, "NodePort reaches the pod", func() error {
		_, err := ns.get("10.250.0.1:30080")
		return err
	})

	start := time.Now()
	if _, err := ns.get("10.112.0.99:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("an address of the service CIDR with no Service: got %v, want connection refused", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the refusal took %v; it must be immediate", took)
	}

	// Partial syncs in the kernel: a second Service with session affinity
	// comes, then goes, and its address goes to a third one.
	addService := func(name, ip string, affinity bool) (*corev1alpha1.Service, *corev1alpha1.EndpointSlice) {
		s := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
		s.Spec.ClusterIP = ip
		s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}}
		if affinity {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		}
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		sl := eps.DeepCopy()
		sl.ObjectMeta = metav1.ObjectMeta{Name: name + "-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: name}}
		if err := c.Create(ctx, sl); err != nil {
			t.Fatal(err)
		}
		return s, sl
	}
	reaches := func(addr string) func() error {
		return func() error { _, err := ns.get(addr); return err }
	}
	refuses := func(addr string) func() error {
		return func() error {
			if _, err := ns.get(addr); !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("got %v, want connection refused", err)
			}
			return nil
		}
	}
	api, apiSlice := addService("api", "10.112.0.21", true)
	eventually(t, "a second Service is added by a partial sync", reaches("10.112.0.21:80"))
	if s := p.LastSync(); s.Full || s.Rewritten != 1 {
		t.Errorf("adding a Service: sync %+v, want a partial one of one service port", s)
	}
	if err := c.Delete(ctx, api); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, apiSlice); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a deleted Service refuses", refuses("10.112.0.21:80"))
	addService("api2", "10.112.0.21", false)
	eventually(t, "a new Service on a freed address", reaches("10.112.0.21:80"))
	eventually(t, "the first Service still answers", reaches("10.112.0.20:80"))
	if _, err := p.Syncs(); err != nil {
		t.Errorf("last sync: %v", err)
	}

	eps.Endpoints = nil
	if err := c.Update(ctx, eps); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a Service without endpoints refuses", func() error {
		if _, err := ns.get("10.112.0.20:80"); !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("got %v, want connection refused", err)
		}
		return nil
	})

	cancel()
	<-stopped
	var out []byte
	ns.do(func() { out, _ = exec.Command("nft", "list", "tables").CombinedOutput() })
	if strings.Contains(string(out), TableName) {
		t.Errorf("the proxy left its table behind on shutdown:\n%s", out)
	}
}
