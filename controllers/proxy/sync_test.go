package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/knftables"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// memReader serves Services and EndpointSlices from slices, as the
// agent's cache would.
type memReader struct {
	services []corev1alpha1.Service
	slices   []corev1alpha1.EndpointSlice
}

func (r *memReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return fmt.Errorf("not supported")
}

func (r *memReader) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	switch l := list.(type) {
	case *corev1alpha1.ServiceList:
		l.Items = append([]corev1alpha1.Service(nil), r.services...)
	case *corev1alpha1.EndpointSliceList:
		l.Items = append([]corev1alpha1.EndpointSlice(nil), r.slices...)
	default:
		return fmt.Errorf("unexpected list %T", list)
	}
	return nil
}

var testConfig = Config{ServiceCIDR: netip.MustParsePrefix("10.112.0.0/16"), NodeName: "n1"}

// fullDump is the table a full sync writes into an empty table.
func fullDump(t *testing.T, r *memReader) string {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	p := New(fake, r, testConfig)
	if err := p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return fake.Dump()
}

func TestPartialSyncsMatchAFullSync(t *testing.T) {
	ready := func(ip, node string) ep { return ep{ip: ip, node: node, ready: true, serving: true} }
	r := &memReader{}
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	p := New(fake, r, testConfig)
	ctx := context.Background()
	steps := []struct {
		name      string
		change    func()
		rewritten int
	}{
		{"empty cluster", func() {}, 0},
		{"a Service and its endpoints", func() {
			r.services = append(r.services, svc("web", "10.112.0.5", nil), svc("db", "10.112.0.6", nil))
			r.slices = append(r.slices, slice("web", 8080, corev1.ProtocolTCP, ready("10.244.0.2", "n1"), ready("10.244.1.2", "n2")),
				slice("db", 5432, corev1.ProtocolTCP, ready("10.244.0.3", "n1")))
		}, 2},
		{"an endpoint goes away", func() {
			r.slices[0] = slice("web", 8080, corev1.ProtocolTCP, ready("10.244.1.2", "n2"))
		}, 1},
		{"session affinity on", func() {
			r.services[0] = svc("web", "10.112.0.5", func(s *corev1alpha1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			})
		}, 1},
		{"another affinity timeout", func() {
			r.services[0] = svc("web", "10.112.0.5", func(s *corev1alpha1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: new(int32(30))}}
			})
		}, 1},
		{"a NodePort", func() {
			r.services[1] = svc("db", "10.112.0.6", func(s *corev1alpha1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30432
			})
		}, 1},
		{"no endpoints left", func() {
			r.slices[1] = slice("db", 5432, corev1.ProtocolTCP)
		}, 1},
		{"a Service deleted and its address given to a new one", func() {
			r.services = []corev1alpha1.Service{r.services[1], svc("web2", "10.112.0.5", nil)}
			r.slices = []corev1alpha1.EndpointSlice{r.slices[1], slice("web2", 80, corev1.ProtocolTCP, ready("10.244.0.9", "n1"))}
		}, 2},
		{"nothing changed", func() {}, 0},
	}
	for i, step := range steps {
		step.change()
		if err := p.Sync(ctx); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		stats := p.LastSync()
		if i == 0 {
			if !stats.Full {
				t.Errorf("%s: the first sync must be full", step.name)
			}
		} else {
			if stats.Full {
				t.Errorf("%s: got a full sync, want a partial one", step.name)
			}
			if stats.Rewritten != step.rewritten {
				t.Errorf("%s: rewrote %d service ports, want %d", step.name, stats.Rewritten, step.rewritten)
			}
			if step.rewritten == 0 && stats.Operations != 0 {
				t.Errorf("%s: %d operations for no change", step.name, stats.Operations)
			}
		}
		if diff := cmp.Diff(fullDump(t, r), fake.Dump()); diff != "" {
			t.Errorf("%s: the table after partial syncs differs from a full sync (-full +partial):\n%s", step.name, diff)
		}
	}
}

func TestFullSyncRemovesWhatNoServiceOwns(t *testing.T) {
	r := &memReader{services: []corev1alpha1.Service{svc("web", "10.112.0.5", func(s *corev1alpha1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	})}, slices: []corev1alpha1.EndpointSlice{slice("web", 8080, corev1.ProtocolTCP, ep{ip: "10.244.0.2", ready: true})}}
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	// What an earlier run left: the same Service and one that is gone.
	old := New(fake, &memReader{services: append([]corev1alpha1.Service{svc("gone", "10.112.0.7", nil)}, r.services...),
		slices: append([]corev1alpha1.EndpointSlice{slice("gone", 80, corev1.ProtocolTCP, ep{ip: "10.244.0.4", ready: true})}, r.slices...)}, testConfig)
	if err := old.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := New(fake, r, testConfig)
	if err := p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fullDump(t, r), fake.Dump()); diff != "" {
		t.Errorf("a full sync over an old table differs from one into an empty table (-want +got):\n%s", diff)
	}
}

type recordingConntrack struct{ cleared []string }

func (c *recordingConntrack) ClearUDP(_ context.Context, serviceIP string, port int32, endpointIP string) error {
	c.cleared = append(c.cleared, fmt.Sprintf("%s:%d→%s", serviceIP, port, endpointIP))
	return nil
}

func TestStaleUDPFlowsAreCleared(t *testing.T) {
	dns := svc("dns", "10.112.0.10", func(s *corev1alpha1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].Protocol, s.Spec.Ports[0].Port, s.Spec.Ports[0].NodePort = corev1.ProtocolUDP, 53, 30053
	})
	web := svc("web", "10.112.0.11", nil)
	r := &memReader{services: []corev1alpha1.Service{dns, web}, slices: []corev1alpha1.EndpointSlice{
		slice("dns", 5353, corev1.ProtocolUDP, ep{ip: "10.244.0.2", ready: true}, ep{ip: "10.244.0.3", ready: true}),
		slice("web", 8080, corev1.ProtocolTCP, ep{ip: "10.244.0.4", ready: true}),
	}}
	ct := &recordingConntrack{}
	p := New(knftables.NewFake(knftables.IPv4Family, TableName), r, testConfig)
	p.Conntrack = ct
	if err := p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(ct.cleared) != 0 {
		t.Fatalf("cleared %v with no endpoint gone", ct.cleared)
	}
	r.slices = []corev1alpha1.EndpointSlice{
		slice("dns", 5353, corev1.ProtocolUDP, ep{ip: "10.244.0.3", ready: true}),
		slice("web", 8080, corev1.ProtocolTCP), // TCP flows end on their own
	}
	if err := p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"10.112.0.10:53→10.244.0.2", ":30053→10.244.0.2"}
	sort.Strings(ct.cleared)
	if diff := cmp.Diff(want, ct.cleared); diff != "" {
		t.Errorf("cleared flows (-want +got):\n%s", diff)
	}
}
