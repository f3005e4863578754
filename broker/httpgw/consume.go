package httpgw

import (
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/mqops/mqops/broker/grpcsvc"
	"github.com/mqops/mqops/wire"
)

// Defaults of a receive that leaves them out.
const (
	defaultBatch     = 16
	defaultInvisible = 60 * time.Second // Java's defaultInvisibleTimeMills
	// maxAckHandles bounds one ack request.
	maxAckHandles = 1024
)

// receiveRequest is POST /v1/groups/{group}/topics/{topic}/receive.
type receiveRequest struct {
	Max         *int   `json:"max"`
	InvisibleMs *int64 `json:"invisibleMs"`
	WaitMs      int64  `json:"waitMs"`
	Filter      string `json:"filter"`     // "tagA||tagB", "*", or an SQL92 expression
	FilterType  string `json:"filterType"` // TAG (default) or SQL92
	Base64      bool   `json:"base64"`     // every body as bodyBase64
}

// message is one delivered message (Java GrpcConverter's fields, in JSON).
type message struct {
	MessageID       string            `json:"messageId"`
	Topic           string            `json:"topic"`
	Body            *string           `json:"body,omitempty"`       // the body when it is UTF-8
	BodyBase64      []byte            `json:"bodyBase64,omitempty"` // otherwise, or when asked
	BodyEncoding    string            `json:"bodyEncoding,omitempty"`
	Tag             string            `json:"tag,omitempty"`
	Keys            []string          `json:"keys,omitempty"`
	Properties      map[string]string `json:"properties,omitempty"`
	MessageGroup    string            `json:"messageGroup,omitempty"`
	ReceiptHandle   string            `json:"receiptHandle"`
	DeliveryAttempt int32             `json:"deliveryAttempt"`
	BornTimestamp   int64             `json:"bornTimestamp"`
	StoreTimestamp  int64             `json:"storeTimestamp"`
	QueueID         int32             `json:"queueId"`
	Offset          int64             `json:"offset"`
}

type receiveResponse struct {
	Messages []message `json:"messages"`
}

// names checks the path's group and topic.
func names(r *http.Request) (group, topic string, e *apiError) {
	group, topic = r.PathValue("group"), r.PathValue("topic")
	if err := wire.CheckGroup(group); err != nil {
		return "", "", apiErr(v2.Code_ILLEGAL_CONSUMER_GROUP, "%v", err)
	}
	if err := wire.CheckTopic(topic); err != nil {
		return "", "", apiErr(v2.Code_ILLEGAL_TOPIC, "%v", err)
	}
	return group, topic, nil
}

// groupRequest decodes a group endpoint's JSON body into v and checks the
// path's group and topic; on a refusal it has answered and ok is false.
func groupRequest(w http.ResponseWriter, r *http.Request, v any) (group, topic string, ok bool) {
	if e := decode(w, r, smallBodyLimit, v); e != nil {
		writeErr(w, e)
		return "", "", false
	}
	group, topic, e := names(r)
	if e != nil {
		writeErr(w, e)
		return "", "", false
	}
	return group, topic, true
}

// receive leases up to max messages for invisibleMs, waiting up to waitMs
// (at most 20 s, and no longer than the client stays) for one to arrive.
// It is POST: it changes what others see, and a retried or prefetched GET
// would hide messages.
func (s *Server) receive(w http.ResponseWriter, r *http.Request) {
	var req receiveRequest
	group, topic, ok := groupRequest(w, r, &req)
	if !ok {
		return
	}
	pr, e := s.popRequest(group, topic, &req)
	if e != nil {
		writeErr(w, e)
		return
	}
	pr.ClientID = "http@" + r.RemoteAddr
	ds, perr := s.be.Receive(r.Context(), pr)
	if perr != nil {
		writeErr(w, popErr(perr))
		return
	}
	out := receiveResponse{Messages: make([]message, len(ds))}
	for i, d := range ds {
		out.Messages[i] = toJSON(d, req.Base64)
	}
	writeJSON(w, http.StatusOK, out)
}

