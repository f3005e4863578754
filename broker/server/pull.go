package server

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/clients"
	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// PullSysFlag bits (apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/sysflag/PullSysFlag.java).
const (
	pullCommitOffset = 0x1
	pullSuspend      = 0x2
	pullSubscription = 0x4
)

// Pull budgets: the first message is always returned; after it a response
// stops at maxMsgNums or about this many bytes (Java's in-memory budget).
const pullMaxBytes = 256 << 10

// toolsConsumerGroup is the group admin tools pull with.
const toolsConsumerGroup = "TOOLS_CONSUMER"

// maxSuspend keeps long polls well under the Go client's 30 s pull timeout.
const maxSuspend = 25 * time.Second

var pullBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

type pullHeader struct {
	group, topic, subscription, expressionType []byte
	queueID                                    int32
	offset, commitOffset, suspend, subVersion  int64
	maxMsgs                                    int
	sysFlag                                    int32
}

// Required numeric fields of PULL_MESSAGE, one bit each.
const (
	pullSeenQueueID = 1 << iota
	pullSeenOffset
	pullSeenMaxMsgs
	pullSeenSysFlag
	pullSeenCommit
	pullSeenSuspend
	pullSeenAll = 1<<iota - 1
)

// parsePullHeader reads a pull header; it names the first field that is
// missing, or present but not a number of its Java type (bad true).
func parsePullHeader(req *wire.Command, h *pullHeader) (field string, bad bool) {
	var seen int
	for _, kv := range req.Ext {
		v := kv.Value
		n, ok := wire.ParseInt(v)
		// Java's Integer fields: a wider value is refused, not wrapped.
		n32 := ok && n >= math.MinInt32 && n <= math.MaxInt32
		switch string(kv.Key) {
		case "consumerGroup":
			h.group = v
		case "topic":
			h.topic = v
		case "queueId":
			if !n32 {
				return "queueId", len(v) > 0
			}
			h.queueID, seen = int32(n), seen|pullSeenQueueID
		case "queueOffset":
			if !ok {
				return "queueOffset", len(v) > 0
			}
			h.offset, seen = n, seen|pullSeenOffset
		case "maxMsgNums":
			if !n32 {
				return "maxMsgNums", len(v) > 0
			}
			h.maxMsgs, seen = int(n), seen|pullSeenMaxMsgs
		case "sysFlag":
			if !n32 {
				return "sysFlag", len(v) > 0
			}
			h.sysFlag, seen = int32(n), seen|pullSeenSysFlag
		case "commitOffset":
			if !ok {
				return "commitOffset", len(v) > 0
			}
			h.commitOffset, seen = n, seen|pullSeenCommit
		case "suspendTimeoutMillis":
			if !ok {
				return "suspendTimeoutMillis", len(v) > 0
			}
			h.suspend, seen = n, seen|pullSeenSuspend
		case "subVersion":
			h.subVersion = n
		case "subscription":
			h.subscription = v
		case "expressionType":
			h.expressionType = v
		}
	}
	if len(h.group) == 0 {
		return "consumerGroup", false
	}
	if len(h.topic) == 0 {
		return "topic", false
	}
	for i, name := range []string{"queueId", "queueOffset", "maxMsgNums", "sysFlag", "commitOffset", "suspendTimeoutMillis"} {
		if seen&(1<<i) == 0 {
			return name, false
		}
	}
	return "", false
}

