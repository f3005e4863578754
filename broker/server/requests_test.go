package server

import (
	"encoding/binary"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/mqops/mqops/wire"
)

// batchItem encodes one SEND_BATCH_MESSAGE item (requests.md §4.1).
func batchItem(body, props string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(20+len(body)+2+len(props)))
	b = append(b, make([]byte, 12)...) // magic, body CRC, flag
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	b = append(b, body...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(props)))
	return append(b, props...)
}

// TestSendRefusedLeavesNoTrace: every malformed or forbidden send gets
// the error code and remark a RocketMQ client acts on, nothing reaches the
// log, and the connection goes on serving.
func TestSendRefusedLeavesNoTrace(t *testing.T) {
	b := startBroker(t, map[string]string{"maxMessageSize": "1024", "autoCreateTopicEnable": "false"})
	p := newPeer(t, b, nil)
	p.createTopic("Bad", 2)
	phys := b.store.MaxPhyOffset()

	without := func(key string) map[string]string {
		f := sendFields("Bad", 0, "")
		delete(f, key)
		return f
	}
	with := func(key, value string) map[string]string {
		f := sendFields("Bad", 0, "")
		f[key] = value
		return f
	}
	v1 := map[string]string{"producerGroup": "PG", "topic": "Bad", "defaultTopic": "TBW102", "defaultTopicQueueNums": "4", "queueId": "0", "sysFlag": "0", "bornTimestamp": "1", "flag": "0"}
	batch := func(items ...[]byte) []byte {
		var out []byte
		for _, it := range items {
			out = append(out, it...)
		}
		return out
	}
	good := batchItem("x", "")
	cases := []struct {
		name   string
		code   int32
		fields map[string]string
		body   []byte
		want   int32
		remark string
	}{
		{"no producerGroup", wire.SendMessageV2, without("a"), []byte("x"), wire.SystemError, "<producerGroup> is null"},
		{"no topic", wire.SendMessageV2, without("b"), []byte("x"), wire.SystemError, "<topic> is null"},
		{"no defaultTopic", wire.SendMessageV2, without("c"), []byte("x"), wire.SystemError, "<defaultTopic> is null"},
		{"no defaultTopicQueueNums", wire.SendMessageV2, without("d"), []byte("x"), wire.SystemError, "<defaultTopicQueueNums> is null"},
		{"no queueId", wire.SendMessageV2, without("e"), []byte("x"), wire.SystemError, "<queueId> is null"},
		{"no sysFlag", wire.SendMessageV2, without("f"), []byte("x"), wire.SystemError, "<sysFlag> is null"},
		{"no bornTimestamp", wire.SendMessageV2, without("g"), []byte("x"), wire.SystemError, "<bornTimestamp> is null"},
		{"no flag", wire.SendMessageV2, without("h"), []byte("x"), wire.SystemError, "<flag> is null"},
		{"no fields at all", wire.SendMessage, nil, []byte("x"), wire.SystemError, "is null"},
		{"v1 without topic", wire.SendMessage, func() map[string]string { f := maps.Clone(v1); delete(f, "topic"); return f }(), []byte("x"), wire.SystemError, "<topic> is null"},
		{"queueId not a number", wire.SendMessageV2, with("e", "zero"), []byte("x"), wire.SystemError, "<queueId>"},
		{"bornTimestamp not a number", wire.SendMessageV2, with("g", "yesterday"), []byte("x"), wire.SystemError, "<bornTimestamp>"},
		{"sysFlag overflowing int64", wire.SendMessageV2, with("f", "99999999999999999999"), []byte("x"), wire.SystemError, "<sysFlag>"},
		{"body over maxMessageSize", wire.SendMessageV2, sendFields("Bad", 0, ""), make([]byte, 1025), wire.MessageIllegal, "larger than maxMessageSize 1024"},
		{"illegal topic name", wire.SendMessageV2, sendFields("bad topic!", 0, ""), []byte("x"), wire.SystemError, "illegal"},
		{"empty topic", wire.SendMessageV2, sendFields("", 0, ""), []byte("x"), wire.SystemError, ""},
		{"system topic", wire.SendMessageV2, sendFields("SCHEDULE_TOPIC_XXXX", 0, ""), []byte("x"), wire.NoPermission, "forbidden"},
		{"queue out of range", wire.SendMessageV2, sendFields("Bad", 7, ""), []byte("x"), wire.SystemError, "queueId[7] is illegal"},
		{"unknown topic, auto-create off", wire.SendMessageV2, sendFields("Unknown", 0, ""), []byte("x"), wire.TopicNotExist, "not exist"},
		{"batch: truncated item header", wire.SendBatchMessage, sendFields("Bad", 0, ""), good[:10], wire.MessageIllegal, "truncated item header"},
		{"batch: item size beyond body", wire.SendBatchMessage, sendFields("Bad", 0, ""), append(binary.BigEndian.AppendUint32(nil, 500), good[4:]...), wire.MessageIllegal, "item size 500"},
		{"batch: negative item size", wire.SendBatchMessage, sendFields("Bad", 0, ""), append(binary.BigEndian.AppendUint32(nil, 0x80000000), good[4:]...), wire.MessageIllegal, "item size"},
		{"batch: body length beyond item", wire.SendBatchMessage, sendFields("Bad", 0, ""), func() []byte {
			it := batchItem("xyz", "")
			binary.BigEndian.PutUint32(it[16:], 1000)
			return it
		}(), wire.MessageIllegal, "body length 1000"},
		{"batch: properties length wrong", wire.SendBatchMessage, sendFields("Bad", 0, ""), func() []byte {
			it := batchItem("xyz", "a\x01b")
			binary.BigEndian.PutUint16(it[23:], 9)
			return it
		}(), wire.MessageIllegal, "properties length 9"},
		{"batch: bad second item", wire.SendBatchMessage, sendFields("Bad", 0, ""), batch(good, good[:21]), wire.MessageIllegal, "malformed batch"},
		{"batch: empty", wire.SendBatchMessage, sendFields("Bad", 0, ""), nil, wire.MessageIllegal, "empty batch"},
		{"batch: transactional", wire.SendBatchMessage, with("f", strconv.Itoa(int(wire.SysFlagTransactionPrepared))), good, wire.MessageIllegal, "cannot be transactional"},
		{"batch: delayed", wire.SendBatchMessage, with("i", "DELAY\x013"), good, wire.MessageIllegal, "cannot be delayed"},
		{"batch: item over maxMessageSize", wire.SendBatchMessage, sendFields("Bad", 0, ""), batchItem(strings.Repeat("x", 1025), ""), wire.MessageIllegal, "larger than maxMessageSize"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			p.expect(tc.want, tc.remark, tc.code, tc.fields, tc.body)
		})
	}
	p.t = t
	if got := b.store.MaxPhyOffset(); got != phys {
		t.Fatalf("refused sends wrote %d bytes to the commit log", got-phys)
	}
	for q := int32(0); q < 2; q++ {
		if n := b.store.MaxOffset("Bad", q); n != 0 {
			t.Fatalf("queue %d holds %d messages after refused sends", q, n)
		}
	}
	if b.topics.Get([]byte("Unknown")) != nil {
		t.Fatal("a refused send created its topic")
	}
	// Refused sends the client asked not to be answered stay unanswered;
	// the connection still serves.
	nc, r := rawConn(t, b)
	ow := wire.NewRequest(wire.SendMessageV2, without("b"), []byte("x"))
	ow.Opaque, ow.Flag = 1, wire.FlagOneway
	writeFrame(t, nc, ow)
	ok := wire.NewRequest(wire.SendMessageV2, sendFields("Bad", 1, ""), []byte("stored"))
	ok.Opaque = 2
	writeFrame(t, nc, ok)
	if resp := readResponse(t, nc, r); resp.Opaque != 2 || resp.Code != wire.Success {
		t.Fatalf("after a refused oneway send: opaque %d code %d %q", resp.Opaque, resp.Code, resp.Remark)
	}
}

