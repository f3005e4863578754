package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/clients"
	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/pop"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// POP consumption for RocketMQ 5 clients: the broker reads its consume
// queues for a receive, broker/pop keeps which offsets are leased, and the
// reviver stores the retry copies of expired leases. Java's counterparts:
// apache/rocketmq broker/src/main/java/org/apache/rocketmq/broker/processor/PopMessageProcessor.java,
// AckMessageProcessor.java, ChangeInvisibleTimeProcessor.java, PopReviveService.java.

// popStateFile is the POP state's file under config/.
const popStateFile = "popState.json"

// Intervals of the reviver and of saving the POP state.
const (
	reviveInterval  = 200 * time.Millisecond
	renewInterval   = time.Second
	renewExtend     = 60_000 // ms: Java's defaultInvisibleTimeMills
	popSaveInterval = 5 * time.Second
	// popRetryProbability is how often a receive reads the retry topic
	// first (Java popFromRetryProbability, 20 %).
	popRetryProbability = 20
	// Properties the reviver keeps on retry copies (Java MessageConst).
	propFirstPopTime = "1ST_POP_TIME"
)

// popEngine is the broker's POP state and the receives waiting for messages.
type popEngine struct {
	state *pop.State
	path  string
	save  sync.Mutex // serialises Save

	waiting atomic.Int64
	mu      sync.Mutex
	waiters map[string][]chan struct{} // topic → receives waiting for a message
	rr      atomic.Uint32              // rotating first queue of receives

	// expired counts each group's leases that ran out since the start
	// (MQOPS_POP_STATS, runtime key popExpired).
	emu     sync.Mutex
	expired map[string]int64
}

// expiredOne counts one expired lease of group.
func (p *popEngine) expiredOne(group string) {
	p.emu.Lock()
	p.expired[group]++
	p.emu.Unlock()
}

// stats is every group's leases in flight and expired.
func (p *popEngine) stats() map[string]wire.PopGroupStats {
	out := map[string]wire.PopGroupStats{}
	for g, n := range p.state.InflightGroups() {
		out[g] = wire.PopGroupStats{Inflight: int64(n)}
	}
	p.emu.Lock()
	for g, n := range p.expired {
		gs := out[g]
		gs.Expired = n
		out[g] = gs
	}
	p.emu.Unlock()
	return out
}

// openPop loads the POP engine that the gRPC service and the HTTP
// gateway share, once.
func (b *Broker) openPop() error {
	if b.pop != nil {
		return nil
	}
	pe, err := newPopEngine(b.offsets, b.groups, b.cfg.StorePathRootDir+"/config")
	if err != nil {
		return err
	}
	b.pop = pe
	return nil
}

// startPop runs the reviver when a POP engine is open.
func (b *Broker) startPop() {
	if b.pop == nil {
		return
	}
	b.wg.Add(1)
	go b.reviveLoop()
}

// grpcClientConnected reports whether a gRPC client has its Telemetry
// stream open; leases of HTTP receives never auto-renew.
func (b *Broker) grpcClientConnected(id string) bool {
	return b.grpc != nil && b.grpc.srv.ClientConnected(id)
}

func newPopEngine(offsets *meta.Offsets, groups *meta.Groups, dir string) (*popEngine, error) {
	p := &popEngine{state: pop.New(offsets), path: dir + "/" + popStateFile, waiters: map[string][]chan struct{}{}, expired: map[string]int64{}}
	p.state.SetOrderly(func(group string) bool { return orderly(groups.Lookup(group)) })
	if err := p.state.Load(p.path); err != nil {
		return nil, err
	}
	return p, nil
}

// dispatched is the store's dispatch callback: remoting long polls and
// waiting receives.
func (b *Broker) dispatched(topic string, queue int32, queueOffset int64, tagsCode int64) {
	b.holds.notify(topic, queue, queueOffset, tagsCode)
	b.amqp.Notify(topic)
	if b.pop != nil {
		b.pop.notify(topic)
	}
}

