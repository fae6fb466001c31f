package proxy

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// The nftables ruleset, computed from Services and EndpointSlices with no
// side effects (kube-proxy's nftables proxier is the model):
//
//	chain nat-prerouting / nat-output (dstnat) → services
//	chain services: ClusterIP . proto . port vmap @service-ips,
//	                local address . proto . port vmap @service-nodeports
//	chain svc-*   : session affinity, then numgen random over the endpoints
//	chain ext-*   : NodePort entry (masquerade unless externalTrafficPolicy Local)
//	chain ep-*    : hairpin masquerade mark, affinity update, DNAT
//	chain filter-* (filter hooks): reject what is still addressed to the
//	                service CIDR after DNAT, so it never leaves the node
//	chain nat-postrouting (srcnat): masquerade marked packets

const (
	masqueradeMark = "0x4000"

	chainServices        = "services"
	chainMarkMasquerade  = "mark-for-masquerade"
	chainMasquerading    = "masquerading"
	mapServiceIPs        = "service-ips"
	mapServiceNodePorts  = "service-nodeports"
	defaultAffinityLimit = 10800
)

// Config is what the ruleset depends on besides the API objects.
type Config struct {
	// ServiceCIDR is rejected on the node when no Service matches.
	ServiceCIDR netip.Prefix
	// PodCIDR is this node's pod range: traffic from it to a Service is
	// masqueraded when the bridge does not pass through netfilter.
	PodCIDR netip.Prefix
	// NodeName selects local endpoints for traffic policy Local.
	NodeName string
	// MasqueradePodTraffic masquerades pod-to-Service traffic, needed when
	// replies between pods on one bridge bypass netfilter (no br_netfilter).
	MasqueradePodTraffic bool
}

// servicePort is one port of one Service, with the endpoints that serve it.
type servicePort struct {
	key                          string // namespace/name:port/protocol
	clusterIP                    string
	protocol                     string // tcp or udp
	port                         int32
	nodePort                     int32
	affinity                     int32 // ClientIP affinity timeout in seconds; 0 for none
	internalLocal, externalLocal bool
	endpoints                    []endpoint
}

type endpoint struct {
	ip    string
	port  int32
	local bool
}

// collect joins Services with their EndpointSlices into service ports,
// keeping the endpoints that may receive traffic: ready ones, or serving
// terminating ones when none is ready, as upstream.
func collect(services []corev1alpha1.Service, slices []corev1alpha1.EndpointSlice, nodeName string) []servicePort {
	byService := map[string][]*corev1alpha1.EndpointSlice{}
	for i := range slices {
		s := &slices[i]
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" || s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		byService[s.Namespace+"/"+name] = append(byService[s.Namespace+"/"+name], s)
	}
	var out []servicePort
	for _, svc := range services {
		if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone || !svc.DeletionTimestamp.IsZero() {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			protocol := sp.Protocol
			if protocol == "" {
				protocol = corev1.ProtocolTCP
			}
			p := servicePort{
				key:           fmt.Sprintf("%s/%s:%s/%s", svc.Namespace, svc.Name, portID(sp), protocol),
				clusterIP:     svc.Spec.ClusterIP,
				protocol:      strings.ToLower(string(protocol)),
				port:          sp.Port,
				internalLocal: ptr.Deref(svc.Spec.InternalTrafficPolicy, "") == corev1.ServiceInternalTrafficPolicyLocal,
				externalLocal: svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
			}
			if svc.Spec.Type == corev1.ServiceTypeNodePort {
				p.nodePort = sp.NodePort
			}
			if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
				p.affinity = defaultAffinityLimit
				if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
					p.affinity = *c.ClientIP.TimeoutSeconds
				}
			}
			p.endpoints = endpointsFor(byService[svc.Namespace+"/"+svc.Name], sp.Name, protocol, nodeName)
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func portID(sp corev1.ServicePort) string {
	if sp.Name != "" {
		return sp.Name
	}
	return fmt.Sprint(sp.Port)
}

func endpointsFor(slices []*corev1alpha1.EndpointSlice, portName string, protocol corev1.Protocol, nodeName string) []endpoint {
	var ready, terminating []endpoint
	seen := map[string]bool{}
	for _, s := range slices {
		var port int32
		found := false
		for _, p := range s.Ports {
			if ptr.Deref(p.Name, "") == portName && ptr.Deref(p.Protocol, corev1.ProtocolTCP) == protocol && p.Port != nil {
				port, found = *p.Port, true
			}
		}
		if !found {
			continue
		}
		for _, ep := range s.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			e := endpoint{ip: ep.Addresses[0], port: port, local: ptr.Deref(ep.NodeName, "") == nodeName}
			id := fmt.Sprintf("%s:%d", e.ip, e.port)
			if seen[id] {
				continue
			}
			seen[id] = true
			switch {
			case ptr.Deref(ep.Conditions.Ready, true):
				ready = append(ready, e)
			case ptr.Deref(ep.Conditions.Serving, false) && ptr.Deref(ep.Conditions.Terminating, false):
				terminating = append(terminating, e)
			}
		}
	}
	eps := ready
	if len(eps) == 0 {
		eps = terminating
	}
	sort.Slice(eps, func(i, j int) bool {
		if eps[i].ip != eps[j].ip {
			return eps[i].ip < eps[j].ip
		}
		return eps[i].port < eps[j].port
	})
	return eps
}

