// Package flow sheds send load with RocketMQ's SYSTEM_BUSY answers and
// enforces per-topic produce quotas. mqops serves each connection's
// requests on its read loop and group-commits appends, so there is no
// Java send thread pool to bound; Sends builds its equivalent from
// explicit budgets: admission before any work (Java's
// SendMessageProcessor.rejectRequest), a bounded number and size of sends
// in flight (the pool's bounded queue), a bounded number of sends
// appending at once whose waiters are shed when they wait too long or the
// store stalls (BrokerFastFailure). Sources: apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/latency/BrokerFastFailure.java,
// broker/src/main/java/org/apache/rocketmq/broker/processor/SendMessageProcessor.java,
// remoting/src/main/java/org/apache/rocketmq/remoting/netty/NettyRemotingAbstract.java.
package flow

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Tag names a flow-control answer; every one is code 2 (SYSTEM_BUSY) with
// the tag in brackets at the start of the remark, as Java answers.
type Tag int

// The tags, Java's names.
const (
	RejectRequest     Tag = iota // store busy on arrival
	Overload                     // in-flight budget exhausted
	TimeoutCleanQueue            // waited too long to reach the store
	PCBusyCleanQueue             // waiting while the store turned busy
	TopicQuota                   // topic's produce quota exceeded (mqops)
	AccountQuota                 // ACL account's produce quota exceeded (mqops)
	NumTags
)

var tagNames = [NumTags]string{"REJECTREQUEST", "OVERLOAD", "TIMEOUT_CLEAN_QUEUE", "PCBUSY_CLEAN_QUEUE", "TOPIC_QUOTA", "ACCOUNT_QUOTA"}

func (t Tag) String() string { return tagNames[t] }

// Config is the send budget, from broker.conf.
type Config struct {
	Threads     int           // sendMessageThreadPoolNums: sends appending at once
	Capacity    int           // sendThreadPoolQueueCapacity: sends read and not yet answered
	MaxBytes    int64         // sendInflightMaxBytes (mqops): their bodies' bytes
	PerConn     int           // sendInflightPerConnection (mqops): of them, on one connection
	WaitInQueue time.Duration // waitTimeMillsInSendQueue: longest wait for an append slot
	BusyTimeout time.Duration // osPageCacheBusyTimeOutMills: store busy past this
	FastFailure bool          // brokerFastFailureEnable: shed waiting sends

	// waitTimeMillsInTransactionQueue: an END_TRANSACTION's longest wait
	// for an append slot.
	WaitInTransactionQueue time.Duration
}

// Sends admits sends. Its zero value is not usable; see NewSends.
type Sends struct {
	cfg  Config
	busy func(time.Time) time.Duration // how long the store's current append/sync has run

	count, bytes atomic.Int64
	slots        chan struct{}
	queued       [NumQueues]atomic.Int64
	// waitMu guards waiting: when each request queued for a slot was
	// read (only the contended path takes it).
	waitMu  sync.Mutex
	waiting [NumQueues]map[*Waiter]time.Time
	// busyCh is closed (and replaced) when the store turns busy, waking
	// the sends queued for a slot to be shed.
	busyCh atomic.Pointer[chan struct{}]

	rejected [NumTags]atomic.Int64
	Log      *Log
}

// NewSends returns the budget; busy reports the store's stall
// (store.Busy). Watch must run for waiting sends to be shed when the
// store turns busy.
func NewSends(cfg Config, busy func(time.Time) time.Duration, log *Log) *Sends {
	cfg.Threads = max(cfg.Threads, 1)
	s := &Sends{cfg: cfg, busy: busy, slots: make(chan struct{}, cfg.Threads), Log: log}
	for q := range s.waiting {
		s.waiting[q] = map[*Waiter]time.Time{}
	}
	ch := make(chan struct{})
	s.busyCh.Store(&ch)
	return s
}

// Ticket is what an admitted send holds until it is answered.
type Ticket struct {
	bytes int64
	conn  *atomic.Int32 // nil for a send without a per-connection cap
	held  bool
}

