package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/flow"
	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/broker/transaction"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// sendHeader is the decoded SEND_MESSAGE header; V1 (long keys) and V2
// (single letters) map onto the same fields. Slices alias the request.
type sendHeader struct {
	producerGroup, topic, defaultTopic, properties []byte
	defaultQueueNums                               int
	queueID                                        int32
	sysFlag, flag, reconsumeTimes                  int32
	bornTimestamp                                  int64
	batch                                          bool
	seen                                           uint16
}

const (
	seenGroup = 1 << iota
	seenTopic
	seenDefaultTopic
	seenQueueNums
	seenQueueID
	seenSysFlag
	seenBorn
	seenFlag
)

var sendRequired = []struct {
	bit  uint16
	name string
}{{seenGroup, "producerGroup"}, {seenTopic, "topic"}, {seenDefaultTopic, "defaultTopic"}, {seenQueueNums, "defaultTopicQueueNums"}, {seenQueueID, "queueId"}, {seenSysFlag, "sysFlag"}, {seenBorn, "bornTimestamp"}, {seenFlag, "flag"}}

// parseSendHeader reads a send header; it names the first field that is
// missing, or that is present but not a number in range (bad true).
func parseSendHeader(req *wire.Command, h *sendHeader) (field string, bad bool) {
	for _, kv := range req.Ext {
		v := kv.Value
		n, numOK := wire.ParseInt32(v)
		present := len(v) > 0 // an empty value is a missing one
		switch string(kv.Key) {
		case "producerGroup", "a":
			h.producerGroup, h.seen = v, h.seen|seenGroup
		case "topic", "b":
			h.topic, h.seen = v, h.seen|seenTopic
		case "defaultTopic", "c":
			h.defaultTopic, h.seen = v, h.seen|seenDefaultTopic
		case "defaultTopicQueueNums", "d":
			if !numOK {
				return "defaultTopicQueueNums", present
			}
			h.defaultQueueNums, h.seen = int(n), h.seen|seenQueueNums
		case "queueId", "e":
			if !numOK {
				return "queueId", present
			}
			h.queueID, h.seen = n, h.seen|seenQueueID
		case "sysFlag", "f":
			if !numOK {
				return "sysFlag", present
			}
			h.sysFlag, h.seen = n, h.seen|seenSysFlag
		case "bornTimestamp", "g":
			ts, ok := wire.ParseInt(v)
			if !ok {
				return "bornTimestamp", present
			}
			h.bornTimestamp, h.seen = ts, h.seen|seenBorn
		case "flag", "h":
			if !numOK {
				return "flag", present
			}
			h.flag, h.seen = n, h.seen|seenFlag
		case "properties", "i":
			h.properties = v
		case "reconsumeTimes", "j":
			if present && (!numOK || n < 0) {
				return "reconsumeTimes", true
			}
			h.reconsumeTimes = n
		case "batch", "m":
			h.batch = string(v) == "true"
		}
	}
	for _, r := range sendRequired {
		if h.seen&r.bit == 0 {
			return r.name, false
		}
	}
	return "", false
}

