package dns

import (
	"context"
	"net"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// upstream is a resolver on loopback that knows one outside name.
func upstream(t *testing.T) string {
	t.Helper()
	addr := "127.0.0.1:" + freePort(t)
	mux := dns.NewServeMux()
	mux.HandleFunc("example.org.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(192, 0, 2, 7)}}
		_ = w.WriteMsg(m)
	})
	srv := &dns.Server{Addr: addr, Net: "udp", Handler: mux}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ListenAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return addr
}

func TestClusterDNS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	c, err := client.New(cp.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	create := func(obj client.Object) {
		t.Helper()
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	web := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}
	web.Spec.ClusterIP = "10.112.0.20"
	web.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}
	create(web)
	db := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"}}
	db.Spec.ClusterIP = corev1.ClusterIPNone
	db.Spec.Ports = []corev1.ServicePort{{Name: "pg", Port: 5432}}
	create(db)
	create(&corev1alpha1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "db-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("pg"), Port: ptr.To[int32](5432)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.5"}, Hostname: ptr.To("db-0"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"10.244.1.6"}, Hostname: ptr.To("db-1"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"10.244.1.7"}, Hostname: ptr.To("db-2"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
	})

	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{Scheme: scheme.New(), Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + freePort(t)
	srv, err := New(mgr.GetCache(), Options{Addr: addr, Upstreams: []string{upstream(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(srv); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	select {
	case <-srv.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("the DNS server did not start")
	}

	query := func(name string, qtype uint16, network string) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		resp, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, addr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return resp
	}
	answers := func(resp *dns.Msg) []string {
		var out []string
		for _, rr := range resp.Answer {
			switch v := rr.(type) {
			case *dns.A:
				out = append(out, v.A.String())
			case *dns.SRV:
				out = append(out, strconv.Itoa(int(v.Port))+" "+v.Target)
			case *dns.PTR:
				out = append(out, v.Ptr)
			}
		}
		sort.Strings(out)
		return out
	}
	check := func(name string, qtype uint16, network string, wantRcode int, want ...string) {
		t.Helper()
		resp := query(name, qtype, network)
		if resp.Rcode != wantRcode {
			t.Errorf("%s: rcode %s, want %s", name, dns.RcodeToString[resp.Rcode], dns.RcodeToString[wantRcode])
		}
		got := answers(resp)
		sort.Strings(want)
		if len(got) != len(want) {
			t.Errorf("%s: answers %v, want %v", name, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: answers %v, want %v", name, got, want)
				return
			}
		}
	}

	check("web.default.svc.cluster.local.", dns.TypeA, "udp", dns.RcodeSuccess, "10.112.0.20")
	check("WEB.default.svc.cluster.local.", dns.TypeA, "tcp", dns.RcodeSuccess, "10.112.0.20")
	check("db.default.svc.cluster.local.", dns.TypeA, "udp", dns.RcodeSuccess, "10.244.0.5", "10.244.1.6")
	check("db-1.db.default.svc.cluster.local.", dns.TypeA, "udp", dns.RcodeSuccess, "10.244.1.6")
	check("_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, "udp", dns.RcodeSuccess, "80 web.default.svc.cluster.local.")
	check("_dns._udp.web.default.svc.cluster.local.", dns.TypeSRV, "udp", dns.RcodeSuccess, "53 web.default.svc.cluster.local.")
	check("_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, "udp", dns.RcodeSuccess,
		"5432 db-0.db.default.svc.cluster.local.", "5432 db-1.db.default.svc.cluster.local.")
	check("20.0.112.10.in-addr.arpa.", dns.TypePTR, "udp", dns.RcodeSuccess, "web.default.svc.cluster.local.")
	check("nothing.default.svc.cluster.local.", dns.TypeA, "udp", dns.RcodeNameError)
	check("db-9.db.default.svc.cluster.local.", dns.TypeA, "udp", dns.RcodeNameError)
	check("web.default.svc.cluster.local.", dns.TypeAAAA, "udp", dns.RcodeSuccess)
	check("example.org.", dns.TypeA, "udp", dns.RcodeSuccess, "192.0.2.7")
}
