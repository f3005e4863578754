package grpcsvc

import (
	"context"
	"net"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc/peer"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/wire"
)

// reserved are the property names the broker itself uses; a user
// property may not take one (Java's MessageConst.STRING_HASH_SET,
// apache/rocketmq common/src/main/java/org/apache/rocketmq/common/message/MessageConst.java).
var reserved = map[string]bool{}

func init() {
	for _, k := range []string{
		wire.PropKeys, wire.PropTags, wire.PropWait, wire.PropDelay, wire.PropRetryTopic, wire.PropRealTopic,
		wire.PropRealQueueID, wire.PropTranMsg, wire.PropProducerGroup, wire.PropMinOffset, wire.PropMaxOffset,
		wire.PropBuyerID, wire.PropOriginMessageID, wire.PropTransferFlag, wire.PropCorrectionFlag, "MQ2_FLAG",
		wire.PropReconsumeTime, wire.PropMsgRegion, wire.PropTraceSwitch, wire.PropUniqKey, wire.PropMaxReconsumeTimes,
		wire.PropConsumeStartTime, wire.PropTranPreparedQueueOff, wire.PropTransactionCheckTimes, wire.PropCheckImmunityTime,
		wire.PropInstanceID, wire.PropCorrelationID, wire.PropReplyToClient, wire.PropTTL, wire.PropArriveTime,
		wire.PropPushReplyTime, wire.PropCluster, wire.PropMsgType, wire.PropInnerMultiDispatch, wire.PropInnerMultiQueueOffset,
		wire.PropShardingKey, wire.PropTransactionID, wire.PropTimerDeliverMs, wire.PropTimerDelaySec, wire.PropTimerDelayMs,
		wire.PropTimerOutMs, "TIMER_ENQUEUE_MS", "TIMER_DEQUEUE_MS", "TIMER_ROLL_TIMES", "TIMER_DEL_UNIQKEY",
		"__SHARDINGKEY", "__BORNHOST", "BORN_TIMESTAMP", "TRACE_CONTEXT", "DLQ_ORIGIN_TOPIC", "DLQ_ORIGIN_MESSAGE_ID",
		"INNER_NUM", "INNER_BASE", "1ST_POP_TIME", "POP_CK", "POP_CK_OFFSET", "__STARTDELIVERTIME",
	} {
		reserved[k] = true
	}
}

// Properties the proxy adds to 5.x messages (Java SendMessageActivity.buildMessageProperty).
const (
	propBornHost     = "__BORNHOST"
	propBornTime     = "BORN_TIMESTAMP"
	propTraceContext = "TRACE_CONTEXT"
)

// sysFlag bit of a compressed body (Java MessageSysFlag.COMPRESSED_FLAG).
const sysFlagCompressed = 0x1

// SendMessage stores each message on this broker; the server picks the
// queue (the client's queue choice is not in the request). All messages
// must share one topic (Java SendMessageActivity).
func (s *Server) SendMessage(ctx context.Context, req *v2.SendMessageRequest) (*v2.SendMessageResponse, error) {
	if _, bad := clientOf(ctx); bad != nil {
		return &v2.SendMessageResponse{Status: bad}, nil
	}
	msgs := req.GetMessages()
	if len(msgs) == 0 {
		return &v2.SendMessageResponse{Status: st(v2.Code_MESSAGE_CORRUPTED, "no message to send")}, nil
	}
	topic := withNamespace(ctx, msgs[0].GetTopic())
	for _, m := range msgs[1:] {
		if withNamespace(ctx, m.GetTopic()) != topic {
			return &v2.SendMessageResponse{Status: st(v2.Code_MESSAGE_CORRUPTED, "the messages of one send must share one topic")}, nil
		}
	}
	if err := wire.CheckTopic(topic); err != nil {
		return &v2.SendMessageResponse{Status: st(v2.Code_ILLEGAL_TOPIC, err.Error())}, nil
	}
	bornHost, account := peerHost(ctx), accountOf(ctx)
	entries := make([]*v2.SendResultEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = s.sendOne(topic, m, bornHost, account)
	}
	return &v2.SendMessageResponse{Status: overall(entries), Entries: entries}, nil
}

// overall is the response status: the entries' one code, or
// MULTIPLE_RESULTS when they differ (Java convertToSendMessageResponse).
func overall(entries []*v2.SendResultEntry) *v2.Status {
	first := entries[0].Status
	for _, e := range entries[1:] {
		if e.Status.Code != first.Code {
			return st(v2.Code_MULTIPLE_RESULTS, "the messages have different results: see the entries")
		}
	}
	return &v2.Status{Code: first.Code, Message: first.Message}
}

