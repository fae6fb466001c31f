package scheduler

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// assumedPodTTL is how long an assumed pod whose binding succeeded may stay
// unconfirmed by the watch before the cache forgets it.
const assumedPodTTL = 30 * time.Second

// podState is a pod the cache accounts on a node.
type podState struct {
	info     *podInfo
	node     string
	assumed  bool
	deadline time.Time // zero while the binding is in flight
}

// Cache holds the nodes and the pods bound or assumed on them. An assumed
// pod counts on its node from the moment the scheduler chose the node, so
// the next cycle does not wait for the binding's watch event. Every method
// takes the cache lock; the scheduling cycle holds it through lock/unlock.
type Cache struct {
	mu         sync.Mutex
	nodes      map[string]*nodeInfo
	order      []*nodeInfo // nodes with a Node object, by name
	nextStart  int         // where the next cycle starts filtering
	pods       map[string]*podState
	namespaces map[string]labels.Set
	// budgets are the PodDisruptionBudgets by namespace/name, which
	// preemption tries not to violate.
	budgets map[string]*budgetInfo
	// nominated are pending pods that preempted others on a node: their
	// requests count there for pods of equal or lower priority.
	nominated map[string]nominee
	// par bounds the goroutines of a cycle's per-node work.
	par parallelizer
}

// nominee is a pending pod and the node it preempted pods on.
type nominee struct {
	info *podInfo
	node string
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{
		nodes:      map[string]*nodeInfo{},
		pods:       map[string]*podState{},
		namespaces: map[string]labels.Set{},
		budgets:    map[string]*budgetInfo{},
		nominated:  map[string]nominee{},
		par:        newParallelizer(DefaultParallelism),
	}
}

// SetParallelism bounds how many nodes a cycle filters and scores at once
// (DefaultParallelism when n <= 0); GOMAXPROCS bounds it too.
func (c *Cache) SetParallelism(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.par = newParallelizer(n)
}

func (c *Cache) nodeLocked(name string) *nodeInfo {
	ni, ok := c.nodes[name]
	if !ok {
		ni = newNodeInfo(name)
		c.nodes[name] = ni
	}
	return ni
}

func (c *Cache) reorderLocked() {
	c.order = c.order[:0]
	for _, ni := range c.nodes {
		if ni.node != nil {
			c.order = append(c.order, ni)
		}
	}
	sort.Slice(c.order, func(i, j int) bool { return c.order[i].name < c.order[j].name })
}

// UpsertNode adds or replaces a node.
func (c *Cache) UpsertNode(node *corev1alpha1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni := c.nodeLocked(node.Name)
	isNew := ni.node == nil
	ni.setNode(node)
	if isNew {
		// Insert in name order: registering N nodes stays O(N²) moves, not N sorts.
		i, _ := slices.BinarySearchFunc(c.order, ni.name, func(o *nodeInfo, name string) int { return strings.Compare(o.name, name) })
		c.order = slices.Insert(c.order, i, ni)
	}
}

// RemoveNode forgets a node; pods still naming it keep a placeholder.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni, ok := c.nodes[name]
	if !ok {
		return
	}
	if len(ni.pods) == 0 {
		delete(c.nodes, name)
	} else {
		ni.node, ni.core = nil, nil
	}
	c.reorderLocked()
}

// UpsertPod accounts a bound pod on its node, confirming it if assumed. A
// terminal pod is removed: it no longer holds resources.
func (c *Cache) UpsertPod(pod *corev1alpha1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := podKey(pod.Namespace, pod.Name)
	if isTerminal(pod) {
		c.removePodLocked(key)
		return
	}
	if ps, ok := c.pods[key]; ok {
		if c.nodes[ps.node] != nil {
			c.nodes[ps.node].removePod(key)
		}
	}
	pi := newPodInfo(pod)
	c.pods[key] = &podState{info: pi, node: pod.Spec.NodeName}
	c.nodeLocked(pod.Spec.NodeName).addPod(pi)
}

// RemovePod forgets a pod.
func (c *Cache) RemovePod(namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removePodLocked(podKey(namespace, name))
}

func (c *Cache) removePodLocked(key string) {
	delete(c.nominated, key)
	ps, ok := c.pods[key]
	if !ok {
		return
	}
	delete(c.pods, key)
	if ni := c.nodes[ps.node]; ni != nil {
		ni.removePod(key)
		if ni.node == nil && len(ni.pods) == 0 {
			delete(c.nodes, ps.node)
		}
	}
}

// assumeLocked accounts a pod on the node chosen for it, before binding.
func (c *Cache) assumeLocked(pi *podInfo, node string) {
	delete(c.nominated, pi.key)
	c.pods[pi.key] = &podState{info: pi, node: node, assumed: true}
	c.nodeLocked(node).addPod(pi)
}

// FinishBinding starts the expiry of an assumed pod whose binding succeeded.
func (c *Cache) FinishBinding(key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[key]; ok && ps.assumed {
		ps.deadline = now.Add(assumedPodTTL)
	}
}

// Forget removes an assumed pod whose binding failed.
func (c *Cache) Forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[key]; ok && ps.assumed {
		c.removePodLocked(key)
	}
}

// IsAssumedOrBound tells whether the cache already places the pod.
func (c *Cache) IsAssumedOrBound(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pods[key]
	return ok
}

// Expire forgets assumed pods that the watch never confirmed.
func (c *Cache) Expire(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, ps := range c.pods {
		if ps.assumed && !ps.deadline.IsZero() && now.After(ps.deadline) {
			c.removePodLocked(key)
		}
	}
}

// SetNamespace records a namespace's labels, for namespace selectors.
func (c *Cache) SetNamespace(name string, l map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l == nil {
		delete(c.namespaces, name)
		return
	}
	c.namespaces[name] = labels.Set(l)
}

// SetNominated records (node != "") or clears the node a pending pod preempted on.
func (c *Cache) SetNominated(pi *podInfo, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setNominatedLocked(pi, node)
}

func (c *Cache) setNominatedLocked(pi *podInfo, node string) {
	if node == "" {
		delete(c.nominated, pi.key)
		return
	}
	c.nominated[pi.key] = nominee{info: pi, node: node}
}

func (c *Cache) nsLabels(ns string) labels.Set { return c.namespaces[ns] }

// NodeCount is the number of nodes with a Node object.
func (c *Cache) NodeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.order)
}