func hashName(prefix string, parts ...string) string {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(parts, "|")))
	return fmt.Sprintf("%s-%016x", prefix, h.Sum64())
}

func localOnly(eps []endpoint) []endpoint {
	var out []endpoint
	for _, e := range eps {
		if e.local {
			out = append(out, e)
		}
	}
	return out
}

// baseChains are the chains every sync keeps, with their hooks.
var baseChains = []struct {
	name, hook, typ, priority string
}{
	{"nat-prerouting", "prerouting", "nat", "dstnat"},
	{"nat-output", "output", "nat", "dstnat"},
	{"nat-postrouting", "postrouting", "nat", "srcnat"},
	{"filter-output", "output", "filter", "filter - 10"},
	{"filter-forward", "forward", "filter", "filter - 10"},
}

// isBaseChain tells the chains that writeBase owns.
func isBaseChain(name string) bool {
	switch name {
	case chainServices, chainMarkMasquerade, chainMasquerading:
		return true
	}
	for _, c := range baseChains {
		if c.name == name {
			return true
		}
	}
	return false
}

// writeBase (re)writes the table, its hooked chains, the service maps
// (emptied) and the rules that do not depend on any Service.
func writeBase(tx *knftables.Transaction, cfg Config) {
	tx.Add(&knftables.Table{Comment: ptr.To("skiff service proxy")})
	for _, c := range baseChains {
		tx.Add(&knftables.Chain{
			Name: c.name, Type: ptr.To(knftables.BaseChainType(c.typ)),
			Hook: ptr.To(knftables.BaseChainHook(c.hook)), Priority: ptr.To(knftables.BaseChainPriority(c.priority)),
		})
		tx.Flush(&knftables.Chain{Name: c.name})
	}
	for _, name := range []string{chainServices, chainMarkMasquerade, chainMasquerading} {
		tx.Add(&knftables.Chain{Name: name})
		tx.Flush(&knftables.Chain{Name: name})
	}
	tx.Add(&knftables.Rule{Chain: "nat-prerouting", Rule: "jump " + chainServices})
	tx.Add(&knftables.Rule{Chain: "nat-output", Rule: "jump " + chainServices})
	tx.Add(&knftables.Rule{Chain: "nat-postrouting", Rule: "jump " + chainMasquerading})
	tx.Add(&knftables.Rule{Chain: chainMarkMasquerade, Rule: "meta mark set meta mark | " + masqueradeMark})
	tx.Add(&knftables.Rule{Chain: chainMasquerading, Rule: "meta mark & " + masqueradeMark + " == 0 return"})
	tx.Add(&knftables.Rule{Chain: chainMasquerading, Rule: "meta mark set meta mark ^ " + masqueradeMark})
	tx.Add(&knftables.Rule{Chain: chainMasquerading, Rule: "masquerade fully-random"})
	for _, chain := range []string{"filter-output", "filter-forward"} {
		tx.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat("ip daddr", cfg.ServiceCIDR.String(), "reject"),
			Comment: ptr.To("no service at this address")})
	}
	tx.Add(&knftables.Map{Name: mapServiceIPs, Type: "ipv4_addr . inet_proto . inet_service : verdict"})
	tx.Add(&knftables.Map{Name: mapServiceNodePorts, Type: "inet_proto . inet_service : verdict"})
	tx.Flush(&knftables.Map{Name: mapServiceIPs})
	tx.Flush(&knftables.Map{Name: mapServiceNodePorts})
	tx.Add(&knftables.Rule{Chain: chainServices, Rule: "ip daddr . meta l4proto . th dport vmap @" + mapServiceIPs})
	tx.Add(&knftables.Rule{Chain: chainServices, Rule: "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @" + mapServiceNodePorts})
}

