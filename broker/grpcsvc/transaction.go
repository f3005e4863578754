package grpcsvc

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

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
	code, remark := s.be.EndTransaction(topic, half, phys, commit)
	if code != wire.Success {
		s.log.Warn("[TRANSACTION] end transaction refused", "topic", topic, "msgId", req.GetMessageId(), "commit", commit, "source", req.GetSource(), "reason", remark)
		c := v2.Code_INTERNAL_SERVER_ERROR
		if code == wire.SlaveNotAvailable {
			c = v2.Code_HA_NOT_AVAILABLE
		} else if strings.Contains(remark, "already decided") || strings.Contains(remark, "wrong") || strings.Contains(remark, "not a half message") {
			c = v2.Code_INVALID_TRANSACTION_ID
		}
		return reply(c, "%s", remark)
	}
	return reply(v2.Code_OK, "OK")
}
