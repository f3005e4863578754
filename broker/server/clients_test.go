package server

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/wire"
)

// expectNotify waits for NOTIFY_CONSUMER_IDS_CHANGED for group, sent
// oneway as RocketMQ clients expect.
func (p *peer) expectNotify(group string) {
	p.t.Helper()
	req := p.nextCall("NOTIFY_CONSUMER_IDS_CHANGED")
	if req.Code != wire.NotifyConsumerIDsChanged || !req.IsOneway() || req.GetString("consumerGroup") != group {
		p.t.Fatalf("broker sent code %d oneway %v group %q, want NOTIFY_CONSUMER_IDS_CHANGED for %s", req.Code, req.IsOneway(), req.GetString("consumerGroup"), group)
	}
}

// TestHeartbeatUnregisterAndNotify: heartbeats register consumers and
// producers; members are told to rebalance when another joins, leaves by
// UNREGISTER_CLIENT, or disconnects.
func TestHeartbeatUnregisterAndNotify(t *testing.T) {
	b := startBroker(t, nil)
	a := newPeer(t, b, nil)
	a.createTopic("HB", 4)
	a.heartbeat("a@1", "CG", "PG", map[string]string{"HB": "*"})
	a.expectNotify("CG") // its own arrival changed the group
	if ids := a.consumerIDs("CG"); !slices.Equal(ids, []string{"a@1"}) {
		t.Fatalf("group members %v", ids)
	}
	if b.topics.Get([]byte(meta.RetryPrefix+"CG")) == nil {
		t.Fatal("no retry topic created for the group")
	}
	resp := a.expect(wire.Success, "", wire.GetProducerConnectionList, map[string]string{"producerGroup": "PG"}, nil)
	var pc wire.ProducerConnection
	if err := json.Unmarshal(resp.Body, &pc); err != nil || len(pc.ConnectionSet) != 1 || pc.ConnectionSet[0].ClientID != "a@1" {
		t.Fatalf("producer connections %s (%v)", resp.Body, err)
	}

	// The same heartbeat again changes nothing and notifies nobody. A
	// notification it caused would have reached A before the answer: the
	// broker queues both on A's connection, notification first.
	a.heartbeat("a@1", "CG", "PG", map[string]string{"HB": "*"})
	if n := len(a.calls); n != 0 {
		t.Fatalf("an unchanged heartbeat sent %d requests to the group", n)
	}
	bp := newPeer(t, b, nil)
	bp.heartbeat("b@1", "CG", "", map[string]string{"HB": "*"})
	a.expectNotify("CG")
	bp.expectNotify("CG")
	if ids := a.consumerIDs("CG"); !slices.Equal(ids, []string{"a@1", "b@1"}) {
		t.Fatalf("group members %v", ids)
	}

	bp.expect(wire.Success, "", wire.UnregisterClient, map[string]string{"clientID": "b@1", "consumerGroup": "CG"}, nil)
	a.expectNotify("CG")
	if ids := a.consumerIDs("CG"); !slices.Equal(ids, []string{"a@1"}) {
		t.Fatalf("after unregister: members %v", ids)
	}

	bp.heartbeat("b@1", "CG", "", map[string]string{"HB": "*"})
	a.expectNotify("CG")
	bp.expectNotify("CG")
	bp.cl.Close()
	a.expectNotify("CG")
	if ids := a.consumerIDs("CG"); !slices.Equal(ids, []string{"a@1"}) {
		t.Fatalf("after disconnect: members %v", ids)
	}

	a.cl.Close()
	admin := newPeer(t, b, nil)
	waitFor(t, func() bool { return admin.consumerIDs("CG") == nil })
	admin.expect(wire.SystemError, "no consumer for this group", wire.GetConsumerListByGroup, map[string]string{"consumerGroup": "CG"}, nil)
	admin.expect(wire.SystemError, "<consumerGroup> is null", wire.GetConsumerListByGroup, nil, nil)
	admin.expect(wire.SystemError, "malformed heartbeat", wire.HeartBeat, nil, []byte("{not json"))
}