// TestUnknownRequestCode: a code the broker does not serve is answered
// REQUEST_CODE_NOT_SUPPORTED in the request's encoding, as Java's default
// processor does; a oneway one is not answered.
func TestUnknownRequestCode(t *testing.T) {
	b := startBroker(t, nil)
	p := newPeer(t, b, nil)
	p.expect(wire.RequestCodeNotSupported, " request type 9999 not supported", 9999, nil, nil)

	bin := wire.NewRequest(12345, map[string]string{"x": "y"}, []byte("body"))
	bin.SerializeType = wire.SerializeRocketMQ
	resp := p.invoke(bin)
	if resp.Code != wire.RequestCodeNotSupported || resp.SerializeType != wire.SerializeRocketMQ {
		t.Fatalf("binary request answered %d in serialize type %d", resp.Code, resp.SerializeType)
	}

	nc, r := rawConn(t, b)
	ow := wire.NewRequest(9999, nil, nil)
	ow.Opaque, ow.Flag = 1, wire.FlagOneway
	writeFrame(t, nc, ow)
	next := wire.NewRequest(wire.GetMaxOffset, map[string]string{"topic": "TBW102", "queueId": "0"}, nil)
	next.Opaque = 2
	writeFrame(t, nc, next)
	if resp := readResponse(t, nc, r); resp.Opaque != 2 || resp.Code != wire.Success {
		t.Fatalf("first answer: opaque %d code %d; the oneway request was answered", resp.Opaque, resp.Code)
	}
}

