package grpcsvc

import (
	"context"
	"strings"
	"sync"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mqops/mqops/wire"
)

// PopBackend is the broker's POP engine (receive with an invisibility
// lease, ack by receipt handle), served to SimpleConsumer and
// PushConsumer clients. A Backend without it leaves consumers
// NOT_IMPLEMENTED.
type PopBackend interface {
	// Receive hands out up to r.Batch visible messages of the topic on
	// this broker, waiting up to r.Wait for one when there is none.
	Receive(ctx context.Context, r *PopRequest) ([]Delivery, *PopError)
	// Ack finishes the delivery named by handle.
	Ack(group, topic, handle string) *PopError
	// ChangeInvisible makes the delivery visible again after d and
	// returns its new handle.
	ChangeInvisible(group, topic, handle string, d time.Duration) (string, *PopError)
	// ForwardToDLQ stores the delivery in the group's dead-letter topic,
	// then acks it.
	ForwardToDLQ(group, topic, handle string) *PopError
	// MaxAttempts is the group's delivery attempts (retryMaxTimes + 1).
	MaxAttempts(group string) int32
	// Orderly reports whether the group consumes in order (FIFO: one
	// batch in flight per queue, redelivered in place).
	Orderly(group string) bool
}

// PopRequest is one ReceiveMessage, validated.
type PopRequest struct {
	ClientID   string
	Group      string
	Topic      string
	FilterType string // TAG or SQL92
	Filter     string
	Batch      int
	Invisible  time.Duration
	AutoRenew  bool // renew the leases while the client's Telemetry stream is open
	Wait       time.Duration
	// AttemptID names this receive: an orderly group's receive that
	// repeats the attempt_id of the batch in flight (a retry after a lost
	// answer) gets that batch again.
	AttemptID string
	// Scratch, if set, is a buffer the backend may read the records into
	// (appending; it leaves the grown buffer there). The caller keeps it
	// until it no longer uses the deliveries, so it can reuse it for the
	// next receive instead of allocating ~40 KiB per call.
	Scratch *[]byte
}

// Delivery is one message handed out: its stored record and lease.
type Delivery struct {
	Record        []byte // the stored record (wire.RecordView)
	Topic         string // the topic the client subscribed (also for retry copies)
	Handle        string
	DeliveryCount int32 // delivery_attempt: reconsume times + 1
}

// PopCode classifies a POP failure.
type PopCode int

const (
	PopInternal PopCode = iota
	PopTopicNotFound
	PopGroupNotFound
	PopBadFilter
	PopBadHandle
	PopForbidden
	PopTooMany
)

// PopError is a refused POP call.
type PopError struct {
	Code PopCode
	Msg  string
}

func (e *PopError) status() *v2.Status {
	c := v2.Code_INTERNAL_SERVER_ERROR
	switch e.Code {
	case PopTopicNotFound:
		c = v2.Code_TOPIC_NOT_FOUND
	case PopGroupNotFound:
		c = v2.Code_CONSUMER_GROUP_NOT_FOUND
	case PopBadFilter:
		c = v2.Code_ILLEGAL_FILTER_EXPRESSION
	case PopBadHandle:
		c = v2.Code_INVALID_RECEIPT_HANDLE
	case PopForbidden:
		c = v2.Code_FORBIDDEN
	case PopTooMany:
		c = v2.Code_TOO_MANY_REQUESTS
	}
	return st(c, e.Msg)
}

// Receive limits of Java's proxy (apache/rocketmq
// proxy/src/main/java/org/apache/rocketmq/proxy/config/ProxyConfig.java,
// proxy/common/utils/ProxyUtils.java MAX_MSG_NUMS_FOR_POP_REQUEST).
const (
	maxReceiveBatch        = 32
	maxInvisible           = 12 * time.Hour
	defaultInvisible       = 60 * time.Second // auto_renew without invisible_duration
	maxLongPolling         = 20 * time.Second
	defaultRequestTimeout  = 3 * time.Second
	pollingDeadlineReserve = 200 * time.Millisecond
	maxChangeInvisible     = 12 * time.Hour
)

// ClientConnected reports whether a client has a Telemetry stream open:
// the broker renews its auto-renewed leases while it has.
func (s *Server) ClientConnected(id string) bool { return s.clients.connected(id) }

func (s *Server) pop() (PopBackend, bool) {
	p, ok := s.be.(PopBackend)
	return p, ok
}

// consumerFifo is the subscription.fifo told to a group's consumers.
func (s *Server) consumerFifo(group string) bool {
	p, ok := s.pop()
	return ok && p.Orderly(group)
}

