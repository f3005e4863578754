// Package pop holds the state of POP consumption (RocketMQ 5's
// receive/ack/invisibility model) on top of the broker's consume queues:
// per (group, topic, queue) the offsets handed out and the leases of the
// deliveries not yet acknowledged. It reads and writes no messages: the
// broker reads the consume queues, asks this package which offsets to
// hand out, and stores retry and dead-letter copies itself.
//
// Model (after apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/pop/PopConsumerService.java,
// which keeps one record per delivery ordered by visibility time):
//
//   - committed is the group's consumer offset, the one remoting consumers
//     commit (Offsets); POP only ever moves it forward.
//   - next is the first offset never handed out; next ≥ committed.
//   - done holds offsets in [committed, next) that are finished (acked,
//     filtered out, copied to retry or dead-letter); committed advances
//     while committed ∈ done.
//   - leases maps each offset in [committed, next) that is neither done nor
//     being revived to its delivery; an offset is in at most one of done and
//     leases.
//
// A lease whose visibleAt passed is taken out by Expired and handed to the
// broker's reviver, which stores a copy in the group's pop retry topic and
// then calls Finish; the old delivery's handle is dead from that moment
// (Ack answers ErrExpired).
//
// FIFO (groups with consumeMessageOrderly, after apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/offset/ConsumerOrderInfoManager.java):
// a queue's leases are its batch in flight. While one of them is still
// invisible nothing else of the queue is handed out (a message group
// always maps to one queue, so this keeps each group's order); expired
// leases are not copied to the retry topic but handed out again in place,
// in offset order, with reconsume times + 1 (Taker.FIFO).
package pop

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"

	"github.com/mqops/mqops/atomicfile"
)

// Offsets is the committed-offset table shared with remoting consumers
// (meta.Offsets).
type Offsets interface {
	Query(group, topic string, queueID int32) (int64, bool)
	Commit(group, topic string, queueID int32, offset int64)
}

// Key names one queue of one group. Topic is the topic read: a normal
// topic or the group's pop retry topic.
type Key struct {
	Group string `json:"group"`
	Topic string `json:"topic"`
	Queue int32  `json:"queue"`
}

// Lease is one delivery not yet acknowledged.
type Lease struct {
	Offset    int64  `json:"offset"`    // queue offset
	PhyOffset int64  `json:"phyOffset"` // commit-log offset of the record
	PopTime   int64  `json:"popTime"`   // ms: with Key and Offset, the delivery's identity
	VisibleAt int64  `json:"visibleAt"` // ms: when it is delivered again
	Reconsume int32  `json:"reconsume"` // reconsume times of the delivered record
	ClientID  string `json:"clientId,omitempty"`
	AutoRenew bool   `json:"autoRenew,omitempty"` // the server renews it while the client is connected
}

// Errors of Ack and Change.
var (
	// ErrExpired: no live lease with this identity (acked, expired and
	// revived, or never handed out).
	ErrExpired = errors.New("receipt handle is expired")
)

type queue struct {
	mu     sync.Mutex // held across a receive's read of the queue: one taker at a time
	next   int64
	inited bool
	done   map[int64]struct{}
	leases map[int64]*Lease
	// FIFO: attempt is the attempt_id of the receive that handed out the
	// batch (the leases); woke is the batch's latest visibleAt when
	// Unblocked last reported it visible again.
	attempt string
	woke    int64
	// slab is where the next leases are made: one allocation per
	// leaseSlab leases instead of one per delivery (a chunk lives while
	// any of its leases does, at most leaseSlab × ~80 bytes).
	slab []Lease
}

const leaseSlab = 32

// State is the POP state of every group on this broker.
type State struct {
	offsets Offsets

	mu sync.Mutex // guards qs (the map); each queue has its own lock
	qs map[Key]*queue

	// inflight counts each group's leases; cmu is a leaf lock (taken
	// under a queue's lock, never the other way round).
	cmu      sync.Mutex
	inflight map[string]int

	// orderly tells which groups consume in order (FIFO); set once
	// before use.
	orderly func(group string) bool
}

