package flow

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/wire"
)

// Quota is a produce rate limit: messages and body bytes per second on
// this broker; 0 is no limit.
type Quota struct{ TPS, BPS int64 }

// String is how remarks and mqadmin show q: "200 msg/s, 8388608 B/s".
func (q Quota) String() string { return wire.FormatProduceQuota(q.TPS, q.BPS) }

// TopicQuotaOf reads a topic's produce quota from its attributes.
func TopicQuotaOf(tc *wire.TopicConfig) Quota {
	tps, bps := tc.ProduceQuota()
	return Quota{TPS: tps, BPS: bps}
}

// Bucket is a token bucket holding one second of a quota's rate, in
// messages and in bytes. A send short of tokens may borrow up to maxDelay
// worth of them and wait that long (Kafka's delayed response); beyond
// that it is refused.
type Bucket struct {
	mu       sync.Mutex
	q        Quota
	msgs     float64
	bytes    float64
	last     time.Time
	throttle atomic.Int64 // sends delayed
	reject   atomic.Int64 // sends refused
	delayMs  atomic.Int64 // sum of the delays, ms
}

func newBucket(q Quota, now time.Time) *Bucket {
	return &Bucket{q: q, msgs: float64(q.TPS), bytes: float64(q.BPS), last: now}
}

// setQuota changes the rates; tokens beyond the new second are dropped.
func (b *Bucket) setQuota(q Quota) {
	b.mu.Lock()
	b.q = q
	b.msgs = min(b.msgs, float64(q.TPS))
	b.bytes = min(b.bytes, float64(q.BPS))
	b.mu.Unlock()
}

// Take asks for n messages of size body bytes at now. It returns how long
// the send must wait (0: none), or ok false when that would exceed
// maxDelay: then nothing is taken.
func (b *Bucket) Take(now time.Time, n, size int, maxDelay time.Duration) (wait time.Duration, ok bool) {
	wait, refused := TakeBoth(now, n, size, maxDelay, b, nil)
	return wait, refused == nil
}

// TakeBoth takes n messages of size bytes from a send's topic bucket and
// its account bucket (either may be nil) at once: the send waits for the
// longer of the two deficits, and when either would make it wait beyond
// maxDelay it is refused by that one (the topic's first) and neither
// bucket loses tokens. The topic bucket is always locked first.
func TakeBoth(now time.Time, n, size int, maxDelay time.Duration, topic, account *Bucket) (wait time.Duration, refusedBy *Bucket) {
	var wt, wa time.Duration
	if topic != nil {
		topic.mu.Lock()
		defer topic.mu.Unlock()
		wt = topic.deficit(now, n, size)
	}
	if account != nil {
		account.mu.Lock()
		defer account.mu.Unlock()
		wa = account.deficit(now, n, size)
	}
	switch {
	case wt > maxDelay:
		topic.reject.Add(1)
		return 0, topic
	case wa > maxDelay:
		account.reject.Add(1)
		return 0, account
	}
	if topic != nil {
		topic.take(n, size, wt)
	}
	if account != nil {
		account.take(n, size, wa)
	}
	return max(wt, wa), nil
}

// deficit refills b to now and returns how long n messages of size bytes
// must wait for their tokens; b.mu is held.
func (b *Bucket) deficit(now time.Time, n, size int) time.Duration {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.msgs = min(float64(b.q.TPS), b.msgs+el*float64(b.q.TPS))
		b.bytes = min(float64(b.q.BPS), b.bytes+el*float64(b.q.BPS))
		b.last = now
	}
	var w float64 // seconds
	if b.q.TPS > 0 && b.msgs < float64(n) {
		w = (float64(n) - b.msgs) / float64(b.q.TPS)
	}
	if b.q.BPS > 0 && b.bytes < float64(size) {
		w = max(w, (float64(size)-b.bytes)/float64(b.q.BPS))
	}
	return time.Duration(w * float64(time.Second))
}

// take spends the tokens deficit measured, counting a wait; b.mu is held.
func (b *Bucket) take(n, size int, wait time.Duration) {
	if b.q.TPS > 0 {
		b.msgs -= float64(n)
	}
	if b.q.BPS > 0 {
		b.bytes -= float64(size)
	}
	if wait > 0 {
		b.throttle.Add(1)
		b.delayMs.Add(wait.Milliseconds())
	}
}

