package service

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// Labels of the EndpointSlices skiff manages, as upstream.
const (
	LabelServiceName    = discoveryv1.LabelServiceName // kubernetes.io/service-name
	LabelSliceManagedBy = discoveryv1.LabelManagedBy   // endpointslice.kubernetes.io/managed-by
	// EndpointSliceManager is the value of LabelSliceManagedBy on skiff's slices.
	EndpointSliceManager = "endpointslice-controller.skiff.dev"
	// MaxEndpointsPerSlice is upstream's default slice size.
	MaxEndpointsPerSlice = 100
)

// desiredSlice is one EndpointSlice the Service should have.
type desiredSlice struct {
	name      string
	ports     []discoveryv1.EndpointPort
	endpoints []discoveryv1.Endpoint
}

// desiredSlices computes the EndpointSlices of a Service from the pods its
// selector matches: one endpoint per pod that has an IP and a node and has
// not finished, with upstream's ready/serving/terminating conditions; pods
// whose named target ports resolve alike share slices of at most
// MaxEndpointsPerSlice endpoints. Names are deterministic, so a restarted
// controller updates the slices it wrote instead of adding new ones.
func desiredSlices(svc *corev1alpha1.Service, pods []*corev1alpha1.Pod) []desiredSlice {
	type group struct {
		ports     []discoveryv1.EndpointPort
		endpoints []discoveryv1.Endpoint
	}
	groups := map[string]*group{}
	sorted := append([]*corev1alpha1.Pod(nil), pods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, pod := range sorted {
		if pod.Status.PodIP == "" || pod.Spec.NodeName == "" || podutil.IsTerminal(pod) {
			continue
		}
		ports := endpointPorts(svc, pod)
		key := portsKey(ports)
		g, ok := groups[key]
		if !ok {
			g = &group{ports: ports}
			groups[key] = g
		}
		g.endpoints = append(g.endpoints, endpointFor(svc, pod))
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []desiredSlice
	for _, key := range keys {
		g := groups[key]
		for i := 0; i < len(g.endpoints); i += MaxEndpointsPerSlice {
			end := min(i+MaxEndpointsPerSlice, len(g.endpoints))
			out = append(out, desiredSlice{
				name:      sliceName(svc.Name, key, i/MaxEndpointsPerSlice),
				ports:     g.ports,
				endpoints: g.endpoints[i:end],
			})
		}
	}
	return out
}

func endpointFor(svc *corev1alpha1.Service, pod *corev1alpha1.Pod) discoveryv1.Endpoint {
	terminating := pod.DeletionTimestamp != nil
	serving := podutil.IsReady(pod)
	if svc.Spec.PublishNotReadyAddresses {
		serving = true
	}
	ep := discoveryv1.Endpoint{
		Addresses: []string{pod.Status.PodIP},
		Conditions: discoveryv1.EndpointConditions{
			Ready:       ptr.To(serving && !terminating),
			Serving:     ptr.To(serving),
			Terminating: ptr.To(terminating),
		},
		NodeName: ptr.To(pod.Spec.NodeName),
		TargetRef: &corev1.ObjectReference{
			APIVersion: corev1alpha1.GroupVersion.String(), Kind: "Pod",
			Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		},
	}
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name {
		ep.Hostname = ptr.To(pod.Spec.Hostname)
	}
	return ep
}

// endpointPorts resolves the Service's target ports for one pod: a number
// as it is, a name through the pod's container ports. A name the pod does
// not declare leaves that port out, as upstream.
func endpointPorts(svc *corev1alpha1.Service, pod *corev1alpha1.Pod) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		protocol := sp.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		port, ok := resolveTargetPort(sp, protocol, pod)
		if !ok {
			continue
		}
		out = append(out, discoveryv1.EndpointPort{
			Name: ptr.To(sp.Name), Protocol: ptr.To(protocol), Port: ptr.To(port), AppProtocol: sp.AppProtocol,
		})
	}
	return out
}

func resolveTargetPort(sp corev1.ServicePort, protocol corev1.Protocol, pod *corev1alpha1.Pod) (int32, bool) {
	switch {
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				p := cp.Protocol
				if p == "" {
					p = corev1.ProtocolTCP
				}
				if cp.Name == sp.TargetPort.StrVal && p == protocol {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case sp.TargetPort.IntVal != 0:
		return sp.TargetPort.IntVal, true
	default:
		return sp.Port, true
	}
}

func portsKey(ports []discoveryv1.EndpointPort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = fmt.Sprintf("%s/%s/%d", ptr.Deref(p.Name, ""), ptr.Deref(p.Protocol, ""), ptr.Deref(p.Port, 0))
	}
	return strings.Join(parts, ",")
}

func sliceName(service, key string, n int) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	prefix := service
	if len(prefix) > 230 {
		prefix = prefix[:230]
	}
	return fmt.Sprintf("%s-%08x-%d", prefix, h.Sum32(), n)
}

// sliceObject renders a desired slice as the object to write.
func sliceObject(svc *corev1alpha1.Service, d desiredSlice) *corev1alpha1.EndpointSlice {
	return &corev1alpha1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      d.name,
			Namespace: svc.Namespace,
			Labels:    map[string]string{LabelServiceName: svc.Name, LabelSliceManagedBy: EndpointSliceManager},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   d.endpoints,
		Ports:       d.ports,
	}
}