// handlePull serves PULL_MESSAGE. first is false when a held request is
// re-executed: it then neither commits offsets nor suspends again.
func (b *Broker) handlePull(c *remoting.Conn, req *wire.Command, first bool) {
	var h pullHeader
	if f, bad := parsePullHeader(req, &h); bad {
		badNumber(c, req, f)
		return
	} else if f != "" {
		missing(c, req, f)
		return
	}
	if b.permission()&wire.PermRead == 0 {
		c.ReplyCode(req, wire.NoPermission, fmt.Sprintf("the broker[%s] pulling message is forbidden", b.addr))
		return
	}
	gc := meta.Lookup(b.groups, h.group)
	if gc == nil {
		group := string(h.group)
		if err := wire.CheckGroup(group); err != nil {
			// Java 5 does not create such a group either.
			c.ReplyCode(req, wire.SubscriptionGroupNotExist, fmt.Sprintf("subscription group [%s] does not exist: %v", group, err))
			return
		}
		if !b.cfg.AutoCreateSubscriptionGroup {
			c.ReplyCode(req, wire.SubscriptionGroupNotExist, fmt.Sprintf("subscription group [%s] does not exist", group))
			return
		}
		var err error
		if gc, _, err = b.groups.Ensure(group); err != nil {
			c.ReplyCode(req, wire.SystemError, err.Error())
			return
		}
	}
	tc := b.topics.Get(h.topic)
	if tc == nil {
		tc = b.lmqTopic(string(h.topic))
	}
	if tc == nil {
		c.ReplyCode(req, wire.TopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please!", h.topic))
		return
	}
	if tc.Perm&wire.PermRead == 0 {
		c.ReplyCode(req, wire.NoPermission, fmt.Sprintf("the topic[%s] pulling message is forbidden", h.topic))
		return
	}
	if h.queueID < 0 || int(h.queueID) >= tc.ReadQueueNums {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d] consumer:[%s]", h.queueID, h.topic, tc.ReadQueueNums, c.RemoteAddr()))
		return
	}

	var sub *clients.Subscription
	if h.sysFlag&pullSubscription != 0 {
		sub = clients.NewSubscription(tc.TopicName, string(h.subscription), string(h.expressionType), h.subVersion)
	} else {
		s, known, model := b.clients.Subscription(h.group, tc.TopicName)
		switch {
		case !known:
			c.ReplyCode(req, wire.SubscriptionNotExist, fmt.Sprintf("the consumer's group info not exist, group=%s", h.group))
			return
		case s == nil:
			c.ReplyCode(req, wire.SubscriptionNotExist, fmt.Sprintf("the consumer's subscription not exist, group=%s topic=%s", h.group, h.topic))
			return
		case model == "BROADCASTING" && !gc.ConsumeBroadcastEnable:
			c.ReplyCode(req, wire.NoPermission, fmt.Sprintf("the consumer group[%s] can not consume by broadcast way", h.group))
			return
		case s.Data.SubVersion < h.subVersion:
			c.ReplyCode(req, wire.SubscriptionNotLatest, "the consumer's subscription not latest")
			return
		}
		sub = s
	}
	if sub.FilterErr != nil {
		// Java answers SUBSCRIPTION_PARSE_FAILED "parse the consumer's
		// subscription failed" to a pull carrying the expression, and
		// FILTER_DATA_NOT_EXIST to one relying on the heartbeat's; clients
		// treat both alike, and this remark says what is wrong.
		c.ReplyCode(req, wire.SubscriptionParseFailed, "parse the consumer's subscription failed: "+sub.FilterErr.Error())
		return
	}
	if sub.Selector != nil && !b.propertyFilter.Load() {
		// Java's remark (PullMessageProcessor).
		c.ReplyCode(req, wire.SystemError, "The broker does not support consumer to filter message by "+sub.Data.ExpressionType+
			" (set enablePropertyFilter=true)")
		return
	}

	// A negative commit offset is no position; Java would store it. A
	// slave never stores one: its offsets are the master's, synced.
	slave := b.isSlave()
	if first && !slave && h.sysFlag&pullCommitOffset != 0 && h.commitOffset >= 0 {
		meta.Commit(b.offsets, h.group, tc.TopicName, h.queueID, h.commitOffset)
	}
	// A paused group keeps its clients pulling and committing, but gets
	// nothing: resuming continues from the committed offset. Java answers
	// NO_PERMISSION instead, which clients log as an error every 3 s.
	if !gc.ConsumeEnable {
		b.holdPaused(c, req, tc.TopicName, h.queueID, h.offset)
		return
	}
	maxMsgs := h.maxMsgs
	if maxMsgs <= 0 {
		maxMsgs = 1
	}
	limited := gc.ConsumeRateLimit > 0 && string(h.group) != toolsConsumerGroup
	if limited {
		granted, wait := b.limiter.take(h.group, gc.ConsumeRateLimit, maxMsgs, time.Now())
		if granted == 0 {
			b.retryPullLater(c, req, wait)
			return
		}
		maxMsgs = granted
	}

	bp := pullBufPool.Get().(*[]byte)
	defer pullBufPool.Put(bp)
	var matchCode func(int64) bool
	var matchRecord func([]byte) bool
	if !sub.All { // "*" needs no filter, and no closures on this path
		matchRecord = sub.MatchRecord
		if sub.Selector == nil { // a property filter reads the record only
			matchCode = sub.MatchCode
		}
	}
	res := b.store.GetMessages(tc.TopicName, h.queueID, h.offset, maxMsgs, pullMaxBytes, matchCode, matchRecord, (*bp)[:0])
	*bp = res.Body[:0]
	if limited {
		b.limiter.refund(h.group, maxMsgs-res.MsgCount)
	}

	code := pullCode(res.Status, h.offset)
	suggest := b.suggestBroker(gc, &res)
	next := res.NextBeginOffset
	if slave && !b.offsetCheckInSlave.Load() {
		// A slave may lag its master: it leaves the consumer where it is
		// rather than move it to the end of its own, shorter queue, and
		// sends it to the group's broker instead of answering OFFSET_MOVED
		// (Java's DefaultMessageStore.nextOffsetCorrection and
		// PullMessageProcessor).
		if correctsOffset(res.Status) {
			next = h.offset
		}
		if code == wire.PullOffsetMoved {
			code, suggest = wire.PullRetryImmediately, gc.BrokerID
		}
	}
	if code == wire.PullNotFound && first && h.sysFlag&pullSuspend != 0 {
		hold := time.Duration(h.suspend) * time.Millisecond
		if !b.cfg.LongPollingEnable {
			hold = time.Duration(b.cfg.ShortPollingTimeMills) * time.Millisecond
		}
		b.holds.hold(c, heldCopy(req), tc.TopicName, h.queueID, h.offset, sub, min(hold, maxSuspend))
		return
	}
	var body []byte
	if code == wire.Success {
		body = res.Body
		// mqadmin reads messages as TOOLS_CONSUMER; that is inspection, not
		// consumption, and would distort "consumed today".
		if string(h.group) != toolsConsumerGroup {
			b.stats.GroupGet(h.topic, h.group, res.MsgCount, len(res.Body))
		}
	}
	replyPull(c, req, code, statusRemark[res.Status], suggest, next, res.MinOffset, res.MaxOffset, body)
}