// New returns an empty state over the committed-offset table.
func New(offsets Offsets) *State {
	return &State{offsets: offsets, qs: map[Key]*queue{}, inflight: map[string]int{}}
}

// SetOrderly tells the state which groups consume in order: the
// reviver leaves their expired leases in place for FIFO redelivery. Call
// it before the state is used.
func (s *State) SetOrderly(f func(group string) bool) { s.orderly = f }

// count adds d to a group's lease count.
func (s *State) count(group string, d int) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if n := s.inflight[group] + d; n > 0 {
		s.inflight[group] = n
	} else {
		delete(s.inflight, group)
	}
}

func (s *State) queue(k Key) *queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.qs[k]
	if q == nil {
		q = &queue{done: map[int64]struct{}{}, leases: map[int64]*Lease{}}
		s.qs[k] = q
	}
	return q
}

// lookup is the queue k if it has state: acks and changes of handles
// never create any (a forged handle must not grow the table).
func (s *State) lookup(k Key) *queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.qs[k]
}

// Taker is a queue locked for one receive: Next, then Lease or Skip for
// each offset read, in order, then Close.
type Taker struct {
	s       *State
	k       Key
	q       *queue
	fifo    bool
	attempt string
}

// Take locks the queue k for reading; initial is the start offset of a
// group that never committed one. The caller must Close the Taker.
func (s *State) Take(k Key, initial func() int64) *Taker {
	q := s.queue(k)
	q.mu.Lock()
	s.sync(k, q, initial)
	return &Taker{s: s, k: k, q: q}
}

// sync reconciles the queue with the committed offset: a remoting
// consumer (or an offset reset) that committed beyond next moves next
// forward; POP never moves committed backwards. Caller holds q.mu.
func (s *State) sync(k Key, q *queue, initial func() int64) {
	c, ok := s.offsets.Query(k.Group, k.Topic, k.Queue)
	if !ok {
		// A new group: its start becomes its committed offset, so that
		// committed always exists while POP state does.
		c = 0
		if initial != nil {
			c = initial()
		}
		s.offsets.Commit(k.Group, k.Topic, k.Queue, c)
	}
	if !q.inited || c > q.next {
		q.next, q.inited = c, true
	}
	for off := range q.done {
		if off < c {
			delete(q.done, off)
		}
	}
	for off := range q.leases {
		if off < c {
			delete(q.leases, off) // skipped ahead by someone else
			s.count(k.Group, -1)
		}
	}
}

// Next is the first offset never handed out.
func (t *Taker) Next() int64 { return t.q.next }

// Lease hands out offset l.Offset (which must be ≥ Next) and moves next past it.
func (t *Taker) Lease(l Lease) {
	t.skipTo(l.Offset)
	if t.q.leases[l.Offset] == nil {
		t.s.count(t.k.Group, 1)
	}
	if len(t.q.slab) == 0 {
		t.q.slab = make([]Lease, leaseSlab)
	}
	p := &t.q.slab[0]
	t.q.slab = t.q.slab[1:]
	*p = l
	t.q.leases[l.Offset] = p
	t.q.next = l.Offset + 1
	if t.fifo {
		t.q.attempt = t.attempt
	}
}

// FIFO starts an orderly receive of the queue: its leases are the batch
// in flight. blocked: a lease of the batch is still invisible and
// attemptID is not the batch's (an empty one never matches); the caller
// hands out nothing of this queue. Otherwise redo is the batch to hand
// out again, in offset order, each with Relet or Drop: with replay (the
// receive that made the batch retried with its attempt_id after losing
// the answer) every lease at its reconsume times, else the expired batch
// for in-place redelivery at reconsume times + 1. With redo empty the
// caller reads a new batch from Next.
func (t *Taker) FIFO(attemptID string, now int64) (redo []Lease, replay, blocked bool) {
	t.fifo, t.attempt = true, attemptID
	q := t.q
	if len(q.leases) == 0 {
		return nil, false, false
	}
	replay = attemptID != "" && attemptID == q.attempt
	if !replay {
		for _, l := range q.leases {
			if l.VisibleAt > now {
				return nil, false, true
			}
		}
	}
	redo = make([]Lease, 0, len(q.leases))
	for _, l := range q.leases {
		redo = append(redo, *l)
	}
	sort.Slice(redo, func(i, j int) bool { return redo[i].Offset < redo[j].Offset })
	return redo, replay, false
}

