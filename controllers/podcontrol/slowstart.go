package podcontrol

import (
	"errors"
	"sync"
)

const (
	// SlowStartInitialBatchSize is the first batch of SlowStartBatch, as upstream.
	SlowStartInitialBatchSize = 1
	// BurstReplicas caps the pods one sync creates or deletes, as upstream's
	// ReplicaSet controller does (500).
	BurstReplicas = 500
)

// SlowStartBatch calls fn count times in batches that double in size,
// starting from initialBatchSize; the calls of one batch run concurrently.
// It stops after the first batch in which a call fails, so a template that
// the API refuses (quota, admission) costs a handful of calls, not count.
// It returns the number of successful calls and the errors of the last batch.
func SlowStartBatch(count, initialBatchSize int, fn func() error) (int, error) {
	remaining := count
	successes := 0
	for batch := min(remaining, initialBatchSize); batch > 0; batch = min(2*batch, remaining) {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for range batch {
			wg.Go(func() {
				if err := fn(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		successes += batch - len(errs)
		if len(errs) > 0 {
			return successes, errors.Join(errs...)
		}
		remaining -= batch
	}
	return successes, nil
}