// lmqTopic is the topic config of a light message queue with enableLmq:
// light queues are not in the topic table (nor registered with the name
// servers), so pulls, sends and offset commits get Java's
// LmqTopicConfigManager.simpleLmqTopicConfig, one queue read-write
// (apache/rocketmq broker/src/main/java/org/apache/rocketmq/broker/topic/LmqTopicConfigManager.java).
// nil for any other name.
func (b *Broker) lmqTopic(name string) *wire.TopicConfig {
	if !b.cfg.EnableLmq || !wire.IsLMQ(name) || wire.CheckTopic(name) != nil {
		return nil
	}
	return &wire.TopicConfig{TopicName: name, ReadQueueNums: 1, WriteQueueNums: 1, Perm: wire.PermRead | wire.PermWrite}
}

// suggestBroker is a pull answer's suggestWhichBrokerId (Java's
// PullMessageProcessor, 4.9.8): with slaveReadEnable, the group's
// whichBrokerWhenConsumeSlowly when the consumer reads further behind the
// end of the log than accessMessageInMemoryMaxRatio of RAM (out of the
// page cache, so let a slave's disk serve it), else the group's brokerId;
// without it the master, 0.
func (b *Broker) suggestBroker(gc *wire.SubscriptionGroupConfig, res *store.GetResult) int64 {
	if !b.slaveRead.Load() {
		return 0
	}
	if res.Status == store.Found && b.store.MaxPhyOffset()-lastPhysicalOffset(res.Body) > b.memoryBudget.Load() {
		return gc.WhichBrokerWhenConsumeSlowly
	}
	return gc.BrokerID
}

// lastPhysicalOffset is the commit-log offset of the last record in a
// pull body (records laid end to end, each starting with its size).
func lastPhysicalOffset(body []byte) int64 {
	var last wire.RecordView
	for p := 0; p+4 <= len(body); {
		v := wire.RecordView(body[p:])
		n := int(v.TotalSize())
		if n <= 0 {
			break
		}
		last = v
		p += n
	}
	if last == nil {
		return 0
	}
	return last.PhysicalOffset()
}

// correctsOffset reports the statuses for which a master moves the
// consumer's next offset somewhere else than where it asked.
func correctsOffset(s store.GetStatus) bool {
	switch s {
	case store.NoMessageInQueue, store.OffsetTooSmall, store.OffsetOverflowOne, store.OffsetOverflowBadly,
		store.OffsetFoundNull, store.NoMatchedLogicQueue:
		return true
	}
	return false
}