// Relet hands out a leased offset again as l (FIFO redelivery in place):
// the previous delivery's handle dies. An offset not leased is ignored.
func (t *Taker) Relet(l Lease) {
	if t.q.leases[l.Offset] == nil {
		return
	}
	t.q.leases[l.Offset] = &l
	t.q.attempt = t.attempt
}

// Drop finishes a leased offset without handing it out again (moved to
// the dead-letter topic, or gone from the store).
func (t *Taker) Drop(off int64) {
	if t.q.leases[off] == nil {
		return
	}
	delete(t.q.leases, off)
	t.s.count(t.k.Group, -1)
	t.q.done[off] = struct{}{}
}

// Leased is how many offsets of the queue are in flight.
func (t *Taker) Leased() int { return len(t.q.leases) }

// Skip marks [Next, to) finished without a delivery (filtered out,
// removed, moved to the dead-letter topic) and moves next to to.
func (t *Taker) Skip(to int64) {
	if to <= t.q.next {
		return // nothing skipped (the common case: called before each Lease)
	}
	t.skipTo(to)
	t.s.advance(t.k, t.q)
}

func (t *Taker) skipTo(to int64) {
	for off := t.q.next; off < to; off++ {
		t.q.done[off] = struct{}{}
	}
	if to > t.q.next {
		t.q.next = to
	}
}

// Close unlocks the queue.
func (t *Taker) Close() {
	t.s.advance(t.k, t.q)
	t.q.mu.Unlock()
}

// advance moves committed over finished offsets. Caller holds q.mu.
func (s *State) advance(k Key, q *queue) {
	c, ok := s.offsets.Query(k.Group, k.Topic, k.Queue)
	if !ok {
		return // the group's offsets were deleted
	}
	start := c
	for {
		if _, ok := q.done[c]; !ok {
			break
		}
		delete(q.done, c)
		c++
	}
	if c > start {
		s.offsets.Commit(k.Group, k.Topic, k.Queue, c)
	}
}

// lease finds the live lease of a delivery: same offset and popTime,
// visibleAt in the future. Caller holds q.mu.
func (q *queue) lease(off, popTime, now int64) (*Lease, error) {
	l := q.leases[off]
	if l == nil || l.PopTime != popTime || l.VisibleAt <= now {
		return nil, ErrExpired
	}
	return l, nil
}