// portRules is everything one service port owns in the table: its chains
// with their rules, its affinity sets and its map elements. Names derive
// from the port's key, so an unchanged part keeps its name across syncs.
type portRules struct {
	chains   []chainRules
	sets     []*knftables.Set
	elements []*knftables.Element
}

type chainRules struct {
	name  string
	rules []string
}

// rulesFor renders the rules of one service port.
func rulesFor(cfg Config, p servicePort) *portRules {
	pr := &portRules{}
	internal := p.endpoints
	if p.internalLocal {
		internal = localOnly(internal)
	}
	if len(internal) > 0 {
		svcChain := hashName("svc", p.key)
		pr.addServiceChain(cfg, svcChain, p, internal, true)
		pr.elements = append(pr.elements, &knftables.Element{Map: mapServiceIPs, Key: []string{p.clusterIP, p.protocol, fmt.Sprint(p.port)}, Value: []string{"goto " + svcChain}})
	}
	if p.nodePort == 0 {
		return pr
	}
	external := p.endpoints
	if p.externalLocal {
		external = localOnly(external)
	}
	if len(external) == 0 {
		return pr
	}
	ext := chainRules{name: hashName("ext", p.key)}
	if !p.externalLocal {
		ext.rules = append(ext.rules, "jump "+chainMarkMasquerade)
	}
	target := hashName("svx", p.key)
	ext.rules = append(ext.rules, "goto "+target)
	pr.chains = append(pr.chains, ext)
	pr.addServiceChain(cfg, target, p, external, false)
	pr.elements = append(pr.elements, &knftables.Element{Map: mapServiceNodePorts, Key: []string{p.protocol, fmt.Sprint(p.nodePort)}, Value: []string{"goto " + ext.name}})
	return pr
}

// addServiceChain adds the chain that picks an endpoint for one service
// port, and the endpoint chains it jumps to (once: the ClusterIP and the
// NodePort chains share them).
func (pr *portRules) addServiceChain(cfg Config, name string, p servicePort, eps []endpoint, fromClusterIP bool) {
	have := map[string]bool{}
	for _, c := range pr.chains {
		have[c.name] = true
	}
	svc := chainRules{name: name}
	if fromClusterIP && cfg.MasqueradePodTraffic && cfg.PodCIDR.IsValid() {
		svc.rules = append(svc.rules, knftables.Concat("ip saddr", cfg.PodCIDR.String(), "jump", chainMarkMasquerade))
	}
	var pick []string
	var epChains []chainRules
	for i, e := range eps {
		ep := chainRules{name: hashName("ep", p.key, e.ip, fmt.Sprint(e.port))}
		// Rule i is reached with probability (n-i)/n and taken with 1/(n-i),
		// so each endpoint gets 1/n. Only a connection's first packet goes
		// through NAT chains, so n rules cost little. An anonymous verdict
		// map per Service ("numgen random mod n vmap {...}") costs more to
		// program: measured here, 3000 Services took 1.6 s instead of 0.57 s,
		// growing faster than the number of Services.
		if i < len(eps)-1 {
			pick = append(pick, fmt.Sprintf("numgen random mod %d == 0 goto %s", len(eps)-i, ep.name))
		} else {
			pick = append(pick, "goto "+ep.name)
		}
		// The affinity timeout is part of the set's name: a set's timeout
		// cannot change in place, and a new name gives a fresh set.
		set := hashName("aff", p.key, e.ip, fmt.Sprint(e.port), fmt.Sprint(p.affinity))
		if p.affinity > 0 {
			svc.rules = append(svc.rules, knftables.Concat("ip saddr @"+set, "goto", ep.name))
		}
		if have[ep.name] {
			continue
		}
		have[ep.name] = true
		if p.affinity > 0 {
			pr.sets = append(pr.sets, &knftables.Set{Name: set, Type: "ipv4_addr", Flags: []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
				Timeout: ptr.To(time.Duration(p.affinity) * time.Second)})
			ep.rules = append(ep.rules, "update @"+set+" { ip saddr }")
		}
		ep.rules = append(ep.rules,
			knftables.Concat("ip saddr", e.ip, "jump", chainMarkMasquerade),
			knftables.Concat("meta l4proto", p.protocol, "dnat to", fmt.Sprintf("%s:%d", e.ip, e.port)))
		epChains = append(epChains, ep)
	}
	svc.rules = append(svc.rules, pick...)
	pr.chains = append(append(pr.chains, svc), epChains...)
}

