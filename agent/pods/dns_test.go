package pods

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestDNSConfig(t *testing.T) {
	host := ParseResolvConf("# host\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch old.example\nsearch corp.example\noptions rotate timeout:2\n")
	withPolicy := func(p corev1.DNSPolicy, hostNet bool, cfg *corev1.PodDNSConfig) *corev1alpha1.Pod {
		pod := MakePod("web").Containers("c").Obj()
		pod.Spec.DNSPolicy, pod.Spec.HostNetwork, pod.Spec.DNSConfig = p, hostNet, cfg
		return pod
	}
	clusterSearch := []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"}
	tests := map[string]struct {
		pod        *corev1alpha1.Pod
		clusterDNS []string
		want       *runtimeapi.DNSConfig
	}{
		"ClusterFirst: cluster servers only, cluster then host search, ndots:5": {
			pod: withPolicy(corev1.DNSClusterFirst, false, nil), clusterDNS: []string{"10.88.0.1"},
			want: &runtimeapi.DNSConfig{Servers: []string{"10.88.0.1"}, Searches: clusterSearch, Options: []string{"ndots:5"}},
		},
		"an empty policy is ClusterFirst": {
			pod: withPolicy("", false, nil), clusterDNS: []string{"10.88.0.1"},
			want: &runtimeapi.DNSConfig{Servers: []string{"10.88.0.1"}, Searches: clusterSearch, Options: []string{"ndots:5"}},
		},
		"ClusterFirst on the host network is Default": {
			pod: withPolicy(corev1.DNSClusterFirst, true, nil), clusterDNS: []string{"10.88.0.1"},
			want: host,
		},
		"ClusterFirstWithHostNet on the host network uses the cluster DNS": {
			pod: withPolicy(corev1.DNSClusterFirstWithHostNet, true, nil), clusterDNS: []string{"10.88.0.1"},
			want: &runtimeapi.DNSConfig{Servers: []string{"10.88.0.1"}, Searches: clusterSearch, Options: []string{"ndots:5"}},
		},
		"ClusterFirst without cluster DNS falls back to Default": {
			pod:  withPolicy(corev1.DNSClusterFirst, false, nil),
			want: host,
		},
		"Default is the host's resolv.conf": {
			pod: withPolicy(corev1.DNSDefault, false, nil), clusterDNS: []string{"10.88.0.1"},
			want: host,
		},
		"None is the pod's dnsConfig alone": {
			pod: withPolicy(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"1.2.3.4"}, Searches: []string{"a.example"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}}}),
			clusterDNS: []string{"10.88.0.1"},
			want:       &runtimeapi.DNSConfig{Servers: []string{"1.2.3.4"}, Searches: []string{"a.example"}, Options: []string{"ndots:2", "edns0"}},
		},
		"dnsConfig merges into ClusterFirst: appended without duplicates, options overridden by name": {
			pod: withPolicy(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{Nameservers: []string{"10.88.0.1", "1.2.3.4"},
				Searches: []string{"svc.cluster.local", "extra.example"},
				Options:  []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}, {Name: "single-request-reopen"}}}),
			clusterDNS: []string{"10.88.0.1"},
			want: &runtimeapi.DNSConfig{Servers: []string{"10.88.0.1", "1.2.3.4"}, Searches: append(clusterSearch, "extra.example"),
				Options: []string{"ndots:1", "single-request-reopen"}},
		},
		"more than three nameservers are cut to three": {
			pod:  withPolicy(corev1.DNSDefault, false, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1", "2.2.2.2"}}),
			want: &runtimeapi.DNSConfig{Servers: []string{"192.0.2.53", "192.0.2.54", "1.1.1.1"}, Searches: []string{"corp.example"}, Options: []string{"rotate", "timeout:2"}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			n := &Node{opts: Options{ClusterDNS: tt.clusterDNS, ClusterDomain: "cluster.local",
				HostDNS: func() *runtimeapi.DNSConfig { return host }}}
			got := n.dnsConfig(tt.pod)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("dnsConfig (-want +got):\n%s", diff)
			}
		})
	}
	// The host configuration is read again for every pod, never modified.
	if diff := cmp.Diff(ParseResolvConf("nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example\noptions rotate timeout:2\n"), host, protocmp.Transform()); diff != "" {
		t.Errorf("the host configuration was modified:\n%s", diff)
	}
}

func TestSearchesWithinLimits(t *testing.T) {
	var many []string
	for range 40 {
		many = append(many, "d.example")
	}
	if got := searchesWithinLimits(many); len(got) != maxDNSSearchPaths {
		t.Errorf("kept %d search domains, want %d", len(got), maxDNSSearchPaths)
	}
	long := make([]byte, 1500)
	for i := range long {
		long[i] = 'a'
	}
	if got := searchesWithinLimits([]string{string(long), string(long)}); len(got) != 1 {
		t.Errorf("kept %d long search domains, want 1 within 2048 characters", len(got))
	}
}
