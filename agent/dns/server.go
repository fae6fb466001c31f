// Package dns is the cluster DNS of skiff-agent: it answers for the skiff
// Services of the cluster as the Kubernetes DNS-based service discovery
// specification says (kubernetes/dns, docs/specification.md), from the
// agent's cache of Services and EndpointSlices, and forwards every other
// name to the node's own resolvers.
//
//	<service>.<ns>.svc.<zone>            A: the ClusterIP, or each ready endpoint of a headless Service
//	<hostname>.<service>.<ns>.svc.<zone> A: the endpoint with that hostname (StatefulSet pods)
//	_<port>._<proto>.<service>.<ns>.svc.<zone>  SRV: each named port
//	<d.c.b.a>.in-addr.arpa               PTR: the Service of a ClusterIP
//
// It reads the API through the cache only and writes nothing.
package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// DefaultZone is the cluster domain.
const DefaultZone = "cluster.local."

// ttl of every answer, as kube-dns and CoreDNS use by default.
const ttl = 30

// Server answers DNS queries over UDP and TCP.
type Server struct {
	reader client.Reader
	zone   string
	// Upstreams receive the queries for names outside the zone ("host:port").
	upstreams []string

	udp, tcp *dns.Server
	ready    chan struct{}
}

// Options configure a Server.
type Options struct {
	// Addr is where to listen, such as "10.244.0.1:53".
	Addr string
	// Zone is the cluster domain; empty means cluster.local.
	Zone string
	// Upstreams are resolvers for other names; nil reads /etc/resolv.conf.
	Upstreams []string
}

// New returns a server reading Services and EndpointSlices from reader.
func New(reader client.Reader, opts Options) (*Server, error) {
	zone := dns.Fqdn(strings.ToLower(opts.Zone))
	if opts.Zone == "" {
		zone = DefaultZone
	}
	upstreams := opts.Upstreams
	if upstreams == nil {
		if conf, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
			for _, s := range conf.Servers {
				upstreams = append(upstreams, net.JoinHostPort(s, conf.Port))
			}
		}
	}
	s := &Server{reader: reader, zone: zone, upstreams: upstreams, ready: make(chan struct{})}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", s.serve)
	s.udp = &dns.Server{Addr: opts.Addr, Net: "udp", Handler: mux}
	s.tcp = &dns.Server{Addr: opts.Addr, Net: "tcp", Handler: mux}
	return s, nil
}

// NeedLeaderElection is false: every node serves its own pods.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends. It binds its address with IP_FREEBIND, so
// that it can listen on the gateway address of the node's pod bridge before
// the first pod creates that bridge.
func (s *Server) Start(ctx context.Context) error {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp", s.udp.Addr)
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	l, err := lc.Listen(ctx, "tcp", s.tcp.Addr)
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("cluster DNS: %w", err)
	}
	s.udp.PacketConn, s.tcp.Listener = pc, l
	errc := make(chan error, 2)
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go func() { errc <- s.udp.ActivateAndServe() }()
	go func() { errc <- s.tcp.ActivateAndServe() }()
	go func() {
		<-started
		<-started
		close(s.ready)
	}()
	ctrl.LoggerFrom(ctx).Info("Serving cluster DNS", "addr", s.udp.Addr, "zone", s.zone)
	select {
	case <-ctx.Done():
	case err := <-errc:
		_ = s.udp.Shutdown()
		_ = s.tcp.Shutdown()
		return fmt.Errorf("cluster DNS: %w", err)
	}
	_ = s.udp.Shutdown()
	_ = s.tcp.Shutdown()
	return nil
}

// Ready is closed once the UDP and TCP listeners serve.
func (s *Server) Ready() <-chan struct{} { return s.ready }

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	switch {
	case strings.HasSuffix(name, "."+s.zone) || name == s.zone:
		_ = w.WriteMsg(s.answer(ctx, req, q, strings.TrimSuffix(name, s.zone)))
	case strings.HasSuffix(name, ".in-addr.arpa."):
		if m, ok := s.reverse(ctx, req, q, name); ok {
			_ = w.WriteMsg(m)
			return
		}
		s.forward(w, req)
	default:
		s.forward(w, req)
	}
}

// answer resolves a name of the cluster zone; rel is the name without the
// zone, with a trailing dot ("web.default.svc.").
func (s *Server) answer(ctx context.Context, req *dns.Msg, q dns.Question, rel string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	labels := dns.SplitDomainName(rel)
	var rrs []dns.RR
	found := false
	switch {
	// _port._proto.service.ns.svc
	case len(labels) == 5 && labels[4] == "svc" && strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_"):
		rrs, found = s.srv(ctx, q, strings.TrimPrefix(labels[0], "_"), strings.TrimPrefix(labels[1], "_"), labels[2], labels[3])
	// service.ns.svc
	case len(labels) == 3 && labels[2] == "svc":
		rrs, found = s.service(ctx, q, labels[0], labels[1], "")
	// hostname.service.ns.svc
	case len(labels) == 4 && labels[3] == "svc":
		rrs, found = s.service(ctx, q, labels[1], labels[2], labels[0])
	// ns.svc, svc, the zone itself: names that exist without records
	case len(labels) <= 2 && (len(labels) == 0 || labels[len(labels)-1] == "svc" || labels[len(labels)-1] == "pod"):
		found = true
	}
	if !found {
		m.SetRcode(req, dns.RcodeNameError)
	}
	if len(rrs) == 0 {
		m.Ns = []dns.RR{s.soa()}
	}
	m.Answer = rrs
	return m
}