// write adds the port's sets and chains, and fills the chains; a chain for
// which existed says true is emptied first (flushing a chain that cannot
// exist yet only costs time). The elements are added by the caller, once
// every chain they name exists.
func (pr *portRules) write(tx *knftables.Transaction, existed func(chain string) bool) {
	for _, s := range pr.sets {
		tx.Add(s)
	}
	// Every chain exists before a rule jumps to it.
	for _, c := range pr.chains {
		tx.Add(&knftables.Chain{Name: c.name})
	}
	for _, c := range pr.chains {
		if existed(c.name) {
			tx.Flush(&knftables.Chain{Name: c.name})
		}
		for _, r := range c.rules {
			tx.Add(&knftables.Rule{Chain: c.name, Rule: r})
		}
	}
}

// removal gathers what a sync takes out of the table. Elements go first,
// chains are flushed before any is deleted (a chain may only go once
// nothing jumps to it), and sets go last, once no rule names them.
type removal struct {
	elements []*knftables.Element
	chains   []string
	sets     []string
}

func (r *removal) flushAndDelete(tx *knftables.Transaction) {
	for _, c := range r.chains {
		tx.Flush(&knftables.Chain{Name: c})
	}
	for _, c := range r.chains {
		tx.Delete(&knftables.Chain{Name: c})
	}
	for _, s := range r.sets {
		tx.Delete(&knftables.Set{Name: s})
	}
}

func elementID(e *knftables.Element) string {
	return e.Map + "|" + strings.Join(e.Key, " . ") + "|" + strings.Join(e.Value, " ")
}

// ruleset fills tx with the whole ruleset for ports, as a full sync into a
// table that holds nothing else.
func ruleset(tx *knftables.Transaction, cfg Config, ports []servicePort) {
	writeBase(tx, cfg)
	var elements []*knftables.Element
	for _, p := range ports {
		pr := rulesFor(cfg, p)
		pr.write(tx, func(string) bool { return false })
		elements = append(elements, pr.elements...)
	}
	for _, e := range elements {
		tx.Add(e)
	}
}

// fingerprint sums up everything the rules of a service port depend on,
// so that a sync renders and rewrites only the ports whose sum changed.
func (p *servicePort) fingerprint() uint64 {
	h := fnv.New64a()
	var b []byte
	str := func(s string) { b = append(append(b, s...), 0) }
	num := func(n int32) { b = binary.LittleEndian.AppendUint32(b, uint32(n)) }
	flag := func(f bool) {
		if f {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	str(p.key)
	str(p.clusterIP)
	str(p.protocol)
	num(p.port)
	num(p.nodePort)
	num(p.affinity)
	flag(p.internalLocal)
	flag(p.externalLocal)
	for _, e := range p.endpoints {
		str(e.ip)
		num(e.port)
		flag(e.local)
	}
	_, _ = h.Write(b)
	return h.Sum64()
}
