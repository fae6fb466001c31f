package service

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Claims: each allocated address is an object whose name is the address,
// so the API server's create is the lock that keeps two Services (or two
// managers) from ever taking the same one. ClusterIPs are
// networking.k8s.io/v1 IPAddresses, as upstream's allocator uses; NodePorts
// are coordination.k8s.io/v1 Leases in SystemNamespace.
const (
	// LabelManagedBy marks skiff's claims, as upstream's
	// ipaddress.kubernetes.io/managed-by marks its own.
	LabelManagedBy = "ipaddress.kubernetes.io/managed-by"
	// ManagedBy is the value of LabelManagedBy on skiff's claims.
	ManagedBy = "allocator.skiff.dev"
	// SystemNamespace holds the NodePort claims.
	SystemNamespace = "skiff-system"
	// labelNodePort marks NodePort claim Leases.
	labelNodePort = "skiff.dev/node-port"
)

// ErrAllocated says a requested address or port belongs to another Service.
type ErrAllocated struct{ What string }

func (e ErrAllocated) Error() string { return e.What + " is already allocated" }

// ErrOutOfRange says a requested address or port is outside the configured range.
type ErrOutOfRange struct{ What, Range string }

func (e ErrOutOfRange) Error() string {
	return fmt.Sprintf("%s is not in the range %s", e.What, e.Range)
}

// ErrFull says no address or port is left.
type ErrFull struct{ Range string }

func (e ErrFull) Error() string { return "no free addresses left in " + e.Range }

// Range configures the allocators.
type Range struct {
	// ServiceCIDR is where ClusterIPs come from.
	ServiceCIDR netip.Prefix
	// NodePortBase and NodePortSize give the NodePorts [base, base+size).
	NodePortBase, NodePortSize int
}

// ParseRange reads the flags: a CIDR such as 10.112.0.0/16 and a port range
// such as 30000-32767.
func ParseRange(cidr, ports string) (Range, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return Range{}, fmt.Errorf("service CIDR %q: want an IPv4 prefix of at most /30", cidr)
	}
	lo, hi, ok := strings.Cut(ports, "-")
	base, err1 := strconv.Atoi(lo)
	last, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || base < 1 || last > 65535 || last < base {
		return Range{}, fmt.Errorf("node port range %q: want FIRST-LAST within 1-65535", ports)
	}
	return Range{ServiceCIDR: p.Masked(), NodePortBase: base, NodePortSize: last - base + 1}, nil
}

// String names the port range as the flag does.
func (r Range) portRange() string {
	return fmt.Sprintf("%d-%d", r.NodePortBase, r.NodePortBase+r.NodePortSize-1)
}

// size is the number of usable ClusterIPs: the prefix without its network
// and broadcast addresses.
func (r Range) size() int64 {
	return int64(1)<<(32-r.ServiceCIDR.Bits()) - 2
}

// nth is the n-th usable address of the range (0-based).
func (r Range) nth(n int64) netip.Addr {
	base := big.NewInt(0).SetBytes(r.ServiceCIDR.Addr().AsSlice())
	base.Add(base, big.NewInt(n+1))
	b := base.FillBytes(make([]byte, 4))
	return netip.AddrFrom4([4]byte(b))
}

// staticBand is how many addresses at the start of the range are kept for
// Services that ask for a ClusterIP, as upstream: dynamic allocation takes
// them only when the rest is full.
func (r Range) staticBand() int64 {
	return min(max(16, r.size()/16), 256)
}

// Allocator claims and releases ClusterIPs and NodePorts.
type Allocator struct {
	client client.Client
	reader client.Reader // usually the cache: it only steers the search
	rng    Range
}

// NewAllocator returns an allocator for rng.
func NewAllocator(c client.Client, reader client.Reader, rng Range) *Allocator {
	return &Allocator{client: c, reader: reader, rng: rng}
}

func ownerRef(svc *corev1alpha1.Service) string { return svc.Namespace + "/" + svc.Name }

// ClaimClusterIP claims ip for svc, or a free address when ip is empty.
// Claiming an address svc already holds succeeds.
func (a *Allocator) ClaimClusterIP(ctx context.Context, svc *corev1alpha1.Service, ip string) (string, error) {
	if ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil || !a.rng.ServiceCIDR.Contains(addr) || addr == a.rng.ServiceCIDR.Addr() || addr == a.rng.nth(a.rng.size()) {
			return "", ErrOutOfRange{What: "clusterIP " + ip, Range: a.rng.ServiceCIDR.String()}
		}
		return ip, a.claimIP(ctx, svc, addr)
	}
	used := map[string]bool{}
	list := &networkingv1.IPAddressList{}
	if err := a.reader.List(ctx, list, client.MatchingLabels{LabelManagedBy: ManagedBy}); err != nil {
		return "", err
	}
	for _, c := range list.Items {
		used[c.Name] = true
	}
	size, static := a.rng.size(), a.rng.staticBand()
	if size <= static {
		static = 0
	}
	// Dynamic band first, from a random offset; the static band last.
	for _, band := range [][2]int64{{static, size}, {0, static}} {
		n := band[1] - band[0]
		if n <= 0 {
			continue
		}
		start := rand.Int64N(n)
		for i := int64(0); i < n; i++ {
			addr := a.rng.nth(band[0] + (start+i)%n)
			if used[addr.String()] {
				continue
			}
			err := a.claimIP(ctx, svc, addr)
			if _, taken := err.(ErrAllocated); taken {
				continue // claimed since the cache last saw it
			}
			return addr.String(), err
		}
	}
	return "", ErrFull{Range: a.rng.ServiceCIDR.String()}
}

