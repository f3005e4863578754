package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/flow"
	"github.com/mqops/mqops/wire"
)

func amqpReq(t *testing.T, code int32, body any, op int32) *wire.Command {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req := wire.NewRequest(code, map[string]string{wire.AMQPVhostField: "/"}, raw)
	req.Opaque = op
	return req
}

// TestAMQPPublishAdmission: AMQP_PUBLISH is admitted as a send is. It pays
// the store topic's produce quota ([TOPIC_QUOTA] past the longest delay),
// is refused [REJECTREQUEST] while the store is stalled, and so is a
// publish of no message (the gateway's probe of when to unblock).
func TestAMQPPublishAdmission(t *testing.T) {
	b := startStallBroker(t, map[string]string{"flushDiskType": "SYNC_FLUSH", "osPageCacheBusyTimeOutMills": "50",
		"enableLmq": "true", "enableMultiDispatch": "true"})
	if _, err := b.topics.Put(wire.TopicConfig{TopicName: "AMQP_STORE", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6,
		Attributes: map[string]string{wire.AttrProduceTPS: "1"}}); err != nil {
		t.Fatal(err)
	}
	nc, r := rawConn(t, b.Broker)
	writeFrame(t, nc, amqpReq(t, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "q", Durable: true}, 1))
	if a := readResponse(t, nc, r); a.Code != wire.Success {
		t.Fatalf("declare: %d %s", a.Code, a.Remark)
	}
	pub := wire.AMQPPublishRequest{Vhost: "/", Messages: []wire.AMQPPublishMessage{{RoutingKey: "q", Body: []byte("m"), Persistent: true}}}
	writeFrame(t, nc, amqpReq(t, wire.AMQPPublish, pub, 2))
	a := readResponse(t, nc, r)
	var res wire.AMQPPublishResponse
	if a.Code != wire.Success || json.Unmarshal(a.Body, &res) != nil || len(res.Results) != 1 || res.Results[0].Status != wire.AMQPStored {
		t.Fatalf("first publish: %d %s %s", a.Code, a.Remark, a.Body)
	}
	// The second within the second would wait 1 s, past the 500 ms limit.
	writeFrame(t, nc, amqpReq(t, wire.AMQPPublish, pub, 3))
	expectBusy(t, readResponse(t, nc, r), 3, "[TOPIC_QUOTA]topic AMQP_STORE exceeds produce quota on broker-a (1 msg/s)")
	if n := b.flow.Rejected(flow.TopicQuota); n != 1 {
		t.Errorf("TOPIC_QUOTA counter %d", n)
	}
	if _, err := b.topics.Put(wire.TopicConfig{TopicName: "AMQP_STORE", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}); err != nil {
		t.Fatal(err)
	}

	// A stalled fsync under a persistent publish: the store turns busy
	// and the next publish is refused before any work.
	b.stall.Store(true)
	writeFrame(t, nc, amqpReq(t, wire.AMQPPublish, pub, 4))
	<-b.entered
	waitFor(t, func() bool { return b.store.Busy(time.Now()) > 50*time.Millisecond })
	nc2, r2 := rawConn(t, b.Broker)
	writeFrame(t, nc2, amqpReq(t, wire.AMQPPublish, pub, 5))
	expectBusy(t, readResponse(t, nc2, r2), 5, "[REJECTREQUEST]system busy, start flow control for a while")
	writeFrame(t, nc2, amqpReq(t, wire.AMQPPublish, wire.AMQPPublishRequest{Vhost: "/"}, 6))
	expectBusy(t, readResponse(t, nc2, r2), 6, "[REJECTREQUEST]")
	b.stall.Store(false)
}