// replyPull answers a pull with its offsets, built on the stack.
func replyPull(c *remoting.Conn, req *wire.Command, code int32, remark []byte, suggest, next, minOff, maxOff int64, body []byte) {
	var sb, nb, minb, maxb [24]byte
	ext := [4]wire.KV{
		{Key: []byte("suggestWhichBrokerId"), Value: strconv.AppendInt(sb[:0], suggest, 10)},
		{Key: []byte("nextBeginOffset"), Value: strconv.AppendInt(nb[:0], next, 10)},
		{Key: []byte("minOffset"), Value: strconv.AppendInt(minb[:0], minOff, 10)},
		{Key: []byte("maxOffset"), Value: strconv.AppendInt(maxb[:0], maxOff, 10)},
	}
	resp := wire.ResponseTo(req, code, "")
	resp.Remark = remark
	resp.Ext = ext[:]
	resp.Body = body
	c.Reply(req, &resp)
}

// holdPaused answers a paused group's pull with no messages after
// pausedPullHold. Closures live in these helpers, not in handlePull: a
// closure there would move its captured locals to the heap on every pull.
func (b *Broker) holdPaused(c *remoting.Conn, req *wire.Command, topic string, queueID int32, offset int64) {
	b.replyLater(c, req, pausedPullHold, func(req *wire.Command) { b.replyNoMessage(c, req, topic, queueID, offset) })
}

// retryPullLater re-runs a rate-limited pull after wait; first=false: its
// offset is committed already.
func (b *Broker) retryPullLater(c *remoting.Conn, req *wire.Command, wait time.Duration) {
	b.replyLater(c, req, wait, func(req *wire.Command) { b.handlePull(c, req, false) })
}

// replyLater runs answer on a copy of req after d, unless the broker is
// stopping by then.
func (b *Broker) replyLater(c *remoting.Conn, req *wire.Command, d time.Duration, answer func(*wire.Command)) {
	req = heldCopy(req)
	time.AfterFunc(d, func() {
		if isClosed(c) {
			return
		}
		b.goSafe("delayed pull answer", c, req, func() { answer(req) })
	})
}

// replyNoMessage answers a pull PULL_NOT_FOUND, leaving the consumer at
// offset.
func (b *Broker) replyNoMessage(c *remoting.Conn, req *wire.Command, topic string, queueID int32, offset int64) {
	replyPull(c, req, wire.PullNotFound, pausedRemark, 0, offset, b.store.MinOffset(topic, queueID), b.store.MaxOffset(topic, queueID), nil)
}

var pausedRemark = []byte("consume paused for this group")

// statusRemark is each status's name, the remark Java puts on pull answers.
var statusRemark = func() map[store.GetStatus][]byte {
	m := map[store.GetStatus][]byte{}
	for s := store.Found; s <= store.NoMessageInQueue; s++ {
		m[s] = []byte(s.String())
	}
	return m
}()

// pullCode maps a store status to the response code clients act on.
func pullCode(s store.GetStatus, offset int64) int32 {
	switch s {
	case store.Found:
		return wire.Success
	case store.NoMatchedMessage, store.MessageWasRemoving:
		return wire.PullRetryImmediately
	case store.OffsetFoundNull, store.OffsetOverflowOne:
		return wire.PullNotFound
	case store.NoMatchedLogicQueue, store.NoMessageInQueue:
		if offset != 0 {
			return wire.PullOffsetMoved
		}
		return wire.PullNotFound
	default: // OffsetTooSmall, OffsetOverflowBadly
		return wire.PullOffsetMoved
	}
}

// heldPullFields are the extFields a pull is answered from: all a held pull
// keeps of its request.
var heldPullFields = []string{"consumerGroup", "topic", "queueId", "queueOffset", "maxMsgNums", "sysFlag",
	"commitOffset", "suspendTimeoutMillis", "subVersion", "subscription", "expressionType"}

// heldCopy copies what re-executing and answering a pull needs, in one
// allocation for the bytes: a pull held for 20 s must not keep its whole
// request (other header fields, a body, a remark) alive, whatever size the
// peer made them.
func heldCopy(req *wire.Command) *wire.Command {
	n, k := 0, 0
	for _, kv := range req.Ext {
		if slices.Contains(heldPullFields, string(kv.Key)) {
			n += len(kv.Key) + len(kv.Value)
			k++
		}
	}
	buf := make([]byte, 0, n)
	out := &wire.Command{Code: req.Code, Language: req.Language, Version: req.Version, Opaque: req.Opaque,
		Flag: req.Flag, SerializeType: req.SerializeType, Ext: make([]wire.KV, 0, k)}
	for _, kv := range req.Ext {
		if slices.Contains(heldPullFields, string(kv.Key)) {
			key := len(buf)
			buf = append(buf, kv.Key...)
			val := len(buf)
			buf = append(buf, kv.Value...)
			out.Ext = append(out.Ext, wire.KV{Key: buf[key:val:val], Value: buf[val:len(buf):len(buf)]})
		}
	}
	return out
}

