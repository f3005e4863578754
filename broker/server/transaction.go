package server

import (
	"math/rand/v2"
	"time"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/transaction"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// handleEndTransaction serves END_TRANSACTION (37; Java's apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/processor/EndTransactionProcessor.java):
// commit (8) or rollback (12) of a half message. The Go client sends it
// oneway, so the answer only reaches Java clients and admins; an unknown
// state (0) is not answered at all, as in Java.
func (b *Broker) handleEndTransaction(c *remoting.Conn, req *wire.Command) {
	readAt := time.Now()
	group := req.GetString("producerGroup")
	halfOff, ok1 := req.GetInt("tranStateTableOffset")
	phys, ok2 := req.GetInt("commitLogOffset")
	state, ok3 := req.GetInt("commitOrRollback")
	switch {
	case group == "":
		missing(c, req, "producerGroup")
		return
	case !ok1:
		missing(c, req, "tranStateTableOffset")
		return
	case !ok2:
		missing(c, req, "commitLogOffset")
		return
	case !ok3:
		missing(c, req, "commitOrRollback")
		return
	}
	if b.isSlave() {
		b.log.Warn("[TRANSACTION] end transaction refused: this broker is a slave", "producerGroup", group, "msgId", req.GetString("msgId"))
		c.ReplyCode(req, wire.SlaveNotAvailable, "")
		return
	}
	fromCheck := req.GetBool("fromTransactionCheck")
	if state != int64(wire.SysFlagTransactionCommit) && state != int64(wire.SysFlagTransactionRollback) {
		b.log.Info("[TRANSACTION] producer does not know the state yet", "producerGroup", group, "msgId", req.GetString("msgId"), "fromCheck", fromCheck, "remark", string(req.Remark))
		return
	}
	// The request names no topic: ACL checks the half message's real one.
	if b.acl != nil {
		if rec, err := b.store.ReadRecord(phys, nil); err == nil {
			topic := wire.PropertyValue(wire.RecordView(rec).Properties(), wire.PropRealTopic)
			if len(topic) > 0 && !b.acl.AllowTopic(c, req, string(topic), acl.Pub) {
				return
			}
		}
	}
	commit := state == int64(wire.SysFlagTransactionCommit)
	code, remark, ok := b.endTransaction(c, req, readAt, group, halfOff, phys, commit)
	if !ok {
		return
	}
	if code != wire.Success {
		b.log.Warn("[TRANSACTION] end transaction refused", "producerGroup", group, "msgId", req.GetString("msgId"), "commit", commit, "fromCheck", fromCheck, "reason", remark)
	}
	c.ReplyCode(req, code, remark)
}

// endTransaction commits or rolls back in an append slot, as a send
// appends: one that cannot get a slot within
// waitTimeMillsInTransactionQueue of being read (the appends in progress
// are stalled) is answered SYSTEM_BUSY [TIMEOUT_CLEAN_QUEUE], the oneway
// request of a Go or Java producer too, as Java's BrokerFastFailure
// cleans its end-transaction pool's queue; then ok is false.
func (b *Broker) endTransaction(c *remoting.Conn, req *wire.Command, readAt time.Time, group string, halfOff, phys int64, commit bool) (code int32, remark string, ok bool) {
	st := stateOf(c)
	waited, queue, tag, ok := b.flow.EnterTransaction(&st.waiter, readAt)
	if !ok {
		b.refuseSend(c, req, tag, nil, waited, queue, "")
		return 0, "", false
	}
	defer b.flow.Leave()
	code, remark = transaction.Answer(b.tx.End(group, halfOff, phys, commit))
	return code, remark, true
}

// checkTransaction sends CHECK_TRANSACTION_STATE to one live producer of
// group; the producer answers later with END_TRANSACTION. Without a
// remoting producer, a 5.x producer of the topic (group) is asked over
// its Telemetry stream.
func (b *Broker) checkTransaction(group string, fields map[string]string, body []byte) bool {
	chs := b.clients.Producer(group)
	for len(chs) > 0 {
		i := rand.IntN(len(chs))
		if err := chs[i].Conn.InvokeOneway(wire.NewRequest(wire.CheckTransactionState, fields, body)); err == nil {
			return true
		}
		chs = append(chs[:i], chs[i+1:]...)
	}
	return b.grpc != nil && b.grpc.srv.RecoverOrphaned(group, fields, body)
}

// ensureTransMaxTimeTopic creates the topic discarded half messages are
// kept in, so operators can read them.
func (b *Broker) ensureTransMaxTimeTopic() {
	if _, created, err := b.topics.CreateIfAbsent(wire.TopicConfig{TopicName: meta.TopicTransMaxTime, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}, true); err != nil {
		b.log.Error("[TOPIC_CREATE] persist failed", "topic", meta.TopicTransMaxTime, "err", err)
	} else if created {
		b.kickRegister()
	}
}