// consumerMaxAttempts is the max_attempts told to a group's consumers.
func (s *Server) consumerMaxAttempts(group string) int32 {
	if p, ok := s.pop(); ok {
		return p.MaxAttempts(group)
	}
	return consumerMaxAttempts
}

// QueryAssignment answers, for every broker with readable queues of the
// topic, one assignment with queue id -1 (non-FIFO groups): consumers
// receive from each broker as a whole (Java RouteActivity.queryAssignment).
func (s *Server) QueryAssignment(ctx context.Context, req *v2.QueryAssignmentRequest) (*v2.QueryAssignmentResponse, error) {
	if _, bad := clientOf(ctx); bad != nil {
		return &v2.QueryAssignmentResponse{Status: bad}, nil
	}
	topic := withNamespace(ctx, req.GetTopic())
	if err := wire.CheckTopic(topic); err != nil {
		return &v2.QueryAssignmentResponse{Status: st(v2.Code_ILLEGAL_TOPIC, err.Error())}, nil
	}
	if req.GetGroup().GetName() == "" {
		return &v2.QueryAssignmentResponse{Status: st(v2.Code_ILLEGAL_CONSUMER_GROUP, "the group is blank")}, nil
	}
	rd, err := s.be.Route(topic)
	if err != nil {
		return &v2.QueryAssignmentResponse{Status: st(v2.Code_INTERNAL_SERVER_ERROR, err.Error())}, nil
	}
	if rd == nil {
		return &v2.QueryAssignmentResponse{Status: st(v2.Code_TOPIC_NOT_FOUND, "topic "+topic+" not found")}, nil
	}
	var want []string
	for _, bd := range rd.BrokerDatas {
		if a := bd.BrokerAddrs[0]; a != "" {
			want = append(want, a)
		}
	}
	queues, _ := buildQueues(req.GetTopic(), rd, s.be.GrpcAddrs(want), s.ownPort(), acceptTypes(s.be.TopicMessageType(topic)))
	seen := map[string]bool{}
	var out []*v2.Assignment
	for _, q := range queues {
		if q.Permission == v2.Permission_WRITE || q.Permission == v2.Permission_NONE || seen[q.Broker.GetName()] {
			continue
		}
		seen[q.Broker.GetName()] = true
		out = append(out, &v2.Assignment{MessageQueue: &v2.MessageQueue{
			Topic: q.Topic, Id: -1, Permission: v2.Permission_READ_WRITE, Broker: q.Broker, AcceptMessageTypes: q.AcceptMessageTypes,
		}})
	}
	if len(out) == 0 {
		return &v2.QueryAssignmentResponse{Status: st(v2.Code_FORBIDDEN, "no readable queue of topic "+topic)}, nil
	}
	return &v2.QueryAssignmentResponse{Status: statusOK(), Assignments: out}, nil
}

// ReceiveMessage streams: status, the messages, a delivery timestamp;
// the status alone (plus timestamp) when there is nothing or an error
// (Java ReceiveMessageResponseStreamWriter).
func (s *Server) ReceiveMessage(req *v2.ReceiveMessageRequest, ss v2.MessagingService_ReceiveMessageServer) error {
	ctx := ss.Context()
	scratch := recordBufs.Get().(*[]byte)
	defer putRecordBuf(scratch) // after the last use of ds, which points into it
	stat, ds := s.receive(ctx, req, scratch)
	if err := ss.Send(&v2.ReceiveMessageResponse{Content: &v2.ReceiveMessageResponse_Status{Status: stat}}); err != nil {
		s.nackUnsent(ctx, req, ds)
		return nil
	}
	rt := req.GetMessageQueue().GetTopic()
	enc := encoders.Get().(*deliveryEncoder)
	defer encoders.Put(enc)
	m := &deliveryMsg{ns: rt.GetResourceNamespace(), topic: rt.GetName(), enc: enc} // reused: SendMsg encodes before it returns
	for i, d := range ds {
		m.d = d
		if err := ss.SendMsg(m); err != nil {
			s.nackUnsent(ctx, req, ds[i:])
			return nil
		}
	}
	_ = ss.Send(&v2.ReceiveMessageResponse{Content: &v2.ReceiveMessageResponse_DeliveryTimestamp{DeliveryTimestamp: timestamppb.Now()}})
	return nil
}

// encoders keep the scratch space of receives' encoding (encode.go).
var encoders = sync.Pool{New: func() any { return new(deliveryEncoder) }}