// Ack finishes a delivery.
func (s *State) Ack(k Key, off, popTime, now int64) error {
	q := s.lookup(k)
	if q == nil {
		return ErrExpired
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, err := q.lease(off, popTime, now); err != nil {
		return err
	}
	delete(q.leases, off)
	s.count(k.Group, -1)
	q.done[off] = struct{}{}
	s.advance(k, q)
	return nil
}

// Change moves a delivery's visibility to visibleAt and returns its lease
// as changed (the identity stays: old and new handles both name it). The
// client now manages the lease, so it is no longer auto-renewed: a push
// consumer's nack would otherwise be renewed away while it is connected
// (Java's ChangeInvisibleDurationActivity removes the handle from the
// proxy's renewal, apache/rocketmq proxy/src/main/java/org/apache/
// rocketmq/proxy/grpc/v2/consumer/ChangeInvisibleDurationActivity.java).
func (s *State) Change(k Key, off, popTime, now, visibleAt int64) (Lease, error) {
	q := s.lookup(k)
	if q == nil {
		return Lease{}, ErrExpired
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l, err := q.lease(off, popTime, now)
	if err != nil {
		return Lease{}, err
	}
	l.VisibleAt = visibleAt
	l.AutoRenew = false
	return *l, nil
}

// Blocked reports whether a lease of queue k is still invisible at now:
// for an orderly group, whether its FIFO batch blocks the queue.
func (s *State) Blocked(k Key, now int64) bool {
	q := s.lookup(k)
	if q == nil {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, l := range q.leases {
		if l.VisibleAt > now {
			return true
		}
	}
	return false
}

// Get is a live lease (for forwarding a delivery to the dead-letter topic).
func (s *State) Get(k Key, off, popTime, now int64) (Lease, error) {
	q := s.lookup(k)
	if q == nil {
		return Lease{}, ErrExpired
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l, err := q.lease(off, popTime, now)
	if err != nil {
		return Lease{}, err
	}
	return *l, nil
}

// Expiry is a lease taken out by Expired.
type Expiry struct {
	Key   Key
	Lease Lease
}

// Expired takes out every lease with visibleAt ≤ now, oldest first; the
// caller stores its retry copy and then calls Finish, or Restore when it
// could not. Leases of orderly groups stay in place for FIFO redelivery
// (see Unblocked).
func (s *State) Expired(now int64) []Expiry {
	s.mu.Lock()
	keys := make([]Key, 0, len(s.qs))
	qs := make([]*queue, 0, len(s.qs))
	for k, q := range s.qs {
		keys, qs = append(keys, k), append(qs, q)
	}
	s.mu.Unlock()
	var out []Expiry
	orderly := s.orderlyCache()
	for i, q := range qs {
		if orderly(keys[i].Group) {
			continue
		}
		q.mu.Lock()
		for off, l := range q.leases {
			if l.VisibleAt <= now {
				delete(q.leases, off)
				s.count(keys[i].Group, -1)
				out = append(out, Expiry{Key: keys[i], Lease: *l})
			}
		}
		q.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Lease.VisibleAt < out[j].Lease.VisibleAt })
	return out
}

// orderlyCache is s.orderly, asked once per group.
func (s *State) orderlyCache() func(group string) bool {
	seen := map[string]bool{}
	return func(g string) bool {
		o, ok := seen[g]
		if !ok {
			o = s.orderly != nil && s.orderly(g)
			seen[g] = o
		}
		return o
	}
}

// Unblocked lists the queues of orderly groups whose whole FIFO batch
// became visible again (at or before now) since the last call: the
// receives waiting for them can be woken to redeliver it.
func (s *State) Unblocked(now int64) []Key {
	if s.orderly == nil {
		return nil
	}
	s.mu.Lock()
	keys := make([]Key, 0, len(s.qs))
	qs := make([]*queue, 0, len(s.qs))
	for k, q := range s.qs {
		keys, qs = append(keys, k), append(qs, q)
	}
	s.mu.Unlock()
	orderly := s.orderlyCache()
	var out []Key
	for i, q := range qs {
		if !orderly(keys[i].Group) {
			continue
		}
		q.mu.Lock()
		if latest := q.latest(); latest > 0 && latest <= now && latest > q.woke {
			q.woke = latest
			out = append(out, keys[i])
		}
		q.mu.Unlock()
	}
	return out
}

// latest is the latest visibleAt of the queue's leases (0: none). Caller
// holds q.mu.
func (q *queue) latest() int64 {
	var v int64
	for _, l := range q.leases {
		v = max(v, l.VisibleAt)
	}
	return v
}

// Renewal of auto-renewed leases (Java's proxy DefaultReceiptHandleManager:
// renewAheadTimeMillis, renewMaxTimeMillis, invisibleTimeMillisWhenClear).
const (
	RenewAhead  = 10_000          // ms before visibleAt a lease is renewed
	RenewMaxAge = 3 * 3600 * 1000 // ms after popTime renewal stops
	ClearDelay  = 1_000           // ms left to a lease whose client is gone
)

// Renew extends, by extend ms, each auto-renewed lease due within
// RenewAhead whose client is alive, until RenewMaxAge after its popTime;
// the auto-renewed leases of a client that is gone become visible
// ClearDelay from now. It returns how many leases it extended.
func (s *State) Renew(now, extend int64, alive func(clientID string) bool) int {
	s.mu.Lock()
	qs := make([]*queue, 0, len(s.qs))
	for _, q := range s.qs {
		qs = append(qs, q)
	}
	s.mu.Unlock()
	n := 0
	for _, q := range qs {
		q.mu.Lock()
		for _, l := range q.leases {
			switch {
			case !l.AutoRenew:
			case !alive(l.ClientID):
				l.VisibleAt = min(l.VisibleAt, now+ClearDelay)
				l.AutoRenew = false
			case l.VisibleAt-now <= RenewAhead && now-l.PopTime < RenewMaxAge:
				l.VisibleAt = now + extend
				n++
			}
		}
		q.mu.Unlock()
	}
	return n
}

// Finish marks an expired delivery finished (its retry copy is stored).
func (s *State) Finish(e Expiry) {
	q := s.lookup(e.Key)
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.Lease.Offset >= q.next {
		return // an offset reset moved the queue back; nothing to finish
	}
	q.done[e.Lease.Offset] = struct{}{}
	s.advance(e.Key, q)
}

// Restore puts back an expired lease whose retry copy could not be
// stored, to be tried again at visibleAt.
func (s *State) Restore(e Expiry, visibleAt int64) {
	q := s.lookup(e.Key)
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.Lease.Offset >= q.next {
		return
	}
	if _, done := q.done[e.Lease.Offset]; done {
		return
	}
	l := e.Lease
	l.VisibleAt = visibleAt
	if q.leases[l.Offset] == nil {
		s.count(e.Key.Group, 1)
	}
	q.leases[l.Offset] = &l
}

// Reset moves the queue k to offset for an administrator's offset reset:
// committed becomes offset even when that is backwards, next follows it,
// and every finished offset and lease is dropped, so the messages from
// offset on are delivered again (the old deliveries' handles die). POP
// itself never moves committed backwards; only this does (apache/rocketmq
// PR #9087 fixed the same gap: a reset must reach the pop offsets).
//
// Load raises committed offsets to the saved state's, so a reset lasts
// across a crash only once the offset table and then the state are saved
// after it: the caller's job.
func (s *State) Reset(k Key, offset int64) {
	q := s.queue(k)
	q.mu.Lock()
	defer q.mu.Unlock()
	s.reset(k, q, offset)
}

// reset is Reset with q.mu held.
func (s *State) reset(k Key, q *queue, offset int64) {
	s.offsets.Commit(k.Group, k.Topic, k.Queue, offset)
	q.next, q.inited = offset, true
	q.attempt, q.woke = "", 0
	clear(q.done)
	if n := len(q.leases); n > 0 {
		clear(q.leases)
		s.count(k.Group, -n)
	}
}

// Commit stores a committed offset that did not come from POP (a
// remoting consumer's or an administrator's UPDATE_CONSUMER_OFFSET).
// Forwards it is a plain commit (the next receive skips ahead); backwards
// on a queue with POP state it is a Reset: otherwise committed would stay
// behind offsets POP already finished and forgot, and never advance again.
// It reports whether it reset the queue.
func (s *State) Commit(k Key, offset int64) (reset bool) {
	q := s.lookup(k)
	if q == nil {
		s.offsets.Commit(k.Group, k.Topic, k.Queue, offset)
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if c, ok := s.offsets.Query(k.Group, k.Topic, k.Queue); ok && offset < c {
		s.reset(k, q, offset)
		return true
	}
	s.offsets.Commit(k.Group, k.Topic, k.Queue, offset)
	return false
}

// Active reports whether a group has POP state on any queue of a topic.
func (s *State) Active(group, topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.qs {
		if k.Group == group && k.Topic == topic {
			return true
		}
	}
	return false
}

// Inflight counts the leases of a group (all its topics and queues).
func (s *State) Inflight(group string) int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.inflight[group]
}

// InflightGroups counts the leases of every group that holds any.
func (s *State) InflightGroups() map[string]int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return maps.Clone(s.inflight)
}

// snapshot is the persisted form (config/popState.json).
type snapshot struct {
	Version int          `json:"version"`
	Queues  []queueState `json:"queues"`
}

type queueState struct {
	Key
	// Committed is the committed offset when the state was saved: the
	// offset table is flushed on its own timer, and after a crash its
	// file may be older than this one, behind offsets whose done marks
	// this file no longer holds (committed would never advance again).
	Committed int64   `json:"committed,omitempty"`
	Next      int64   `json:"next"`
	Done      []int64 `json:"done,omitempty"`
	Leases    []Lease `json:"leases,omitempty"`
	// Attempt is the attempt_id of a FIFO batch (the leases).
	Attempt string `json:"attemptId,omitempty"`
}

// Encode is the state as JSON.
func (s *State) Encode() []byte {
	s.mu.Lock()
	keys := make([]Key, 0, len(s.qs))
	for k := range s.qs {
		keys = append(keys, k)
	}
	qs := make([]*queue, len(keys))
	for i, k := range keys {
		qs[i] = s.qs[k]
	}
	s.mu.Unlock()
	snap := snapshot{Version: 1}
	for i, q := range qs {
		q.mu.Lock()
		if q.inited {
			qs := queueState{Key: keys[i], Next: q.next, Attempt: q.attempt}
			qs.Committed, _ = s.offsets.Query(keys[i].Group, keys[i].Topic, keys[i].Queue)
			for off := range q.done {
				qs.Done = append(qs.Done, off)
			}
			for _, l := range q.leases {
				qs.Leases = append(qs.Leases, *l)
			}
			sort.Slice(qs.Done, func(a, b int) bool { return qs.Done[a] < qs.Done[b] })
			sort.Slice(qs.Leases, func(a, b int) bool { return qs.Leases[a].Offset < qs.Leases[b].Offset })
			snap.Queues = append(snap.Queues, qs)
		}
		q.mu.Unlock()
	}
	sort.Slice(snap.Queues, func(a, b int) bool {
		x, y := snap.Queues[a].Key, snap.Queues[b].Key
		if x.Group != y.Group {
			return x.Group < y.Group
		}
		if x.Topic != y.Topic {
			return x.Topic < y.Topic
		}
		return x.Queue < y.Queue
	})
	b, _ := json.Marshal(snap) // plain structs: cannot fail
	return b
}

// Decode replaces the state with an encoded one.
func (s *State) Decode(b []byte) error {
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return fmt.Errorf("decode POP state: %w", err)
	}
	if snap.Version != 1 {
		return fmt.Errorf("decode POP state: unknown version %d", snap.Version)
	}
	qs := map[Key]*queue{}
	counts := map[string]int{}
	for _, e := range snap.Queues {
		q := &queue{next: e.Next, inited: true, done: map[int64]struct{}{}, leases: map[int64]*Lease{}, attempt: e.Attempt}
		for _, off := range e.Done {
			if off < e.Next {
				q.done[off] = struct{}{}
			}
		}
		for _, l := range e.Leases {
			if l.Offset < e.Next && q.leases[l.Offset] == nil {
				l := l
				q.leases[l.Offset] = &l
				counts[e.Group]++
			}
		}
		qs[e.Key] = q
		if c, ok := s.offsets.Query(e.Group, e.Topic, e.Queue); e.Committed > 0 && (!ok || c < e.Committed) {
			s.offsets.Commit(e.Group, e.Topic, e.Queue, e.Committed)
		}
	}
	s.mu.Lock()
	s.qs = qs
	s.mu.Unlock()
	s.cmu.Lock()
	s.inflight = counts
	s.cmu.Unlock()
	return nil
}

// Save writes the state to path atomically; concurrent Saves must be
// serialised by the caller.
func (s *State) Save(path string) error {
	if err := atomicfile.Write(path, s.Encode(), atomicfile.Options{Backup: true}); err != nil {
		return fmt.Errorf("save POP state: %w", err)
	}
	return nil
}

// Load reads the state saved at path (or its backup); a missing file is
// an empty state.
func (s *State) Load(path string) error {
	_, err := atomicfile.Load(path, s.Decode)
	return err
}
