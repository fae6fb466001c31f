package service

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// claimGrace is how old an unused claim must be before Repair removes it:
// between claiming and writing the Service spec, a claim is unused.
const claimGrace = time.Minute

// Repair removes the claims that no Service uses any more (left behind by a
// manager that stopped between claiming and writing the spec, or by a
// Service deleted while no manager ran) and re-creates the claims of
// addresses that Services hold without one (after a restore). It runs when
// the manager becomes leader and then every Interval.
type Repair struct {
	Client   client.Client
	Alloc    *Allocator
	Interval time.Duration
	// Grace is how old an unused claim must be to be removed; zero means claimGrace.
	Grace time.Duration
}

var _ manager.LeaderElectionRunnable = (*Repair)(nil)

// NeedLeaderElection makes only the leader repair.
func (*Repair) NeedLeaderElection() bool { return true }

// Start repairs now and then every Interval until ctx ends.
func (r *Repair) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("service-allocation-repair")
	for {
		if err := r.RepairOnce(ctx); err != nil {
			log.Error(err, "Repairing service address claims")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.Interval):
		}
	}
}

func (r *Repair) grace() time.Duration {
	if r.Grace > 0 {
		return r.Grace
	}
	return claimGrace
}

// RepairOnce runs one pass.
func (r *Repair) RepairOnce(ctx context.Context) error {
	services := &corev1alpha1.ServiceList{}
	if err := r.Client.List(ctx, services); err != nil {
		return err
	}
	ips := map[string]*corev1alpha1.Service{}
	ports := map[string]*corev1alpha1.Service{}
	for i := range services.Items {
		svc := &services.Items[i]
		// Only a Service whose allocation succeeded owns the addresses in
		// its spec; another may ask for the same address and be refused.
		if !svc.DeletionTimestamp.IsZero() || !meta.IsStatusConditionTrue(svc.Status.Conditions, conditions.Ready) {
			continue
		}
		if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
			ips[ip] = svc
		}
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 && svc.Spec.Type == corev1.ServiceTypeNodePort {
				ports[nodePortName(p.NodePort)] = svc
			}
		}
	}

	claimedIPs := &networkingv1.IPAddressList{}
	if err := r.Client.List(ctx, claimedIPs, client.MatchingLabels{LabelManagedBy: ManagedBy}); err != nil {
		return err
	}
	for i := range claimedIPs.Items {
		c := &claimedIPs.Items[i]
		if addr, err := netip.ParseAddr(c.Name); err != nil || !r.Alloc.rng.ServiceCIDR.Contains(addr) {
			continue // another range's claim: not this manager's to judge
		}
		svc, used := ips[c.Name]
		if used && c.Spec.ParentRef != nil && c.Spec.ParentRef.Namespace == svc.Namespace && c.Spec.ParentRef.Name == svc.Name {
			delete(ips, c.Name)
			continue
		}
		if time.Since(c.CreationTimestamp.Time) < r.grace() {
			continue // claimed a moment ago; its Service's spec may not show it yet
		}
		if err := client.IgnoreNotFound(r.Client.Delete(ctx, c, client.Preconditions{UID: &c.UID})); err != nil {
			return fmt.Errorf("deleting leaked claim of %s: %w", c.Name, err)
		}
	}
	claimedPorts := &coordinationv1.LeaseList{}
	if err := r.Client.List(ctx, claimedPorts, client.InNamespace(SystemNamespace), client.MatchingLabels{labelNodePort: "true"}); err != nil {
		return err
	}
	for i := range claimedPorts.Items {
		c := &claimedPorts.Items[i]
		var port int
		if _, err := fmt.Sscanf(c.Name, "nodeport-%d", &port); err != nil ||
			port < r.Alloc.rng.NodePortBase || port >= r.Alloc.rng.NodePortBase+r.Alloc.rng.NodePortSize {
			continue
		}
		svc, used := ports[c.Name]
		if used && ptr.Deref(c.Spec.HolderIdentity, "") == ownerRef(svc) {
			delete(ports, c.Name)
			continue
		}
		if time.Since(c.CreationTimestamp.Time) < r.grace() {
			continue
		}
		if err := client.IgnoreNotFound(r.Client.Delete(ctx, c, client.Preconditions{UID: &c.UID})); err != nil {
			return fmt.Errorf("deleting leaked claim of %s: %w", c.Name, err)
		}
	}

	// What remains is held without a claim: claim it again.
	for ip, svc := range ips {
		if _, err := r.Alloc.ClaimClusterIP(ctx, svc, ip); err != nil {
			return fmt.Errorf("restoring the claim of %s for service %s/%s: %w", ip, svc.Namespace, svc.Name, err)
		}
	}
	for name, svc := range ports {
		var port int32
		if _, err := fmt.Sscanf(name, "nodeport-%d", &port); err != nil {
			continue
		}
		if _, err := r.Alloc.ClaimNodePort(ctx, svc, port); err != nil {
			return fmt.Errorf("restoring the claim of node port %d for service %s/%s: %w", port, svc.Namespace, svc.Name, err)
		}
	}
	return nil
}
