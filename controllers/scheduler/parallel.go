package scheduler

import (
	"context"
	"math"
	"runtime"
	"sync"

	"k8s.io/client-go/util/workqueue"
)

// DefaultParallelism is upstream's default `parallelism`: how many nodes a
// scheduling cycle filters and scores at once.
const DefaultParallelism = 16

// minPiecesPerWorker keeps small node lists on one goroutine: starting a
// worker costs more than filtering a handful of nodes.
const minPiecesPerWorker = 32

// parallelizer runs a cycle's per-node work on a bounded number of
// goroutines, as upstream's framework/parallelize.
type parallelizer struct{ workers int }

// newParallelizer bounds the workers by n (DefaultParallelism when n <= 0)
// and by GOMAXPROCS: a worker beyond the processors only adds switching.
func newParallelizer(n int) parallelizer {
	if n <= 0 {
		n = DefaultParallelism
	}
	if p := runtime.GOMAXPROCS(0); n > p {
		n = p
	}
	return parallelizer{workers: n}
}

// workersFor is how many goroutines pieces deserve.
func (p parallelizer) workersFor(pieces int) int {
	w := min(p.workers, pieces/minPiecesPerWorker)
	return max(w, 1)
}

// until calls fn for every piece in [0, pieces) and stops handing out
// pieces once ctx is done. Chunks are sized as upstream sizes them: the
// square root of the pieces, at most an equal share per worker.
func (p parallelizer) until(ctx context.Context, pieces int, fn func(i int)) {
	w := p.workersFor(pieces)
	if w == 1 {
		for i := 0; i < pieces; i++ {
			if ctx.Err() != nil {
				return
			}
			fn(i)
		}
		return
	}
	chunk := int(math.Sqrt(float64(pieces)))
	if r := pieces/w + 1; chunk > r {
		chunk = r
	}
	workqueue.ParallelizeUntil(ctx, w, pieces, fn, workqueue.WithChunkSize(max(chunk, 1)))
}

// ranges splits [0, pieces) into contiguous ranges, one per worker, and
// calls fn(r, lo, hi) for each on its own goroutine, so that each range can
// count into state of its own and the caller merges them. It returns the
// number of ranges.
func (p parallelizer) ranges(pieces int, fn func(r, lo, hi int)) int {
	w := p.workersFor(pieces)
	if w == 1 {
		fn(0, 0, pieces)
		return 1
	}
	var wg sync.WaitGroup
	size := (pieces + w - 1) / w
	n := 0
	for lo := 0; lo < pieces; lo += size {
		r, hi := n, min(lo+size, pieces)
		n++
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(r, lo, hi)
		}()
	}
	wg.Wait()
	return n
}
