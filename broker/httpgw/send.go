package httpgw

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/wire"
)

// maxMessageIDLen bounds a message id given over HTTP.
const maxMessageIDLen = 128

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
	m.Account = accountOf(r)
	res := s.be.Send(m)
	code, text := grpcsvc.SendCode(res)
	if code != v2.Code_OK {
		writeJSON(w, httpStatus(code), errorBody{Code: int(code), CodeName: code.String(), Message: text, MessageID: id})
		return
	}
	writeJSON(w, http.StatusCreated, sendResponse{MessageID: id, QueueID: res.QueueID, Offset: res.QueueOffset})
}

// convert checks a message with the gRPC service's send rules
// (grpcsvc.Outgoing) and builds its stored form. A message group makes it
// FIFO, a delivery time DELAY; there are no transactions over HTTP.
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
	} else if len(id) > maxMessageIDLen || grpcsvc.CheckMessageID(id) != nil {
		return nil, "", apiErr(v2.Code_ILLEGAL_MESSAGE_ID, "message id %q is blank, longer than %d bytes or contains a space or control character", id, maxMessageIDLen)
	}

	o := grpcsvc.Outgoing{Topic: topic, Body: body, ID: id, BornTimestamp: now.UnixMilli(), BornHost: remoteAddr(remote)}
	if bad := o.User(req.Tag, req.Keys, req.Properties); bad != nil {
		return nil, "", refused(bad)
	}
	typ := wire.MessageTypeNormal
	if req.MessageGroup != nil {
		if bad := o.Group(*req.MessageGroup); bad != nil {
			return nil, "", refused(bad)
		}
		typ = wire.MessageTypeFIFO
	}
	if req.DeliverAt != nil || req.DelayMs != nil {
		if typ == wire.MessageTypeFIFO {
			// The 5.x clients refuse the combination too (one type per message).
			return nil, "", apiErr(v2.Code_BAD_REQUEST, "a message is FIFO (messageGroup) or DELAY (deliverAt, delayMs), not both")
		}
		at, e := deliverAt(req, now)
		if e != nil {
			return nil, "", e
		}
		if bad := o.DeliverAt(time.UnixMilli(at), now, s.cfg.MaxDelay); bad != nil {
			return nil, "", refused(bad)
		}
		typ = wire.MessageTypeDelay
	}
	if bad := grpcsvc.CheckTopicType(s.be, s.cfg.NoTypeCheck, topic, typ); bad != nil {
		return nil, "", refused(bad)
	}
	return o.Message(), id, nil
}

// deliverAt is a DELAY message's delivery time in epoch ms.
func deliverAt(req *sendRequest, now time.Time) (int64, *apiError) {
	switch {
	case req.DeliverAt != nil && req.DelayMs != nil:
		return 0, apiErr(v2.Code_ILLEGAL_DELIVERY_TIME, "give deliverAt or delayMs, not both")
	case req.DeliverAt != nil:
		at := *req.DeliverAt
		if at <= 0 {
			return 0, apiErr(v2.Code_ILLEGAL_DELIVERY_TIME, "deliverAt %d is not a time in epoch milliseconds", at)
		}
		return at, nil
	}
	d := *req.DelayMs
	if d < 0 || d > int64(100*365*24*time.Hour/time.Millisecond) {
		return 0, apiErr(v2.Code_ILLEGAL_DELIVERY_TIME, "delayMs %d is negative or absurd", d)
	}
	return now.UnixMilli() + d, nil
}

func refused(r *grpcsvc.Refusal) *apiError { return &apiError{code: r.Code, msg: r.Msg} }

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
