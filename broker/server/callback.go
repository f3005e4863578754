package server

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// callbackTimeout is how long an admin waits for a consumer to answer a
// forwarded request (Java's callConsumer uses 10 s as well).
const callbackTimeout = 10 * time.Second

// handleConsumerCallback serves GET_CONSUMER_RUNNING_INFO (307) and
// CONSUME_MESSAGE_DIRECTLY (309): the request is re-sent to the named
// client's connection and its answer returned to the admin untouched —
// the Go client's running-info body is not strict JSON
// (apache/rocketmq-client-go v2.1.2 internal/model.go
// ConsumerRunningInfo.Encode), so parsing it here would
// only lose data (Java's AdminBrokerProcessor.callConsumer passes it on too).
func (b *Broker) handleConsumerCallback(c *remoting.Conn, req *wire.Command) {
	group, clientID := req.GetString("consumerGroup"), req.GetString("clientId")
	if group == "" {
		missing(c, req, "consumerGroup")
		return
	}
	fields := req.Fields()
	var body []byte
	if req.Code == wire.ConsumeMessageDirectly {
		id := req.GetString("msgId")
		_, _, off, err := wire.ParseOffsetMsgID(id)
		if err != nil {
			c.ReplyCode(req, wire.SystemError, fmt.Sprintf("msgId %q is not an offset message id: %v", id, err))
			return
		}
		if body, err = b.store.ReadRecord(off, nil); err != nil {
			c.ReplyCode(req, wire.SystemError, fmt.Sprintf("can not find message by the offset, %d: %v", off, err))
			return
		}
		body = forDirectConsume(body)
		fields["brokerName"] = b.cfg.BrokerName
	} else if clientID == "" {
		missing(c, req, "clientId")
		return
	}
	gi, _ := b.clients.Consumer(group)
	var target *remoting.Conn
	for _, ch := range gi.Channels {
		// 309 may leave the client out: any live consumer of the group can
		// consume the message.
		if ch.ClientID == clientID || (clientID == "" && req.Code == wire.ConsumeMessageDirectly) {
			target = ch.Conn
			fields["clientId"] = ch.ClientID
			break
		}
	}
	if target == nil {
		// Java answers SYSTEM_ERROR here too; admins match on the remark.
		c.ReplyCode(req, wire.SystemError, fmt.Sprintf("The Consumer <%s> <%s> not online", group, clientID))
		return
	}
	req = req.Clone() // the read loop reuses the request's buffers
	b.goSafe("consumer callback", c, req, func() {
		resp, err := target.Invoke(wire.NewRequest(req.Code, fields, body), callbackTimeout)
		switch {
		case errors.Is(err, remoting.ErrTimeout):
			c.ReplyCode(req, wire.ConsumeMsgTimeout, fmt.Sprintf("consumer <%s> <%s> did not answer in %s", group, clientID, callbackTimeout))
		case err != nil:
			c.ReplyCode(req, wire.SystemError, fmt.Sprintf("invoke consumer <%s> <%s>: %v", group, clientID, err))
		default:
			out := wire.ResponseTo(req, resp.Code, string(resp.Remark))
			out.Ext, out.Body = resp.Ext, resp.Body
			c.Reply(req, &out)
		}
	})
}

// forDirectConsume prepares a stored record for CONSUME_MESSAGE_DIRECTLY.
// A dead letter is sent under the topic it first failed in (RETRY_TOPIC):
// the Go client looks its listener up by the record's topic and has none
// for %DLQ%<group>.
func forDirectConsume(rec []byte) []byte {
	v := wire.RecordView(rec)
	orig := wire.PropertyValue(v.Properties(), wire.PropRetryTopic)
	if !strings.HasPrefix(string(v.Topic()), meta.DLQPrefix) || len(orig) == 0 {
		return rec
	}
	r := v.Record()
	r.Topic = string(orig)
	out := make([]byte, r.Size())
	r.EncodeTo(out)
	return out
}