// ---- long polling ----

type heldPull struct {
	conn     *remoting.Conn
	req      *wire.Command
	offset   int64
	sub      *clients.Subscription
	deadline time.Time
}

type queueKey struct {
	topic string
	queue int32
}

// pullHolds parks pulls that found nothing until a matching message is
// dispatched to their queue or their suspend time runs out.
type pullHolds struct {
	b     *Broker
	count atomic.Int64
	mu    sync.Mutex
	held  map[queueKey][]*heldPull
}

func newPullHolds(b *Broker) *pullHolds {
	return &pullHolds{b: b, held: map[queueKey][]*heldPull{}}
}

func (p *pullHolds) hold(c *remoting.Conn, req *wire.Command, topic string, queue int32, offset int64, sub *clients.Subscription, d time.Duration) {
	hp := &heldPull{conn: c, req: req, offset: offset, sub: sub, deadline: time.Now().Add(d)}
	k := queueKey{topic, queue}
	p.mu.Lock()
	p.held[k] = append(p.held[k], hp)
	p.mu.Unlock()
	p.count.Add(1)
	// A message may have been dispatched between the read and the hold.
	if p.b.store.MaxOffset(topic, queue) > offset {
		p.wake(k, func(hp *heldPull) bool { return !hp.conn.Congested() })
	}
}

// notify is the store's dispatch callback; it must stay cheap.
func (p *pullHolds) notify(topic string, queue int32, queueOffset int64, tagsCode int64) {
	if p.count.Load() == 0 {
		return
	}
	p.wake(queueKey{topic, queue}, func(hp *heldPull) bool {
		return queueOffset >= hp.offset && hp.sub.MatchCode(tagsCode) && !hp.conn.Congested()
	})
}

func (p *pullHolds) wake(k queueKey, ready func(*heldPull) bool) {
	var run []*heldPull
	p.mu.Lock()
	list := p.held[k]
	keep := list[:0]
	for _, hp := range list {
		if ready(hp) {
			run = append(run, hp)
		} else {
			keep = append(keep, hp)
		}
	}
	if len(keep) == 0 {
		delete(p.held, k)
	} else {
		p.held[k] = keep
	}
	p.mu.Unlock()
	if len(run) == 0 {
		return
	}
	p.count.Add(-int64(len(run)))
	// One goroutine per connection answers its pulls in turn: a peer that
	// stops reading gets at most one answer past its high-water mark, and
	// its other pulls go back to being held.
	var conns []*remoting.Conn
	byConn := map[*remoting.Conn][]*heldPull{}
	for _, hp := range run {
		if isClosed(hp.conn) {
			continue // nobody is waiting for this answer any more
		}
		if _, ok := byConn[hp.conn]; !ok {
			conns = append(conns, hp.conn)
		}
		byConn[hp.conn] = append(byConn[hp.conn], hp)
	}
	for _, c := range conns {
		mine := byConn[c]
		p.b.goSafe("pull re-execution", c, mine[0].req, func() { p.answer(k, c, mine) })
	}
}

// answer re-executes held pulls of one connection, holding again those
// its congestion leaves unanswered.
func (p *pullHolds) answer(k queueKey, c *remoting.Conn, hps []*heldPull) {
	for i, hp := range hps {
		if c.Congested() {
			p.mu.Lock()
			p.held[k] = append(p.held[k], hps[i:]...)
			p.mu.Unlock()
			p.count.Add(int64(len(hps) - i))
			return
		}
		p.b.serveSafe("pull re-execution", c, hp.req, func() { p.b.handlePull(c, hp.req, false) })
	}
}

// loop re-executes held pulls whose time ran out or whose queue grew past
// them (a message filtered by tag code does not wake a pull).
func (p *pullHolds) loop() {
	defer p.b.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.b.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			keys := make([]queueKey, 0, len(p.held))
			for k := range p.held {
				keys = append(keys, k)
			}
			p.mu.Unlock()
			for _, k := range keys {
				maxOff := p.b.store.MaxOffset(k.topic, k.queue)
				p.wake(k, func(hp *heldPull) bool {
					if isClosed(hp.conn) {
						return true
					}
					// A peer that leaves its answers unread gets no more
					// until it reads: its pulls stay held, unanswered, past
					// their deadline if need be (never dropped).
					return (!now.Before(hp.deadline) || maxOff > hp.offset) && !hp.conn.Congested()
				})
			}
		}
	}
}

func isClosed(c *remoting.Conn) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}
