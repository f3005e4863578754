package grpcsvc

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mqops/mqops/broker/transaction"
	"github.com/mqops/mqops/wire"
)

// transactionID names a half message by its commit log offset and
// half-queue offset, so EndTransaction needs no server-side table (Java's
// proxy keeps a TransactionDataManager instead).
func transactionID(phys, halfOffset int64) string {
	return strconv.FormatInt(phys, 16) + "-" + strconv.FormatInt(halfOffset, 16)
}

func parseTransactionID(id string) (phys, halfOffset int64, err error) {
	a, b, ok := strings.Cut(id, "-")
	if ok {
		if phys, err = strconv.ParseInt(a, 16, 64); err == nil {
			halfOffset, err = strconv.ParseInt(b, 16, 64)
		}
	}
	if !ok || err != nil || phys < 0 || halfOffset < 0 {
		return 0, 0, fmt.Errorf("transaction id %q was not issued by this broker", id)
	}
	return phys, halfOffset, nil
}

// EndTransaction commits or rolls back a half message through the
// broker's transaction service; UNSPECIFIED leaves it for the check-back
// (Java EndTransactionActivity). The producer group is the topic, as for
// the send.
func (s *Server) EndTransaction(ctx context.Context, req *v2.EndTransactionRequest) (*v2.EndTransactionResponse, error) {
	if _, bad := clientOf(ctx); bad != nil {
		return &v2.EndTransactionResponse{Status: bad}, nil
	}
	reply := func(c v2.Code, format string, args ...any) (*v2.EndTransactionResponse, error) {
		return &v2.EndTransactionResponse{Status: st(c, fmt.Sprintf(format, args...))}, nil
	}
	topic := withNamespace(ctx, req.GetTopic())
	if err := wire.CheckTopic(topic); err != nil {
		return reply(v2.Code_ILLEGAL_TOPIC, "%v", err)
	}
	if strings.TrimSpace(req.GetTransactionId()) == "" {
		return reply(v2.Code_INVALID_TRANSACTION_ID, "the transaction id is blank")
	}
	if strings.TrimSpace(req.GetMessageId()) == "" {
		return reply(v2.Code_ILLEGAL_MESSAGE_ID, "the message id is blank")
	}
	phys, half, err := parseTransactionID(req.GetTransactionId())
	if err != nil {
		return reply(v2.Code_INVALID_TRANSACTION_ID, "%v", err)
	}
	var commit bool
	switch req.GetResolution() {
	case v2.TransactionResolution_COMMIT:
		commit = true
	case v2.TransactionResolution_ROLLBACK:
	case v2.TransactionResolution_TRANSACTION_RESOLUTION_UNSPECIFIED:
		s.log.Info("[TRANSACTION] producer does not know the state yet", "topic", topic, "msgId", req.GetMessageId(), "source", req.GetSource())
		return reply(v2.Code_OK, "OK")
	default:
		return reply(v2.Code_BAD_REQUEST, "unknown transaction resolution %d", req.GetResolution())
	}
	if err := s.be.EndTransaction(topic, half, phys, commit); err != nil {
		code, remark := transaction.Answer(err)
		s.log.Warn("[TRANSACTION] end transaction refused", "topic", topic, "msgId", req.GetMessageId(), "commit", commit, "source", req.GetSource(), "reason", remark)
		c := v2.Code_INTERNAL_SERVER_ERROR
		switch {
		case code == wire.SlaveNotAvailable:
			c = v2.Code_HA_NOT_AVAILABLE
		case code == wire.SystemBusy: // flow control, as for a send (sendCode)
			c = v2.Code_TOO_MANY_REQUESTS
		case errors.Is(err, transaction.ErrDecided), errors.Is(err, transaction.ErrNotHalf), errors.Is(err, transaction.ErrMismatch):
			// The transaction id names no half message this decision fits.
			c = v2.Code_INVALID_TRANSACTION_ID
		}
		return reply(c, "%s", remark)
	}
	return reply(v2.Code_OK, "OK")
}

// telemetryStream is one open Telemetry stream; sends are serialised
// (a gRPC stream takes one sender at a time): the stream's own handler
// answers Settings while the transaction check-back writes commands.
type telemetryStream struct {
	id string
	mu sync.Mutex
	ss v2.MessagingService_TelemetryServer
}