func (s *Server) soa() dns.RR {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: s.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:  "ns.dns." + s.zone, Mbox: "hostmaster." + s.zone,
		Serial: uint32(time.Now().Unix()), Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: ttl,
	}
}

func a(name string, ip string) dns.RR {
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.ParseIP(ip).To4()}
}

// service answers for a Service or, with host, one endpoint of a headless
// Service; found is false when no such name exists.
func (s *Server) service(ctx context.Context, q dns.Question, name, ns, host string) ([]dns.RR, bool) {
	svc := &corev1alpha1.Service{}
	if err := s.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		return nil, false
	}
	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	if host == "" && !headless {
		if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
			return []dns.RR{a(q.Name, svc.Spec.ClusterIP)}, true
		}
		return nil, true
	}
	if !headless {
		return nil, false
	}
	var rrs []dns.RR
	found := host == ""
	for _, ep := range s.endpoints(ctx, svc) {
		if host != "" && ptr.Deref(ep.Hostname, "") != host {
			continue
		}
		found = true
		if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
			rrs = append(rrs, a(q.Name, ep.Addresses[0]))
		}
	}
	return rrs, found
}

// endpoints lists the ready endpoints of a Service (every endpoint with
// publishNotReadyAddresses, whose slices mark all of them ready).
func (s *Server) endpoints(ctx context.Context, svc *corev1alpha1.Service) []discoveryv1.Endpoint {
	slices := &corev1alpha1.EndpointSliceList{}
	if err := s.reader.List(ctx, slices, client.InNamespace(svc.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
		return nil
	}
	var out []discoveryv1.Endpoint
	seen := map[string]bool{}
	for _, sl := range slices.Items {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 || !ptr.Deref(ep.Conditions.Ready, true) || seen[ep.Addresses[0]] {
				continue
			}
			seen[ep.Addresses[0]] = true
			out = append(out, ep)
		}
	}
	return out
}

// srv answers _port._proto.service.ns.svc with the named port of the Service.
func (s *Server) srv(ctx context.Context, q dns.Question, port, proto, name, ns string) ([]dns.RR, bool) {
	svc := &corev1alpha1.Service{}
	if err := s.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		return nil, false
	}
	target := fmt.Sprintf("%s.%s.svc.%s", name, ns, s.zone)
	var rrs []dns.RR
	found := false
	for _, sp := range svc.Spec.Ports {
		protocol := sp.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		if sp.Name != port || !strings.EqualFold(string(protocol), proto) {
			continue
		}
		found = true
		if q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY {
			continue
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			rrs = append(rrs, &dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: ttl},
				Priority: 0, Weight: 100, Port: uint16(sp.Port), Target: target})
			continue
		}
		for _, ep := range s.endpoints(ctx, svc) {
			host := ptr.Deref(ep.Hostname, strings.ReplaceAll(ep.Addresses[0], ".", "-"))
			rrs = append(rrs, &dns.SRV{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: ttl},
				Priority: 0, Weight: 100, Port: uint16(sp.Port), Target: host + "." + target})
		}
	}
	return rrs, found
}

// reverse answers PTR queries for ClusterIPs.
func (s *Server) reverse(ctx context.Context, req *dns.Msg, q dns.Question, name string) (*dns.Msg, bool) {
	parts := dns.SplitDomainName(strings.TrimSuffix(name, ".in-addr.arpa."))
	if len(parts) != 4 || q.Qtype != dns.TypePTR {
		return nil, false
	}
	ip, err := netip.ParseAddr(strings.Join([]string{parts[3], parts[2], parts[1], parts[0]}, "."))
	if err != nil {
		return nil, false
	}
	services := &corev1alpha1.ServiceList{}
	if err := s.reader.List(ctx, services); err != nil {
		return nil, false
	}
	for _, svc := range services.Items {
		if svc.Spec.ClusterIP == ip.String() {
			m := new(dns.Msg)
			m.SetReply(req)
			m.Authoritative = true
			m.Answer = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl},
				Ptr: fmt.Sprintf("%s.%s.svc.%s", svc.Name, svc.Namespace, s.zone)}}
			return m, true
		}
	}
	return nil, false
}

// forward relays a query for another zone to the node's resolvers.
func (s *Server) forward(w dns.ResponseWriter, req *dns.Msg) {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if _, isTCP := w.RemoteAddr().(*net.TCPAddr); isTCP {
		c.Net = "tcp"
	}
	for _, up := range s.upstreams {
		resp, _, err := c.Exchange(req, up)
		if err == nil {
			_ = w.WriteMsg(resp)
			return
		}
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	_ = w.WriteMsg(m)
}
