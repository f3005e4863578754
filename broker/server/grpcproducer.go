package server

import (
	"fmt"
	"time"

	"github.com/mqops/mqops/broker/flow"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/broker/transaction"
	"github.com/mqops/mqops/wire"
)

// parkTyped turns a 5.x transactional or timed message into what the
// remoting send stores (handleSend): a half message, or a message parked
// in the timer topic until its delivery time.
func (b *Broker) parkTyped(m *store.Message) (int32, string) {
	if string(wire.PropertyValue(m.Properties, wire.PropTranMsg)) == "true" {
		if b.cfg.RejectTransactionMessage {
			return wire.NoPermission, fmt.Sprintf("the broker[%s] sending transaction message is forbidden", b.addr)
		}
		transaction.Prepare(nil, m)
		return wire.Success, ""
	}
	at, ok, err := b.timerDeliverAt(m.Properties)
	if err != nil {
		return wire.MessageIllegal, err.Error()
	}
	if ok {
		schedule.ParkTimer(nil, m, at)
	}
	return wire.Success, ""
}

// TopicMessageType is the topic's message.type on this broker.
func (g grpcBackend) TopicMessageType(topic string) string {
	tc := g.b.topics.Lookup(topic)
	if tc == nil {
		return ""
	}
	return tc.MessageType()
}

// EndTransaction decides a half message as END_TRANSACTION does, in an
// append slot it waits for at most waitTimeMillsInTransactionQueue
// (endTransaction): past that it is refused SYSTEM_BUSY
// [TIMEOUT_CLEAN_QUEUE], which the gRPC service answers TOO_MANY_REQUESTS.
func (g grpcBackend) EndTransaction(group string, halfOffset, phys int64, commit bool) error {
	b := g.b
	if b.isSlave() {
		return &transaction.Refused{Code: wire.SlaveNotAvailable, Remark: "this broker is a slave"}
	}
	var w flow.Waiter
	waited, queue, tag, ok := b.flow.EnterTransaction(&w, time.Now())
	if !ok {
		// The backend does not see the caller's address; the service logs
		// the refusal with the message id.
		b.flow.Log.Event(tag, "grpc", group, waited, queue, "")
		return &transaction.Refused{Code: wire.SystemBusy, Remark: flow.Remark(tag, waited, queue)}
	}
	defer b.flow.Leave()
	return b.tx.End(group, halfOffset, phys, commit)
}
