package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

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
		// Message and consumer counts come with the queues' delivery
		// state, which the engine does not keep yet: 0 and 0.
		return json.Marshal(wire.AMQPQueueDeclareOk{Queue: q.Name, ID: q.ID})
	case wire.AMQPDeleteQueue:
		var r wire.AMQPQueueDelete
		if err := decode(&r); err != nil {
			return nil, err
		}
		var n uint32
		err := b.amqpVhost(r.Vhost, func(v *amqpengine.Vhost) (err error) {
			_, n, _, err = v.DeleteQueue(r.Queue, amqpengine.Owner(r.Owner), r.IfUnused, r.IfEmpty, nil)
			return err
		})
		if err != nil {
			return nil, err
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
	}
	return "AMQP_LIST"
}
