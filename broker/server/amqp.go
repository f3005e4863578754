package server

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mqops/mqops/amqp/gateway"
	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/amqpengine"
	"github.com/mqops/mqops/broker/flow"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// handleAMQP serves the AMQP engine's metadata requests (wire/amqpmeta.go)
// from gateways and mqadmin. The engine's refusals go back as
// AMQP_EXCEPTION with RabbitMQ's reply code and text, for the gateway to
// close the channel or connection with.
//
// account is the ACL account the request was authenticated as (nil
// without ACL): publishes pay its produce quota.
func (b *Broker) handleAMQP(c *remoting.Conn, req *wire.Command, account *acl.Account) {
	if req.Code != wire.AMQPList && b.isSlave() {
		// The master is the single writer of the metadata.
		c.ReplyCode(req, wire.NoPermission, "the AMQP metadata is changed on the master only")
		return
	}
	switch req.Code {
	case wire.AMQPPublish:
		b.handleAMQPPublish(c, req, account)
		return
	case wire.AMQPFetch, wire.AMQPSettle:
		// They wait (flush, replication, a long poll): off the read loop,
		// one goroutine per request. The gateway keeps one request per
		// channel in flight, which keeps each channel's order. The read
		// loop reuses req's frame buffer (and the struct) for the next
		// request: the goroutine gets a copy, or it answers with another
		// request's opaque and body.
		req = req.Clone()
		b.goSafe(amqpCodeName(req.Code), c, req, func() { b.answerAMQP(c, req) })
		return
	}
	b.answerAMQP(c, req)
}

// handleAMQPPublish admits an AMQP_PUBLISH as a send is admitted
// (handleSend): refused while the store is busy or the in-flight budget is
// spent (SYSTEM_BUSY), while the store is not writable (disk full, 14),
// past the store topic's or the account's produce quota, and when it
// waited too long for an append slot. The gateway nacks a refused publish
// and blocks its publishers (connection.blocked) until a publish of no
// message is admitted again.
//
// Like a send, it is routed and appended here on the read loop and
// answered by the group commit that makes it durable (publishAnswer): no
// goroutine per request waits for the flush, and the answers one fsync
// covers leave in one write. Only a quota delay takes a goroutine.
func (b *Broker) handleAMQPPublish(c *remoting.Conn, req *wire.Command, account *acl.Account) {
	readAt := time.Now()
	// No per-connection cap: a gateway multiplexes all its channels'
	// publishes over one connection.
	t, tag, ok := b.flow.Admit(nil, len(req.Body), readAt)
	if !ok {
		b.refuseSend(c, req, tag, nil, 0, -1, "")
		return
	}
	// Released when answered; at once on any return before the wait
	// starts, a handler panic included.
	defer b.flow.Release(&t)
	if b.store.NotWritable() != nil {
		code, remark, _ := b.putStatusCode(store.ServiceNotAvailable)
		c.ReplyCode(req, code, remark)
		return
	}
	// Decoded in place: the bodies alias req, which the read loop reuses
	// after this returns, so they are stored before it does.
	var r wire.AMQPPublishRequest
	if err := b.decodeAMQP(req, &r); err != nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	if len(r.Messages) == 0 {
		// The gateway's probe: would a publish be admitted now?
		b.replyBody(c, req, []byte(`{"results":[]}`))
		return
	}
	topic := amqpengine.StoreTopic(r.Vhost)
	tc := b.topics.Lookup(topic)
	if tc == nil {
		tc = &wire.TopicConfig{TopicName: topic} // created by the first publish; no quota attribute yet
	}
	size := 0
	for i := range r.Messages {
		size += len(r.Messages[i].Body)
	}
	wait, qtag, remark := b.quotaWait(tc, account, len(r.Messages), size)
	if remark != "" {
		b.refuseSend(c, req, qtag, []byte(topic), 0, -1, remark)
		return
	}
	if wait > 0 {
		// Slept off the read loop: only this channel's publish waits.
		req = req.Clone()
		held := t
		t = flow.Ticket{}
		b.goSafe("AMQP_PUBLISH", c, req, func() {
			defer b.flow.Release(&held)
			time.Sleep(wait)
			// The wait for an append slot counts from here: the quota's
			// delay is not time spent queued for the store.
			b.servePublish(c, req, time.Now(), &held)
		})
		return
	}
	b.appendPublish(c, req, &r, topic, readAt, &t)
}

