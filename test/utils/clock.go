package utils

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

var _ clock.PassiveClock = (*OffsetClock)(nil)

// OffsetClock is the real clock moved ahead by an offset that a test
// raises with Step: time keeps flowing, so what the clock's user compares
// with timestamps written by others (pods' finish times, creation
// timestamps) stays consistent, and a test skips a back-off, a deadline or
// an hour of a schedule instead of waiting for it.
type OffsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the real time plus the offset.
func (c *OffsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Since is Now minus t.
func (c *OffsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Step moves the clock ahead by d.
func (c *OffsetClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Reset makes the clock the real clock again, between tests: timestamps
// written at the earlier offset are left behind with their objects.
func (c *OffsetClock) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = 0
}

// SetNow moves the clock so that Now is t (never backwards: a clock that
// goes back is not what controllers are written for).
func (c *OffsetClock) SetNow(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := time.Until(t); d > c.offset {
		c.offset = d
	}
}