// serveSend stores one message or a batch. Validation happens before
// anything touches the log, so a refused send leaves no trace.
func (b *Broker) serveSend(c *remoting.Conn, req *wire.Command, st *connState) {
	var h sendHeader
	if f, bad := parseSendHeader(req, &h); bad {
		badNumber(c, req, f)
		return
	} else if f != "" {
		missing(c, req, f)
		return
	}
	if req.Code == wire.SendBatchMessage {
		h.batch = true
	}
	if !h.batch && len(req.Body) > b.cfg.MaxMessageSize {
		c.ReplyCode(req, wire.MessageIllegal, fmt.Sprintf("the message body size %d is larger than maxMessageSize %d", len(req.Body), b.cfg.MaxMessageSize))
		return
	}
	if h.batch && len(req.Body) > b.cfg.MaxMessageSize+64<<10 {
		c.ReplyCode(req, wire.MessageIllegal, fmt.Sprintf("the batch size %d is larger than maxMessageSize %d", len(req.Body), b.cfg.MaxMessageSize))
		return
	}
	tc, code, remark := b.sendTarget(h.topic, &h)
	if tc == nil {
		c.ReplyCode(req, code, remark)
		return
	}
	maxQ := max(tc.ReadQueueNums, tc.WriteQueueNums)
	if int(h.queueID) >= maxQ {
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("request queueId[%d] is illegal, %s Producer: %s", h.queueID, tc.TopicName, c.RemoteAddr()))
		return
	}
	if h.queueID < 0 {
		h.queueID = int32(rand.IntN(max(tc.WriteQueueNums, 1)))
	}
	if tc.TopicFilterType == "MULTI_TAG" {
		h.sysFlag |= wire.SysFlagMultiTags
	}
	if h.batch {
		b.sendBatch(c, req, &h, tc, st)
		return
	}
	if !b.takeQuota(c, req, st, tc, 1, len(req.Body)) {
		return
	}
	props := h.properties
	half := string(wire.PropertyValue(props, wire.PropTranMsg)) == "true"
	if half && b.cfg.RejectTransactionMessage {
		c.ReplyCode(req, wire.NoPermission, fmt.Sprintf("the broker[%s] sending transaction message is forbidden", b.addr))
		return
	}
	wait := string(wire.PropertyValue(props, wire.PropWait)) != "false"
	if b.inSyncNotEnough(c, req, wait) {
		return
	}
	st.scratch = b.storedProperties(st.scratch[:0], props, nil)
	m := store.Message{
		Topic: tc.TopicName, QueueID: h.queueID, Flag: h.flag, SysFlag: h.sysFlag,
		BornTimestamp: h.bornTimestamp, BornHost: st.bornHost, ReconsumeTimes: h.reconsumeTimes,
		Body: req.Body, Properties: st.scratch,
	}
	// A half message's delay waits for its commit (as in Java's
	// CommitLog.asyncPutMessage, apache/rocketmq
	// store/src/main/java/org/apache/rocketmq/store/CommitLog.java).
	if half {
		st.parked = transaction.Prepare(st.parked, &m)
	} else if lvl := schedule.Level(props, b.delay.MaxLevel()); lvl > 0 {
		st.parked = schedule.Park(st.parked, &m, lvl)
	} else if at, ok, err := b.timerDeliverAt(props); err != nil {
		c.ReplyCode(req, wire.MessageIllegal, err.Error())
		return
	} else if ok {
		st.parked = schedule.ParkTimer(st.parked, &m, at)
	}
	if !b.enterStore(c, req, st, h.topic) {
		return
	}
	r := b.put(&m)
	if r.Status == store.PutOK || r.Status == store.FlushDiskTimeout {
		b.stats.TopicPut(h.topic, 1, int(r.WroteBytes))
	}
	b.replySend(c, req, r, h.queueID, wait, nil)
}

// sendTarget is the topic a send may write to, or the code and remark
// refusing it: the checks every front end (remoting, gRPC) makes before
// a message touches the log. h, the remoting header, allows creating an
// unknown topic from its template; without it an unknown topic is refused.
func (b *Broker) sendTarget(topic []byte, h *sendHeader) (*wire.TopicConfig, int32, string) {
	if b.permission()&wire.PermWrite == 0 {
		return nil, wire.NoPermission, fmt.Sprintf("the broker[%s] sending message is forbidden", b.addr)
	}
	if b.isSlave() {
		return nil, wire.ServiceNotAvailable, b.notWritableRemark()
	}
	if err := wire.CheckTopic(topic); err != nil {
		return nil, wire.SystemError, err.Error()
	}
	if meta.NotAllowedToSend[string(topic)] {
		return nil, wire.NoPermission, fmt.Sprintf("Sending message to topic[%s] is forbidden.", topic)
	}
	tc := b.topics.Get(topic)
	if tc == nil {
		tc = b.lmqTopic(string(topic))
	}
	if tc == nil {
		if h == nil {
			return nil, wire.TopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please!", topic)
		}
		var code int32
		var remark string
		if tc, code, remark = b.autoCreateTopic(h); tc == nil {
			return nil, code, remark
		}
	}
	if tc.Perm&wire.PermWrite == 0 {
		return nil, wire.NoPermission, fmt.Sprintf("the topic[%s] sending message is forbidden", topic)
	}
	return tc, 0, ""
}