// appendPublish takes an append slot for an admitted publish, appends it
// and answers it once the group commit (and slave ack) covers it. The
// ticket moves to that answer; left zero, the caller's Release of it is a
// no-op.
func (b *Broker) appendPublish(c *remoting.Conn, req *wire.Command, r *wire.AMQPPublishRequest, topic string, readAt time.Time, t *flow.Ticket) {
	var w flow.Waiter
	waited, queue, etag, ok := b.flow.Enter(&w, readAt)
	if !ok {
		b.refuseSend(c, req, etag, []byte(topic), waited, queue, "")
		return
	}
	a, err := b.amqp.PublishAppend(r.Vhost, r.Exchange, r.Messages, b.flow.Leave)
	if err != nil {
		b.replyAMQPError(c, req, err)
		return
	}
	b.publishStats(topic, r.Messages, a.Results)
	resp := wire.ResponseTo(req, wire.Success, "")
	bin := req.Get(wire.AMQPBinaryField) != nil
	held := *t
	*t = flow.Ticket{}
	if a.DurableEnd < 0 {
		b.publishAnswer(c, &resp, bin, a, nil, false)
		b.flow.Release(&held)
		return
	}
	flush, repl, _ := b.ackWaits(a.DurableEnd)
	b.waitAcksAnswer(a.DurableEnd, flush, repl, func(flushOK bool, replCode int32, batched bool) {
		// The budget goes back before the answer leaves (ackWait.finish).
		b.flow.Release(&held)
		b.publishAnswer(c, &resp, bin, a, ackFailure(flushOK, replCode), batched)
	})
}

// publishLocal is an AMQP_PUBLISH from the embedded gateway, served on
// the calling goroutine: the admission, store check, topic quota, append
// slot and durability wait of handleAMQPPublish and appendPublish, without
// the frames and the four goroutine hand-offs of a request over a
// connection. Refusals come back as the gateway's Backend reports them
// from a broker's answer (*gateway.Refused, *amqp.Error). No ACL account
// is involved: the gateway is this process, and checks its AMQP users'
// permissions itself; so no account quota either.
func (b *Broker) publishLocal(r *wire.AMQPPublishRequest) ([]wire.AMQPPublishResult, error) {
	readAt := time.Now()
	size := 0
	for i := range r.Messages {
		size += len(r.Messages[i].Body)
	}
	topic := amqpengine.StoreTopic(r.Vhost)
	refused := func(tag flow.Tag, waited time.Duration, queue int64, remark string) error {
		remark = b.logRefusal(tag, "embedded AMQP gateway", topic, waited, queue, remark)
		return &gateway.Refused{Addr: b.addr, Code: wire.SystemBusy, Remark: remark}
	}
	t, tag, ok := b.flow.Admit(nil, size, readAt)
	if !ok {
		return nil, refused(tag, 0, -1, "")
	}
	defer b.flow.Release(&t)
	if b.store.NotWritable() != nil {
		code, remark, _ := b.putStatusCode(store.ServiceNotAvailable)
		return nil, &gateway.Refused{Addr: b.addr, Code: code, Remark: remark}
	}
	if len(r.Messages) == 0 {
		return nil, nil // the gateway's probe: admitted
	}
	tc := b.topics.Lookup(topic)
	if tc == nil {
		tc = &wire.TopicConfig{TopicName: topic}
	}
	wait, qtag, remark := b.quotaWait(tc, nil, len(r.Messages), size)
	if remark != "" {
		return nil, refused(qtag, 0, -1, remark)
	}
	if wait > 0 {
		time.Sleep(wait)
		readAt = time.Now()
	}
	var w flow.Waiter
	waited, queue, etag, ok := b.flow.Enter(&w, readAt)
	if !ok {
		return nil, refused(etag, waited, queue, "")
	}
	a, err := b.amqp.PublishAppend(r.Vhost, r.Exchange, r.Messages, b.flow.Leave)
	if err != nil {
		var ae *amqpengine.Error
		if errors.As(err, &ae) {
			return nil, &amqp.Error{Code: ae.Code, Text: ae.Text, Hard: amqp.IsHard(ae.Code)}
		}
		return nil, err
	}
	b.publishStats(topic, r.Messages, a.Results)
	if a.DurableEnd >= 0 {
		flush, repl, _ := b.ackWaits(a.DurableEnd)
		done := make(chan error, 1)
		b.waitAcksAnswer(a.DurableEnd, flush, repl, func(flushOK bool, replCode int32, _ bool) {
			done <- ackFailure(flushOK, replCode)
		})
		a.Durable(<-done)
	}
	a.Wait()
	return a.Results, nil
}

