package core

import (
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// DisruptionOptions set how fast nodes that stopped being ready get their
// NoExecute taints (after which their pods are evicted), zone by zone, as
// kube-controller-manager's flags of the same names.
type DisruptionOptions struct {
	// EvictionRate is nodes tainted per second in a zone that is healthy
	// (--node-eviction-rate, 0.1).
	EvictionRate float64
	// SecondaryEvictionRate is nodes tainted per second in an unhealthy
	// zone of more than LargeClusterSizeThreshold nodes; a smaller
	// unhealthy zone taints none (--secondary-node-eviction-rate, 0.01).
	SecondaryEvictionRate float64
	// UnhealthyZoneThreshold is the share of not-ready nodes (and at least
	// three) that makes a zone unhealthy (--unhealthy-zone-threshold, 0.55).
	UnhealthyZoneThreshold float64
	// LargeClusterSizeThreshold is the zone size above which an unhealthy
	// zone still taints, at SecondaryEvictionRate
	// (--large-cluster-size-threshold, 50).
	LargeClusterSizeThreshold int
}

// UpstreamDisruptionOptions are kube-controller-manager's defaults.
var UpstreamDisruptionOptions = DisruptionOptions{
	EvictionRate: 0.1, SecondaryEvictionRate: 0.01, UnhealthyZoneThreshold: 0.55, LargeClusterSizeThreshold: 50,
}

// zoneState is a zone's health, as upstream's ZoneState.
type zoneState int

const (
	zoneNormal zoneState = iota
	// zonePartialDisruption: at least UnhealthyZoneThreshold of the zone's
	// nodes, and more than two, are not ready.
	zonePartialDisruption
	// zoneFullDisruption: no node of the zone is ready.
	zoneFullDisruption
)

func (s zoneState) String() string {
	return [...]string{"Normal", "PartialDisruption", "FullDisruption"}[s]
}

// computeZoneState is a zone's state from how many of its nodes are ready.
func computeZoneState(ready, notReady int, threshold float64) zoneState {
	switch {
	case ready == 0 && notReady > 0:
		return zoneFullDisruption
	case notReady > 2 && float64(notReady)/float64(ready+notReady) >= threshold:
		return zonePartialDisruption
	default:
		return zoneNormal
	}
}

// zoneKey names a node's failure domain from its region and zone labels
// (the beta failure-domain ones when the GA ones are missing), as
// upstream's GetZoneKey; nodes without them share the zone "".
func zoneKey(node *corev1alpha1.Node) string {
	region, zone := node.Labels[corev1.LabelTopologyRegion], node.Labels[corev1.LabelTopologyZone]
	if region == "" {
		region = node.Labels[corev1.LabelFailureDomainBetaRegion]
	}
	if zone == "" {
		zone = node.Labels[corev1.LabelFailureDomainBetaZone]
	}
	if region == "" && zone == "" {
		return ""
	}
	return region + ":\x00:" + zone
}

// zoneName is a zone key as a person reads it: region/zone, or the zone
// alone when there is no region label.
func zoneName(key string) string {
	if key == "" {
		return "(no zone label)"
	}
	region, zone, _ := strings.Cut(key, ":\x00:")
	if region == "" {
		return zone
	}
	return region + "/" + zone
}

// LabelExcludeDisruption on a Node leaves it out of its zone's counts, as
// upstream's label of that name: its own taints still follow its health.
const LabelExcludeDisruption = "node.kubernetes.io/exclude-disruption"

func excludedFromDisruption(node *corev1alpha1.Node) bool {
	_, ok := node.Labels[LabelExcludeDisruption]
	return ok
}

// nodeReady is whether a node counts as ready for its zone's state: its
// agent is heard from and reports Ready=True. A node that has not reported
// yet counts as not ready, as upstream.
func nodeReady(node *corev1alpha1.Node, health nodeHealth) bool {
	if health != nodeHealthy {
		return false
	}
	c := meta.FindStatusCondition(node.Status.Conditions, conditions.Ready)
	return c != nil && c.Status == metav1.ConditionTrue
}

// disruption decides, zone by zone, whether a node that stopped being
// ready may get its NoExecute taint now, as upstream's node lifecycle
// controller rate-limits its NoExecute tainting per zone:
//   - a healthy zone taints at EvictionRate;
//   - an unhealthy zone slows to SecondaryEvictionRate, or stops when it is
//     small;
//   - a zone with no ready node taints at EvictionRate (the zone is down);
//   - when no zone has a ready node, the fault is more likely the control
//     plane's view than every node at once: nothing is tainted NoExecute
//     and the taints there are lifted ("master disruption mode"). When a
//     node is ready again, every node gets a fresh grace period before it
//     is tainted.
//
// It learns each node's readiness from the reconciles of that node, so it
// costs nothing per node beyond a map entry and no list of all Nodes.
type disruption struct {
	opts DisruptionOptions

	mu    sync.Mutex
	nodes map[string]nodeZone
	zones map[string]*zoneHealth
	// all is whether every zone is fully disrupted. graceFrom is when
	// the controller started or last left that mode: a node silent since
	// before then is given a grace period from then, as upstream takes a
	// node it has no probe time for as heard from now.
	all       bool
	graceFrom time.Time
	// primed is whether every Node was counted once: a decision on the
	// first nodes reconciled after a start must not take them for the
	// whole cluster.
	primed bool
}

type nodeZone struct {
	zone  string
	ready bool
}

type zoneHealth struct {
	ready, notReady int
	state           zoneState
	// limiter paces the zone's NoExecute taints at its state's rate, with
	// upstream's burst of one.
	limiter *rate.Limiter
}

func newDisruption(opts DisruptionOptions) *disruption {
	return &disruption{opts: opts, nodes: map[string]nodeZone{}, zones: map[string]*zoneHealth{}}
}

// observe records a node's zone and readiness, and updates the zones'
// states.
func (d *disruption) observe(log logr.Logger, name, zone string, ready bool, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.nodes[name]; ok {
		if old == (nodeZone{zone, ready}) {
			return
		}
		d.count(old, -1)
	}
	d.nodes[name] = nodeZone{zone, ready}
	d.count(d.nodes[name], 1)
	d.update(log, now)
}

// needsPriming tells whether the Nodes must be counted before a decision.
func (d *disruption) needsPriming() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.primed
}