// storedProperties appends to dst the properties as Java stores them: the
// request's (and, for a batch item, the batch's) without WAIT, plus
// CLUSTER. props may alias dst's spare capacity: RemoveProperty copies
// forward and never overtakes its source.
func (b *Broker) storedProperties(dst, props, extra []byte) []byte {
	start := len(dst)
	dst = wire.RemoveProperty(dst, props, wire.PropWait)
	if len(extra) > 0 {
		if len(dst) > start && dst[len(dst)-1] != wire.PropertySep {
			dst = append(dst, wire.PropertySep)
		}
		dst = wire.RemoveProperty(dst, extra, wire.PropWait)
	}
	if len(dst) > start && dst[len(dst)-1] != wire.PropertySep {
		dst = append(dst, wire.PropertySep)
	}
	dst = append(dst, wire.PropCluster...)
	dst = append(dst, wire.NameValueSep)
	return append(dst, b.cfg.BrokerClusterName...)
}

// autoCreateTopic creates an unknown topic from its template (TBW102) the
// way Java does, or explains why it cannot.
func (b *Broker) autoCreateTopic(h *sendHeader) (*wire.TopicConfig, int32, string) {
	topic := string(h.topic)
	var tc wire.TopicConfig
	if def := b.topics.Get(h.defaultTopic); def != nil && def.Perm&wire.PermInherit != 0 && b.cfg.AutoCreateTopicEnable {
		n := min(h.defaultQueueNums, def.WriteQueueNums)
		if n <= 0 {
			n = def.WriteQueueNums
		}
		tc = wire.TopicConfig{TopicName: topic, ReadQueueNums: n, WriteQueueNums: n, Perm: def.Perm &^ wire.PermInherit, TopicFilterType: def.TopicFilterType}
	} else if strings.HasPrefix(topic, meta.RetryPrefix) {
		tc = wire.TopicConfig{TopicName: topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}
	} else {
		return nil, wire.TopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please!", topic)
	}
	// Durable before the answer: the message acknowledged next lives in it.
	got, created, err := b.topics.CreateIfAbsent(tc, true)
	if err != nil {
		b.log.Error("[TOPIC_CREATE] persist failed", "topic", topic, "err", err)
		if errors.Is(err, unix.ENOSPC) {
			// A full disk answers a send 14, whichever write met it.
			return nil, wire.ServiceNotAvailable, b.notWritableRemark() + " (create topic failed: " + err.Error() + ")"
		}
		return nil, wire.SystemError, "create topic failed: " + err.Error()
	}
	if created {
		b.log.Info("[TOPIC_CREATE] auto-created topic", "topic", topic, "queues", tc.WriteQueueNums, "perm", tc.Perm)
		b.kickRegister()
	}
	return got, 0, ""
}

// putStatusCode maps a store status to a response code; ok reports a stored message.
func (b *Broker) putStatusCode(s store.PutStatus) (code int32, remark string, ok bool) {
	switch s {
	case store.PutOK:
		return wire.Success, "", true
	case store.FlushDiskTimeout:
		return wire.FlushDiskTimeout, "flush disk timeout", true
	case store.MessageIllegal:
		return wire.MessageIllegal, "the message is illegal, maybe msg body or properties length not matched", false
	case store.PropertiesTooLong:
		return wire.MessageIllegal, "the message properties are longer than 32767 bytes", false
	case store.MultiDispatchIllegal:
		return wire.MessageIllegal, "INNER_MULTI_DISPATCH must list distinct light message queues (%LMQ% and a valid topic name) separated by ',', on single messages (not batches)", false
	case store.LMQNumExceeded:
		// Java's remark (SendMessageProcessor.handlePutMessageResult).
		return wire.SystemError, "[LMQ_CONSUME_QUEUE_NUM_EXCEEDED]broker config enableLmq and enableMultiDispatch, lmq consumeQueue num exceed maxLmqConsumeQueueNum config num, default limit 2w.", false
	case store.ServiceNotAvailable:
		// Java's remark lists the possible causes; the store knows which.
		// Clients retry SERVICE_NOT_AVAILABLE on another broker, then
		// surface the remark.
		if err := b.store.NotWritable(); errors.Is(err, store.ErrDiskFull) {
			// Java's remark with the disk figures (what alerts and
			// runbooks match), then which limit and when it clears.
			return wire.ServiceNotAvailable, b.notWritableRemark() + " (" + err.Error() + ")", false
		} else if err != nil {
			return wire.ServiceNotAvailable, "service not available now: " + err.Error(), false
		}
		return wire.ServiceNotAvailable, "service not available now: the store is not writable", false
	default:
		return wire.SystemError, "UNKNOWN_ERROR", false
	}
}