func (t *telemetryStream) send(cmd *v2.TelemetryCommand) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ss.Send(cmd)
}

// streamSet holds the open Telemetry streams.
type streamSet struct {
	mu sync.Mutex
	m  map[*telemetryStream]bool
}

func (s *streamSet) open(id string, ss v2.MessagingService_TelemetryServer) *telemetryStream {
	t := &telemetryStream{id: id, ss: ss}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[*telemetryStream]bool{}
	}
	s.m[t] = true
	return t
}

func (s *streamSet) close(t *telemetryStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, t)
}

func (s *streamSet) all() []*telemetryStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*telemetryStream, 0, len(s.m))
	for t := range s.m {
		out = append(out, t)
	}
	return out
}

// publishes reports whether the client's Settings name topic among the
// topics it publishes to.
func (t *clientTable) publishes(id, topic string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.m[id]
	if c == nil || c.settings.GetClientType() != v2.ClientType_PRODUCER {
		return false
	}
	for _, r := range c.settings.GetPublishing().GetTopics() {
		name := r.GetName()
		if ns := r.GetResourceNamespace(); ns != "" {
			name = ns + "%" + name
		}
		if name == topic {
			return true
		}
	}
	return false
}

// RecoverOrphaned asks one live 5.x producer of group (the topic: the
// producer group of 5.x sends) to resolve a half message, by writing
// recover_orphaned_transaction_command on its Telemetry stream; the
// producer answers with EndTransaction (Java's proxy:
// TransactionService/ClientActivity). fields are the check-back's
// CHECK_TRANSACTION_STATE header, record the half message as sent. It
// reports whether a producer was told.
func (s *Server) RecoverOrphaned(group string, fields map[string]string, record []byte) bool {
	phys, err1 := strconv.ParseInt(fields["commitLogOffset"], 10, 64)
	half, err2 := strconv.ParseInt(fields["tranStateTableOffset"], 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	var cands []*telemetryStream
	for _, t := range s.streams.all() {
		if s.clients.publishes(t.id, group) {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 {
		return false
	}
	cmd := &v2.TelemetryCommand{Command: &v2.TelemetryCommand_RecoverOrphanedTransactionCommand{
		RecoverOrphanedTransactionCommand: &v2.RecoverOrphanedTransactionCommand{Message: checkMessage(wire.RecordView(record)), TransactionId: transactionID(phys, half)},
	}}
	for len(cands) > 0 {
		i := rand.IntN(len(cands))
		if err := cands[i].send(cmd); err == nil {
			return true
		}
		cands = append(cands[:i], cands[i+1:]...)
	}
	return false
}

// checkMessage is a stored half message as a 5.x client reads it (Java
// GrpcConverter.buildMessage): real topic, id, tag, keys, user properties.
func checkMessage(v wire.RecordView) *v2.Message {
	props := wire.ParseProperties(v.Properties())
	sp := &v2.SystemProperties{
		MessageId:     props[wire.PropUniqKey],
		MessageType:   v2.MessageType_TRANSACTION,
		BodyEncoding:  v2.Encoding_IDENTITY,
		BodyDigest:    &v2.Digest{Type: v2.DigestType_CRC32, Checksum: strconv.FormatInt(int64(crc32.ChecksumIEEE(v.Body())), 16)},
		BornTimestamp: timestamppb.New(time.UnixMilli(v.BornTimestamp())),
		BornHost:      props[propBornHost],
		QueueId:       v.QueueID(),
	}
	if v.SysFlag()&sysFlagCompressed != 0 {
		sp.BodyEncoding = v2.Encoding_GZIP
	}
	if tag, ok := props[wire.PropTags]; ok {
		sp.Tag = &tag
	}
	if keys := props[wire.PropKeys]; keys != "" {
		sp.Keys = strings.Fields(keys)
	}
	user := map[string]string{}
	for k, val := range props {
		if !reserved[k] {
			user[k] = val
		}
	}
	return &v2.Message{Topic: &v2.Resource{Name: string(v.Topic())}, UserProperties: user, SystemProperties: sp, Body: v.Body()}
}