// notify is called for every dispatched message; it must stay cheap.
func (p *popEngine) notify(topic string) {
	if p.waiting.Load() == 0 {
		return
	}
	p.mu.Lock()
	ws := p.waiters[topic]
	delete(p.waiters, topic)
	p.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// wait registers for the next message dispatched to any of topics.
func (p *popEngine) wait(topics ...string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	for _, t := range topics {
		p.waiters[t] = append(p.waiters[t], ch)
	}
	p.mu.Unlock()
	p.waiting.Add(1)
	return ch, func() {
		p.waiting.Add(-1)
		p.mu.Lock()
		for _, t := range topics {
			ws := p.waiters[t]
			for i, w := range ws {
				if w == ch {
					ws = append(ws[:i], ws[i+1:]...)
					break
				}
			}
			if len(ws) == 0 {
				delete(p.waiters, t)
			} else {
				p.waiters[t] = ws
			}
		}
		p.mu.Unlock()
	}
}

func popErr(code grpcsvc.PopCode, format string, args ...any) *grpcsvc.PopError {
	return &grpcsvc.PopError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// MaxAttempts is a group's delivery attempts: retryMaxTimes + 1 (Java
// GrpcClientSettingsManager.mergeSubscriptionData).
func (g grpcBackend) MaxAttempts(group string) int32 {
	if gc := g.b.groups.Lookup(group); gc != nil {
		return int32(gc.RetryMaxTimes) + 1
	}
	return 16 + 1
}

// Orderly reports whether a group consumes in order (FIFO):
// consumeMessageOrderly (Java GrpcClientSettingsManager sets
// subscription.fifo from it).
func (g grpcBackend) Orderly(group string) bool { return orderly(g.b.groups.Lookup(group)) }

func orderly(gc *wire.SubscriptionGroupConfig) bool { return gc != nil && gc.ConsumeMessageOrderly }

// popGroup finds or (autoCreateSubscriptionGroup) creates the group.
func (b *Broker) popGroup(group string) (*wire.SubscriptionGroupConfig, *grpcsvc.PopError) {
	if gc := b.groups.Lookup(group); gc != nil {
		return gc, nil
	}
	if err := wire.CheckGroup(group); err != nil {
		return nil, popErr(grpcsvc.PopGroupNotFound, "subscription group [%s] does not exist: %v", group, err)
	}
	if !b.cfg.AutoCreateSubscriptionGroup {
		return nil, popErr(grpcsvc.PopGroupNotFound, "subscription group [%s] does not exist", group)
	}
	gc, _, err := b.groups.Ensure(group)
	if err != nil {
		return nil, popErr(grpcsvc.PopInternal, "create group %s: %v", group, err)
	}
	return gc, nil
}

// Receive scans the topic's read queues (from a rotating one) and the
// group's pop retry topic, leasing up to r.Batch messages; with none it
// waits for a dispatch to either topic until r.Wait ends.
func (g grpcBackend) Receive(ctx context.Context, r *grpcsvc.PopRequest) ([]grpcsvc.Delivery, *grpcsvc.PopError) {
	b := g.b
	if b.permission()&wire.PermRead == 0 {
		return nil, popErr(grpcsvc.PopForbidden, "the broker[%s] pulling message is forbidden", b.addr)
	}
	if b.isSlave() {
		return nil, popErr(grpcsvc.PopForbidden, "the broker[%s] is a slave: receive from its master", b.addr)
	}
	gc, perr := b.popGroup(r.Group)
	if perr != nil {
		return nil, perr
	}
	if lim := b.cfg.PopInflightMessageThreshold; lim > 0 {
		n := b.pop.state.Inflight(r.Group)
		if n >= lim {
			return nil, popErr(grpcsvc.PopTooMany, "group %s has %d messages in flight on this broker (popInflightMessageThreshold %d): ack or wait for some first", r.Group, n, lim)
		}
		rr := *r
		rr.Batch = min(r.Batch, lim-n)
		r = &rr
	}
	tc := b.topics.Lookup(r.Topic)
	if tc == nil {
		return nil, popErr(grpcsvc.PopTopicNotFound, "topic %s not found", r.Topic)
	}
	if tc.Perm&wire.PermRead == 0 {
		return nil, popErr(grpcsvc.PopForbidden, "the topic[%s] pulling message is forbidden", r.Topic)
	}
	sub := clients.NewSubscription(r.Topic, r.Filter, r.FilterType, 0)
	if sub.FilterErr != nil {
		return nil, popErr(grpcsvc.PopBadFilter, "bad filter expression %q: %v", r.Filter, sub.FilterErr)
	}
	if sub.Selector != nil && !b.propertyFilter.Load() {
		return nil, popErr(grpcsvc.PopBadFilter, "the broker does not support SQL92 filters (set enablePropertyFilter=true)")
	}
	retry := pop.RetryTopic(r.Group, r.Topic)
	deadline := time.Now().Add(r.Wait)
	for {
		if !gc.ConsumeEnable {
			return nil, nil // a paused group gets nothing, as remoting pulls
		}
		// Register before the scan: a message dispatched during it wakes us.
		var woke <-chan struct{}
		var done func()
		if r.Wait > 0 {
			woke, done = b.pop.wait(r.Topic, retry)
		}
		out, perr := b.popScan(r, tc, sub, gc, retry)
		left := time.Until(deadline)
		if len(out) > 0 || perr != nil || left <= 0 {
			if done != nil {
				done()
			}
			return out, perr
		}
		t := time.NewTimer(left)
		select {
		case <-woke:
		case <-t.C:
		case <-ctx.Done():
		case <-b.stop:
		}
		t.Stop()
		done()
		if ctx.Err() != nil {
			return nil, nil
		}
		select {
		case <-b.stop:
			return nil, nil
		default:
		}
		gc = b.groups.Lookup(r.Group)
		if gc == nil {
			return nil, popErr(grpcsvc.PopGroupNotFound, "subscription group [%s] was deleted", r.Group)
		}
	}
}

type popQueue struct {
	topic string
	id    int32
	kind  int
}

func (b *Broker) popScan(r *grpcsvc.PopRequest, tc *wire.TopicConfig, sub *clients.Subscription, gc *wire.SubscriptionGroupConfig, retry string) ([]grpcsvc.Delivery, *grpcsvc.PopError) {
	n := tc.ReadQueueNums
	qs := make([]popQueue, 0, n+1)
	start := int(b.pop.rr.Add(1))
	for i := 0; i < n; i++ {
		qs = append(qs, popQueue{tc.TopicName, int32((start + i) % n), pop.KindNormal})
	}
	rq := popQueue{retry, 0, pop.KindRetry}
	if rand.IntN(100) < popRetryProbability {
		qs = append([]popQueue{rq}, qs...)
	} else {
		qs = append(qs, rq)
	}
	maxAttempts := int32(gc.RetryMaxTimes) + 1
	fifo := orderly(gc)
	var out []grpcsvc.Delivery
	for _, q := range qs {
		if len(out) >= r.Batch {
			break
		}
		var err *grpcsvc.PopError
		out, err = b.popQueue(r, q, sub, maxAttempts, fifo, out)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// popQueue leases what one queue has, appending to out. For an orderly
// group (fifo) it hands out a new batch only when the queue has none in
// flight (popRedeliver).
func (b *Broker) popQueue(r *grpcsvc.PopRequest, q popQueue, sub *clients.Subscription, maxAttempts int32, fifo bool, out []grpcsvc.Delivery) ([]grpcsvc.Delivery, *grpcsvc.PopError) {
	if b.store.MaxOffset(q.topic, q.id) == 0 {
		return out, nil // nothing ever stored: no state to make
	}
	key := pop.Key{Group: r.Group, Topic: q.topic, Queue: q.id}
	tk := b.pop.state.Take(key, func() int64 { return b.popInitialOffset(q.topic, q.id) })
	defer tk.Close()
	if fifo {
		var busy bool
		if out, busy = b.popRedeliver(r, q, tk, maxAttempts, out); busy {
			return out, nil
		}
	}
	first := len(out) // out holds earlier queues' deliveries too
	var matchCode func(int64) bool
	var matchRecord func([]byte) bool
	if !sub.All {
		matchRecord = sub.MatchRecord
		if sub.Selector == nil {
			matchCode = sub.MatchCode
		}
	}
	var dst []byte
	if r.Scratch != nil {
		dst = *r.Scratch // records of earlier queues stay in front
	}
	res := b.store.GetMessages(q.topic, q.id, tk.Next(), r.Batch-len(out), pullMaxBytes, matchCode, matchRecord, dst)
	body := res.Body[len(dst):]
	if r.Scratch != nil {
		*r.Scratch = res.Body
	}
	now := time.Now().UnixMilli()
	var handleBuf [32 * 64]byte // a 32-message batch's handles, on the stack
	var endBuf [32]int
	handles, ends := handleBuf[:0], endBuf[:0]
	stuck := false // a message that could not move to the dead-letter topic stays, and what follows it
	for len(body) > 0 && !stuck {
		v := wire.RecordView(body)
		size := int(v.TotalSize())
		if size <= 0 || size > len(body) {
			break
		}
		rec := body[:size:size]
		body = body[size:]
		v = wire.RecordView(rec)
		off := v.QueueOffset()
		tk.Skip(off) // what lies between was filtered out
		if v.ReconsumeTimes() >= maxAttempts {
			// Java's PopMessageResultFilterImpl: reconsume times ≥ max
			// attempts goes to the dead-letter topic instead.
			if err := b.popDeadLetter(r.Group, r.Topic, v, v.ReconsumeTimes()); err != nil {
				b.log.Error("[DLQ] storing a POP message in the dead-letter topic failed; it stays in its queue", "group", r.Group, "topic", q.topic, "queueOffset", off, "err", err)
				stuck = true
				continue
			}
			tk.Skip(off + 1)
			continue
		}
		l := pop.Lease{Offset: off, PhyOffset: v.PhysicalOffset(), PopTime: now, VisibleAt: now + r.Invisible.Milliseconds(), Reconsume: v.ReconsumeTimes(), ClientID: r.ClientID, AutoRenew: r.AutoRenew}
		tk.Lease(l)
		h := pop.Handle{PopTime: l.PopTime, VisibleAt: l.VisibleAt, Kind: q.kind, Broker: b.cfg.BrokerName, Queue: q.id, Offset: off, PhyOffset: l.PhyOffset}
		handles = h.Append(handles)
		out = append(out, grpcsvc.Delivery{Record: rec, Topic: r.Topic, DeliveryCount: v.ReconsumeTimes() + 1})
		ends = append(ends, len(handles))
	}
	// The batch's handles are substrings of one string: one allocation
	// per queue read instead of one per message.
	all, from := string(handles), 0
	for i, end := range ends {
		out[first+i].Handle, from = all[from:end], end
	}
	switch res.Status {
	case store.Found, store.NoMatchedMessage, store.MessageWasRemoving, store.OffsetTooSmall:
		if !stuck {
			// Units scanned and not handed out are filtered or gone.
			tk.Skip(res.NextBeginOffset)
		}
	}
	if n := len(out) - first; n > 0 {
		b.stats.GroupGet([]byte(r.Topic), []byte(r.Group), n, 0)
	}
	return out, nil
}

// popInitialOffset is where a group with no committed offset starts:
// the rule of QUERY_CONSUMER_OFFSET (0 for a young queue), else the end.
func (b *Broker) popInitialOffset(topic string, q int32) int64 {
	if b.youngQueue(topic, q) {
		return max(b.store.MinOffset(topic, q), 0)
	}
	return b.store.MaxOffset(topic, q)
}

// popKey resolves a handle against the request's group and topic.
func (b *Broker) popKey(group, topic, handle string) (pop.Key, pop.Handle, *grpcsvc.PopError) {
	h, err := pop.ParseHandle(handle)
	if err != nil {
		return pop.Key{}, h, popErr(grpcsvc.PopBadHandle, "%v", err)
	}
	if h.Broker != b.cfg.BrokerName {
		return pop.Key{}, h, popErr(grpcsvc.PopBadHandle, "the receipt handle belongs to broker %s, not %s", h.Broker, b.cfg.BrokerName)
	}
	k := pop.Key{Group: group, Topic: topic, Queue: h.Queue}
	if h.Kind == pop.KindRetry {
		k.Topic = pop.RetryTopic(group, topic)
	}
	return k, h, nil
}

func expiredErr() *grpcsvc.PopError {
	return popErr(grpcsvc.PopBadHandle, "receipt handle is expired") // Java AbstractProcessor's text
}

// Ack finishes a delivery.
func (g grpcBackend) Ack(group, topic, handle string) *grpcsvc.PopError {
	k, h, perr := g.b.popKey(group, topic, handle)
	if perr != nil {
		return perr
	}
	if err := g.b.pop.state.Ack(k, h.Offset, h.PopTime, time.Now().UnixMilli()); err != nil {
		return expiredErr()
	}
	g.b.popUnblocked(k)
	return nil
}

// ChangeInvisible moves a delivery's visibility; 0 makes it visible now
// (the reviver redelivers it with the next attempt).
func (g grpcBackend) ChangeInvisible(group, topic, handle string, d time.Duration) (string, *grpcsvc.PopError) {
	k, h, perr := g.b.popKey(group, topic, handle)
	if perr != nil {
		return "", perr
	}
	now := time.Now().UnixMilli()
	l, err := g.b.pop.state.Change(k, h.Offset, h.PopTime, now, now+d.Milliseconds())
	if err != nil {
		return "", expiredErr()
	}
	if d == 0 {
		g.b.popUnblocked(k)
	}
	h.VisibleAt = l.VisibleAt
	return h.String(), nil
}

// ForwardToDLQ stores the delivered message in %DLQ%<group> and acks it
// (Java ProducerProcessor.forwardMessageToDeadLetterQueue).
func (g grpcBackend) ForwardToDLQ(group, topic, handle string) *grpcsvc.PopError {
	b := g.b
	k, h, perr := b.popKey(group, topic, handle)
	if perr != nil {
		return perr
	}
	now := time.Now().UnixMilli()
	l, err := b.pop.state.Get(k, h.Offset, h.PopTime, now)
	if err != nil {
		return expiredErr()
	}
	rec, rerr := b.store.ReadRecord(l.PhyOffset, nil)
	if rerr != nil {
		return popErr(grpcsvc.PopInternal, "read the message at %d: %v", l.PhyOffset, rerr)
	}
	if err := b.popDeadLetter(group, topic, wire.RecordView(rec), l.Reconsume); err != nil {
		return popErr(grpcsvc.PopInternal, "%v", err)
	}
	if err := b.pop.state.Ack(k, h.Offset, h.PopTime, now); err != nil {
		// Its lease ran out meanwhile: the reviver retries it too.
		b.log.Warn("[DLQ] forwarded a POP message whose lease expired meanwhile", "group", group, "topic", topic, "queueOffset", h.Offset)
	}
	b.popUnblocked(k)
	return nil
}

// popDeadLetter stores v in %DLQ%<group> with the properties the
// send-back path gives dead letters (handleSendBack) plus the 5.x
// DLQ_ORIGIN_TOPIC and DLQ_ORIGIN_MESSAGE_ID (Java
// proxy/grpc/v2/common/GrpcConverter reads them back). reconsume is the
// delivery's reconsume times: a FIFO message redelivered in place counts
// its attempts in its lease, not in the stored record.
func (b *Broker) popDeadLetter(group, topic string, v wire.RecordView, reconsume int32) error {
	dlq, ok := b.deadLetterTopic(&store.Message{Topic: meta.RetryPrefix + group})
	if !ok {
		return fmt.Errorf("group %s has no storable dead-letter topic", group)
	}
	props := append([]byte(nil), v.Properties()...)
	props = wire.RemoveProperty(props[:0:0], props, wire.PropDelay)
	if len(wire.PropertyValue(props, wire.PropRetryTopic)) == 0 {
		props = wire.AppendProperty(props, wire.PropRetryTopic, topic)
	}
	offsetID := wire.OffsetMsgID(v.StoreHost(), v.PhysicalOffset())
	if len(wire.PropertyValue(props, wire.PropOriginMessageID)) == 0 {
		props = wire.AppendProperty(props, wire.PropOriginMessageID, offsetID)
	}
	id := string(wire.PropertyValue(props, wire.PropUniqKey))
	if id == "" {
		id = offsetID
	}
	props = wire.RemoveProperty(nil, props, "DLQ_ORIGIN_TOPIC")
	props = wire.RemoveProperty(nil, props, "DLQ_ORIGIN_MESSAGE_ID")
	props = wire.AppendProperty(props, "DLQ_ORIGIN_TOPIC", topic)
	props = wire.AppendProperty(props, "DLQ_ORIGIN_MESSAGE_ID", id)
	m := store.Message{
		Topic: dlq, QueueID: 0, Flag: v.Flag(), SysFlag: v.SysFlag(),
		BornTimestamp: v.BornTimestamp(), BornHost: v.BornHost(), ReconsumeTimes: reconsume,
		Body: v.Body(), Properties: props,
	}
	if code, remark, ok := b.putStatusCode(b.store.Put(&m).Status); !ok {
		return fmt.Errorf("store the dead letter in %s: %s %s", dlq, wire.ResponseName(code), remark)
	}
	b.stats.SendBack([]byte(topic), []byte(group))
	b.log.Warn("[DLQ] POP message moved to dead-letter queue", "group", group, "topic", topic, "reconsumeTimes", reconsume, "msgId", id)
	return nil
}

// reviveLoop renews the auto-renewed leases of connected clients, copies
// expired leases to the pop retry topic and saves the POP state every 5 s
// (and Close saves it once more).
func (b *Broker) reviveLoop() {
	defer b.wg.Done()
	t := time.NewTicker(reviveInterval)
	defer t.Stop()
	lastSave, lastRenew := time.Now(), time.Now()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			if now.Sub(lastRenew) >= renewInterval && !b.isSlave() {
				lastRenew = now
				b.pop.state.Renew(now.UnixMilli(), renewExtend, b.grpcClientConnected)
			}
			if !b.isSlave() {
				b.revive(now.UnixMilli())
				for _, k := range b.pop.state.Unblocked(now.UnixMilli()) {
					b.pop.notify(k.Topic) // a FIFO batch expired: redeliver it now
				}
			}
			if now.Sub(lastSave) >= popSaveInterval {
				lastSave = now
				b.savePopState()
			}
		}
	}
}

// persistPopReset makes a reset of POP offsets durable before it is
// answered. Loading popState.json raises each queue's committed offset to
// the one saved there (the offset table may be older after a crash), so a
// reset backwards followed by a crash before the next periodic save came
// undone. The offset table goes first: a crash between the two writes
// leaves the state from before the reset, whole.
func (b *Broker) persistPopReset() error {
	if err := b.offsets.Persist(); err != nil {
		return fmt.Errorf("save the reset offsets: %w", err)
	}
	b.pop.save.Lock()
	defer b.pop.save.Unlock()
	return b.pop.state.Save(b.pop.path)
}

func (b *Broker) savePopState() {
	b.pop.save.Lock()
	defer b.pop.save.Unlock()
	if err := b.pop.state.Save(b.pop.path); err != nil {
		b.log.Error("[POP] saving the POP state failed", "err", err)
	}
}

// revive stores a retry copy of every expired delivery: same body, flag,
// properties and UNIQ_KEY, reconsume times + 1 (Java
// PopReviveService.reviveRetry). The copy carries the next attempt, so the
// attempt count survives restarts in the message itself.
func (b *Broker) revive(now int64) {
	for _, e := range b.pop.state.Expired(now) {
		if err := b.reviveOne(e, now); err != nil {
			b.log.Error("[POP_REVIVE] storing a retry copy failed; trying again in 1 s", "group", e.Key.Group, "topic", e.Key.Topic, "queueOffset", e.Lease.Offset, "err", err)
			b.pop.state.Restore(e, now+1000)
			continue
		}
		b.pop.state.Finish(e)
		b.pop.expiredOne(e.Key.Group)
	}
}

func (b *Broker) reviveOne(e pop.Expiry, now int64) error {
	rec, err := b.store.ReadRecord(e.Lease.PhyOffset, nil)
	if err != nil {
		return err
	}
	v := wire.RecordView(rec)
	topic := pop.OriginalTopic(e.Key.Group, e.Key.Topic)
	if topic == "" {
		topic = e.Key.Topic
	}
	retry := pop.RetryTopic(e.Key.Group, topic)
	props := append([]byte(nil), v.Properties()...)
	if len(wire.PropertyValue(props, wire.PropRetryTopic)) == 0 {
		props = wire.AppendProperty(props, wire.PropRetryTopic, topic)
	}
	if len(wire.PropertyValue(props, propFirstPopTime)) == 0 {
		props = wire.AppendProperty(props, propFirstPopTime, strconv.FormatInt(e.Lease.PopTime, 10))
	}
	m := store.Message{
		Topic: retry, QueueID: 0, Flag: v.Flag(), SysFlag: v.SysFlag(),
		BornTimestamp: v.BornTimestamp(), BornHost: v.BornHost(), ReconsumeTimes: v.ReconsumeTimes() + 1,
		Body: v.Body(), Properties: props,
	}
	if code, remark, ok := b.putStatusCode(b.store.Put(&m).Status); !ok {
		return fmt.Errorf("%s: %s %s", retry, wire.ResponseName(code), remark)
	}
	return nil
}