// Response extField names, allocated once.
var (
	keyMsgID       = []byte("msgId")
	keyQueueID     = []byte("queueId")
	keyQueueOffset = []byte("queueOffset")
	keyRegion      = []byte("MSG_REGION")
	keyTraceOn     = []byte("TRACE_ON")
	valTrue        = []byte("true")
	valFalse       = []byte("false")
)

// replySend answers a send. ids, when non-nil, holds the comma-joined
// offset ids of a batch; otherwise the single record's id is derived. The
// response is built on the stack: the send path allocates nothing per
// message unless it has to wait for a sync flush.
func (b *Broker) replySend(c *remoting.Conn, req *wire.Command, r store.PutResult, queueID int32, wait bool, ids []byte) {
	code, remark, ok := b.putStatusCode(r.Status)
	if !ok {
		b.putFailed.Add(1)
		c.ReplyCode(req, code, remark)
		return
	}
	var idBuf [40]byte
	var qidBuf, qoffBuf [24]byte
	if ids == nil {
		ids = wire.AppendOffsetMsgID(idBuf[:0], b.storeHost, r.PhysicalOffset)
	}
	trace := valFalse
	if b.cfg.TraceOn {
		trace = valTrue
	}
	ext := [5]wire.KV{
		{Key: keyMsgID, Value: ids},
		{Key: keyQueueID, Value: strconv.AppendInt(qidBuf[:0], int64(queueID), 10)},
		{Key: keyQueueOffset, Value: strconv.AppendInt(qoffBuf[:0], r.QueueOffset, 10)},
		{Key: keyRegion, Value: b.region},
		{Key: keyTraceOn, Value: trace},
	}
	resp := wire.ResponseTo(req, code, remark)
	resp.Ext = ext[:]
	// A produce quota's delay (takeQuota) holds this answer, and the
	// reading of the connection, for hold.
	var hold time.Duration
	if st, _ := c.Attachment.Load().(*connState); st != nil {
		hold, st.hold = st.hold, 0
	}
	if req.IsOneway() {
		if hold > 0 {
			c.PauseReading()
			time.AfterFunc(hold, c.ResumeReading)
		}
		return
	}
	flush, repl, replCode := false, false, int32(wire.Success)
	if wait {
		flush, repl, replCode = b.ackWaits(r.EndOffset)
	}
	if flush || repl || hold > 0 {
		b.replyAfterWait(c, &resp, r.EndOffset, flush, repl, replCode, hold)
		return
	}
	if replCode != wire.Success {
		resp.Code, resp.Remark = replCode, remarkSlaveNotAvailable
	}
	c.Reply(req, &resp)
}

// ackWaits is what a send stored up to end waits for before its answer:
// the group commit (SYNC_FLUSH) and a slave's ack (SYNC_MASTER, or the
// controller-mode ack rule). replCode is SlaveNotAvailable when a
// SYNC_MASTER has no slave fit to wait for (Java's HAService.isSlaveOK):
// then the answer says so at once, still a stored message.
func (b *Broker) ackWaits(end int64) (flush, repl bool, replCode int32) {
	flush, repl, replCode = b.store.SyncFlush(), b.syncMaster, wire.Success
	if b.ctl != nil {
		// Controller mode: the ack rule (allAckInSyncStateSet,
		// inSyncReplicas) decides; minInSyncReplicas was checked before
		// the put.
		repl = b.ctl.ha.IsMaster() && (b.cfg.AllAckInSyncStateSet || b.cfg.InSyncReplicas > 1)
	} else if repl && !b.haServer.SlaveOK(end) {
		repl, replCode = false, wire.SlaveNotAvailable
	}
	return flush, repl, replCode
}

