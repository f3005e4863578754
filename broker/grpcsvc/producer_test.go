package grpcsvc

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mqops/mqops/broker/transaction"
	"github.com/mqops/mqops/wire"
)

// TestQueueForGroupMatchesGuava: consistentHash gives the golden values
// of Guava's own test (HashingTest.testConsistentHash_correctness...
// linearCongruentialGeneratorCompatibility), so a group lands where Java's
// proxy puts it.
func TestQueueForGroupMatchesGuava(t *testing.T) {
	golden100 := []int{0, 55, 62, 8, 45, 59, 86, 97, 82, 59, 73, 37, 17, 56, 86, 21, 90, 37, 38, 83}
	for i, want := range golden100 {
		if got := consistentHash(int64(i), 100); got != want {
			t.Errorf("consistentHash(%d, 100) = %d, want %d", i, got, want)
		}
	}
	for _, c := range []struct {
		in      int64
		n, want int
	}{{10863919174838991, 11, 6}, {2016238256797177309, 11, 3}, {1673758223894951030, 11, 5}, {2, 100001, 80343}, {2201, 100001, 22152}, {2202, 100001, 15018}} {
		if got := consistentHash(c.in, c.n); got != c.want {
			t.Errorf("consistentHash(%d, %d) = %d, want %d", c.in, c.n, got, c.want)
		}
	}
	if h := javaStringHash("hello"); h != 99162322 {
		t.Errorf(`"hello".hashCode() = %d`, h)
	}
	if h := javaStringHash("€😀"); h != 8364*31*31+0xD83D*31+0xDE00 {
		t.Errorf("UTF-16 hash %d", h)
	}
	// Guava's documented property: growing n moves a key only to the new
	// bucket, and values stay in range.
	for _, g := range []string{"a", "order-1", "order-2", "客户", ""} {
		prev := QueueForGroup(g, 1)
		for n := 2; n <= 64; n++ {
			q := QueueForGroup(g, n)
			if q < 0 || int(q) >= n || (q != prev && int(q) != n-1) {
				t.Fatalf("group %q: %d queues → %d, %d queues → %d", g, n-1, prev, n, q)
			}
			prev = q
		}
	}
	spread := map[int32]bool{}
	for i := range 100 {
		spread[QueueForGroup("g"+string(rune('a'+i%26))+string(rune('a'+i/26)), 8)] = true
	}
	if len(spread) != 8 {
		t.Errorf("100 groups use %d of 8 queues", len(spread))
	}
}

