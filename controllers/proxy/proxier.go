package proxy

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/knftables"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// TableName is the nftables table (family ip) that the proxy owns.
const TableName = "skiff-proxy"

// Proxier programs the Services of the cluster into nftables on this node.
// Event handlers only mark it dirty; a runner syncs the whole ruleset in one
// atomic transaction at most every MinSyncPeriod and at least every
// SyncPeriod, as kube-proxy's bounded-frequency runner does.
type Proxier struct {
	nft    knftables.Interface
	reader client.Reader
	cfg    Config

	// MinSyncPeriod bounds how often changes are applied.
	MinSyncPeriod time.Duration
	// SyncPeriod is how often the ruleset is re-applied without changes.
	SyncPeriod time.Duration
	// Conntrack clears stale UDP flows when an endpoint goes away; nil skips it.
	Conntrack ConntrackCleaner

	dirty chan struct{}

	mu        sync.Mutex
	lastUDP   map[string]map[string]bool // service IP:port → endpoint IP:port
	syncs     int
	lastError error
}

// ConntrackCleaner deletes the conntrack entries of UDP flows from a
// service address to an endpoint that no longer serves it.
type ConntrackCleaner interface {
	ClearUDP(ctx context.Context, serviceIP string, servicePort int32, endpointIP string) error
}

var _ manager.Runnable = (*Proxier)(nil)

// New returns a proxier that writes through nft and reads Services and
// EndpointSlices from reader (the manager's cache).
func New(nft knftables.Interface, reader client.Reader, cfg Config) *Proxier {
	return &Proxier{
		nft: nft, reader: reader, cfg: cfg,
		MinSyncPeriod: time.Second, SyncPeriod: time.Minute,
		dirty:   make(chan struct{}, 1),
		lastUDP: map[string]map[string]bool{},
	}
}

// SetupWithManager watches Services and EndpointSlices (each change marks
// the proxier dirty) and runs the sync loop as a manager runnable on every
// node, without leader election.
func (p *Proxier) SetupWithManager(mgr ctrl.Manager) error {
	if err := p.watch(mgr); err != nil {
		return err
	}
	return mgr.Add(p)
}

// watch marks the proxier dirty on every Service and EndpointSlice change.
func (p *Proxier) watch(mgr ctrl.Manager) error {
	mark := reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
		p.Trigger()
		return reconcile.Result{}, nil
	})
	if err := ctrl.NewControllerManagedBy(mgr).For(&corev1alpha1.Service{}).Named("proxy-services").Complete(mark); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).For(&corev1alpha1.EndpointSlice{}).Named("proxy-endpointslices").Complete(mark)
}

// NeedLeaderElection is false: every node programs its own rules.
func (p *Proxier) NeedLeaderElection() bool { return false }

// Trigger asks for a sync; many triggers before the next sync make one.
func (p *Proxier) Trigger() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// Start runs the sync loop until ctx ends, then removes the proxy's table.
func (p *Proxier) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("proxy")
	ensureSysctls(log)
	var last time.Time
	p.Trigger()
	for {
		select {
		case <-ctx.Done():
			return p.Cleanup(context.Background())
		case <-p.dirty:
		case <-time.After(p.SyncPeriod):
		}
		if wait := p.MinSyncPeriod - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return p.Cleanup(context.Background())
			case <-time.After(wait):
			}
		}
		last = time.Now()
		if err := p.Sync(ctx); err != nil {
			log.Error(err, "Syncing service rules")
			p.Trigger() // retry after MinSyncPeriod
		}
	}
}

// Sync writes the ruleset for the current Services and EndpointSlices.
func (p *Proxier) Sync(ctx context.Context) error {
	start := time.Now()
	services := &corev1alpha1.ServiceList{}
	if err := p.reader.List(ctx, services); err != nil {
		return err
	}
	slices := &corev1alpha1.EndpointSliceList{}
	if err := p.reader.List(ctx, slices); err != nil {
		return err
	}
	ports := collect(services.Items, slices.Items, p.cfg.NodeName)
	tx := p.nft.NewTransaction()
	ruleset(tx, p.cfg, ports)
	err := p.nft.Run(ctx, tx)
	p.mu.Lock()
	p.syncs++
	p.lastError = err
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("applying %d service ports: %w", len(ports), err)
	}
	p.clearStaleUDP(ctx, ports)
	ctrl.LoggerFrom(ctx).V(4).Info("Synced service rules", "servicePorts", len(ports), "took", time.Since(start))
	return nil
}

// clearStaleUDP removes the conntrack entries of UDP flows whose endpoint
// is gone: UDP has no connection end, so without this the kernel would keep
// sending a client's datagrams to the dead endpoint.
func (p *Proxier) clearStaleUDP(ctx context.Context, ports []servicePort) {
	current := map[string]map[string]bool{}
	for _, sp := range ports {
		if sp.protocol != "udp" {
			continue
		}
		key := fmt.Sprintf("%s:%d", sp.clusterIP, sp.port)
		current[key] = map[string]bool{}
		for _, e := range sp.endpoints {
			current[key][e.ip] = true
		}
	}
	p.mu.Lock()
	previous := p.lastUDP
	p.lastUDP = current
	p.mu.Unlock()
	if p.Conntrack == nil {
		return
	}
	for svc, eps := range previous {
		for ip := range eps {
			if current[svc][ip] {
				continue
			}
			host, port, _ := strings.Cut(svc, ":")
			var n int32
			fmt.Sscan(port, &n)
			if err := p.Conntrack.ClearUDP(ctx, host, n, ip); err != nil {
				ctrl.LoggerFrom(ctx).V(2).Info("Clearing stale UDP conntrack entries failed", "service", svc, "endpoint", ip, "err", err)
			}
		}
	}
}

// Cleanup deletes everything the proxy installed.
func (p *Proxier) Cleanup(ctx context.Context) error {
	tx := p.nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := p.nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		return fmt.Errorf("removing nftables table %s: %w", TableName, err)
	}
	return nil
}

// Syncs reports how many syncs ran and the error of the last one.
func (p *Proxier) Syncs() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.syncs, p.lastError
}

// ensureSysctls turns on what routed Service traffic needs: forwarding, and
// netfilter for bridged traffic so that replies between pods on the same
// bridge are un-NATed.
func ensureSysctls(log interface{ Info(string, ...any) }) {
	for path, want := range map[string]string{
		"/proc/sys/net/ipv4/ip_forward":                "1",
		"/proc/sys/net/bridge/bridge-nf-call-iptables": "1",
	} {
		if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == want {
			continue
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			log.Info("Cannot set sysctl", "path", path, "err", err.Error())
		}
	}
}