var (
	remarkSlaveNotAvailable = []byte("slave not available")
	remarkFlushSlaveTimeout = []byte("flush slave timeout")
)

// ackWait is one stored send waiting for its group commit (SYNC_FLUSH) and
// a slave's ack (SYNC_MASTER) at once, as Java's CommitLog.asyncPutMessage
// combines submitFlushRequest and submitReplicaRequest (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/CommitLog.java). The last
// of the two to complete answers: a remoting send with its encoded frame
// on c, any other caller (gRPC) through done.
type ackWait struct {
	b        *Broker
	pending  atomic.Int32
	flushOK  bool  // written before the pending decrement that publishes it
	replCode int32 // Success, SlaveNotAvailable or FlushSlaveTimeout; likewise

	c     *remoting.Conn
	frame []byte
	done  func(flushOK bool, replCode int32)
	// answer is done for a caller that queues a remoting answer itself:
	// batched as for ackWait.finish.
	answer func(flushOK bool, replCode int32, batched bool)
	ticket flow.Ticket // the remoting send's admission budget, held until answered

	// starting: startWaits is still registering the waits, so a flush
	// callback may run inline on the connection's read loop.
	starting atomic.Bool

	// The callbacks, bound once: a method value made per send would be an
	// allocation per send.
	flushedFn, ackedFn func(ok bool)
	// hold is the answer's quota delay; its timer is made once and reset.
	holdTimer *time.Timer
	heldFn    func()
}

// ackWaitFree recycles ackWait and its frame buffer: no allocation per
// waiting remoting send once warm. A free list rather than a sync.Pool,
// which every GC empties: thousands of sends may wait for one group commit.
var ackWaitFree struct {
	mu   sync.Mutex
	free []*ackWait
}

// maxFreeAckWaits bounds what the free list keeps (a few MiB at most).
const maxFreeAckWaits = 1 << 14

func (b *Broker) getAckWait(replCode int32) *ackWait {
	var w *ackWait
	ackWaitFree.mu.Lock()
	if n := len(ackWaitFree.free); n > 0 {
		w = ackWaitFree.free[n-1]
		ackWaitFree.free[n-1] = nil
		ackWaitFree.free = ackWaitFree.free[:n-1]
	}
	ackWaitFree.mu.Unlock()
	if w == nil {
		w = &ackWait{}
		w.flushedFn, w.ackedFn, w.heldFn = w.flushed, w.acked, w.held
	}
	w.b, w.flushOK, w.replCode = b, true, replCode
	return w
}

func putAckWait(w *ackWait) {
	w.b, w.c, w.done, w.answer = nil, nil, nil, nil
	ackWaitFree.mu.Lock()
	if len(ackWaitFree.free) < maxFreeAckWaits {
		ackWaitFree.free = append(ackWaitFree.free, w)
	}
	ackWaitFree.mu.Unlock()
}

// replyAfterWait answers when the waits complete, while the read loop
// moves on. The rare failure answers are derived from the encoded success
// frame. replCode is the replica status known before waiting (a slave
// found unavailable). A quota delay (hold > 0) is one more wait: the
// connection is not read until it ends, and the answer leaves no earlier,
// while the answers of earlier sends leave when theirs are due.
func (b *Broker) replyAfterWait(c *remoting.Conn, resp *wire.Command, end int64, flush, repl bool, replCode int32, hold time.Duration) {
	w := b.getAckWait(replCode)
	w.c, w.frame = c, wire.AppendFrame(w.frame[:0], resp)
	if st, _ := c.Attachment.Load().(*connState); st != nil {
		w.ticket, st.ticket = st.ticket, flow.Ticket{}
	}
	b.startWaits(w, end, flush, repl, hold)
}

