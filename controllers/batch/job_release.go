package batch

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// releaseExpectations remembers, per Job, the pods whose tracking
// finalizer this controller removed and whose removal the cache has not
// shown yet, as upstream's finalizer expectations. The cache may show a
// Job's status with such a pod counted while still showing the pod with
// its finalizer; without this, that pod would look new and be counted
// again.
type releaseExpectations struct {
	mu   sync.Mutex
	uids map[string]map[types.UID]bool
}

func newReleaseExpectations() *releaseExpectations {
	return &releaseExpectations{uids: map[string]map[types.UID]bool{}}
}

// released records that a pod's finalizer is gone on the server.
func (e *releaseExpectations) released(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.uids[key] == nil {
		e.uids[key] = map[types.UID]bool{}
	}
	e.uids[key][uid] = true
}

// pending returns the pods released earlier that the cache (pods) still
// shows with the finalizer, and forgets those it no longer does.
func (e *releaseExpectations) pending(key string, pods []*corev1alpha1.Pod) map[types.UID]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	expected := e.uids[key]
	if len(expected) == 0 {
		return nil
	}
	stale := map[types.UID]bool{}
	for _, p := range pods {
		if expected[p.UID] && hasTrackingFinalizer(p) {
			stale[p.UID] = true
		}
	}
	for uid := range expected {
		if !stale[uid] {
			delete(expected, uid)
		}
	}
	if len(expected) == 0 {
		delete(e.uids, key)
	}
	return stale
}

// forget drops a Job that is gone.
func (e *releaseExpectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.uids, key)
}
