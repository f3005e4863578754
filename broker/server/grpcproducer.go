package server

import (
	"fmt"

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

// EndTransaction decides a half message as END_TRANSACTION does.
func (g grpcBackend) EndTransaction(group string, halfOffset, phys int64, commit bool) error {
	if g.b.isSlave() {
		return &transaction.Refused{Code: wire.SlaveNotAvailable, Remark: "this broker is a slave"}
	}
	return g.b.tx.End(group, halfOffset, phys, commit)
}
