package scheduler

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
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
// square root of the pieces, at most an equal share per worker. The caller
// works too, and helpers claim chunks as they get to run, so a helper the
// machine is slow to start costs nothing: once every chunk is claimed the
// caller waits only for chunks in progress.
func (p parallelizer) until(ctx context.Context, pieces int, fn func(i int)) {
	w := p.workersFor(pieces)
	done := ctx.Done()
	if w == 1 {
		for i := 0; i < pieces; i++ {
			select {
			case <-done:
				return
			default:
				fn(i)
			}
		}
		return
	}
	chunk := int(math.Sqrt(float64(pieces)))
	if r := pieces/w + 1; chunk > r {
		chunk = r
	}
	chunk = max(chunk, 1)
	var next, inFlight atomic.Int64
	work := func() {
		for {
			inFlight.Add(1)
			start := int(next.Add(int64(chunk))) - chunk
			if start >= pieces {
				inFlight.Add(-1)
				return
			}
			for i := start; i < min(start+chunk, pieces); i++ {
				select {
				case <-done:
					next.Store(int64(pieces)) // hand out nothing more
					inFlight.Add(-1)
					return
				default:
					fn(i)
				}
			}
			inFlight.Add(-1)
		}
	}
	for i := 1; i < w; i++ {
		go work()
	}
	work()
	for inFlight.Load() > 0 {
		runtime.Gosched()
	}
}

// ranges splits [0, pieces) into contiguous ranges, one per worker, and
// calls fn(r, lo, hi) for each, the first on the calling goroutine and the
// others on goroutines of their own, so that each range can
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
	for lo := size; lo < pieces; lo += size {
		n++
		r, hi := n, min(lo+size, pieces)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(r, lo, hi)
		}()
	}
	fn(0, 0, min(size, pieces)) // the caller takes the first range
	wg.Wait()
	return n + 1
}
