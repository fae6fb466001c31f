package scheduler

import (
	"container/heap"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Back-off of a pod that failed to schedule, as upstream's defaults
// (podInitialBackoffSeconds, podMaxBackoffSeconds).
const (
	initialBackoff = 1 * time.Second
	maxBackoff     = 10 * time.Second
	// maxUnschedulableDuration is how long a pod waits in the unschedulable
	// set for an event before it is retried anyway, as upstream.
	maxUnschedulableDuration = 5 * time.Minute
)

// queuedPod is a pending pod and its scheduling history.
type queuedPod struct {
	info *podInfo
	// timestamp orders pods of equal priority: when the pod was first queued.
	timestamp time.Time
	// attempts counts failed scheduling attempts, for the back-off.
	attempts int
	// lastFailure is when the last attempt failed.
	lastFailure time.Time
	// cycle is the move cycle when the pod was popped.
	cycle int64
	// popped is the pod as it was when popped: the attempt works on it
	// while updates may replace info.
	popped *podInfo
	index  int // in its heap
}

func (p *queuedPod) backoffExpiry() time.Time {
	d := initialBackoff
	for i := 1; i < p.attempts && d < maxBackoff; i++ {
		d *= 2
	}
	if d > maxBackoff {
		d = maxBackoff
	}
	return p.lastFailure.Add(d)
}

// podHeap is a heap of queued pods with a key index.
type podHeap struct {
	items []*queuedPod
	keys  map[string]*queuedPod
	less  func(a, b *queuedPod) bool
}

func newPodHeap(less func(a, b *queuedPod) bool) *podHeap {
	return &podHeap{keys: map[string]*queuedPod{}, less: less}
}

func (h *podHeap) Len() int           { return len(h.items) }
func (h *podHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *podHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index, h.items[j].index = i, j
}
func (h *podHeap) Push(x any) {
	p := x.(*queuedPod)
	p.index = len(h.items)
	h.items = append(h.items, p)
	h.keys[p.info.key] = p
}
func (h *podHeap) Pop() any {
	n := len(h.items) - 1
	p := h.items[n]
	h.items = h.items[:n]
	delete(h.keys, p.info.key)
	return p
}
func (h *podHeap) add(p *queuedPod)    { heap.Push(h, p) }
func (h *podHeap) update(p *queuedPod) { heap.Fix(h, p.index) }
func (h *podHeap) peek() *queuedPod {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}
func (h *podHeap) remove(key string) *queuedPod {
	p, ok := h.keys[key]
	if !ok {
		return nil
	}
	heap.Remove(h, p.index)
	return p
}

// activeLess orders the active queue: higher priority first, then older.
func activeLess(a, b *queuedPod) bool {
	if a.info.priority != b.info.priority {
		return a.info.priority > b.info.priority
	}
	return a.timestamp.Before(b.timestamp)
}

// Queue holds the pods waiting to be scheduled: the active heap that Pop
// serves, the back-off heap of pods that failed recently, and the
// unschedulable set of pods that wait for a cluster event.
type Queue struct {
	clock clock.Clock

	mu            sync.Mutex
	cond          *sync.Cond
	active        *podHeap
	backoff       *podHeap
	unschedulable map[string]*queuedPod
	inFlight      map[string]*queuedPod
	// moveCycle counts move requests; a pod that fails after a move request
	// that happened while it was being scheduled goes to back-off, not to
	// the unschedulable set, so the event is not lost.
	moveCycle int64
	closed    bool
}

// NewQueue returns an empty queue on the clock.
func NewQueue(clk clock.Clock) *Queue {
	q := &Queue{
		clock:         clk,
		active:        newPodHeap(activeLess),
		backoff:       newPodHeap(func(a, b *queuedPod) bool { return a.backoffExpiry().Before(b.backoffExpiry()) }),
		unschedulable: map[string]*queuedPod{},
		inFlight:      map[string]*queuedPod{},
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// find returns the queued pod wherever it is.
func (q *Queue) find(key string) *queuedPod {
	if p, ok := q.active.keys[key]; ok {
		return p
	}
	if p, ok := q.backoff.keys[key]; ok {
		return p
	}
	if p, ok := q.unschedulable[key]; ok {
		return p
	}
	return q.inFlight[key]
}

// Add queues a new pending pod, or updates a queued one. An updated pod in
// the unschedulable set may fit now, so it is moved out.
func (q *Queue) Add(pi *podInfo) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p := q.find(pi.key); p != nil {
		p.info = pi
		switch {
		case q.active.keys[pi.key] != nil:
			q.active.update(p)
		case q.backoff.keys[pi.key] != nil:
			q.backoff.update(p)
		case q.unschedulable[pi.key] != nil:
			delete(q.unschedulable, pi.key)
			q.requeueLocked(p)
		}
		return
	}
	q.active.add(&queuedPod{info: pi, timestamp: q.clock.Now()})
	q.cond.Broadcast()
}

// Delete forgets a pod that was deleted or bound.
func (q *Queue) Delete(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.active.remove(key)
	q.backoff.remove(key)
	delete(q.unschedulable, key)
	delete(q.inFlight, key)
}

// Pop waits for an active pod and returns it, or nil once the queue is closed.
func (q *Queue) Pop() *queuedPod {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil
	}
	p := heap.Pop(q.active).(*queuedPod)
	p.cycle = q.moveCycle
	p.popped = p.info
	q.inFlight[p.info.key] = p
	return p
}

// Done ends an attempt that bound the pod (or found it gone).
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, key)
}

// AddUnschedulable returns a pod whose attempt failed. If a move request
// came while it was in flight it goes to back-off; otherwise it waits in
// the unschedulable set. backoffOnly is for errors that are not about fit.
func (q *Queue) AddUnschedulable(p *queuedPod, backoffOnly bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.inFlight[p.info.key]; !ok {
		return // deleted or bound while in flight
	}
	delete(q.inFlight, p.info.key)
	p.attempts++
	p.lastFailure = q.clock.Now()
	if backoffOnly || q.moveCycle > p.cycle {
		q.backoff.add(p)
		return
	}
	q.unschedulable[p.info.key] = p
}

// requeueLocked puts a pod in back-off if its back-off has not expired, or
// in the active heap.
func (q *Queue) requeueLocked(p *queuedPod) {
	if p.attempts > 0 && q.clock.Now().Before(p.backoffExpiry()) {
		q.backoff.add(p)
		return
	}
	q.active.add(p)
	q.cond.Broadcast()
}

// MoveAllUnschedulable moves every unschedulable pod out after a cluster
// event that may make them fit (a node added or changed, a pod deleted).
func (q *Queue) MoveAllUnschedulable() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveCycle++
	for key, p := range q.unschedulable {
		delete(q.unschedulable, key)
		q.requeueLocked(p)
	}
}

// Flush moves pods whose back-off expired to the active heap, and pods that
// waited too long in the unschedulable set out of it.
func (q *Queue) Flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for p := q.backoff.peek(); p != nil && !now.Before(p.backoffExpiry()); p = q.backoff.peek() {
		heap.Pop(q.backoff)
		q.active.add(p)
		q.cond.Broadcast()
	}
	for key, p := range q.unschedulable {
		if now.Sub(p.lastFailure) > maxUnschedulableDuration {
			delete(q.unschedulable, key)
			q.requeueLocked(p)
		}
	}
}

// Close wakes Pop, which then returns nil.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Lens returns the sizes of the active, back-off and unschedulable parts.
func (q *Queue) Lens() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}