// waitAcks runs the waits ackWaits chose and calls done once both are
// over (at once if none); flushOK is false when the flush failed or timed
// out, replCode turns FlushSlaveTimeout when the slave did not ack.
func (b *Broker) waitAcks(end int64, flush, repl bool, done func(flushOK bool, replCode int32)) {
	if !flush && !repl {
		done(true, wire.Success)
		return
	}
	w := b.getAckWait(wire.Success)
	w.done = done
	b.startWaits(w, end, flush, repl, 0)
}

// waitAcksAnswer is waitAcks for a caller answering a remoting request
// from answer: when batched (answer runs among the waiters of one group
// commit) it queues with QueueFrame and leaves the wake-up to
// b.ackWakes, else it sends.
func (b *Broker) waitAcksAnswer(end int64, flush, repl bool, answer func(flushOK bool, replCode int32, batched bool)) {
	if !flush && !repl {
		answer(true, wire.Success, false)
		return
	}
	w := b.getAckWait(wire.Success)
	w.answer = answer
	b.startWaits(w, end, flush, repl, 0)
}

// startWaits registers w for the group commit, the slave's ack and a
// remoting answer's quota hold; at least one of them is asked for.
func (b *Broker) startWaits(w *ackWait, end int64, flush, repl bool, hold time.Duration) {
	n := int32(0)
	if flush {
		n++
	}
	if repl {
		n++
	}
	if hold > 0 {
		n++
	}
	w.pending.Store(n)
	if hold > 0 {
		w.c.PauseReading()
		if w.holdTimer == nil {
			w.holdTimer = time.AfterFunc(hold, w.heldFn)
		} else {
			w.holdTimer.Reset(hold)
		}
	}
	if flush {
		w.starting.Store(true)
		b.store.WaitFlushed(end, w.flushedFn)
		w.starting.Store(false)
	}
	if repl {
		if b.ctl != nil {
			b.ctl.ha.WaitAck(end, w.ackedFn)
		} else {
			b.haServer.WaitAck(end, w.ackedFn)
		}
	}
}

// flushed ends the flush wait. Unless it runs inline, a store goroutine
// calls it among the other waiters one fsync covered and then runs the
// OnWaitersAnswered hook (ackWakes.wake), so the answer is queued without
// waking the connection's writer: the answers of one group commit to one
// connection leave in one write.
func (w *ackWait) flushed(ok bool) {
	w.flushOK = ok
	w.finish(!w.starting.Load())
}

func (w *ackWait) acked(ok bool) {
	if !ok {
		w.replCode = wire.FlushSlaveTimeout
	}
	w.finish(false)
}

// held ends a quota hold: the answer is queued (if the other waits are
// over) before the connection is read again, so the next request's answer
// follows it.
func (w *ackWait) held() {
	c := w.c
	w.finish(false)
	c.ResumeReading()
}

// finish answers once the last wait is over; batched defers waking the
// writer to the store's hook.
func (w *ackWait) finish(batched bool) {
	if w.pending.Add(-1) != 0 {
		return
	}
	// The budget goes back before the answer leaves: a client that reads
	// it may send again at once, and must not meet its own finished send
	// still counted (sendInflightPerConnection=1 would refuse it).
	w.b.flow.Release(&w.ticket)
	switch {
	case w.answer != nil:
		w.answer(w.flushOK, w.replCode, batched)
	case w.done != nil:
		w.done(w.flushOK, w.replCode)
	default:
		frame := w.frame
		switch code, remark, failure := w.b.ackOutcome(w.flushOK, w.replCode); {
		case failure != nil:
			frame = storeFailedFrame(frame, failure)
		case code != wire.Success:
			frame = recodedFrame(frame, code, remark)
		}
		if !batched {
			_ = w.c.SendFrame(frame) // copies the frame
		} else if wake, err := w.c.QueueFrame(frame); err == nil && wake {
			w.b.ackWakes.add(w.c)
		}
	}
	putAckWait(w)
}