// popRequest validates a receive with the gRPC service's limits.
func (s *Server) popRequest(group, topic string, req *receiveRequest) (*grpcsvc.PopRequest, *apiError) {
	pr := &grpcsvc.PopRequest{Group: group, Topic: topic, Batch: defaultBatch, Invisible: defaultInvisible, FilterType: "TAG", Filter: "*"}
	if req.Max != nil {
		if pr.Batch = *req.Max; pr.Batch < 1 || pr.Batch > grpcsvc.MaxReceiveBatch {
			return nil, apiErr(v2.Code_BAD_REQUEST, "max %d is outside 1…%d", pr.Batch, grpcsvc.MaxReceiveBatch)
		}
	}
	if req.InvisibleMs != nil {
		pr.Invisible = time.Duration(*req.InvisibleMs) * time.Millisecond
		if *req.InvisibleMs < s.cfg.MinInvisible.Milliseconds() || *req.InvisibleMs > grpcsvc.MaxInvisible.Milliseconds() {
			return nil, apiErr(v2.Code_ILLEGAL_INVISIBLE_TIME, "invisibleMs %d is outside %d…%d", *req.InvisibleMs, s.cfg.MinInvisible.Milliseconds(), grpcsvc.MaxInvisible.Milliseconds())
		}
	}
	if req.WaitMs < 0 || req.WaitMs > grpcsvc.MaxLongPolling.Milliseconds() {
		return nil, apiErr(v2.Code_ILLEGAL_POLLING_TIME, "waitMs %d is outside 0…%d", req.WaitMs, grpcsvc.MaxLongPolling.Milliseconds())
	}
	pr.Wait = time.Duration(req.WaitMs) * time.Millisecond
	switch strings.ToUpper(req.FilterType) {
	case "", "TAG":
		if f := strings.TrimSpace(req.Filter); f != "" {
			pr.Filter = f
		}
	case "SQL92", "SQL":
		if strings.TrimSpace(req.Filter) == "" {
			return nil, apiErr(v2.Code_ILLEGAL_FILTER_EXPRESSION, "an SQL92 filter needs an expression")
		}
		pr.FilterType, pr.Filter = "SQL92", req.Filter
	default:
		return nil, apiErr(v2.Code_ILLEGAL_FILTER_EXPRESSION, "filterType %q: want TAG or SQL92", req.FilterType)
	}
	return pr, nil
}

// toJSON converts a delivery as the gRPC service does (Java
// GrpcConverter.buildSystemProperties): the original topic, the stored
// queue and offset of the delivered copy, user properties apart.
func toJSON(d grpcsvc.Delivery, base64 bool) message {
	v := wire.RecordView(d.Record)
	props := wire.ParseProperties(v.Properties())
	m := message{
		MessageID: props[wire.PropUniqKey], Topic: d.Topic,
		Tag: props[wire.PropTags], MessageGroup: props[grpcsvc.PropMessageGroup],
		ReceiptHandle: d.Handle, DeliveryAttempt: d.DeliveryCount,
		BornTimestamp: v.BornTimestamp(), StoreTimestamp: v.StoreTimestamp(),
		QueueID: v.QueueID(), Offset: v.QueueOffset(),
	}
	if m.MessageID == "" {
		m.MessageID = wire.OffsetMsgID(v.StoreHost(), v.PhysicalOffset())
	}
	if k := props[wire.PropKeys]; k != "" {
		m.Keys = strings.Fields(k)
	}
	body := v.Body()
	if v.SysFlag()&sysFlagCompressed != 0 {
		m.BodyEncoding = "GZIP" // as stored; the 5.x clients' body_encoding
	}
	if !base64 && m.BodyEncoding == "" && isText(body) {
		b := string(body)
		m.Body = &b
	} else {
		m.BodyBase64 = append([]byte{}, body...)
	}
	for k, val := range props {
		if !grpcsvc.ReservedProperty(k) {
			if m.Properties == nil {
				m.Properties = map[string]string{}
			}
			m.Properties[k] = val
		}
	}
	return m
}

