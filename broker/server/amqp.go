package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mqops/mqops/broker/amqpengine"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// handleAMQP serves the AMQP engine's metadata requests (wire/amqpmeta.go)
// from gateways and mqadmin. The engine's refusals go back as
// AMQP_EXCEPTION with RabbitMQ's reply code and text, for the gateway to
// close the channel or connection with.
func (b *Broker) handleAMQP(c *remoting.Conn, req *wire.Command) {
	if req.Code != wire.AMQPList && b.isSlave() {
		// The master is the single writer of the metadata.
		c.ReplyCode(req, wire.NoPermission, "the AMQP metadata is changed on the master only")
		return
	}
	switch req.Code {
	case wire.AMQPPublish, wire.AMQPFetch, wire.AMQPSettle:
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

func (b *Broker) answerAMQP(c *remoting.Conn, req *wire.Command) {
	body, err := b.serveAMQP(req)
	var ae *amqpengine.Error
	switch {
	case errors.As(err, &ae):
		resp := wire.ResponseTo(req, wire.AMQPException, ae.Text)
		resp.Ext = append(resp.Ext, wire.KV{Key: []byte(wire.AMQPReplyCodeField), Value: strconv.AppendUint(nil, uint64(ae.Code), 10)})
		c.Reply(req, &resp)
	case err != nil:
		c.ReplyCode(req, wire.SystemError, err.Error())
	default:
		b.replyBody(c, req, body)
	}
}

func (b *Broker) serveAMQP(req *wire.Command) ([]byte, error) {
	decode := func(v any) error {
		if err := json.Unmarshal(req.Body, v); err != nil {
			return fmt.Errorf("bad %s body: %w", amqpCodeName(req.Code), err)
		}
		return nil
	}
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
				Exclusive: r.Exclusive, AutoDelete: r.AutoDelete, Args: r.Arguments, Conn: amqpengine.Owner(r.Owner)})
			return err
		})
		if err != nil {
			return nil, err
		}
		// Consumers are the gateways' (0 until they report them).
		return json.Marshal(wire.AMQPQueueDeclareOk{Queue: q.Name, ID: q.ID, MessageCount: b.amqp.Ready(r.Vhost, q.ID)})
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
				func(id uint64) (uint32, uint32) { return b.amqp.Ready(r.Vhost, id), 0 })
			return err
		})
		if err != nil {
			return nil, err
		}
		if ok {
			if err := b.amqp.ForgetQueue(r.Vhost, qi.ID); err != nil {
				b.log.Error("[AMQP] dropping a deleted queue's light queue failed", "vhost", r.Vhost, "queue", r.Queue, "err", err)
			}
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
		_, err := b.amqp.ReleaseOwner(r.Gateway, r.Conn)
		return nil, err
	case wire.AMQPPublish:
		var r wire.AMQPPublishRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		res, err := b.amqp.Publish(r.Vhost, r.Exchange, r.Messages)
		if err != nil {
			return nil, err
		}
		return json.Marshal(wire.AMQPPublishResponse{Results: res})
	case wire.AMQPFetch:
		var r wire.AMQPFetchRequest
		if err := decode(&r); err != nil {
			return nil, err
		}
		if r.Peek {
			ready, err := b.amqp.WaitReady(r.Vhost, r.Queue, time.Duration(r.WaitMillis)*time.Millisecond)
			if err != nil {
				return nil, err
			}
			return json.Marshal(wire.AMQPFetchResponse{Deliveries: []wire.AMQPDelivery{}, Ready: ready})
		}
		ds, ready, err := b.amqp.Fetch(r.Vhost, r.Queue, r.Session, r.Max, time.Duration(r.WaitMillis)*time.Millisecond, r.NoAck)
		if err != nil {
			return nil, err
		}
		if ds == nil {
			ds = []wire.AMQPDelivery{}
		}
		return json.Marshal(wire.AMQPFetchResponse{Deliveries: ds, Ready: ready})
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
		return json.Marshal(l)
	}
	return nil, fmt.Errorf("request code %d is not an AMQP request", req.Code)
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