// Admit takes budget for a send of size body bytes read on a connection
// whose in-flight sends conn counts; a nil conn has no per-connection
// cap (a gRPC or HTTP call: the transport has no notion of a
// connection's in-flight sends for the broker to count). It refuses
// while the store is busy (RejectRequest) and past a budget (Overload).
// A single send larger than MaxBytes is admitted when nothing else is in
// flight, so that every send within maxMessageSize can be served.
func (s *Sends) Admit(conn *atomic.Int32, size int, now time.Time) (Ticket, Tag, bool) {
	if s.busy(now) > s.cfg.BusyTimeout {
		s.rejected[RejectRequest].Add(1)
		return Ticket{}, RejectRequest, false
	}
	n := int64(size)
	c := s.count.Add(1)
	b := s.bytes.Add(n)
	over := c > int64(s.cfg.Capacity) || (b > s.cfg.MaxBytes && b != n)
	if conn != nil {
		over = conn.Add(1) > int32(s.cfg.PerConn) || over
	}
	t := Ticket{bytes: n, conn: conn, held: true}
	if over {
		s.Release(&t)
		s.rejected[Overload].Add(1)
		return Ticket{}, Overload, false
	}
	return t, 0, true
}

// Release returns t's budget; a released (zero) ticket is ignored.
func (s *Sends) Release(t *Ticket) {
	if !t.held {
		return
	}
	s.count.Add(-1)
	s.bytes.Add(-t.bytes)
	if t.conn != nil {
		t.conn.Add(-1)
	}
	*t = Ticket{}
}

// Queue is the kind of request waiting for an append slot: Java's send
// and end-transaction thread pools' queues, each with its own deadline.
type Queue int

// The queues.
const (
	SendQueue        Queue = iota // waitTimeMillsInSendQueue; shed when the store turns busy
	TransactionQueue              // waitTimeMillsInTransactionQueue
	NumQueues
)

// Waiter is a connection's reusable wait for an append slot: its timer
// is made once, so waiting does not allocate.
type Waiter struct{ t *time.Timer }

// Enter takes an append slot for a send read at readAt. Waiting longer
// than WaitInQueue since readAt sheds it (TimeoutCleanQueue), and so does
// the store turning busy meanwhile (PCBusyCleanQueue); then waited is how
// long it waited and queue how many sends were waiting. Leave frees the slot.
func (s *Sends) Enter(w *Waiter, readAt time.Time) (waited time.Duration, queue int64, tag Tag, ok bool) {
	return s.enter(SendQueue, s.cfg.WaitInQueue, w, readAt)
}

// EnterTransaction is Enter for an END_TRANSACTION, whose commit or
// rollback appends: it waits up to WaitInTransactionQueue, and only for
// that (Java's BrokerFastFailure drains only the send queue when the
// store turns busy).
func (s *Sends) EnterTransaction(w *Waiter, readAt time.Time) (waited time.Duration, queue int64, tag Tag, ok bool) {
	return s.enter(TransactionQueue, s.cfg.WaitInTransactionQueue, w, readAt)
}

func (s *Sends) enter(q Queue, limit time.Duration, w *Waiter, readAt time.Time) (waited time.Duration, queue int64, tag Tag, ok bool) {
	select {
	case s.slots <- struct{}{}:
		return 0, 0, 0, true
	default:
	}
	if !s.cfg.FastFailure {
		s.queued[q].Add(1)
		s.slots <- struct{}{}
		s.queued[q].Add(-1)
		return 0, 0, 0, true
	}
	var busy chan struct{} // nil: never ready
	if q == SendQueue {
		busy = *s.busyCh.Load()
	}
	left := limit - time.Since(readAt)
	if left <= 0 {
		s.rejected[TimeoutCleanQueue].Add(1)
		return time.Since(readAt), s.queued[q].Load(), TimeoutCleanQueue, false
	}
	if w.t == nil {
		w.t = time.NewTimer(left)
	} else {
		w.t.Reset(left)
	}
	n := s.queued[q].Add(1)
	s.waitMu.Lock()
	s.waiting[q][w] = readAt
	s.waitMu.Unlock()
	defer func() {
		s.waitMu.Lock()
		delete(s.waiting[q], w)
		s.waitMu.Unlock()
		s.queued[q].Add(-1)
	}()
	select {
	case s.slots <- struct{}{}:
		w.t.Stop()
		return 0, 0, 0, true
	case <-w.t.C:
		s.rejected[TimeoutCleanQueue].Add(1)
		return time.Since(readAt), n, TimeoutCleanQueue, false
	case <-busy:
		w.t.Stop()
		s.rejected[PCBusyCleanQueue].Add(1)
		return time.Since(readAt), n, PCBusyCleanQueue, false
	}
}