func (a *Allocator) claimIP(ctx context.Context, svc *corev1alpha1.Service, addr netip.Addr) error {
	claim := &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: addr.String(), Labels: map[string]string{LabelManagedBy: ManagedBy}},
		Spec: networkingv1.IPAddressSpec{ParentRef: &networkingv1.ParentReference{
			Group: corev1alpha1.GroupVersion.Group, Resource: "services", Namespace: svc.Namespace, Name: svc.Name,
		}},
	}
	err := a.client.Create(ctx, claim)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	existing := &networkingv1.IPAddress{}
	if err := a.client.Get(ctx, client.ObjectKey{Name: claim.Name}, existing); err != nil {
		return err
	}
	if p := existing.Spec.ParentRef; p != nil && p.Group == corev1alpha1.GroupVersion.Group && p.Namespace == svc.Namespace && p.Name == svc.Name {
		return nil
	}
	return ErrAllocated{What: "clusterIP " + addr.String()}
}

// ReleaseClusterIP deletes svc's claim on ip; a claim of another Service stays.
func (a *Allocator) ReleaseClusterIP(ctx context.Context, svc *corev1alpha1.Service, ip string) error {
	existing := &networkingv1.IPAddress{}
	if err := a.client.Get(ctx, client.ObjectKey{Name: ip}, existing); err != nil {
		return client.IgnoreNotFound(err)
	}
	if p := existing.Spec.ParentRef; p == nil || p.Group != corev1alpha1.GroupVersion.Group || p.Namespace != svc.Namespace || p.Name != svc.Name {
		return nil
	}
	return client.IgnoreNotFound(a.client.Delete(ctx, existing, client.Preconditions{UID: &existing.UID}))
}

func nodePortName(port int32) string { return fmt.Sprintf("nodeport-%d", port) }

// ClaimNodePort claims port for svc, or a free port when port is 0.
func (a *Allocator) ClaimNodePort(ctx context.Context, svc *corev1alpha1.Service, port int32) (int32, error) {
	if port != 0 {
		if int(port) < a.rng.NodePortBase || int(port) >= a.rng.NodePortBase+a.rng.NodePortSize {
			return 0, ErrOutOfRange{What: fmt.Sprintf("nodePort %d", port), Range: a.rng.portRange()}
		}
		return port, a.claimPort(ctx, svc, port)
	}
	used := map[string]bool{}
	list := &coordinationv1.LeaseList{}
	if err := a.reader.List(ctx, list, client.InNamespace(SystemNamespace), client.MatchingLabels{labelNodePort: "true"}); err != nil {
		return 0, err
	}
	for _, l := range list.Items {
		used[l.Name] = true
	}
	n := a.rng.NodePortSize
	start := rand.IntN(n)
	for i := 0; i < n; i++ {
		p := int32(a.rng.NodePortBase + (start+i)%n)
		if used[nodePortName(p)] {
			continue
		}
		err := a.claimPort(ctx, svc, p)
		if _, taken := err.(ErrAllocated); taken {
			continue
		}
		return p, err
	}
	return 0, ErrFull{Range: a.rng.portRange()}
}

func (a *Allocator) claimPort(ctx context.Context, svc *corev1alpha1.Service, port int32) error {
	claim := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: nodePortName(port), Namespace: SystemNamespace,
			Labels: map[string]string{LabelManagedBy: ManagedBy, labelNodePort: "true"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(ownerRef(svc))},
	}
	err := a.client.Create(ctx, claim)
	if apierrors.IsNotFound(err) {
		// The namespace is missing: create it once, then claim.
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}}
		if err := a.client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		err = a.client.Create(ctx, claim)
	}
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	existing := &coordinationv1.Lease{}
	if err := a.client.Get(ctx, client.ObjectKeyFromObject(claim), existing); err != nil {
		return err
	}
	if ptr.Deref(existing.Spec.HolderIdentity, "") == ownerRef(svc) {
		return nil
	}
	return ErrAllocated{What: fmt.Sprintf("nodePort %d", port)}
}

// ReleaseNodePort deletes svc's claim on port.
func (a *Allocator) ReleaseNodePort(ctx context.Context, svc *corev1alpha1.Service, port int32) error {
	existing := &coordinationv1.Lease{}
	if err := a.client.Get(ctx, client.ObjectKey{Namespace: SystemNamespace, Name: nodePortName(port)}, existing); err != nil {
		return client.IgnoreNotFound(err)
	}
	if ptr.Deref(existing.Spec.HolderIdentity, "") != ownerRef(svc) {
		return nil
	}
	return client.IgnoreNotFound(a.client.Delete(ctx, existing, client.Preconditions{UID: &existing.UID}))
}
