package server

import (
	"sync"
	"time"
)

// pausedPullHold is how long a pull of a paused group (consumeEnable
// false) waits before it is answered "no new message": clients keep
// pulling without spinning, and a resume takes effect within this time.
const pausedPullHold = 2 * time.Second

// groupLimiter enforces each group's consumeRateLimit (messages per
// second) with one token bucket per group, holding a second's worth.
type groupLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	rate   float64 // tokens per second
	tokens float64
	last   time.Time
}

func newGroupLimiter() *groupLimiter { return &groupLimiter{buckets: map[string]*bucket{}} }

// take grants up to want messages to group at rate; when it grants none,
// wait is how long until one is available.
func (l *groupLimiter) take(group []byte, rate, want int, now time.Time) (granted int, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[string(group)]
	if b == nil {
		b = &bucket{tokens: float64(rate), last: now}
		l.buckets[string(group)] = b
	}
	b.rate = float64(rate)
	b.tokens = min(b.tokens+now.Sub(b.last).Seconds()*b.rate, b.rate)
	b.last = now
	if b.tokens < 1 {
		return 0, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	}
	granted = min(want, int(b.tokens))
	b.tokens -= float64(granted)
	return granted, 0
}

// refund returns tokens a pull was granted but did not use.
func (l *groupLimiter) refund(group []byte, n int) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[string(group)]; b != nil {
		b.tokens = min(b.tokens+float64(n), b.rate)
	}
}