// isText reports whether a body reads as text: UTF-8 without control
// characters other than tab and line breaks. Anything else, even valid
// UTF-8 such as "\x00\x01", is binary and travels as bodyBase64.
func isText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 || unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
		b = b[n:]
	}
	return true
}

// sysFlag bit of a compressed body (Java MessageSysFlag.COMPRESSED_FLAG).
const sysFlagCompressed = 0x1

func popErr(e *grpcsvc.PopError) *apiError {
	return &apiError{code: e.RocketMQCode(), msg: e.Msg}
}

// ackRequest is POST /v1/groups/{group}/topics/{topic}/ack.
type ackRequest struct {
	ReceiptHandles []string `json:"receiptHandles"`
}

type ackResult struct {
	ReceiptHandle string `json:"receiptHandle"`
	Code          int    `json:"code"`
	CodeName      string `json:"codeName"`
	Message       string `json:"message"`
}

// ackResponse carries one result per handle; code and message are the
// results' one code, or MULTIPLE_RESULTS (HTTP 207) when they differ, as
// the gRPC AckMessage's top-level status.
type ackResponse struct {
	Code     int         `json:"code"`
	CodeName string      `json:"codeName"`
	Message  string      `json:"message"`
	Results  []ackResult `json:"results"`
}

// ack finishes deliveries. The HTTP status is the results' one code's (a
// single expired handle is 400 INVALID_RECEIPT_HANDLE), 207 when they differ.
func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	var req ackRequest
	group, topic, ok := groupRequest(w, r, &req)
	if !ok {
		return
	}
	if n := len(req.ReceiptHandles); n == 0 || n > maxAckHandles {
		writeErr(w, apiErr(v2.Code_BAD_REQUEST, "receiptHandles has %d entries: want 1…%d", n, maxAckHandles))
		return
	}
	out := ackResponse{Results: make([]ackResult, len(req.ReceiptHandles))}
	for i, h := range req.ReceiptHandles {
		res := ackResult{ReceiptHandle: h, Code: int(v2.Code_OK), CodeName: v2.Code_OK.String(), Message: "OK"}
		if perr := s.be.Ack(group, topic, h); perr != nil {
			c := perr.RocketMQCode()
			res.Code, res.CodeName, res.Message = int(c), c.String(), perr.Msg
		}
		out.Results[i] = res
	}
	first := out.Results[0]
	out.Code, out.CodeName, out.Message = first.Code, first.CodeName, first.Message
	status := httpStatus(v2.Code(first.Code))
	for _, res := range out.Results[1:] {
		if res.Code != first.Code {
			out.Code, out.CodeName, out.Message = int(v2.Code_MULTIPLE_RESULTS), v2.Code_MULTIPLE_RESULTS.String(), "the handles have different results: see results"
			status = http.StatusMultiStatus
			break
		}
	}
	writeJSON(w, status, out)
}

// invisibleRequest is POST /v1/groups/{group}/topics/{topic}/invisible.
type invisibleRequest struct {
	ReceiptHandle string `json:"receiptHandle"`
	InvisibleMs   *int64 `json:"invisibleMs"` // 0: visible again now
}

type invisibleResponse struct {
	ReceiptHandle string `json:"receiptHandle"`
}

// invisible moves a delivery's lease; the answer's handle and the old one
// both name the delivery.
func (s *Server) invisible(w http.ResponseWriter, r *http.Request) {
	var req invisibleRequest
	group, topic, ok := groupRequest(w, r, &req)
	if !ok {
		return
	}
	if req.InvisibleMs == nil || *req.InvisibleMs < 0 || *req.InvisibleMs > grpcsvc.MaxInvisible.Milliseconds() {
		writeErr(w, apiErr(v2.Code_ILLEGAL_INVISIBLE_TIME, "invisibleMs is required, 0…%d", grpcsvc.MaxInvisible.Milliseconds()))
		return
	}
	h, perr := s.be.ChangeInvisible(group, topic, req.ReceiptHandle, time.Duration(*req.InvisibleMs)*time.Millisecond)
	if perr != nil {
		writeErr(w, popErr(perr))
		return
	}
	writeJSON(w, http.StatusOK, invisibleResponse{ReceiptHandle: h})
}