// ackWakes lists the connections owed a writer wake-up by answers queued
// with QueueFrame (ackWait.finish); wake, the store's OnWaitersAnswered
// hook, wakes each once after a group of answers.
type ackWakes struct {
	mu    sync.Mutex
	conns []*remoting.Conn
}

func (a *ackWakes) add(c *remoting.Conn) {
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
}

func (a *ackWakes) wake() {
	a.mu.Lock()
	for i, c := range a.conns {
		c.Wake()
		a.conns[i] = nil
	}
	a.conns = a.conns[:0]
	a.mu.Unlock()
}

// ackOutcome is the answer to a stored send once its waits are over: a
// failed store wins (the message is not known to be durable; failure is
// then non-nil), then the replica's status (Java sets it after the flush
// status), then the flush timeout.
func (b *Broker) ackOutcome(flushOK bool, replCode int32) (code int32, remark []byte, failure *store.Failure) {
	switch {
	case !flushOK && b.store.Failure() != nil:
		return wire.ServiceNotAvailable, nil, b.store.Failure()
	case replCode == wire.SlaveNotAvailable:
		return replCode, remarkSlaveNotAvailable, nil
	case replCode == wire.FlushSlaveTimeout:
		return replCode, remarkFlushSlaveTimeout, nil
	case !flushOK:
		return wire.FlushDiskTimeout, remarkFlushDiskTimeout, nil
	}
	return wire.Success, nil, nil
}

var remarkFlushDiskTimeout = []byte("flush disk timeout")

// recodedFrame turns an encoded send answer into another status with the
// same fields: stored, but not durable or not replicated as promised.
func recodedFrame(frame []byte, code int32, remark []byte) []byte {
	var cmd wire.Command
	if err := wire.DecodeFrame(frame[4:], &cmd); err != nil {
		return frame // our own encoding always decodes
	}
	cmd.Code = code
	cmd.Remark = remark
	return wire.AppendFrame(nil, &cmd)
}

// storeFailedFrame turns an encoded send answer into SERVICE_NOT_AVAILABLE
// once the store failed: an error, not FLUSH_DISK_TIMEOUT, because
// rocketmq-client-go v2.1.2 returns that as a result without error (and
// Java's client as a result too), so applications would take the message
// for sent; on SERVICE_NOT_AVAILABLE both retry on another broker and then
// report the remark. A retried message may be delivered twice if the
// first copy survives: at least once, never lost.
func storeFailedFrame(frame []byte, f *store.Failure) []byte {
	var cmd wire.Command
	if err := wire.DecodeFrame(frame[4:], &cmd); err != nil {
		return frame // our own encoding always decodes
	}
	cmd.Code = wire.ServiceNotAvailable
	cmd.Remark = []byte("service not available now: " + f.Error() + " (this message was written but is not known to be durable)")
	cmd.Ext = nil
	return wire.AppendFrame(nil, &cmd)
}

