package pods

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// DefaultHousekeeping is how often the runtime is searched for the remains
// of pods that no longer exist.
const DefaultHousekeeping = 30 * time.Second

// Dispatcher feeds the pods of one shared informer to the Nodes they are
// bound to, through one work queue: a simulated process with a thousand
// nodes holds one watch, not a thousand. The queue never hands the same pod
// to two workers at once.
type Dispatcher struct {
	cache        cache.Cache
	queue        workqueue.TypedRateLimitingInterface[types.NamespacedName]
	workers      int
	housekeeping time.Duration

	mu    sync.RWMutex
	nodes map[string]*Node
	known map[types.NamespacedName]knownPod
}

type knownPod struct {
	node string
	uid  types.UID
}

var _ manager.Runnable = (*Dispatcher)(nil)

// NewDispatcher returns a dispatcher reading pods from c with that many
// workers; housekeeping 0 means DefaultHousekeeping.
func NewDispatcher(c cache.Cache, workers int, housekeeping time.Duration) *Dispatcher {
	if housekeeping == 0 {
		housekeeping = DefaultHousekeeping
	}
	return &Dispatcher{
		cache:        c,
		queue:        workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName](), workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "pods"}),
		workers:      workers,
		housekeeping: housekeeping,
		nodes:        map[string]*Node{},
		known:        map[types.NamespacedName]knownPod{},
	}
}

// AddNode makes the dispatcher run the pods bound to n. Call it before Start.
func (d *Dispatcher) AddNode(n *Node) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n.enqueue = func(k types.NamespacedName) { d.queue.Add(k) }
	d.nodes[n.Name()] = n
}

func (d *Dispatcher) node(name string) *Node {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.nodes[name]
}

func (d *Dispatcher) onEvent(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1alpha1.Pod)
	if !ok || d.node(pod.Spec.NodeName) == nil {
		return
	}
	d.queue.Add(types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
}

// specChanged tells whether an update concerns the agent: another pod
// under the same name (deleted and created again while the agent's watch
// was down: the cache sees one update), the spec, deletion, or metadata
// that the downward API exposes. Status-only updates, most of them the
// agent's own, do not.
func specChanged(old, cur *corev1alpha1.Pod) bool {
	return old.UID != cur.UID || old.Generation != cur.Generation ||
		!old.DeletionTimestamp.Equal(cur.DeletionTimestamp) ||
		!equality.Semantic.DeepEqual(old.Labels, cur.Labels) ||
		!equality.Semantic.DeepEqual(old.Annotations, cur.Annotations) ||
		!equality.Semantic.DeepEqual(old.Finalizers, cur.Finalizers) ||
		old.Spec.NodeName != cur.Spec.NodeName
}

// Start watches pods, adopts what the runtime already runs, and runs the
// workers until ctx ends.
func (d *Dispatcher) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("pods")
	ctx = ctrl.LoggerInto(ctx, log)
	inf, err := d.cache.GetInformer(ctx, &corev1alpha1.Pod{})
	if err != nil {
		return fmt.Errorf("getting the pod informer: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: d.onEvent,
		UpdateFunc: func(oldObj, obj any) {
			if old, ok := oldObj.(*corev1alpha1.Pod); ok && !specChanged(old, obj.(*corev1alpha1.Pod)) {
				return // The agent's own status writes need no sync.
			}
			d.onEvent(obj)
		},
		DeleteFunc: d.onEvent,
	}); err != nil {
		return err
	}
	if !d.cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("pod cache did not sync")
	}
	var wg sync.WaitGroup
	// What the runtime runs for pods that were deleted while the agent was
	// away is cleaned up at once, beside the workers; the rest is adopted
	// by the first sync of each pod.
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.housekeep(ctx)
	}()
	for range d.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d.processNext(ctx) {
			}
		}()
	}
	t := time.NewTicker(d.housekeeping)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			d.housekeep(ctx)
		}
	}
	d.queue.ShutDown()
	wg.Wait()
	return nil
}

// housekeep removes what the runtime holds of pods that are gone.
func (d *Dispatcher) housekeep(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	list := &corev1alpha1.PodList{}
	if err := d.cache.List(ctx, list); err != nil {
		log.Error(err, "Listing pods for housekeeping failed")
		return
	}
	live := map[types.UID]bool{}
	for i := range list.Items {
		live[list.Items[i].UID] = true
	}
	d.mu.RLock()
	nodes := make([]*Node, 0, len(d.nodes))
	for _, n := range d.nodes {
		nodes = append(nodes, n)
	}
	d.mu.RUnlock()
	for _, n := range nodes {
		uids, err := n.RuntimePodUIDs(ctx)
		if err != nil {
			log.Error(err, "Listing runtime pods failed", "node", n.Name())
			continue
		}
		for _, uid := range uids {
			if live[uid] {
				continue
			}
			log.V(2).Info("Removing the remains of a deleted pod", "node", n.Name(), "uid", uid)
			if err := n.SyncGone(ctx, uid); err != nil {
				log.Error(err, "Removing the remains of a deleted pod failed", "uid", uid)
			}
		}
	}
}

func (d *Dispatcher) processNext(ctx context.Context) bool {
	key, quit := d.queue.Get()
	if quit {
		return false
	}
	defer d.queue.Done(key)
	requeue, err := d.sync(ctx, key)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			ctrl.LoggerFrom(ctx).Error(err, "Syncing pod failed", "pod", klog.KRef(key.Namespace, key.Name))
		}
		d.queue.AddRateLimited(key)
	default:
		d.queue.Forget(key)
		if requeue > 0 {
			d.queue.AddAfter(key, requeue)
		}
	}
	return true
}

func (d *Dispatcher) sync(ctx context.Context, key types.NamespacedName) (time.Duration, error) {
	pod := &corev1alpha1.Pod{}
	err := d.cache.Get(ctx, key, pod)
	d.mu.Lock()
	prev, wasKnown := d.known[key]
	if apierrors.IsNotFound(err) {
		delete(d.known, key)
	}
	d.mu.Unlock()
	if apierrors.IsNotFound(err) {
		if wasKnown {
			if n := d.node(prev.node); n != nil {
				return 0, n.SyncGone(ctx, prev.uid)
			}
		}
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := d.node(pod.Spec.NodeName)
	if n == nil {
		return 0, nil
	}
	if wasKnown && prev.uid != pod.UID {
		// Deleted and created again under the same name.
		if old := d.node(prev.node); old != nil {
			if err := old.SyncGone(ctx, prev.uid); err != nil {
				return 0, err
			}
		}
	}
	d.mu.Lock()
	d.known[key] = knownPod{node: n.Name(), uid: pod.UID}
	d.mu.Unlock()
	return n.Sync(ctx, pod)
}
