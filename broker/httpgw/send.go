package httpgw

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/wire"
)

// Limits of a message, as for 5.x clients (Java ProxyConfig
// userPropertyMaxNum, maxUserPropertySize, maxMessageGroupSize).
const (
	maxUserProperties    = 128
	maxUserPropertyBytes = 16 << 10
	maxMessageGroupLen   = 64
	maxMessageIDLen      = 128
)

// Properties the proxy adds (Java SendMessageActivity.buildMessageProperty).
const (
	propShardingKey = "__SHARDINGKEY"
	propBornHost    = "__BORNHOST"
)

// sendRequest is POST /v1/topics/{topic}/messages.
type sendRequest struct {
	Body         *string           `json:"body"`
	BodyBase64   []byte            `json:"bodyBase64"`
	Tag          *string           `json:"tag"`
	Keys         []string          `json:"keys"`
	Properties   map[string]string `json:"properties"`
	MessageGroup *string           `json:"messageGroup"`
	DeliverAt    *int64            `json:"deliverAt"` // epoch ms
	DelayMs      *int64            `json:"delayMs"`
	MessageID    string            `json:"messageId"`
}

type sendResponse struct {
	MessageID string `json:"messageId"`
	QueueID   int32  `json:"queueId"`
	Offset    int64  `json:"offset"`
}

// send stores one message through the broker's send path: the same
// checks, queue choice and durability rule as a gRPC SendMessage.
func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	var req sendRequest
	if e := decode(w, r, s.sendCap, &req); e != nil {
		writeErr(w, e)
		return
	}
	if err := wire.CheckTopic(topic); err != nil {
		writeErr(w, apiErr(v2.Code_ILLEGAL_TOPIC, "%v", err))
		return
	}
	m, id, e := s.convert(topic, &req, r.RemoteAddr, time.Now())
	if e != nil {
		writeErr(w, e)
		return
	}
	res := s.be.Send(m)
	code, text := grpcsvc.SendCode(res)
	if code != v2.Code_OK {
		writeJSON(w, httpStatus(code), errorBody{Code: int(code), CodeName: code.String(), Message: text, MessageID: id})
		return
	}
	writeJSON(w, http.StatusCreated, sendResponse{MessageID: id, QueueID: res.QueueID, Offset: res.QueueOffset})
}

// convert checks a message as Java's proxy checks a 5.x one
// (proxy/grpc/v2/common/GrpcValidator.java, SendMessageActivity.java; the
// gRPC service's grpcsvc convert) and builds its stored form. A message
// group makes it FIFO, a delivery time DELAY; there are no transactions
// over HTTP.
func (s *Server) convert(topic string, req *sendRequest, remote string, now time.Time) (*grpcsvc.Message, string, *apiError) {
	var body []byte
	switch {
	case req.Body != nil && req.BodyBase64 != nil:
		return nil, "", apiErr(v2.Code_BAD_REQUEST, "give body or bodyBase64, not both")
	case req.Body != nil:
		body = []byte(*req.Body)
	default:
		body = req.BodyBase64
	}
	if len(body) == 0 {
		return nil, "", apiErr(v2.Code_MESSAGE_BODY_EMPTY, "the message body is empty: give body (text) or bodyBase64")
	}
	if len(body) > s.cfg.MaxMessageSize {
		return nil, "", apiErr(v2.Code_MESSAGE_BODY_TOO_LARGE, "the message body size %d is larger than maxMessageSize %d", len(body), s.cfg.MaxMessageSize)
	}
	id := req.MessageID
	if id == "" {
		id = s.ids.next(now)
	} else if len(id) > maxMessageIDLen || strings.TrimSpace(id) == "" || hasControl(id) || strings.Contains(id, " ") {
		return nil, "", apiErr(v2.Code_ILLEGAL_MESSAGE_ID, "message id %q is blank, longer than %d bytes or contains a space or control character", id, maxMessageIDLen)
	}

	var props []byte
	size := 0
	if req.Tag != nil {
		tag := *req.Tag
		if strings.TrimSpace(tag) == "" || strings.Contains(tag, "|") || hasControl(tag) {
			return nil, "", apiErr(v2.Code_ILLEGAL_MESSAGE_TAG, "tag %q is blank or contains '|' or a control character", tag)
		}
		props = wire.AppendProperty(props, wire.PropTags, tag)
		size += len(wire.PropTags) + len(tag)
	}
	if len(req.Keys) > 0 {
		for _, k := range req.Keys {
			if strings.TrimSpace(k) == "" || hasControl(k) {
				return nil, "", apiErr(v2.Code_ILLEGAL_MESSAGE_KEY, "key %q is blank or contains a control character", k)
			}
		}
		joined := strings.Join(req.Keys, " ") // MessageConst.KEY_SEPARATOR
		props = wire.AppendProperty(props, wire.PropKeys, joined)
		size += len(wire.PropKeys) + len(joined)
	}
	if len(req.Properties) > maxUserProperties {
		return nil, "", apiErr(v2.Code_MESSAGE_PROPERTIES_TOO_LARGE, "%d user properties, at most %d", len(req.Properties), maxUserProperties)
	}
	for k, v := range req.Properties {
		if k == "" || grpcsvc.ReservedProperty(k) || hasControl(k) {
			return nil, "", apiErr(v2.Code_ILLEGAL_MESSAGE_PROPERTY_KEY, "property name %q is empty, reserved or contains a control character", k)
		}
		if hasControl(v) {
			// \x01 and \x02 separate stored properties.
			return nil, "", apiErr(v2.Code_BAD_REQUEST, "the value of property %q contains a control character", k)
		}
		size += len(k) + len(v)
	}
	if size > maxUserPropertyBytes {
		return nil, "", apiErr(v2.Code_MESSAGE_PROPERTIES_TOO_LARGE, "properties take %d bytes, at most %d", size, maxUserPropertyBytes)
	}
	props = wire.AppendProperties(props, req.Properties)

	typ := wire.MessageTypeNormal
	var group string
	if req.MessageGroup != nil {
		group = *req.MessageGroup
		if strings.TrimSpace(group) == "" || len(group) > maxMessageGroupLen || hasControl(group) {
			return nil, "", apiErr(v2.Code_ILLEGAL_MESSAGE_GROUP, "message group %q is blank, longer than %d bytes or contains a control character", group, maxMessageGroupLen)
		}
		props = wire.AppendProperty(props, propShardingKey, group)
		typ = wire.MessageTypeFIFO
	}
	if req.DeliverAt != nil || req.DelayMs != nil {
		if typ == wire.MessageTypeFIFO {
			// The 5.x clients refuse the combination too (one type per message).
			return nil, "", apiErr(v2.Code_BAD_REQUEST, "a message is FIFO (messageGroup) or DELAY (deliverAt, delayMs), not both")
		}
		at, e := s.deliverAt(req, now)
		if e != nil {
			return nil, "", e
		}
		props = wire.AppendProperty(props, wire.PropTimerDeliverMs, strconv.FormatInt(at, 10))
		typ = wire.MessageTypeDelay
	}
	if e := s.checkType(topic, typ); e != nil {
		return nil, "", e
	}
	props = wire.AppendProperty(props, wire.PropUniqKey, id)
	// The proxy uses the topic as the producer group (SendMessageActivity).
	props = wire.AppendProperty(props, wire.PropProducerGroup, topic)
	host := remoteAddr(remote)
	if host != nil {
		props = wire.AppendProperty(props, propBornHost, host.IP.String())
	}
	return &grpcsvc.Message{
		Topic: topic, Body: body, Properties: props,
		BornTimestamp: now.UnixMilli(), BornHost: wire.HostBytes(host), MessageGroup: group,
	}, id, nil
}

