package pods

import (
	"sync"
	"time"
)

// Back-off of restarting containers and of image pulls, as upstream.
const (
	// InitialBackoff is the first delay after a container exits twice.
	InitialBackoff = 10 * time.Second
	// MaxBackoff caps the delay.
	MaxBackoff = 5 * time.Minute
)

// Backoff tracks an exponential delay per key (a pod UID and container
// name, or an image). It is safe for concurrent use.
type Backoff struct {
	initial, max time.Duration

	mu      sync.Mutex
	entries map[string]*backoffEntry
}

type backoffEntry struct {
	delay time.Duration
	last  time.Time
}

// NewBackoff returns a back-off from initial doubling up to max.
func NewBackoff(initial, max time.Duration) *Backoff {
	return &Backoff{initial: initial, max: max, entries: map[string]*backoffEntry{}}
}

// InBackoffSince tells whether an attempt for key must wait, given that the
// last attempt failed at since, and until when. As upstream, the first
// failure is retried at once and each later one waits twice as long as the
// one before, up to max.
func (b *Backoff) InBackoffSince(key string, since, now time.Time) (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok {
		return false, time.Time{}
	}
	// A long quiet period resets the back-off.
	if now.Sub(e.last) > 2*b.max {
		delete(b.entries, key)
		return false, time.Time{}
	}
	until := since.Add(e.delay)
	return now.Before(until), until
}

// Next records an attempt for key at now and grows its delay.
func (b *Backoff) Next(key string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || now.Sub(e.last) > 2*b.max {
		b.entries[key] = &backoffEntry{delay: b.initial, last: now}
		return
	}
	e.delay = min(2*e.delay, b.max)
	e.last = now
}

// Delay is the current delay of key, 0 when none.
func (b *Backoff) Delay(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return e.delay
	}
	return 0
}

// Forget drops every key with that prefix (a pod's UID).
func (b *Backoff) Forget(prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(b.entries, k)
		}
	}
}