// ackFailure is a publish's durability error from its flush and
// replication waits, nil when both succeeded.
func ackFailure(flushOK bool, replCode int32) error {
	if !flushOK || replCode == wire.FlushSlaveTimeout {
		return errors.New("flush or slave acknowledgement failed or timed out")
	}
	return nil
}

// publishAnswer answers an appended publish once its flush and
// replication waits are over (durable: their failure), in binary when the
// request asked for it. Most answers leave from here, on the store
// goroutine that ran the group commit; one whose messages are not yet
// dispatched into their queues, or that trims drop-head queues, waits on
// a goroutine of its own.
func (b *Broker) publishAnswer(c *remoting.Conn, resp *wire.Command, bin bool, a *amqpengine.Appended, durable error, batched bool) {
	a.Durable(durable)
	if !a.Settled() {
		r := *resp
		b.goSafe("AMQP_PUBLISH answer", c, &r, func() {
			a.Wait()
			r.Body = appendPublishResults(nil, a.Results, bin)
			_ = c.Send(&r)
		})
		return
	}
	resp.Body = appendPublishResults(nil, a.Results, bin)
	frame := wire.AppendFrame(nil, resp)
	if !batched {
		_ = c.SendFrame(frame)
	} else if wake, err := c.QueueFrame(frame); err == nil && wake {
		b.ackWakes.add(c)
	}
}

// publishStats counts the stored messages of a publish as topic puts.
func (b *Broker) publishStats(topic string, msgs []wire.AMQPPublishMessage, res []wire.AMQPPublishResult) {
	stored, bytes := 0, 0
	for i := range res {
		if res[i].Status == wire.AMQPStored {
			stored++
			bytes += len(msgs[i].Body)
		}
	}
	if stored > 0 {
		b.stats.TopicPut([]byte(topic), stored, bytes)
	}
}