// TestConsumerOffsetRequests: committed offsets round-trip; a missing
// field, or one that is not a number, is named in the answer.
func TestConsumerOffsetRequests(t *testing.T) {
	b := startBroker(t, nil)
	p := newPeer(t, b, nil)
	p.createTopic("Off", 2)
	f := map[string]string{"consumerGroup": "CG", "topic": "Off", "queueId": "1", "commitOffset": "42"}
	p.expect(wire.Success, "", wire.UpdateConsumerOffset, f, nil)
	if off, _ := p.expect(wire.Success, "", wire.QueryConsumerOffset, f, nil).GetInt("offset"); off != 42 {
		t.Fatalf("queried offset %d, want 42", off)
	}
	for _, key := range []string{"consumerGroup", "topic", "queueId", "commitOffset"} {
		g := maps.Clone(f)
		delete(g, key)
		p.expect(wire.SystemError, "<"+key+"> is null", wire.UpdateConsumerOffset, g, nil)
	}
	g := maps.Clone(f)
	g["queueId"] = "one"
	p.expect(wire.SystemError, "<queueId> is not a valid number", wire.QueryConsumerOffset, g, nil)
}

// TestRequestIntegersOutOfRange: a 32-bit field given a value beyond 32
// bits is refused like any unparsable number, not wrapped into another
// queue, flag or offset.
func TestRequestIntegersOutOfRange(t *testing.T) {
	b := startBroker(t, nil)
	p := newPeer(t, b, nil)
	p.createTopic("Wide", 2)
	p.heartbeat("c@1", "CG", "", map[string]string{"Wide": "*"})
	p.send("Wide", 1, "", "in queue 1")
	waitFor(t, func() bool { return b.store.MaxOffset("Wide", 1) == 1 })
	phys := b.store.MaxPhyOffset()

	send := func(key, value string) map[string]string {
		f := sendFields("Wide", 0, "")
		f[key] = value
		return f
	}
	p.expect(wire.SystemError, "<queueId>", wire.SendMessageV2, send("e", "4294967296"), []byte("x"))        // was queue 0
	p.expect(wire.SystemError, "<queueId>", wire.SendMessageV2, send("e", "2147483648"), []byte("x"))        // was a random queue
	p.expect(wire.SystemError, "<sysFlag>", wire.SendMessageV2, send("f", "4294967300"), []byte("x"))        // was a half message
	p.expect(wire.SystemError, "<flag>", wire.SendMessageV2, send("h", "-4294967296"), []byte("x"))          // was flag 0
	p.expect(wire.SystemError, "<reconsumeTimes>", wire.SendMessageV2, send("j", "4294967297"), []byte("x")) // was 1
	if got := b.store.MaxPhyOffset(); got != phys {
		t.Fatalf("sends with out-of-range fields wrote %d bytes", got-phys)
	}

	pull := pullFields("CG", "Wide", 0, 0, 0)
	pull["queueId"] = "4294967297" // was queue 1
	p.expect(wire.SystemError, "<queueId>", wire.PullMessage, pull, nil)
	pull = pullFields("CG", "Wide", 1, 0, 0)
	pull["sysFlag"] = "4294967296"
	p.expect(wire.SystemError, "<sysFlag>", wire.PullMessage, pull, nil)

	commit := map[string]string{"consumerGroup": "CG", "topic": "Wide", "queueId": "4294967297", "commitOffset": "1"}
	p.expect(wire.SystemError, "<queueId>", wire.UpdateConsumerOffset, commit, nil) // was queue 1
	if _, found := b.offsets.Query("CG", "Wide", 1); found {
		t.Fatal("an out-of-range queueId committed the offset of queue 1")
	}
	for _, code := range []int32{wire.GetMaxOffset, wire.QueryConsumerOffset} {
		p.expect(wire.SystemError, "<queueId>", code, commit, nil)
	}
}