func (s *Server) sendOne(topic string, m *v2.Message, bornHost *net.TCPAddr, account *acl.Account) *v2.SendResultEntry {
	id := m.GetSystemProperties().GetMessageId()
	msg, bad := s.convert(topic, m, bornHost)
	if bad != nil {
		return &v2.SendResultEntry{Status: st(bad.Code, bad.Msg), MessageId: id}
	}
	msg.Account = account
	r := s.be.Send(msg)
	code, text := sendCode(r)
	e := &v2.SendResultEntry{Status: st(code, text), MessageId: id}
	if code == v2.Code_OK || code == v2.Code_MASTER_PERSISTENCE_TIMEOUT || code == v2.Code_SLAVE_PERSISTENCE_TIMEOUT || code == v2.Code_HA_NOT_AVAILABLE {
		e.Offset = r.QueueOffset // stored, if not as durable as asked
		if m.GetSystemProperties().GetMessageType() == v2.MessageType_TRANSACTION {
			e.TransactionId = transactionID(r.PhysOffset, r.QueueOffset)
		}
	}
	return e
}

// sendCode maps a remoting send answer to a 5.x code (Java
// ResponseBuilder and SendMessageActivity: flush and replica timeouts
// keep their meaning, everything unexpected is an internal error).
func sendCode(r SendResult) (v2.Code, string) {
	switch r.Code {
	case wire.Success:
		return v2.Code_OK, "OK"
	case wire.FlushDiskTimeout:
		return v2.Code_MASTER_PERSISTENCE_TIMEOUT, r.Remark
	case wire.FlushSlaveTimeout:
		return v2.Code_SLAVE_PERSISTENCE_TIMEOUT, r.Remark
	case wire.SlaveNotAvailable:
		return v2.Code_HA_NOT_AVAILABLE, r.Remark
	case wire.TopicNotExist:
		return v2.Code_TOPIC_NOT_FOUND, r.Remark
	case wire.NoPermission:
		return v2.Code_FORBIDDEN, r.Remark
	case wire.MessageIllegal:
		return v2.Code_BAD_REQUEST, r.Remark
	case wire.SystemBusy:
		return v2.Code_TOO_MANY_REQUESTS, r.Remark
	}
	return v2.Code_INTERNAL_SERVER_ERROR, r.Remark
}

// convert checks one message as Java's proxy does (GrpcValidator,
// SendMessageActivity) and builds the stored form (property mapping of
// SendMessageActivity.buildMessageProperty).
func (s *Server) convert(topic string, m *v2.Message, bornHost *net.TCPAddr) (*Message, *Refusal) {
	sp := m.GetSystemProperties()
	if sp == nil {
		return nil, refuse(v2.Code_BAD_REQUEST, "the message has no system properties")
	}
	if bad := CheckMessageID(sp.GetMessageId()); bad != nil {
		return nil, bad
	}
	if bad := s.checkType(topic, sp); bad != nil {
		return nil, bad
	}
	if len(m.Body) == 0 {
		return nil, refuse(v2.Code_MESSAGE_BODY_EMPTY, "the message body is empty")
	}
	if len(m.Body) > s.cfg.MaxMessageSize {
		return nil, refuse(v2.Code_MESSAGE_BODY_TOO_LARGE, "the message body size %d is larger than maxMessageSize %d", len(m.Body), s.cfg.MaxMessageSize)
	}
	o := Outgoing{Topic: topic, Body: m.Body, ID: sp.GetMessageId(), TraceContext: sp.GetTraceContext(),
		BornHostName: sp.GetBornHost(), BornHost: bornHost}
	switch sp.GetBodyEncoding() {
	case v2.Encoding_GZIP:
		o.SysFlag |= sysFlagCompressed
	case v2.Encoding_IDENTITY, v2.Encoding_ENCODING_UNSPECIFIED:
	default:
		return nil, refuse(v2.Code_BAD_REQUEST, "unknown body encoding %d", sp.GetBodyEncoding())
	}
	if sp.GetBornTimestamp() != nil {
		o.BornTimestamp = sp.GetBornTimestamp().AsTime().UnixMilli()
	}
	if bad := o.User(sp.Tag, sp.GetKeys(), m.UserProperties); bad != nil {
		return nil, bad
	}
	if bad := s.typedProperties(&o, sp); bad != nil {
		return nil, bad
	}
	return o.Message(), nil
}

func peerHost(ctx context.Context) *net.TCPAddr {
	if p, ok := peer.FromContext(ctx); ok {
		if ta, ok := p.Addr.(*net.TCPAddr); ok {
			return ta
		}
	}
	return nil
}
