package pods

import (
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Limits of a pod's resolv.conf, as the upstream kubelet applies them
// (validation.MaxDNSNameservers, MaxDNSSearchPaths, MaxDNSSearchListChars).
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

// clusterDNSOptions are the resolver options of ClusterFirst pods: names
// with fewer than five dots try the cluster search list first.
var clusterDNSOptions = []string{"ndots:5"}

// dnsConfig is the resolv.conf of a pod's sandbox, per its dnsPolicy and
// dnsConfig, as the upstream kubelet computes it (pkg/kubelet/network/dns):
//
//   - ClusterFirst (not hostNetwork) and ClusterFirstWithHostNet: the cluster
//     DNS servers only, the search list <ns>.svc.<domain> svc.<domain>
//     <domain> followed by the host's, and ndots:5; without cluster DNS
//     servers, the pod falls back to Default;
//   - Default, and ClusterFirst on the host network: the host's resolv.conf;
//   - None: nothing but the pod's dnsConfig.
//
// The pod's dnsConfig is then merged in: nameservers and searches appended
// without duplicates, options overriding those of the same name; the result
// is cut to three nameservers and the search-list limits.
func (n *Node) dnsConfig(pod *corev1alpha1.Pod) *runtimeapi.DNSConfig {
	cfg := n.hostDNS()
	switch policy := pod.Spec.DNSPolicy; {
	case policy == corev1.DNSNone:
		cfg = &runtimeapi.DNSConfig{}
	case policy == corev1.DNSClusterFirstWithHostNet,
		(policy == corev1.DNSClusterFirst || policy == "") && !pod.Spec.HostNetwork:
		if len(n.opts.ClusterDNS) == 0 {
			break // no cluster DNS on this node: as Default
		}
		cfg.Servers = append([]string(nil), n.opts.ClusterDNS...)
		if d := strings.TrimSuffix(n.opts.ClusterDomain, "."); d != "" {
			cfg.Searches = append([]string{pod.Namespace + ".svc." + d, "svc." + d, d}, cfg.Searches...)
		}
		cfg.Options = append([]string(nil), clusterDNSOptions...)
	}
	if pc := pod.Spec.DNSConfig; pc != nil {
		cfg.Servers = withoutDuplicates(append(cfg.Servers, pc.Nameservers...))
		cfg.Searches = withoutDuplicates(append(cfg.Searches, pc.Searches...))
		cfg.Options = mergeDNSOptions(cfg.Options, pc.Options)
	}
	if len(cfg.Servers) > maxDNSNameservers {
		cfg.Servers = cfg.Servers[:maxDNSNameservers]
	}
	cfg.Searches = searchesWithinLimits(cfg.Searches)
	return cfg
}

func (n *Node) hostDNS() *runtimeapi.DNSConfig {
	if n.opts.HostDNS != nil {
		if c := n.opts.HostDNS(); c != nil {
			return &runtimeapi.DNSConfig{
				Servers:  append([]string(nil), c.Servers...),
				Searches: append([]string(nil), c.Searches...),
				Options:  append([]string(nil), c.Options...),
			}
		}
	}
	return &runtimeapi.DNSConfig{}
}

func withoutDuplicates(in []string) []string {
	seen := map[string]bool{}
	out := in[:0:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// mergeDNSOptions keeps the order of the base options, replaces those the
// pod names again, and appends the pod's new ones.
func mergeDNSOptions(base []string, pod []corev1.PodDNSConfigOption) []string {
	render := func(o corev1.PodDNSConfigOption) string {
		if o.Value != nil && *o.Value != "" {
			return o.Name + ":" + *o.Value
		}
		return o.Name
	}
	index := map[string]int{}
	var out []string
	for _, o := range base {
		name, _, _ := strings.Cut(o, ":")
		if i, ok := index[name]; ok {
			out[i] = o
			continue
		}
		index[name] = len(out)
		out = append(out, o)
	}
	for _, o := range pod {
		if i, ok := index[o.Name]; ok {
			out[i] = render(o)
			continue
		}
		index[o.Name] = len(out)
		out = append(out, render(o))
	}
	return out
}

// searchesWithinLimits drops the search domains beyond the resolver limits
// (32 domains, 2048 characters), as upstream.
func searchesWithinLimits(searches []string) []string {
	if len(searches) > maxDNSSearchPaths {
		searches = searches[:maxDNSSearchPaths]
	}
	total := 0
	for i, s := range searches {
		if total+len(s) > maxDNSSearchListChars {
			return searches[:i]
		}
		total += len(s) + 1
	}
	return searches
}

// ResolvConfDNS reads the host's resolver configuration (the base of pods
// with dnsPolicy Default, and the host search list that ClusterFirst pods
// append): nameserver lines accumulate, the last search and options lines
// win, as upstream parses resolv.conf.
func ResolvConfDNS(path string) func() *runtimeapi.DNSConfig {
	return func() *runtimeapi.DNSConfig {
		b, err := os.ReadFile(path)
		if err != nil {
			return &runtimeapi.DNSConfig{}
		}
		return ParseResolvConf(string(b))
	}
}

// ParseResolvConf parses the text of a resolv.conf.
func ParseResolvConf(text string) *runtimeapi.DNSConfig {
	cfg := &runtimeapi.DNSConfig{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				cfg.Servers = append(cfg.Servers, f[1])
			}
		case "search":
			cfg.Searches = append([]string(nil), f[1:]...)
		case "options":
			cfg.Options = append([]string(nil), f[1:]...)
		}
	}
	return cfg
}