// prime counts every Node by its stored Ready condition (its own reconcile
// corrects a node that went silent since), once. A stored Ready=True may
// be stale after a restart, so no node silent since before now is tainted
// within a grace period of now.
func (d *disruption) prime(log logr.Logger, nodes []corev1alpha1.Node, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.primed {
		return
	}
	d.primed = true
	d.graceFrom = now
	for i := range nodes {
		n := &nodes[i]
		if _, ok := d.nodes[n.Name]; ok || excludedFromDisruption(n) {
			continue
		}
		d.nodes[n.Name] = nodeZone{zoneKey(n), nodeReady(n, nodeHealthy)}
		d.count(d.nodes[n.Name], 1)
	}
	d.update(log, now)
}

// forget drops a deleted node.
func (d *disruption) forget(log logr.Logger, name string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.nodes[name]; ok {
		d.count(old, -1)
		delete(d.nodes, name)
		d.update(log, now)
	}
}

func (d *disruption) count(n nodeZone, delta int) {
	z := d.zones[n.zone]
	if z == nil {
		z = &zoneHealth{limiter: rate.NewLimiter(rate.Limit(d.opts.EvictionRate), 1)}
		d.zones[n.zone] = z
	}
	if n.ready {
		z.ready += delta
	} else {
		z.notReady += delta
	}
	if z.ready == 0 && z.notReady == 0 {
		delete(d.zones, n.zone)
		forgetZone(n.zone)
	}
}

// update recomputes the zones' states and the cluster-wide mode.
func (d *disruption) update(log logr.Logger, now time.Time) {
	all := len(d.zones) > 0
	for key, z := range d.zones {
		recordZone(key, z)
		state := computeZoneState(z.ready, z.notReady, d.opts.UnhealthyZoneThreshold)
		if state != z.state {
			log.Info("Zone changed state", "zone", zoneName(key), "from", z.state, "to", state, "ready", z.ready, "notReady", z.notReady)
			z.state = state
		}
		all = all && state == zoneFullDisruption
	}
	switch {
	case all && !d.all:
		log.Info("No node in any zone is ready: entering master disruption mode, no NoExecute taints until one is")
	case !all && d.all:
		log.Info("A node is ready again: leaving master disruption mode; silent nodes get a fresh grace period")
		d.graceFrom = now
	}
	d.all = all
	for _, z := range d.zones {
		if l := rate.Limit(d.rate(z)); z.limiter.Limit() != l {
			z.limiter.SetLimitAt(now, l) // what the old rate earned until now stays
		}
	}
}

// rate is a zone's NoExecute taints per second in its state.
func (d *disruption) rate(z *zoneHealth) float64 {
	switch {
	case d.all:
		return 0
	case z.state == zonePartialDisruption && z.ready+z.notReady <= d.opts.LargeClusterSizeThreshold:
		return 0
	case z.state == zonePartialDisruption:
		return d.opts.SecondaryEvictionRate
	default:
		return d.opts.EvictionRate
	}
}

// lifted tells whether NoExecute lifecycle taints must come off every node
// (master disruption mode).
func (d *disruption) lifted() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.all
}

// allowTaint takes a NoExecute taint from the zone's budget and returns
// its reservation (cancelled at now when the taint is not written, so the
// budget gets it back); when there is none, it returns when to ask again.
// silentSince is when the node was last heard from: after a start or
// master disruption mode it must be silent for grace again, counted from
// then.
func (d *disruption) allowTaint(zone string, silentSince time.Time, grace time.Duration, now time.Time) (*rate.Reservation, time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if silentSince.Before(d.graceFrom) {
		if wait := d.graceFrom.Add(grace).Sub(now); wait > 0 {
			return nil, wait
		}
	}
	z := d.zones[zone]
	if z == nil || d.rate(z) <= 0 {
		return nil, disruptionRecheck
	}
	res := z.limiter.ReserveN(now, 1)
	if wait := res.DelayFrom(now); wait > 0 {
		res.CancelAt(now)
		return nil, max(wait, time.Millisecond)
	}
	return res, 0
}

// disruptionRecheck is how often a node held back by a zone that taints
// none looks again: the monitor period of upstream's controller.
const disruptionRecheck = 5 * time.Second