// deliverAt is a DELAY message's delivery time in epoch ms; a time in the
// past delivers at once, as the timing wheel does.
func (s *Server) deliverAt(req *sendRequest, now time.Time) (int64, *apiError) {
	var at int64
	switch {
	case req.DeliverAt != nil && req.DelayMs != nil:
		return 0, apiErr(v2.Code_ILLEGAL_DELIVERY_TIME, "give deliverAt or delayMs, not both")
	case req.DeliverAt != nil:
		if at = *req.DeliverAt; at <= 0 {
			return 0, apiErr(v2.Code_ILLEGAL_DELIVERY_TIME, "deliverAt %d is not a time in epoch milliseconds", at)
		}
	default:
		d := *req.DelayMs
		if d < 0 || d > int64(100*365*24*time.Hour/time.Millisecond) {
			return 0, apiErr(v2.Code_ILLEGAL_DELIVERY_TIME, "delayMs %d is negative or absurd", d)
		}
		at = now.UnixMilli() + d
	}
	if s.cfg.MaxDelay > 0 && at-now.UnixMilli() > s.cfg.MaxDelay.Milliseconds() {
		return 0, apiErr(v2.Code_ILLEGAL_DELIVERY_TIME, "delivery time %s is more than the maximum delay %s away", time.UnixMilli(at).UTC().Format(time.RFC3339), s.cfg.MaxDelay)
	}
	return at, nil
}

// checkType refuses a message whose type the topic does not take, as the
// gRPC service does (Java DefaultTopicMessageTypeValidator; retry and DLQ
// topics are exempt). An unknown topic is left to Send (TOPIC_NOT_FOUND).
func (s *Server) checkType(topic, typ string) *apiError {
	if s.cfg.NoTypeCheck || strings.HasPrefix(topic, "%RETRY%") || strings.HasPrefix(topic, "%DLQ%") {
		return nil
	}
	tt := s.be.TopicMessageType(topic)
	if tt == "" || tt == wire.MessageTypeMixed || tt == typ {
		return nil
	}
	return apiErr(v2.Code_MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, "current message type %s does not match topic %s's message.type %s", typ, topic, tt)
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

func remoteAddr(s string) *net.TCPAddr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}

// idGen makes RocketMQ 5 "v1" message ids for messages sent without one:
// 17 bytes as 34 upper-case hex digits, 0x01, 6 bytes of host identity,
// the low 2 bytes of the pid, seconds since 2021-01-01 UTC (low 4 bytes),
// a 4-byte sequence (apache/rocketmq-clients golang/message_id_codec.go).
// The host part is random per process, as the clients do without a MAC
// address: unique enough across brokers and restarts.
type idGen struct {
	prefix string // "01" + host + pid
	seq    atomic.Uint32
}

var idEpoch = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)

func newIDGen() *idGen {
	var b [8]byte
	_, _ = rand.Read(b[:6]) // crypto/rand never fails on Linux
	binary.BigEndian.PutUint16(b[6:], uint16(os.Getpid()))
	return &idGen{prefix: "01" + strings.ToUpper(hex.EncodeToString(b[:]))}
}

func (g *idGen) next(now time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()-idEpoch.Unix()))
	binary.BigEndian.PutUint32(b[4:], g.seq.Add(1)-1)
	return g.prefix + strings.ToUpper(hex.EncodeToString(b[:]))
}