// Leave frees the slot Enter took.
func (s *Sends) Leave() { <-s.slots }

// Watch sheds the queued sends once the store turns busy, checking every
// 10 ms as BrokerFastFailure does, writes the flow log's summaries, and
// every second watermark.log's lines to waterMark (nil: none), until
// stop is closed.
func (s *Sends) Watch(stop <-chan struct{}, waterMark io.Writer) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	wm := waterMarkWriter{w: waterMark}
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if s.cfg.FastFailure && s.queued[SendQueue].Load() > 0 && s.busy(now) > s.cfg.BusyTimeout {
				ch := make(chan struct{})
				close(*s.busyCh.Swap(&ch))
			}
			s.Log.flushSuppressed(now)
			wm.tick(s, now)
		}
	}
}

// Busy is how long the store's current append or sync has run.
func (s *Sends) Busy(now time.Time) time.Duration { return s.busy(now) }

// InFlight is the number and body bytes of sends read and not yet answered.
func (s *Sends) InFlight() (count, bytes int64) { return s.count.Load(), s.bytes.Load() }

// HeadWait is how long the oldest request waiting in q for an append
// slot has waited since it was read (Java's
// sendThreadPoolQueueHeadWaitTimeMills for the send queue).
func (s *Sends) HeadWait(q Queue, now time.Time) time.Duration {
	if s.queued[q].Load() == 0 {
		return 0 // the common case, without the lock
	}
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	var d time.Duration
	for _, at := range s.waiting[q] {
		d = max(d, now.Sub(at))
	}
	return d
}

// Queued is the number of requests waiting in q for an append slot.
func (s *Sends) Queued(q Queue) int64 { return s.queued[q].Load() }

// Capacity is sendThreadPoolQueueCapacity.
func (s *Sends) Capacity() int { return s.cfg.Capacity }

// Rejected is the number of sends refused with tag since the start.
func (s *Sends) Rejected(tag Tag) int64 { return s.rejected[tag].Load() }

// CountQuota counts a send refused by a topic's (TopicQuota) or an
// account's (AccountQuota) produce quota with the rest.
func (s *Sends) CountQuota(tag Tag) { s.rejected[tag].Add(1) }

// Remark is Java's remark for tag; waited and queue matter only for the
// queue-cleaning tags.
func Remark(tag Tag, waited time.Duration, queue int64) string {
	switch tag {
	case RejectRequest, Overload:
		return "[" + tag.String() + "]system busy, start flow control for a while"
	case TimeoutCleanQueue, PCBusyCleanQueue:
		return fmt.Sprintf("[%s]broker busy, start flow control for a while, period in queue: %dms, size of queue: %d", tag, waited.Milliseconds(), queue)
	}
	return "[" + tag.String() + "]start flow control for a while"
}

// AnswersOneway reports whether a oneway request refused with t is
// answered anyway, as Java does (apache/rocketmq remoting/src/main/java/
// org/apache/rocketmq/remoting/netty/NettyRemotingAbstract.java,
// processRequestCommand; RequestTask.returnResponse): the answers written
// before the request is queued ([REJECTREQUEST]) or when it is cleaned
// from the queue ([TIMEOUT_CLEAN_QUEUE], [PCBUSY_CLEAN_QUEUE]) ignore the
// oneway flag; a full queue ([OVERLOAD]) and the processor's own answers
// ([TOPIC_QUOTA] is one) respect it.
func (t Tag) AnswersOneway() bool {
	return t == RejectRequest || t == TimeoutCleanQueue || t == PCBusyCleanQueue
}