// recordBufs keep the buffers receives read records into: a batch of 32
// 1 KiB messages is a ~40 KiB allocation per call otherwise, zeroed and
// collected (pprof of make bench's receive: half the bytes the broker
// allocated).
var recordBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledRecordBuf bounds the buffers kept: a receive of 32 large
// messages must not pin megabytes in the pool.
const maxPooledRecordBuf = 1 << 20

func putRecordBuf(b *[]byte) {
	if cap(*b) > maxPooledRecordBuf {
		*b = nil
	}
	*b = (*b)[:0]
	recordBufs.Put(b)
}

// nackUnsent makes messages the client never got visible again after 1 s
// (Java's NACK_INVISIBLE_TIME).
func (s *Server) nackUnsent(ctx context.Context, req *v2.ReceiveMessageRequest, ds []Delivery) {
	p, ok := s.pop()
	if !ok {
		return
	}
	group := withNamespace(ctx, req.GetGroup())
	for _, d := range ds {
		_, _ = p.ChangeInvisible(group, d.Topic, d.Handle, time.Second)
	}
}

func (s *Server) receive(ctx context.Context, req *v2.ReceiveMessageRequest, scratch *[]byte) (*v2.Status, []Delivery) {
	id, bad := clientOf(ctx)
	if bad != nil {
		return bad, nil
	}
	p, ok := s.pop()
	if !ok {
		return notImplemented("ReceiveMessage (consumers)"), nil
	}
	group := withNamespace(ctx, req.GetGroup())
	if err := wire.CheckGroup(group); err != nil {
		return st(v2.Code_ILLEGAL_CONSUMER_GROUP, err.Error()), nil
	}
	topic := withNamespace(ctx, req.GetMessageQueue().GetTopic())
	if err := wire.CheckTopic(topic); err != nil {
		return st(v2.Code_ILLEGAL_TOPIC, err.Error()), nil
	}
	r := &PopRequest{ClientID: id, Group: group, Topic: topic, Batch: int(req.GetBatchSize()), Filter: "*", FilterType: "TAG", AttemptID: req.GetAttemptId(), Scratch: scratch}
	if r.Batch <= 0 || r.Batch > maxReceiveBatch {
		r.Batch = maxReceiveBatch
	}
	if fe := req.GetFilterExpression(); fe != nil {
		switch fe.GetType() {
		case v2.FilterType_TAG, v2.FilterType_FILTER_TYPE_UNSPECIFIED:
			r.Filter = strings.TrimSpace(fe.GetExpression())
			if r.Filter == "" {
				r.Filter = "*"
			}
		case v2.FilterType_SQL:
			r.FilterType, r.Filter = "SQL92", fe.GetExpression()
		default:
			return st(v2.Code_ILLEGAL_FILTER_EXPRESSION, "unknown filter type "+fe.GetType().String()), nil
		}
	}
	switch {
	case req.InvisibleDuration != nil:
		r.Invisible = req.GetInvisibleDuration().AsDuration()
		if r.Invisible < s.cfg.MinInvisible || r.Invisible > maxInvisible || !req.GetInvisibleDuration().IsValid() {
			return st(v2.Code_ILLEGAL_INVISIBLE_TIME, "the invisible duration "+r.Invisible.String()+" is outside "+s.cfg.MinInvisible.String()+"…"+maxInvisible.String()), nil
		}
	case req.GetAutoRenew():
		r.Invisible = defaultInvisible
	default:
		return st(v2.Code_ILLEGAL_INVISIBLE_TIME, "the invisible duration is required without auto_renew"), nil
	}
	r.AutoRenew = req.GetAutoRenew()
	r.Wait = s.pollingTime(ctx, id, req)
	ds, perr := p.Receive(ctx, r)
	if perr != nil {
		return perr.status(), nil
	}
	if len(ds) == 0 {
		return st(v2.Code_MESSAGE_NOT_FOUND, "no new message"), nil
	}
	return statusOK(), ds
}

// pollingTime is how long a receive may wait for a message: the
// request's long_polling_timeout, else the time left before the client's
// deadline less half its request timeout (Java ReceiveMessageActivity),
// at most 20 s, and always ending 200 ms before the deadline. Java
// refuses the too-short waits of Go v5.1.2 without WithAwaitDuration;
// this broker answers them without waiting instead.
func (s *Server) pollingTime(ctx context.Context, id string, req *v2.ReceiveMessageRequest) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(maxLongPolling + time.Second)
	}
	left := time.Until(deadline)
	poll := left - s.requestTimeout(id)/2
	if req.LongPollingTimeout != nil {
		poll = req.GetLongPollingTimeout().AsDuration()
	}
	poll = min(poll, maxLongPolling, left-pollingDeadlineReserve)
	return max(poll, 0)
}