// TestTypedSendsMapProperties: FIFO, delay and transactional messages
// reach the broker with Java's stored properties, and the transaction id
// of a half message names it for EndTransaction.
func TestTypedSendsMapProperties(t *testing.T) {
	s, rec := startService(t, TLSPermissive)
	c := dialService(t, s, false)
	group := "order-42"
	at := time.Now().Add(10 * time.Minute).Truncate(time.Millisecond)
	fifo, delay, tx := normal("FIFO", "f"), normal("DELAY", "d"), normal("TRANSACTION", "t")
	fifo.SystemProperties.MessageType, fifo.SystemProperties.MessageGroup = v2.MessageType_FIFO, &group
	delay.SystemProperties.MessageType, delay.SystemProperties.DeliveryTimestamp = v2.MessageType_DELAY, timestamppb.New(at)
	tx.SystemProperties.MessageType = v2.MessageType_TRANSACTION
	tx.SystemProperties.OrphanedTransactionRecoveryDuration = durationpb.New(7 * time.Second)
	var txID string
	for _, m := range []*v2.Message{fifo, delay, tx} {
		r, err := c.SendMessage(ctxFor(t, "c"), &v2.SendMessageRequest{Messages: []*v2.Message{m}})
		if err != nil || r.Status.Code != v2.Code_OK {
			t.Fatalf("%s: %v %v", m.Topic.Name, r, err)
		}
		if m == tx {
			txID = r.Entries[0].TransactionId
		} else if r.Entries[0].TransactionId != "" {
			t.Errorf("%s has a transaction id", m.Topic.Name)
		}
	}
	rec.mu.Lock()
	sent := rec.sent
	rec.mu.Unlock()
	prop := func(i int, k string) string { return string(wire.PropertyValue(sent[i].Properties, k)) }
	if sent[0].MessageGroup != group || prop(0, "__SHARDINGKEY") != group {
		t.Errorf("FIFO: group %q property %q", sent[0].MessageGroup, prop(0, "__SHARDINGKEY"))
	}
	if prop(1, wire.PropTimerDeliverMs) != itoa64(at.UnixMilli()) {
		t.Errorf("DELAY: TIMER_DELIVER_MS %q, want %d", prop(1, wire.PropTimerDeliverMs), at.UnixMilli())
	}
	if prop(2, wire.PropTranMsg) != "true" || prop(2, wire.PropCheckImmunityTime) != "7" || prop(2, wire.PropProducerGroup) != "TRANSACTION" {
		t.Errorf("TRANSACTION: %q %q %q", prop(2, wire.PropTranMsg), prop(2, wire.PropCheckImmunityTime), prop(2, wire.PropProducerGroup))
	}
	// The recorder stores at queue offset 2, commit log offset 0.
	if txID != transactionID(0, 2) {
		t.Errorf("transaction id %q", txID)
	}

	end := func(id string, res v2.TransactionResolution) v2.Code {
		r, err := c.EndTransaction(ctxFor(t, "c"), &v2.EndTransactionRequest{Topic: &v2.Resource{Name: "TRANSACTION"}, MessageId: "01AB", TransactionId: id, Resolution: res})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Code
	}
	if got := end("", v2.TransactionResolution_COMMIT); got != v2.Code_INVALID_TRANSACTION_ID {
		t.Errorf("blank id: %v", got)
	}
	if got := end("zz", v2.TransactionResolution_COMMIT); got != v2.Code_INVALID_TRANSACTION_ID {
		t.Errorf("foreign id: %v", got)
	}
	if got := end(txID, v2.TransactionResolution_TRANSACTION_RESOLUTION_UNSPECIFIED); got != v2.Code_OK {
		t.Errorf("unknown: %v", got)
	}
	if got := end(txID, v2.TransactionResolution_ROLLBACK); got != v2.Code_OK {
		t.Errorf("rollback: %v", got)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.ended) != 1 || rec.ended[0] != (ended{"TRANSACTION", 2, 0, false}) {
		t.Errorf("decisions reaching the broker: %+v (UNSPECIFIED must not reach it)", rec.ended)
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// TestRecoverOrphanedOverTelemetry: a check-back reaches a producer of the
// topic on its Telemetry stream as recover_orphaned_transaction_command,
// with the transaction id EndTransaction takes and the message as sent;
// with no producer of the topic it reports that nobody was told.
func TestRecoverOrphanedOverTelemetry(t *testing.T) {
	s, _ := startService(t, TLSPermissive)
	c := dialService(t, s, false)
	fields := map[string]string{"commitLogOffset": "4096", "tranStateTableOffset": "7"}
	props := wire.AppendProperty(nil, wire.PropTags, "TagA")
	props = wire.AppendProperty(props, wire.PropKeys, "k1 k2")
	props = wire.AppendProperty(props, wire.PropUniqKey, "01ABCDEF")
	props = wire.AppendProperty(props, wire.PropTranMsg, "true")
	props = wire.AppendProperty(props, "color", "blue")
	r := wire.Record{Topic: "T", QueueID: 1, BornTimestamp: 1700000000000, BornHost: make([]byte, 8), StoreHost: make([]byte, 8),
		Body: []byte("half"), Properties: props, SysFlag: wire.SysFlagTransactionPrepared}
	record := make([]byte, r.Size())
	r.EncodeTo(record)
	if s.RecoverOrphaned("T", fields, record) {
		t.Fatal("told a producer while none is connected")
	}

	stream, err := c.Telemetry(ctxFor(t, "p1"))
	if err != nil {
		t.Fatal(err)
	}
	pt := v2.ClientType_PRODUCER
	settings := &v2.Settings{ClientType: &pt, PubSub: &v2.Settings_Publishing{Publishing: &v2.Publishing{Topics: []*v2.Resource{{Name: "T"}}}}}
	if err := stream.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: settings}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if s.RecoverOrphaned("U", fields, record) {
		t.Error("told the producer of T about a transaction of U")
	}
	if !s.RecoverOrphaned("T", fields, record) {
		t.Fatal("the producer of T was not told")
	}
	cmd, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	rc := cmd.GetRecoverOrphanedTransactionCommand()
	m := rc.GetMessage()
	sp := m.GetSystemProperties()
	if rc.GetTransactionId() != transactionID(4096, 7) || m.GetTopic().GetName() != "T" || string(m.GetBody()) != "half" ||
		sp.GetMessageId() != "01ABCDEF" || sp.GetTag() != "TagA" || len(sp.GetKeys()) != 2 || sp.GetMessageType() != v2.MessageType_TRANSACTION ||
		m.GetUserProperties()["color"] != "blue" || len(m.GetUserProperties()) != 1 {
		t.Errorf("command %v", rc)
	}
}

// TestTypeCheckOff: with enableTopicMessageTypeCheck=false a FIFO message
// goes to a NORMAL topic, and producers are told not to check either
// (Settings validate_message_type).
func TestTypeCheckOff(t *testing.T) {
	rec := &recorder{}
	s, err := Listen(Config{Addr: "127.0.0.1:0", MaxRecvMsgSize: 1 << 20, TLSMode: TLSDisabled, MaxMessageSize: 1024, NoTypeCheck: true,
		Log: slog.New(slog.DiscardHandler)}, rec)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(s.Stop)
	c := dialService(t, s, false)
	group := "g"
	m := normal("T", "x")
	m.SystemProperties.MessageType, m.SystemProperties.MessageGroup = v2.MessageType_FIFO, &group
	if r, err := c.SendMessage(ctxFor(t, "c"), &v2.SendMessageRequest{Messages: []*v2.Message{m}}); err != nil || r.Status.Code != v2.Code_OK {
		t.Errorf("FIFO to a NORMAL topic without the check: %v %v", r, err)
	}
	stream, err := c.Telemetry(ctxFor(t, "c"))
	if err != nil {
		t.Fatal(err)
	}
	pt := v2.ClientType_PRODUCER
	if err := stream.Send(&v2.TelemetryCommand{Command: &v2.TelemetryCommand_Settings{Settings: &v2.Settings{ClientType: &pt,
		PubSub: &v2.Settings_Publishing{Publishing: &v2.Publishing{Topics: []*v2.Resource{{Name: "T"}}}}}}}); err != nil {
		t.Fatal(err)
	}
	reply, err := stream.Recv()
	if err != nil || reply.GetSettings().GetPublishing().GetValidateMessageType() {
		t.Errorf("settings %v %v: want validate_message_type false", reply, err)
	}
}

// TestEndTransactionRefusals: the broker's refusal picks the 5.x code by
// its sentinel (transaction.Service.End's) or, for a slave, its remoting
// code, and its remark is the message; a remark alone decides nothing.
func TestEndTransactionRefusals(t *testing.T) {
	s, rec := startService(t, TLSPermissive)
	c := dialService(t, s, false)
	for _, tc := range []struct {
		err  error
		want v2.Code
	}{
		{&transaction.Refused{Code: wire.SystemError, Remark: "transaction already decided: half message at queue offset 2", Err: transaction.ErrDecided}, v2.Code_INVALID_TRANSACTION_ID},
		{&transaction.Refused{Code: wire.SystemError, Remark: "The producer group wrong", Err: transaction.ErrMismatch}, v2.Code_INVALID_TRANSACTION_ID},
		{&transaction.Refused{Code: wire.SystemError, Remark: "the message at commit log offset 0 is not a half message", Err: transaction.ErrNotHalf}, v2.Code_INVALID_TRANSACTION_ID},
		{&transaction.Refused{Code: wire.SlaveNotAvailable, Remark: "this broker is a slave"}, v2.Code_HA_NOT_AVAILABLE},
		{&transaction.Refused{Code: wire.SystemError, Remark: "store committed message: wrong state"}, v2.Code_INTERNAL_SERVER_ERROR},
		{&transaction.Refused{Code: wire.MessageIllegal, Remark: "the committed message cannot be stored in a/b: MESSAGE_ILLEGAL"}, v2.Code_INTERNAL_SERVER_ERROR},
	} {
		rec.mu.Lock()
		rec.endErr = tc.err
		rec.mu.Unlock()
		r, err := c.EndTransaction(ctxFor(t, "c"), &v2.EndTransactionRequest{Topic: &v2.Resource{Name: "TRANSACTION"}, MessageId: "01AB",
			TransactionId: transactionID(0, 2), Resolution: v2.TransactionResolution_COMMIT})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Code != tc.want || r.Status.Message != tc.err.Error() {
			t.Errorf("%v: %v %q, want %v and the remark", tc.err, r.Status.Code, r.Status.Message, tc.want)
		}
	}
}
