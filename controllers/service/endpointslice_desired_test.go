package service

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

type podOpt func(*corev1alpha1.Pod)

func makePod(name, ip string, opts ...podOpt) *corev1alpha1.Pod {
	p := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: k8stypes.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolUDP}}}}},
		Status: corev1alpha1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []metav1.Condition{{Type: conditions.Ready, Status: metav1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func notReady(p *corev1alpha1.Pod)  { p.Status.Conditions[0].Status = metav1.ConditionFalse }
func deleting(p *corev1alpha1.Pod)  { now := metav1.Now(); p.DeletionTimestamp = &now }
func succeeded(p *corev1alpha1.Pod) { p.Status.Phase = corev1.PodSucceeded }
func noPort(p *corev1alpha1.Pod)    { p.Spec.Containers[0].Ports = nil }

func svcWith(f func(*corev1alpha1.Service)) *corev1alpha1.Service {
	s := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
	s.Spec.Selector = map[string]string{"app": "web"}
	s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}
	if f != nil {
		f(s)
	}
	return s
}

type epView struct {
	IP                          string
	Ready, Serving, Terminating bool
	Hostname                    string
}

func view(slices []desiredSlice) map[string][]epView {
	out := map[string][]epView{}
	for _, s := range slices {
		key := portsKey(s.ports)
		for _, ep := range s.endpoints {
			out[key] = append(out[key], epView{ep.Addresses[0], *ep.Conditions.Ready, *ep.Conditions.Serving, *ep.Conditions.Terminating, ptr.Deref(ep.Hostname, "")})
		}
	}
	return out
}

func TestDesiredSlices(t *testing.T) {
	tests := map[string]struct {
		svc  *corev1alpha1.Service
		pods []*corev1alpha1.Pod
		want map[string][]epView
	}{
		"ready and not ready": {
			svc:  svcWith(nil),
			pods: []*corev1alpha1.Pod{makePod("a", "10.0.0.1"), makePod("b", "10.0.0.2", notReady)},
			want: map[string][]epView{"http/TCP/8080": {{"10.0.0.1", true, true, false, ""}, {"10.0.0.2", false, false, false, ""}}},
		},
		"terminating pods stay, not ready": {
			svc:  svcWith(nil),
			pods: []*corev1alpha1.Pod{makePod("a", "10.0.0.1", deleting)},
			want: map[string][]epView{"http/TCP/8080": {{"10.0.0.1", false, true, true, ""}}},
		},
		"finished and unaddressed pods are left out": {
			svc:  svcWith(nil),
			pods: []*corev1alpha1.Pod{makePod("a", "10.0.0.1", succeeded), makePod("b", "")},
			want: map[string][]epView{},
		},
		"publishNotReadyAddresses": {
			svc:  svcWith(func(s *corev1alpha1.Service) { s.Spec.PublishNotReadyAddresses = true }),
			pods: []*corev1alpha1.Pod{makePod("a", "10.0.0.1", notReady)},
			want: map[string][]epView{"http/TCP/8080": {{"10.0.0.1", true, true, false, ""}}},
		},
		"named ports resolve per pod": {
			svc:  svcWith(nil),
			pods: []*corev1alpha1.Pod{makePod("a", "10.0.0.1"), makePod("b", "10.0.0.2", noPort)},
			want: map[string][]epView{"http/TCP/8080": {{"10.0.0.1", true, true, false, ""}}, "": {{"10.0.0.2", true, true, false, ""}}},
		},
		"UDP by name and numeric target": {
			svc: svcWith(func(s *corev1alpha1.Service) {
				s.Spec.Ports = []corev1.ServicePort{
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")},
					{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9100)},
					{Name: "plain", Port: 81},
				}
			}),
			pods: []*corev1alpha1.Pod{makePod("a", "10.0.0.1")},
			want: map[string][]epView{"dns/UDP/5353,metrics/TCP/9100,plain/TCP/81": {{"10.0.0.1", true, true, false, ""}}},
		},
		"hostname for pods of the service's subdomain": {
			svc: svcWith(nil),
			pods: []*corev1alpha1.Pod{makePod("web-0", "10.0.0.1", func(p *corev1alpha1.Pod) {
				p.Spec.Hostname, p.Spec.Subdomain = "web-0", "web"
			}), makePod("x", "10.0.0.2", func(p *corev1alpha1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "x", "other" })},
			want: map[string][]epView{"http/TCP/8080": {{"10.0.0.1", true, true, false, "web-0"}, {"10.0.0.2", true, true, false, ""}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, view(desiredSlices(tc.svc, tc.pods))); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredSlicesChunksAtHundred(t *testing.T) {
	var pods []*corev1alpha1.Pod
	for i := 0; i < 250; i++ {
		pods = append(pods, makePod(fmt.Sprintf("p%03d", i), fmt.Sprintf("10.0.%d.%d", i/200, i%200+1)))
	}
	slices := desiredSlices(svcWith(nil), pods)
	if len(slices) != 3 {
		t.Fatalf("got %d slices, want 3", len(slices))
	}
	for i, want := range []int{100, 100, 50} {
		if len(slices[i].endpoints) != want {
			t.Errorf("slice %d has %d endpoints, want %d", i, len(slices[i].endpoints), want)
		}
	}
	again := desiredSlices(svcWith(nil), pods)
	for i := range slices {
		if slices[i].name != again[i].name {
			t.Errorf("slice names are not deterministic: %s then %s", slices[i].name, again[i].name)
		}
	}
}

func TestParseRangeAndAddresses(t *testing.T) {
	rng, err := ParseRange("10.112.0.0/24", "30000-30002")
	if err != nil {
		t.Fatal(err)
	}
	if rng.size() != 254 || rng.nth(0).String() != "10.112.0.1" || rng.nth(253).String() != "10.112.0.254" {
		t.Errorf("size %d, first %s, last %s", rng.size(), rng.nth(0), rng.nth(253))
	}
	if rng.staticBand() != 16 || rng.NodePortSize != 3 {
		t.Errorf("static band %d, ports %d", rng.staticBand(), rng.NodePortSize)
	}
	for _, bad := range [][2]string{{"10.0.0.0/31", "1-2"}, {"fd00::/64", "1-2"}, {"10.0.0.0/24", "5-1"}, {"10.0.0.0/24", "1-70000"}} {
		if _, err := ParseRange(bad[0], bad[1]); err == nil {
			t.Errorf("ParseRange(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
