package podcontrol

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"
)

// ExpectationsTimeout is how long expectations are trusted. After it a
// controller acts on what the cache says even if some creations or
// deletions were never observed (a lost watch event), as upstream does.
const ExpectationsTimeout = 5 * time.Minute

// Expectations record, per owner key, the pod creations and deletions a
// controller has issued and not yet seen in its cache. A controller checks
// Satisfied before it computes a diff from the cache; the pod event handler
// lowers the expectations as the cache catches up. Deletions are tracked by
// UID so that an unrelated pod's deletion cannot satisfy them.
//
// Keys are chosen by the caller (namespace/name of the owner); use one
// Expectations per owner kind.
type Expectations struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	records map[string]*expectation
}

type expectation struct {
	adds      int64
	deletions sets.Set[types.UID]
	timestamp time.Time
}

// NewExpectations returns empty expectations that use clk (a real clock when nil).
func NewExpectations(clk clock.PassiveClock) *Expectations {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Expectations{clock: clk, records: map[string]*expectation{}}
}

// Satisfied tells whether the controller may trust its cache for key: no
// expectations are recorded, all were observed, or they have expired.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.records[key]
	if !ok {
		return true
	}
	if r.adds <= 0 && r.deletions.Len() == 0 {
		return true
	}
	return e.clock.Since(r.timestamp) > ExpectationsTimeout
}

// ExpectCreations records that n pods are about to be created for key,
// replacing earlier creation expectations.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.record(key)
	r.adds = int64(n)
	r.timestamp = e.clock.Now()
}

// ExpectDeletions records that the pods with these UIDs are about to be
// deleted for key, replacing earlier deletion expectations.
func (e *Expectations) ExpectDeletions(key string, uids []types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.record(key)
	r.deletions = sets.New(uids...)
	r.timestamp = e.clock.Now()
}

// CreationObserved lowers the creations expected for key by one: the cache
// has seen a new pod, or a create call failed and will never be seen.
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok && r.adds > 0 {
		r.adds--
	}
}

// DeletionObserved removes uid from the deletions expected for key: the
// cache has seen the pod go or start terminating, or the delete call failed.
func (e *Expectations) DeletionObserved(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		r.deletions.Delete(uid)
	}
}

// Pending returns the creations and deletions still expected for key.
func (e *Expectations) Pending(key string) (adds int, deletions int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.records[key]; ok {
		return int(max(r.adds, 0)), r.deletions.Len()
	}
	return 0, 0
}

// Forget drops every expectation of key, when its owner is gone.
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.records, key)
}

func (e *Expectations) record(key string) *expectation {
	r, ok := e.records[key]
	if !ok {
		r = &expectation{deletions: sets.New[types.UID]()}
		e.records[key] = r
	}
	return r
}
