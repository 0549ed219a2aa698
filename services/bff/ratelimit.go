package bff

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per client: each client earns rate tokens per
// second up to burst, and a request spends one. Clients have separate
// buckets, so one client's flood empties only its own. It remembers at most
// maxClients buckets: when full, it forgets the buckets that have refilled
// (their clients are idle, and a fresh bucket is equally full), and if none
// has, it refuses new clients until one does, which bounds memory under a
// flood of distinct client keys. Safe for concurrent use.
type limiter struct {
	rate       float64
	burst      float64
	maxClients int

	mu      sync.Mutex
	buckets map[string]*bucket
}

// bucket is one client's tokens as of last.
type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, maxClients int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), maxClients: maxClients, buckets: map[string]*bucket{}}
}

// allow spends a token of client's bucket at now. When the bucket is empty
// it returns false and how long until a token is earned.
func (l *limiter) allow(client string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[client]
	if !ok {
		if len(l.buckets) >= l.maxClients && !l.evictIdle(now) {
			return time.Second, false
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[client] = b
	}
	b.refill(now, l.rate, l.burst)
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	need := (1 - b.tokens) / l.rate
	return time.Duration(need * float64(time.Second)), false
}

func (b *bucket) refill(now time.Time, rate, burst float64) {
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(burst, b.tokens+elapsed*rate)
		b.last = now
	}
}

// evictIdle forgets every bucket that has refilled completely and reports
// whether it forgot any.
func (l *limiter) evictIdle(now time.Time) bool {
	evicted := false
	for k, b := range l.buckets {
		b.refill(now, l.rate, l.burst)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
			evicted = true
		}
	}
	return evicted
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1, as
// Retry-After wants.
func retryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