func (s *Server) requestTimeout(id string) time.Duration {
	if st := s.clients.settings(id); st != nil && st.RequestTimeout != nil {
		return st.GetRequestTimeout().AsDuration()
	}
	return defaultRequestTimeout
}

func ptr[T any](v T) *T { return &v }

func (s *Server) AckMessage(ctx context.Context, req *v2.AckMessageRequest) (*v2.AckMessageResponse, error) {
	if _, bad := clientOf(ctx); bad != nil {
		return &v2.AckMessageResponse{Status: bad}, nil
	}
	p, ok := s.pop()
	if !ok {
		return &v2.AckMessageResponse{Status: notImplemented("AckMessage (consumers)")}, nil
	}
	if len(req.GetEntries()) == 0 {
		return &v2.AckMessageResponse{Status: st(v2.Code_BAD_REQUEST, "no entry to ack")}, nil
	}
	group, topic := withNamespace(ctx, req.GetGroup()), withNamespace(ctx, req.GetTopic())
	entries := make([]*v2.AckMessageResultEntry, len(req.GetEntries()))
	results := make([]v2.AckMessageResultEntry, len(entries)) // one allocation for all
	acked := statusOK()                                       // shared by the entries acked: marshalling only reads it
	for i, e := range req.GetEntries() {
		stat := acked
		if perr := p.Ack(group, topic, e.GetReceiptHandle()); perr != nil {
			stat = perr.status()
		}
		r := &results[i]
		r.MessageId, r.ReceiptHandle, r.Status = e.GetMessageId(), e.GetReceiptHandle(), stat
		entries[i] = r
	}
	top := entries[0].Status
	for _, e := range entries[1:] {
		if e.Status.Code != top.Code {
			top = st(v2.Code_MULTIPLE_RESULTS, "the entries have different results")
			break
		}
	}
	return &v2.AckMessageResponse{Status: top, Entries: entries}, nil
}

// ChangeInvisibleDuration always answers a non-empty handle: Go v5.1.2
// and Node 1.0.8 overwrite theirs with it unconditionally.
func (s *Server) ChangeInvisibleDuration(ctx context.Context, req *v2.ChangeInvisibleDurationRequest) (*v2.ChangeInvisibleDurationResponse, error) {
	old := req.GetReceiptHandle()
	answer := func(stat *v2.Status) (*v2.ChangeInvisibleDurationResponse, error) {
		return &v2.ChangeInvisibleDurationResponse{Status: stat, ReceiptHandle: old}, nil
	}
	if _, bad := clientOf(ctx); bad != nil {
		return answer(bad)
	}
	p, ok := s.pop()
	if !ok {
		return answer(notImplemented("ChangeInvisibleDuration (consumers)"))
	}
	d := req.GetInvisibleDuration().AsDuration()
	if req.InvisibleDuration == nil || !req.GetInvisibleDuration().IsValid() || d < 0 || d > maxChangeInvisible {
		return answer(st(v2.Code_ILLEGAL_INVISIBLE_TIME, "the invisible duration must be 0…"+maxChangeInvisible.String()))
	}
	h, perr := p.ChangeInvisible(withNamespace(ctx, req.GetGroup()), withNamespace(ctx, req.GetTopic()), old, d)
	if perr != nil {
		return answer(perr.status())
	}
	return &v2.ChangeInvisibleDurationResponse{Status: statusOK(), ReceiptHandle: h}, nil
}

func (s *Server) ForwardMessageToDeadLetterQueue(ctx context.Context, req *v2.ForwardMessageToDeadLetterQueueRequest) (*v2.ForwardMessageToDeadLetterQueueResponse, error) {
	if _, bad := clientOf(ctx); bad != nil {
		return &v2.ForwardMessageToDeadLetterQueueResponse{Status: bad}, nil
	}
	p, ok := s.pop()
	if !ok {
		return &v2.ForwardMessageToDeadLetterQueueResponse{Status: notImplemented("ForwardMessageToDeadLetterQueue (consumers)")}, nil
	}
	if perr := p.ForwardToDLQ(withNamespace(ctx, req.GetGroup()), withNamespace(ctx, req.GetTopic()), req.GetReceiptHandle()); perr != nil {
		return &v2.ForwardMessageToDeadLetterQueueResponse{Status: perr.status()}, nil
	}
	return &v2.ForwardMessageToDeadLetterQueueResponse{Status: statusOK()}, nil
}