// Quota is the bucket's current rate.
func (b *Bucket) Quota() Quota {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.q
}

// Counters are a bucket's delayed and refused sends and the sum of the
// delays in ms (quota_throttled_total, quota_rejected_total,
// quota_delay_ms_sum).
func (b *Bucket) Counters() (throttled, rejected, delayMs int64) {
	return b.throttle.Load(), b.reject.Load(), b.delayMs.Load()
}

// Quotas holds the buckets of the topics that have a quota.
// A deleted topic's entry stays until a topic of that name returns.
type Quotas struct {
	mu      sync.RWMutex
	buckets map[string]*topicBucket
}

type topicBucket struct {
	src *wire.TopicConfig // the config the quota was read from
	b   *Bucket
}

// NewQuotas returns an empty set.
func NewQuotas() *Quotas { return &Quotas{buckets: map[string]*topicBucket{}} }

// For is the bucket of tc's topic, or nil when it has no quota. A topic
// without attributes costs one length check; a changed config (mqadmin
// updateTopic gives a new *TopicConfig) changes the rates at once and
// keeps the tokens.
func (qs *Quotas) For(tc *wire.TopicConfig, now time.Time) *Bucket {
	if len(tc.Attributes) == 0 {
		return nil
	}
	qs.mu.RLock()
	tb := qs.buckets[tc.TopicName]
	qs.mu.RUnlock()
	if tb != nil && tb.src == tc {
		return tb.b
	}
	return qs.refresh(tc, now)
}

// refresh reads tc's quota into its bucket.
func (qs *Quotas) refresh(tc *wire.TopicConfig, now time.Time) *Bucket {
	q := TopicQuotaOf(tc)
	qs.mu.Lock()
	defer qs.mu.Unlock()
	tb := qs.buckets[tc.TopicName]
	switch {
	case tb == nil:
		tb = &topicBucket{}
		qs.buckets[tc.TopicName] = tb
		fallthrough
	case tb.b == nil:
		if q != (Quota{}) {
			tb.b = newBucket(q, now)
		}
	case q == (Quota{}):
		tb.b = nil
	case tb.b.Quota() != q:
		tb.b.setQuota(q)
	}
	// Topics whose attributes hold no quota are remembered too (b nil),
	// so their sends stay on the read-locked path.
	tb.src = tc
	return tb.b
}

// Each calls fn for every topic with a quota bucket.
func (qs *Quotas) Each(fn func(topic string, b *Bucket)) {
	qs.mu.RLock()
	defer qs.mu.RUnlock()
	for t, tb := range qs.buckets {
		if tb.b != nil {
			fn(t, tb.b)
		}
	}
}

// AccountQuotas holds the buckets of the ACL accounts that have a produce
// quota (produceTps/produceBps in plain_acl.yml), following the rules in
// force through Sync.
type AccountQuotas struct {
	mu      sync.RWMutex
	buckets map[string]*Bucket // by AccessKey
}

// NewAccountQuotas returns an empty set.
func NewAccountQuotas() *AccountQuotas { return &AccountQuotas{buckets: map[string]*Bucket{}} }

// Sync makes the buckets those of quotas (by AccessKey, every one set): a
// new account gets a full bucket, a changed quota resizes its bucket and
// keeps the tokens, and an account gone from the rules, or left without a
// quota, drops its bucket and counters.
func (qs *AccountQuotas) Sync(quotas map[string]Quota, now time.Time) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	for ak := range qs.buckets {
		if _, ok := quotas[ak]; !ok {
			delete(qs.buckets, ak)
		}
	}
	for ak, q := range quotas {
		switch b := qs.buckets[ak]; {
		case b == nil:
			qs.buckets[ak] = newBucket(q, now)
		case b.Quota() != q:
			b.setQuota(q)
		}
	}
}

// For is the bucket of account ak, or nil when it has no quota.
func (qs *AccountQuotas) For(ak string) *Bucket {
	qs.mu.RLock()
	defer qs.mu.RUnlock()
	return qs.buckets[ak]
}

// Each calls fn for every account with a quota bucket.
func (qs *AccountQuotas) Each(fn func(ak string, b *Bucket)) {
	qs.mu.RLock()
	defer qs.mu.RUnlock()
	for ak, b := range qs.buckets {
		fn(ak, b)
	}
}