// appendPublishResults appends an AMQP_PUBLISH answer, binary
// (wire/amqpbin.go) or JSON. The usual JSON answer, every message stored,
// is written directly; any other goes through encoding/json.
func appendPublishResults(dst []byte, res []wire.AMQPPublishResult, bin bool) []byte {
	if bin {
		// An unknown status (not made by the engine) goes in JSON, which
		// the gateway takes as well.
		if b, err := wire.AppendAMQPPublishResults(dst, res); err == nil {
			return b
		}
	}
	for i := range res {
		if res[i] != (wire.AMQPPublishResult{Status: wire.AMQPStored}) {
			// Strings and numbers only: json.Marshal cannot fail.
			body, _ := json.Marshal(wire.AMQPPublishResponse{Results: res})
			return append(dst, body...)
		}
	}
	dst = append(dst, `{"results":[`...)
	for i := range res {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"status":"`+wire.AMQPStored+`"}`...)
	}
	return append(dst, "]}"...)
}

// servePublish is an admitted AMQP_PUBLISH after its quota delay, on a
// goroutine of its own (req is a clone: its bodies outlive the read
// loop's buffer).
func (b *Broker) servePublish(c *remoting.Conn, req *wire.Command, readAt time.Time, t *flow.Ticket) {
	var r wire.AMQPPublishRequest
	if err := b.decodeAMQP(req, &r); err != nil {
		c.ReplyCode(req, wire.SystemError, err.Error())
		return
	}
	b.appendPublish(c, req, &r, amqpengine.StoreTopic(r.Vhost), readAt, t)
}

// decodeAMQP reads an AMQP request's JSON body. With ACL on, the vhost in
// the body must be the signed vhost extField the gate authorized; only an
// admin account gets past the gate without one (mqadmin).
func (b *Broker) decodeAMQP(req *wire.Command, v any) error {
	if u, ok := v.(encoding.BinaryUnmarshaler); ok && wire.IsAMQPBinary(req.Body) {
		if err := u.UnmarshalBinary(req.Body); err != nil {
			return fmt.Errorf("bad %s body: %w", amqpCodeName(req.Code), err)
		}
	} else if err := json.Unmarshal(req.Body, v); err != nil {
		return fmt.Errorf("bad %s body: %w", amqpCodeName(req.Code), err)
	}
	if b.acl == nil {
		return nil
	}
	vr, ok := v.(interface{ AMQPVhost() string })
	signed := req.Get(wire.AMQPVhostField)
	if !ok || signed == nil {
		return nil
	}
	if vh := vr.AMQPVhost(); vh != "" && vh != string(signed) {
		return fmt.Errorf("%s for vhost '%s' signed for vhost '%s'", amqpCodeName(req.Code), vh, signed)
	}
	return nil
}

func (b *Broker) answerAMQP(c *remoting.Conn, req *wire.Command) {
	body, err := b.serveAMQP(req)
	if err != nil {
		b.replyAMQPError(c, req, err)
		return
	}
	b.replyBody(c, req, body)
}

// replyAMQPError answers an engine refusal AMQP_EXCEPTION with its reply
// code, anything else SYSTEM_ERROR.
func (b *Broker) replyAMQPError(c *remoting.Conn, req *wire.Command, err error) {
	var ae *amqpengine.Error
	switch {
	case errors.As(err, &ae):
		resp := wire.ResponseTo(req, wire.AMQPException, ae.Text)
		resp.Ext = append(resp.Ext, wire.KV{Key: []byte(wire.AMQPReplyCodeField), Value: strconv.AppendUint(nil, uint64(ae.Code), 10)})
		c.Reply(req, &resp)
	default:
		c.ReplyCode(req, wire.SystemError, err.Error())
	}
}

func (b *Broker) serveAMQP(req *wire.Command) ([]byte, error) {
	decode := func(v any) error { return b.decodeAMQP(req, v) }
	switch req.Code {
	case wire.AMQPDeclareExchange:
		var r wire.AMQPExchangeDeclare
		if err := decode(&r); err != nil {
			return nil, err
		}
		return nil, b.amqpVhost(r.Vhost, func(v *amqpengine.Vhost) error {
			return v.DeclareExchange(amqpengine.ExchangeDecl{Name: r.Exchange, Type: r.Type, Passive: r.Passive,
				Durable: r.Durable, AutoDelete: r.AutoDelete, Internal: r.Internal, Args: r.Arguments})
		})
	case wire.AMQPDeleteExchange:
		var r wire.AMQPExchangeDelete
		if err := decode(&r); err != nil {
			return nil, err
		}
		return nil, b.amqpVhost(r.Vhost, func(v *amqpengine.Vhost) error { return v.DeleteExchange(r.Exchange, r.IfUnused) })
	case wire.AMQPBind, wire.AMQPUnbind:
		var r wire.AMQPBinding
		if err := decode(&r); err != nil {
			return nil, err
		}
		d := amqpengine.BindingDecl{Source: r.Source, Destination: r.Destination, ToExchange: r.ToExchange, RoutingKey: r.RoutingKey, Args: r.Arguments}
		return nil, b.amqpVhost(r.Vhost, func(v *amqpengine.Vhost) error {
			if req.Code == wire.AMQPBind {
				return v.Bind(d, amqpengine.Owner(r.Owner))
			}
			return v.Unbind(d, amqpengine.Owner(r.Owner))
		})
	case wire.AMQPDeclareQueue:
		var r wire.AMQPQueueDeclare
		if err := decode(&r); err != nil {
			return nil, err
		}
		var q amqpengine.QueueInfo
		err := b.amqpVhost(r.Vhost, func(v *amqpengine.Vhost) (err error) {
			q, err = v.DeclareQueue(amqpengine.QueueDecl{Name: r.Queue, Passive: r.Passive, Durable: r.Durable,
				Exclusive: r.Exclusive, AutoDelete: r.AutoDelete, Args: r.Arguments, Conn: amqpengine.Owner(r.Owner), ReplyTo: r.ReplyTo})
			return err
		})
		if err != nil {
			return nil, err
		}
		if !r.Passive {
			b.amqp.Touch(r.Vhost, q.ID)
		}
		return json.Marshal(wire.AMQPQueueDeclareOk{Queue: q.Name, ID: q.ID, MessageCount: b.amqp.Ready(r.Vhost, q.ID),
			ConsumerCount: b.amqp.ConsumerCount(r.Vhost, q.ID)})
	case wire.AMQPDeleteQueue:
		var r wire.AMQPQueueDelete
		if err := decode(&r); err != nil {
			return nil, err
		}
		var n uint32
		var qi amqpengine.QueueInfo
		var ok bool
		err := b.amqpVhost(r.Vhost, func(v *amqpengine.Vhost) (err error) {
			qi, n, ok, err = v.DeleteQueue(r.Queue, amqpengine.Owner(r.Owner), r.IfUnused, r.IfEmpty,
				func(id uint64) (uint32, uint32) { return b.amqp.Ready(r.Vhost, id), b.amqp.ConsumerCount(r.Vhost, id) })
			return err
		})
		if err != nil {
			return nil, err
		}
		if ok {
			b.amqp.ForgetConsumers(r.Vhost, qi.ID)
			b.forgetAMQPQueues(r.Vhost, []amqpengine.QueueInfo{qi})
		}
		return json.Marshal(wire.AMQPQueueDeleteOk{MessageCount: n})
	case wire.AMQPReleaseOwner:
		// A gateway connection closed: its exclusive queues go.
		var r wire.AMQPOwner
		if err := decode(&r); err != nil {
			return nil, err
		}
		if r.Gateway == "" {
			return nil, errors.New("AMQP_RELEASE_OWNER without a gateway id")
		}
		o := amqpengine.Owner{Gateway: r.Gateway, Conn: r.Conn}
		_, err := b.amqp.CancelOwners(func(c amqpengine.Owner) bool { return c == o })
		_, rerr := b.amqp.ReleaseOwner(r.Gateway, r.Conn)
		return nil, errors.Join(err, rerr)
	case wire.AMQPLease:
		var r wire.AMQPLeaseRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		if r.Gateway == "" {
			return nil, errors.New("AMQP_LEASE without a gateway id")
		}
		b.amqp.Renew(r.Gateway, time.Now())
		return json.Marshal(wire.AMQPLeaseOk{TTLMillis: amqpengine.LeaseTTL.Milliseconds(), Epoch: b.amqp.Epoch()})
	case wire.AMQPConsume:
		var r wire.AMQPConsumer
		if err := decode(&r); err != nil {
			return nil, err
		}
		n, err := b.amqp.Consume(r.Vhost, r.Queue, r.Session, r.Tag, amqpengine.Owner(r.Owner), r.Exclusive)
		if err != nil {
			return nil, err
		}
		return json.Marshal(wire.AMQPConsumeOk{ConsumerCount: n, Epoch: b.amqp.Epoch()})
	case wire.AMQPCancel:
		var r wire.AMQPConsumer
		if err := decode(&r); err != nil {
			return nil, err
		}
		gone, err := b.amqp.Cancel(r.Vhost, r.Session, r.Tag)
		if err != nil {
			return nil, err
		}
		var ok wire.AMQPCancelOk
		for _, q := range gone {
			ok.Deleted = append(ok.Deleted, q.Name)
		}
		return json.Marshal(ok)
	case wire.AMQPFetch:
		var r wire.AMQPFetchRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		if r.Peek {
			ready, err := b.amqp.WaitReady(r.Vhost, r.Queue, r.Session, time.Duration(r.WaitMillis)*time.Millisecond)
			if err != nil {
				return nil, err
			}
			return json.Marshal(wire.AMQPFetchResponse{Deliveries: []wire.AMQPDelivery{}, Ready: ready})
		}
		ds, ready, timeout, err := b.amqpFetch(&r)
		if err != nil {
			return nil, err
		}
		if ds == nil {
			ds = []wire.AMQPDelivery{}
		}
		resp := wire.AMQPFetchResponse{Deliveries: ds, Ready: ready, TimeoutMillis: timeout.Milliseconds()}
		if req.Get(wire.AMQPBinaryField) != nil {
			return resp.MarshalBinary() // wire/amqpbin.go: bodies without base64
		}
		return json.Marshal(resp)
	case wire.AMQPSettle:
		var r wire.AMQPSettleRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		n, err := b.amqp.Settle(r.Vhost, r.Items)
		if err != nil {
			return nil, err
		}
		return json.Marshal(wire.AMQPSettleResponse{Settled: n})
	case wire.AMQPRelease:
		var r wire.AMQPReleaseRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		n, err := b.amqp.Release(r.Vhost, r.Session, r.Handles)
		if err != nil {
			return nil, err
		}
		return json.Marshal(wire.AMQPReleaseResponse{Released: n})
	case wire.AMQPPurge:
		var r wire.AMQPPurgeRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		n, err := b.amqp.PurgeQueue(r.Vhost, r.Queue, amqpengine.Owner(r.Owner))
		if err != nil {
			return nil, err
		}
		return json.Marshal(wire.AMQPPurgeResponse{MessageCount: n})
	case wire.AMQPList:
		var r wire.AMQPListRequest
		if len(req.Body) > 0 {
			if err := decode(&r); err != nil {
				return nil, err
			}
		}
		if r.Vhost == "" {
			return json.Marshal(wire.AMQPListing{Vhosts: b.amqp.Vhosts()})
		}
		var l wire.AMQPListing
		err := b.amqpVhost(r.Vhost, func(v *amqpengine.Vhost) error {
			l = amqpListing(v.List())
			return nil
		})
		if err != nil {
			return nil, err
		}
		now := time.Now()
		for i := range l.Queues {
			b.amqpQueueState(r.Vhost, &l.Queues[i], now)
		}
		return json.Marshal(l)
	case wire.AMQPAddVhost, wire.AMQPDeleteVhost:
		var r wire.AMQPVhostRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		if req.Code == wire.AMQPAddVhost {
			return nil, b.amqpAddVhost(r.Vhost)
		}
		return nil, b.amqpDeleteVhost(r.Vhost)
	case wire.AMQPAuthenticate:
		var r wire.AMQPLogin
		if err := decode(&r); err != nil {
			return nil, err
		}
		a, err := b.amqp.Authenticate(r.User, r.Password)
		if err != nil {
			return nil, err
		}
		return json.Marshal(a)
	case wire.AMQPListUsers:
		var r wire.AMQPUserListRequest
		if len(req.Body) > 0 {
			if err := decode(&r); err != nil {
				return nil, err
			}
		}
		return json.Marshal(wire.AMQPUserList{Users: b.amqp.ListUsers(r.PasswordHashes)})
	case wire.AMQPPutUser:
		var r wire.AMQPUserPut
		if err := decode(&r); err != nil {
			return nil, err
		}
		return nil, b.amqp.PutUser(r)
	case wire.AMQPDeleteUser:
		var r wire.AMQPUserRef
		if err := decode(&r); err != nil {
			return nil, err
		}
		return nil, b.amqp.DeleteUser(r.User)
	case wire.AMQPSetPermissions, wire.AMQPClearPermission:
		var r wire.AMQPPermissionSet
		if err := decode(&r); err != nil {
			return nil, err
		}
		return nil, b.amqp.SetPermissions(r, req.Code == wire.AMQPClearPermission)
	}
	return nil, fmt.Errorf("request code %d is not an AMQP request", req.Code)
}

// expireAMQPLeases ends the AMQP gateways that stopped renewing their
// lease (killed, cut off): their consumers, exclusive queues and
// in-flight deliveries go as if their connections had closed.
func (b *Broker) expireAMQPLeases() {
	gws, n, deleted, err := b.amqp.ExpireLeases(time.Now())
	for _, gw := range gws {
		b.log.Warn("[AMQP] gateway lease expired: its consumers, exclusive queues and in-flight deliveries released", "gateway", gw)
	}
	if len(gws) > 0 {
		b.log.Info("[AMQP] released after lease expiry", "deliveries", n, "queuesDeleted", len(deleted))
	}
	if err != nil {
		b.log.Error("[AMQP] releasing an expired gateway failed", "err", err)
	}
}

// forgetAMQPQueues drops the light queues of deleted queues of vhost.
func (b *Broker) forgetAMQPQueues(vhost string, qs []amqpengine.QueueInfo) {
	for _, q := range qs {
		if err := b.amqp.ForgetQueue(vhost, q.ID); err != nil {
			b.log.Error("[AMQP] dropping a deleted queue's light queue failed", "vhost", vhost, "queue", q.Name, "err", err)
		}
	}
}

func (b *Broker) amqpVhost(name string, fn func(*amqpengine.Vhost) error) error {
	v, err := b.amqp.Vhost(name)
	if err != nil {
		return err
	}
	return fn(v)
}

func amqpListing(l amqpengine.Listing) wire.AMQPListing {
	out := wire.AMQPListing{Vhost: l.Vhost, Version: l.Version}
	for _, x := range l.Exchanges {
		out.Exchanges = append(out.Exchanges, wire.AMQPExchangeInfo{Name: x.Name, Type: x.Type, Durable: x.Durable,
			AutoDelete: x.AutoDelete, Internal: x.Internal, Arguments: x.Args})
	}
	for _, q := range l.Queues {
		qi := wire.AMQPQueueInfo{Name: q.Name, ID: q.ID, Durable: q.Durable, AutoDelete: q.AutoDelete,
			Arguments: q.Args, CreatedMillis: q.Created.UnixMilli()}
		if q.Exclusive {
			o := wire.AMQPOwner(q.Owner)
			qi.Owner = &o
		}
		out.Queues = append(out.Queues, qi)
	}
	for _, bi := range l.Bindings {
		out.Bindings = append(out.Bindings, wire.AMQPBindingInfo{Source: bi.Source, Destination: bi.Destination,
			ToExchange: bi.ToExchange, RoutingKey: bi.RoutingKey, Arguments: bi.Args})
	}
	return out
}

func amqpCodeName(code int32) string {
	switch code {
	case wire.AMQPDeclareExchange:
		return "AMQP_DECLARE_EXCHANGE"
	case wire.AMQPDeleteExchange:
		return "AMQP_DELETE_EXCHANGE"
	case wire.AMQPBind:
		return "AMQP_BIND"
	case wire.AMQPUnbind:
		return "AMQP_UNBIND"
	case wire.AMQPDeclareQueue:
		return "AMQP_DECLARE_QUEUE"
	case wire.AMQPDeleteQueue:
		return "AMQP_DELETE_QUEUE"
	case wire.AMQPReleaseOwner:
		return "AMQP_RELEASE_OWNER"
	case wire.AMQPLease:
		return "AMQP_LEASE"
	case wire.AMQPConsume:
		return "AMQP_CONSUME"
	case wire.AMQPCancel:
		return "AMQP_CANCEL"
	case wire.AMQPPublish:
		return "AMQP_PUBLISH"
	case wire.AMQPFetch:
		return "AMQP_FETCH"
	case wire.AMQPSettle:
		return "AMQP_SETTLE"
	case wire.AMQPRelease:
		return "AMQP_RELEASE"
	case wire.AMQPPurge:
		return "AMQP_PURGE"
	case wire.AMQPAddVhost:
		return "AMQP_ADD_VHOST"
	case wire.AMQPDeleteVhost:
		return "AMQP_DELETE_VHOST"
	case wire.AMQPAuthenticate:
		return "AMQP_AUTHENTICATE"
	case wire.AMQPListUsers:
		return "AMQP_LIST_USERS"
	case wire.AMQPPutUser:
		return "AMQP_PUT_USER"
	case wire.AMQPDeleteUser:
		return "AMQP_DELETE_USER"
	case wire.AMQPSetPermissions:
		return "AMQP_SET_PERMISSIONS"
	case wire.AMQPClearPermission:
		return "AMQP_CLEAR_PERMISSIONS"
	}
	return "AMQP_LIST"
}

// amqpStoreTopic creates a vhost's store topic on first publish: one
// queue, read-write, registered with the name servers so that gateways
// find the vhost's broker through its route.
func (b *Broker) amqpStoreTopic(topic string) error {
	if b.topics.Lookup(topic) != nil {
		return nil
	}
	_, created, err := b.topics.CreateIfAbsent(wire.TopicConfig{TopicName: topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: wire.PermRead | wire.PermWrite}, true)
	if created {
		b.kickRegister()
	}
	return err
}

// amqpDurable waits until the log up to end is flushed (SYNC_FLUSH) and
// acknowledged by a slave (SYNC_MASTER, controller ack rule), as an
// acknowledged send is (ackWaits). A SYNC_MASTER without a fit slave
// stores anyway, as a send then does.
func (b *Broker) amqpDurable(end int64) error {
	flush, repl, _ := b.ackWaits(end)
	done := make(chan bool, 2)
	n := 0
	if flush {
		n++
		b.store.WaitFlushed(end, func(ok bool) { done <- ok })
	}
	if repl {
		n++
		ack := func(ok bool) { done <- ok }
		if b.ctl != nil {
			b.ctl.ha.WaitAck(end, ack)
		} else {
			b.haServer.WaitAck(end, ack)
		}
	}
	failed := false
	for ; n > 0; n-- {
		if !<-done {
			failed = true
		}
	}
	if failed {
		return errors.New("flush or slave acknowledgement failed or timed out")
	}
	return nil
}