// sendBatch decodes a batch body (Java's MessageDecoder.decodeMessages,
// apache/rocketmq common/src/main/java/org/apache/rocketmq/common/message/MessageDecoder.java)
// into store messages and appends them atomically with consecutive queue offsets.
func (b *Broker) sendBatch(c *remoting.Conn, req *wire.Command, h *sendHeader, tc *wire.TopicConfig, st *connState) {
	if h.sysFlag&wire.SysFlagTransactionMask != 0 {
		c.ReplyCode(req, wire.MessageIllegal, "batch messages cannot be transactional")
		return
	}
	if v := wire.PropertyValue(h.properties, wire.PropDelay); len(v) > 0 && string(v) != "0" {
		c.ReplyCode(req, wire.MessageIllegal, "batch messages cannot be delayed")
		return
	}
	if _, ok, _ := b.timerDeliverAt(h.properties); ok {
		c.ReplyCode(req, wire.MessageIllegal, "batch messages cannot be timer messages")
		return
	}
	st.items = st.items[:0]
	st.scratch = st.scratch[:0]
	type span struct{ start, end int }
	var spans []span
	body := req.Body
	for p := 0; p < len(body); {
		if len(body)-p < 20 {
			c.ReplyCode(req, wire.MessageIllegal, "malformed batch: truncated item header")
			return
		}
		total := int(int32(binary.BigEndian.Uint32(body[p:])))
		if total < 22 || total > len(body)-p {
			c.ReplyCode(req, wire.MessageIllegal, fmt.Sprintf("malformed batch: item size %d at %d", total, p))
			return
		}
		item := body[p : p+total]
		flag := int32(binary.BigEndian.Uint32(item[12:]))
		bl := int(int32(binary.BigEndian.Uint32(item[16:])))
		if bl < 0 || 20+bl+2 > total {
			c.ReplyCode(req, wire.MessageIllegal, fmt.Sprintf("malformed batch: body length %d at %d", bl, p))
			return
		}
		if bl > b.cfg.MaxMessageSize {
			c.ReplyCode(req, wire.MessageIllegal, fmt.Sprintf("the message body size %d is larger than maxMessageSize %d", bl, b.cfg.MaxMessageSize))
			return
		}
		pl := int(binary.BigEndian.Uint16(item[20+bl:]))
		if 22+bl+pl != total {
			c.ReplyCode(req, wire.MessageIllegal, fmt.Sprintf("malformed batch: properties length %d at %d", pl, p))
			return
		}
		props := item[22+bl : 22+bl+pl]
		start := len(st.scratch)
		// Each item keeps its own properties plus the batch's, as Java
		// stores them.
		st.scratch = append(st.scratch, props...)
		st.scratch = b.storedProperties(st.scratch[:start], st.scratch[start:], h.properties)
		spans = append(spans, span{start, len(st.scratch)})
		st.items = append(st.items, store.Message{
			Topic: "", QueueID: h.queueID, Flag: flag, SysFlag: h.sysFlag,
			BornTimestamp: h.bornTimestamp, BornHost: st.bornHost, ReconsumeTimes: h.reconsumeTimes,
			Body: item[20 : 20+bl],
		})
		p += total
	}
	if len(st.items) == 0 {
		c.ReplyCode(req, wire.MessageIllegal, "empty batch")
		return
	}
	for i := range st.items {
		st.items[i].Topic = tc.TopicName
		st.items[i].Properties = st.scratch[spans[i].start:spans[i].end]
	}
	if !b.takeQuota(c, req, st, tc, len(st.items), len(body)) {
		return
	}
	wait := string(wire.PropertyValue(h.properties, wire.PropWait)) != "false"
	if b.inSyncNotEnough(c, req, wait) {
		return
	}
	if !b.enterStore(c, req, st, h.topic) {
		return
	}
	first, phys := b.putBatch(st.items)
	if first.Status != store.PutOK {
		b.replySend(c, req, first, h.queueID, wait, nil)
		return
	}
	b.stats.TopicPut(h.topic, len(phys), int(first.WroteBytes))
	ids := make([]byte, 0, len(phys)*33)
	for i, off := range phys {
		if i > 0 {
			ids = append(ids, ',')
		}
		ids = wire.AppendOffsetMsgID(ids, b.storeHost, off)
	}
	b.replySend(c, req, first, h.queueID, wait, ids)
}

// timerDeliverAt reads a RocketMQ 5 timer message's delivery time; ok is
// false for messages without one or already due (sent at once).
func (b *Broker) timerDeliverAt(props []byte) (at int64, ok bool, err error) {
	if len(props) == 0 || !bytes.Contains(props, timerPrefix) {
		return 0, false, nil // the common case, without parsing
	}
	now := time.Now().UnixMilli()
	at, ok, err = schedule.TimerDeliverAt(props, now, time.Duration(b.cfg.TimerMaxDelaySec)*time.Second)
	if errors.Is(err, schedule.ErrTimerTooLong) {
		return 0, false, fmt.Errorf("%w (%ds)", err, b.cfg.TimerMaxDelaySec)
	} else if err != nil {
		return 0, false, err
	}
	return at, ok && at > now, nil
}

var timerPrefix = []byte("TIMER_")
