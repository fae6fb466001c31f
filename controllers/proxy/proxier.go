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
// Event handlers only mark it dirty; a runner syncs at most every
// MinSyncPeriod and at least every SyncPeriod, as kube-proxy's
// bounded-frequency runner does. Each sync is one atomic transaction. A
// partial sync rewrites only the service ports whose Service or endpoints
// changed since the last sync (their chains, affinity sets and map
// elements), as kube-proxy's nftables proxier does; a full sync rewrites
// everything and removes whatever else is in the table. Full syncs run
// first, after a failed sync, and every FullSyncPeriod.
type Proxier struct {
	nft    knftables.Interface
	reader client.Reader
	cfg    Config

	// MinSyncPeriod bounds how often changes are applied.
	MinSyncPeriod time.Duration
	// SyncPeriod is how often a sync runs without changes.
	SyncPeriod time.Duration
	// FullSyncPeriod is how often a sync rewrites the whole table.
	FullSyncPeriod time.Duration
	// Conntrack clears stale UDP flows when an endpoint goes away; nil skips it.
	Conntrack ConntrackCleaner

	dirty chan struct{}

	// applied is what the last successful sync left in the table, per
	// service port key; only the sync loop touches it.
	applied  map[string]*appliedPort
	needFull bool
	lastFull time.Time

	mu        sync.Mutex
	lastUDP   map[udpDest]map[string]bool // → endpoint IPs
	syncs     int
	lastError error
	lastSync  SyncStats
}

// udpDest is where UDP flows to a Service go: a ClusterIP and port, or
// (ip empty) a NodePort on any local address.
type udpDest struct {
	ip   string
	port int32
}

// appliedPort is one service port as the table holds it.
type appliedPort struct {
	fingerprint uint64
	rules       *portRules
}