// TestConsumerCallbacks: GET_CONSUMER_RUNNING_INFO and
// CONSUME_MESSAGE_DIRECTLY are forwarded to the consumer's connection and
// its answer returned unchanged; a consumer that vanishes mid-call fails
// the admin's request at once, not after the 10 s callback timeout.
func TestConsumerCallbacks(t *testing.T) {
	b := startBroker(t, nil)
	c := newPeer(t, b, func(req *wire.Command) *wire.Command {
		resp := wire.ResponseTo(req, wire.Success, "")
		resp.Set("echo", req.GetString("jstackEnable"))
		resp.Body = []byte("answer to " + strconv.Itoa(int(req.Code)))
		return &resp
	})
	c.createTopic("CB", 1)
	c.heartbeat("c@1", "CG", "", map[string]string{"CB": "*"})
	c.expectNotify("CG")
	admin := newPeer(t, b, nil)

	resp := admin.expect(wire.Success, "", wire.GetConsumerRunningInfo, map[string]string{"consumerGroup": "CG", "clientId": "c@1", "jstackEnable": "true"}, nil)
	if string(resp.Body) != "answer to 307" || resp.GetString("echo") != "true" {
		t.Fatalf("running info: body %q fields %v", resp.Body, resp.Fields())
	}
	fwd := c.nextCall("GET_CONSUMER_RUNNING_INFO")
	if fwd.Code != wire.GetConsumerRunningInfo || fwd.IsOneway() || fwd.GetString("clientId") != "c@1" || fwd.GetString("consumerGroup") != "CG" {
		t.Fatalf("forwarded code %d fields %v", fwd.Code, fwd.Fields())
	}
	admin.expect(wire.SystemError, "not online", wire.GetConsumerRunningInfo, map[string]string{"consumerGroup": "CG", "clientId": "nobody"}, nil)
	admin.expect(wire.SystemError, "<clientId> is null", wire.GetConsumerRunningInfo, map[string]string{"consumerGroup": "CG"}, nil)
	admin.expect(wire.SystemError, "<consumerGroup> is null", wire.GetConsumerRunningInfo, map[string]string{"clientId": "c@1"}, nil)

	sent := c.expect(wire.Success, "", wire.SendMessageV2, sendFields("CB", 0, "TAGS\x01T"), []byte("direct"))
	resp = admin.expect(wire.Success, "", wire.ConsumeMessageDirectly, map[string]string{"consumerGroup": "CG", "clientId": "c@1", "msgId": sent.GetString("msgId")}, nil)
	if string(resp.Body) != "answer to 309" {
		t.Fatalf("consume directly: body %q", resp.Body)
	}
	fwd = c.nextCall("CONSUME_MESSAGE_DIRECTLY")
	if fwd.GetString("brokerName") != b.cfg.BrokerName || string(wire.RecordView(fwd.Body).Body()) != "direct" {
		t.Fatalf("forwarded fields %v, record body %q", fwd.Fields(), wire.RecordView(fwd.Body).Body())
	}
	admin.expect(wire.SystemError, "not an offset message id", wire.ConsumeMessageDirectly, map[string]string{"consumerGroup": "CG", "clientId": "c@1", "msgId": "nonsense"}, nil)

	// A consumer that never answers and then disconnects.
	d := newPeer(t, b, nil)
	d.heartbeat("d@1", "DG", "", map[string]string{"CB": "*"})
	d.expectNotify("DG")
	done := make(chan *wire.Command, 1)
	go func() {
		resp, err := admin.cl.Invoke(admin.addr, wire.NewRequest(wire.GetConsumerRunningInfo, map[string]string{"consumerGroup": "DG", "clientId": "d@1"}, nil), waitTimeout)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	d.nextCall("GET_CONSUMER_RUNNING_INFO")
	d.cl.Close()
	select {
	case resp := <-done:
		if resp == nil || resp.Code != wire.SystemError || !strings.Contains(string(resp.Remark), "connection closed") {
			t.Fatalf("admin got %v, want SYSTEM_ERROR naming the closed connection", resp)
		}
	case <-time.After(waitTimeout):
		t.Fatal("admin not answered")
	}
}

// TestCheckTransactionState: the broker asks a live producer of the group
// about a stale half message (CHECK_TRANSACTION_STATE, oneway, with the
// message in the body); the producer's END_TRANSACTION commits it into its
// real topic exactly once. An END_TRANSACTION with an unknown state is not
// answered.
func TestCheckTransactionState(t *testing.T) {
	// Checks every 100 ms of any half message older than 1 ms; never
	// discarded for being checked too often while the test runs.
	b := startBroker(t, map[string]string{"transactionTimeOut": "1", "transactionCheckInterval": "100", "transactionCheckMax": "1000000"})
	pr := newPeer(t, b, nil)
	pr.createTopic("TX", 1)
	pr.heartbeat("p@1", "", "TPG", nil)
	props := "TRAN_MSG\x01true\x02PGROUP\x01TPG\x02UNIQ_KEY\x01AC11000100002A9F0000000000000001"
	f := sendFields("TX", 0, props)
	f["a"], f["f"] = "TPG", strconv.Itoa(int(wire.SysFlagTransactionPrepared))
	pr.expect(wire.Success, "", wire.SendMessageV2, f, []byte("half"))
	if n := b.store.MaxOffset("TX", 0); n != 0 {
		t.Fatalf("a half message is visible in its topic: %d", n)
	}

	check := pr.nextCall("CHECK_TRANSACTION_STATE")
	if check.Code != wire.CheckTransactionState || !check.IsOneway() || check.GetString("msgId") != "AC11000100002A9F0000000000000001" {
		t.Fatalf("check: code %d oneway %v fields %v", check.Code, check.IsOneway(), check.Fields())
	}
	if v := wire.RecordView(check.Body); string(v.Topic()) != "TX" || string(v.Body()) != "half" {
		t.Fatalf("check body: topic %q body %q", v.Topic(), v.Body())
	}
	end := map[string]string{
		"producerGroup": "TPG", "tranStateTableOffset": check.GetString("tranStateTableOffset"),
		"commitLogOffset": check.GetString("commitLogOffset"), "commitOrRollback": "8", "fromTransactionCheck": "true",
		"msgId": check.GetString("msgId"),
	}

	// State 0 (unknown): no answer; the next request's answer comes first.
	nc, r := rawConn(t, b)
	unknown := wire.NewRequest(wire.EndTransaction, map[string]string{
		"producerGroup": "TPG", "tranStateTableOffset": end["tranStateTableOffset"], "commitLogOffset": end["commitLogOffset"], "commitOrRollback": "0",
	}, nil)
	unknown.Opaque = 1
	writeFrame(t, nc, unknown)
	next := wire.NewRequest(wire.GetMaxOffset, map[string]string{"topic": "TX", "queueId": "0"}, nil)
	next.Opaque = 2
	writeFrame(t, nc, next)
	if resp := readResponse(t, nc, r); resp.Opaque != 2 {
		t.Fatalf("END_TRANSACTION with state 0 was answered: %d %q", resp.Code, resp.Remark)
	}

	pr.expect(wire.Success, "", wire.EndTransaction, end, nil)
	waitFor(t, func() bool { return b.store.MaxOffset("TX", 0) == 1 })
	pr.expect(wire.SystemError, "already decided", wire.EndTransaction, end, nil)
	wrong := maps.Clone(end)
	delete(wrong, "commitLogOffset")
	pr.expect(wire.SystemError, "<commitLogOffset> is null", wire.EndTransaction, wrong, nil)
	if n := b.store.MaxOffset("TX", 0); n != 1 {
		t.Fatalf("TX holds %d messages after one commit", n)
	}
}
