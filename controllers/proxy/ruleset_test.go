package proxy

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func svc(name, ip string, mutate func(*corev1alpha1.Service)) corev1alpha1.Service {
	s := corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
	s.Spec.ClusterIP = ip
	s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}}
	if mutate != nil {
		mutate(&s)
	}
	return s
}

type ep struct {
	ip, node                    string
	ready, serving, terminating bool
}

func slice(service string, port int32, protocol corev1.Protocol, eps ...ep) corev1alpha1.EndpointSlice {
	s := corev1alpha1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: service + "-x", Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(protocol)}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.ip}, NodeName: ptr.To(e.node),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.ready), Serving: ptr.To(e.serving), Terminating: ptr.To(e.terminating)}})
	}
	return s
}

func dump(t *testing.T, services []corev1alpha1.Service, slices []corev1alpha1.EndpointSlice) string {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	cfg := Config{ServiceCIDR: netip.MustParsePrefix("10.112.0.0/16"), NodeName: "n1"}
	tx := fake.NewTransaction()
	ruleset(tx, cfg, collect(services, slices, "n1"))
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	return fake.Dump()
}

func TestRuleset(t *testing.T) {
	ready := func(ip, node string) ep { return ep{ip: ip, node: node, ready: true, serving: true} }
	tests := map[string]struct {
		services []corev1alpha1.Service
		slices   []corev1alpha1.EndpointSlice
		want     []string
		wantNot  []string
	}{
		"cluster IP balanced over ready endpoints": {
			services: []corev1alpha1.Service{svc("web", "10.112.0.5", nil)},
			slices: []corev1alpha1.EndpointSlice{slice("web", 8080, corev1.ProtocolTCP,
				ready("10.244.0.2", "n1"), ready("10.244.1.2", "n2"), ep{ip: "10.244.0.9", node: "n1"})},
			want: []string{
				"add element ip skiff-proxy service-ips { 10.112.0.5 . tcp . 80 : goto svc-",
				"numgen random mod 2 == 0 goto ep-",
				"meta l4proto tcp dnat to 10.244.0.2:8080",
				"meta l4proto tcp dnat to 10.244.1.2:8080",
				"ip daddr 10.112.0.0/16 reject",
			},
			wantNot: []string{"10.244.0.9"},
		},
		"no endpoints: no entry, so the reject rule answers": {
			services: []corev1alpha1.Service{svc("empty", "10.112.0.6", nil)},
			wantNot:  []string{"10.112.0.6 . tcp"},
		},
		"terminating serving endpoints when none is ready": {
			services: []corev1alpha1.Service{svc("web", "10.112.0.5", nil)},
			slices:   []corev1alpha1.EndpointSlice{slice("web", 8080, corev1.ProtocolTCP, ep{ip: "10.244.0.3", node: "n1", serving: true, terminating: true})},
			want:     []string{"dnat to 10.244.0.3:8080"},
		},
		"node port with masquerade": {
			services: []corev1alpha1.Service{svc("np", "10.112.0.7", func(s *corev1alpha1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30080
			})},
			slices: []corev1alpha1.EndpointSlice{slice("np", 8080, corev1.ProtocolTCP, ready("10.244.1.2", "n2"))},
			want:   []string{"service-nodeports { tcp . 30080 : goto ext-", "jump mark-for-masquerade", "fib daddr type local"},
		},
		"externalTrafficPolicy Local without local endpoints: no node port": {
			services: []corev1alpha1.Service{svc("np", "10.112.0.7", func(s *corev1alpha1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30081
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			})},
			slices:  []corev1alpha1.EndpointSlice{slice("np", 8080, corev1.ProtocolTCP, ready("10.244.1.2", "n2"))},
			want:    []string{"10.112.0.7 . tcp . 80"},
			wantNot: []string{"30081"},
		},
		"internalTrafficPolicy Local keeps local endpoints only": {
			services: []corev1alpha1.Service{svc("loc", "10.112.0.8", func(s *corev1alpha1.Service) {
				s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
			})},
			slices:  []corev1alpha1.EndpointSlice{slice("loc", 8080, corev1.ProtocolTCP, ready("10.244.0.2", "n1"), ready("10.244.1.2", "n2"))},
			want:    []string{"dnat to 10.244.0.2:8080"},
			wantNot: []string{"10.244.1.2"},
		},
		"client IP affinity": {
			services: []corev1alpha1.Service{svc("sticky", "10.112.0.9", func(s *corev1alpha1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
			})},
			slices: []corev1alpha1.EndpointSlice{slice("sticky", 8080, corev1.ProtocolTCP, ready("10.244.0.2", "n1"))},
			want:   []string{"flags dynamic,timeout", "timeout 60s", "update @aff-", "ip saddr @aff-"},
		},
		"UDP": {
			services: []corev1alpha1.Service{svc("dns", "10.112.0.10", func(s *corev1alpha1.Service) {
				s.Spec.Ports[0].Protocol, s.Spec.Ports[0].Port = corev1.ProtocolUDP, 53
			})},
			slices: []corev1alpha1.EndpointSlice{slice("dns", 5353, corev1.ProtocolUDP, ready("10.244.0.2", "n1"))},
			want:   []string{"10.112.0.10 . udp . 53", "meta l4proto udp dnat to 10.244.0.2:5353"},
		},
		"headless services have no rules": {
			services: []corev1alpha1.Service{svc("headless", corev1.ClusterIPNone, nil)},
			slices:   []corev1alpha1.EndpointSlice{slice("headless", 8080, corev1.ProtocolTCP, ready("10.244.0.2", "n1"))},
			wantNot:  []string{"10.244.0.2"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := dump(t, tc.services, tc.slices)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("ruleset lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("ruleset has %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestRulesetIsStable(t *testing.T) {
	services := []corev1alpha1.Service{svc("b", "10.112.0.2", nil), svc("a", "10.112.0.1", nil)}
	slices := []corev1alpha1.EndpointSlice{slice("a", 1, corev1.ProtocolTCP, ep{ip: "10.244.0.1", ready: true}), slice("b", 1, corev1.ProtocolTCP, ep{ip: "10.244.0.2", ready: true})}
	first := dump(t, services, slices)
	services[0], services[1] = services[1], services[0]
	if second := dump(t, services, slices); first != second {
		t.Errorf("the ruleset depends on the order of the input")
	}
}