// SyncStats describes one sync.
type SyncStats struct {
	// Full is true for a full sync.
	Full bool
	// ServicePorts is how many service ports the cluster has.
	ServicePorts int
	// Rewritten is how many service ports the sync wrote or removed.
	Rewritten int
	// Operations is the size of the nftables transaction.
	Operations int
	// Compute is the time spent reading the cache and working out the
	// transaction; Apply the time nft took to commit it.
	Compute, Apply time.Duration
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
		MinSyncPeriod: time.Second, SyncPeriod: time.Minute, FullSyncPeriod: time.Hour,
		dirty:    make(chan struct{}, 1),
		lastUDP:  map[udpDest]map[string]bool{},
		applied:  map[string]*appliedPort{},
		needFull: true,
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

// Sync brings the table in line with the current Services and
// EndpointSlices: a partial sync, or a full one when one is due.
func (p *Proxier) Sync(ctx context.Context) error {
	start := time.Now()
	// The proxy only reads: no copies of the cache's objects.
	services := &corev1alpha1.ServiceList{}
	if err := p.reader.List(ctx, services, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	slices := &corev1alpha1.EndpointSliceList{}
	if err := p.reader.List(ctx, slices, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	ports := collect(services.Items, slices.Items, p.cfg.NodeName)
	full := p.needFull || time.Since(p.lastFull) >= p.FullSyncPeriod
	var (
		tx    *knftables.Transaction
		next  map[string]*appliedPort
		stats SyncStats
		err   error
	)
	if full {
		tx, next, stats, err = p.fullSync(ctx, ports)
	} else {
		tx, next, stats = p.partialSync(ports)
	}
	stats.Compute = time.Since(start)
	if err == nil && tx.NumOperations() > 0 {
		err = p.nft.Run(ctx, tx)
		stats.Apply = time.Since(start) - stats.Compute
	}
	p.mu.Lock()
	p.syncs++
	p.lastError = err
	p.lastSync = stats
	p.mu.Unlock()
	observeSync(start, err)
	if err != nil {
		// The table may differ from what we know: rewrite all of it next.
		p.needFull = true
		return fmt.Errorf("applying %d service ports: %w", len(ports), err)
	}
	p.applied = next
	if full {
		p.needFull, p.lastFull = false, start
	}
	p.clearStaleUDP(ctx, ports)
	ctrl.LoggerFrom(ctx).V(4).Info("Synced service rules", "full", full, "servicePorts", len(ports),
		"rewritten", stats.Rewritten, "operations", stats.Operations, "took", time.Since(start))
	return nil
}

// fullSync rewrites the whole table, and removes the chains and sets that
// no service port owns any more (left by an earlier run, or by a failed
// transaction). Affinity sets that stay keep their entries.
func (p *Proxier) fullSync(ctx context.Context, ports []servicePort) (*knftables.Transaction, map[string]*appliedPort, SyncStats, error) {
	existingChains, err := p.nft.List(ctx, "chains")
	if err != nil && !knftables.IsNotFound(err) {
		return nil, nil, SyncStats{}, fmt.Errorf("listing the chains of table %s: %w", TableName, err)
	}
	existingSets, err := p.nft.List(ctx, "sets")
	if err != nil && !knftables.IsNotFound(err) {
		return nil, nil, SyncStats{}, fmt.Errorf("listing the sets of table %s: %w", TableName, err)
	}
	tx := p.nft.NewTransaction()
	writeBase(tx, p.cfg)
	next := make(map[string]*appliedPort, len(ports))
	chains, sets := map[string]bool{}, map[string]bool{}
	var elements []*knftables.Element
	existed := map[string]bool{}
	for _, c := range existingChains {
		existed[c] = true
	}
	for i := range ports {
		pr := rulesFor(p.cfg, ports[i])
		next[ports[i].key] = &appliedPort{fingerprint: ports[i].fingerprint(), rules: pr}
		pr.write(tx, func(c string) bool { return existed[c] })
		elements = append(elements, pr.elements...)
		for _, c := range pr.chains {
			chains[c.name] = true
		}
		for _, s := range pr.sets {
			sets[s.Name] = true
		}
	}
	for _, e := range elements {
		tx.Add(e)
	}
	var rm removal
	for _, c := range existingChains {
		if !chains[c] && !isBaseChain(c) {
			rm.chains = append(rm.chains, c)
		}
	}
	for _, s := range existingSets {
		if !sets[s] {
			rm.sets = append(rm.sets, s)
		}
	}
	rm.flushAndDelete(tx)
	return tx, next, SyncStats{Full: true, ServicePorts: len(ports), Rewritten: len(ports), Operations: tx.NumOperations()}, nil
}

// partialSync rewrites only the service ports that changed since the last
// sync, and removes those that are gone.
func (p *Proxier) partialSync(ports []servicePort) (*knftables.Transaction, map[string]*appliedPort, SyncStats) {
	next := make(map[string]*appliedPort, len(ports))
	var (
		rm     removal
		writes []*portRules
		adds   []*knftables.Element
		// chains the table holds now, of the ports being rewritten
		existed = map[string]bool{}
	)
	for i := range ports {
		sp := &ports[i]
		fp := sp.fingerprint()
		old := p.applied[sp.key]
		if old != nil && old.fingerprint == fp {
			next[sp.key] = old
			continue
		}
		pr := rulesFor(p.cfg, *sp)
		next[sp.key] = &appliedPort{fingerprint: fp, rules: pr}
		writes = append(writes, pr)
		oldRules := &portRules{}
		if old != nil {
			oldRules = old.rules
		}
		for _, c := range oldRules.chains {
			existed[c.name] = true
		}
		gone, added := diffRules(oldRules, pr)
		rm.elements = append(rm.elements, gone.elements...)
		rm.chains = append(rm.chains, gone.chains...)
		rm.sets = append(rm.sets, gone.sets...)
		adds = append(adds, added...)
	}
	for key, old := range p.applied {
		if _, ok := next[key]; ok {
			continue
		}
		gone, _ := diffRules(old.rules, &portRules{})
		rm.elements = append(rm.elements, gone.elements...)
		rm.chains = append(rm.chains, gone.chains...)
		rm.sets = append(rm.sets, gone.sets...)
		writes = append(writes, nil) // counted as rewritten
	}
	tx := p.nft.NewTransaction()
	for _, e := range rm.elements {
		tx.Delete(e)
	}
	for _, pr := range writes {
		if pr != nil {
			pr.write(tx, func(c string) bool { return existed[c] })
		}
	}
	for _, e := range adds {
		tx.Add(e)
	}
	rm.flushAndDelete(tx)
	return tx, next, SyncStats{ServicePorts: len(ports), Rewritten: len(writes), Operations: tx.NumOperations()}
}

// diffRules says what of old is not in new (to remove) and which elements
// of new are not in old (to add); chains and sets of new are written anyway.
func diffRules(old, new *portRules) (gone removal, added []*knftables.Element) {
	newChains, newSets, newElements := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, c := range new.chains {
		newChains[c.name] = true
	}
	for _, s := range new.sets {
		newSets[s.Name] = true
	}
	for _, e := range new.elements {
		newElements[elementID(e)] = true
	}
	oldElements := map[string]bool{}
	for _, e := range old.elements {
		oldElements[elementID(e)] = true
		if !newElements[elementID(e)] {
			gone.elements = append(gone.elements, e)
		}
	}
	for _, e := range new.elements {
		if !oldElements[elementID(e)] {
			added = append(added, e)
		}
	}
	for _, c := range old.chains {
		if !newChains[c.name] {
			gone.chains = append(gone.chains, c.name)
		}
	}
	for _, s := range old.sets {
		if !newSets[s.Name] {
			gone.sets = append(gone.sets, s.Name)
		}
	}
	return gone, added
}

// clearStaleUDP removes the conntrack entries of UDP flows whose endpoint
// is gone, for ClusterIPs and NodePorts: UDP has no connection end, so
// without this the kernel would keep sending a client's datagrams to the
// dead endpoint.
func (p *Proxier) clearStaleUDP(ctx context.Context, ports []servicePort) {
	current := map[udpDest]map[string]bool{}
	for _, sp := range ports {
		if sp.protocol != "udp" {
			continue
		}
		eps := map[string]bool{}
		for _, e := range sp.endpoints {
			eps[e.ip] = true
		}
		current[udpDest{sp.clusterIP, sp.port}] = eps
		if sp.nodePort != 0 {
			current[udpDest{"", sp.nodePort}] = eps
		}
	}
	p.mu.Lock()
	previous := p.lastUDP
	p.lastUDP = current
	p.mu.Unlock()
	if p.Conntrack == nil {
		return
	}
	for d, eps := range previous {
		for ip := range eps {
			if current[d][ip] {
				continue
			}
			if err := p.Conntrack.ClearUDP(ctx, d.ip, d.port, ip); err != nil {
				ctrl.LoggerFrom(ctx).V(2).Info("Clearing stale UDP conntrack entries failed", "serviceIP", d.ip, "port", d.port, "endpoint", ip, "err", err)
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

// LastSync describes the last sync.
func (p *Proxier) LastSync() SyncStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastSync
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
