package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/mqops/mqops/wire"
)

// sqlHeartbeat registers group with an SQL92 subscription to topic and
// returns the heartbeat's remark.
func (p *peer) sqlHeartbeat(group, topic, expr string) string {
	p.t.Helper()
	hb := wire.HeartbeatData{ClientID: "sql@1", ProducerDataSet: []wire.ProducerData{}, ConsumerDataSet: []wire.ConsumerData{{
		GroupName: group, ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING", ConsumeFromWhere: "CONSUME_FROM_FIRST_OFFSET",
		SubscriptionDataSet: []wire.SubscriptionData{{Topic: topic, SubString: expr, ExpressionType: "SQL92", SubVersion: 1}},
	}}}
	return string(p.expect(wire.Success, "", wire.HeartBeat, nil, wire.Marshal(hb)).Remark)
}

// sendMixed stores messages whose property a is 1..9, "abc" or absent,
// tagged x, y, z in turn (message i at offset i, body "m<i>"), and waits
// until the consume queue holds them all: a send is answered before its
// record is dispatched.
func sendMixed(b *Broker, p *peer, topic string) {
	p.t.Helper()
	for i, a := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "abc", ""} {
		props := map[string]string{"TAGS": string("xyz"[i%3])}
		if a != "" {
			props["a"] = a
		}
		if off := p.send(topic, 0, string(wire.AppendProperties(nil, props)), "m"+strconv.Itoa(i)); off != int64(i) {
			p.t.Fatalf("message %d stored at offset %d", i, off)
		}
	}
	if err := b.store.WaitDispatched(context.Background(), b.store.MaxPhyOffset()); err != nil {
		p.t.Fatal(err)
	}
}

const e2eSelector = "a BETWEEN 3 AND 5 AND TAGS IN ('x','y')"

// TestPullSQL92Filter: with enablePropertyFilter a pull returns exactly
// the messages the heartbeat's SQL92 expression selects, and its next
// offset moves past the others (a property that is not a number is Java's
// evaluation error: skipped, not delivered).
func TestPullSQL92Filter(t *testing.T) {
	b := startBroker(t, map[string]string{"enablePropertyFilter": "true"})
	p := newPeer(t, b, nil)
	p.createTopic("SqlT", 1)
	sendMixed(b, p, "SqlT")
	if remark := p.sqlHeartbeat("SqlG", "SqlT", e2eSelector); remark != "" {
		t.Fatalf("heartbeat remark %q", remark)
	}
	resp := p.expect(wire.Success, "", wire.PullMessage, pullFields("SqlG", "SqlT", 0, 0, 0), nil)
	var got []string
	for _, r := range records(t, resp.Body) {
		got = append(got, string(r.Body()))
	}
	// a=3 (z) is out; a=4 (x) and a=5 (y) are in.
	if strings.Join(got, ",") != "m3,m4" {
		t.Fatalf("delivered %v, want m3,m4", got)
	}
	if next, _ := resp.GetInt("nextBeginOffset"); next != 11 {
		t.Fatalf("nextBeginOffset %d, want 11 (past the skipped messages)", next)
	}
	// From offset 5 on nothing matches: the consumer is moved past it all.
	resp = p.expect(wire.PullRetryImmediately, "", wire.PullMessage, pullFields("SqlG", "SqlT", 0, 5, 0), nil)
	if next, _ := resp.GetInt("nextBeginOffset"); next != 11 || len(resp.Body) != 0 {
		t.Fatalf("nextBeginOffset %d, body %d bytes; want 11, none", next, len(resp.Body))
	}

	// A pull carrying its own expression (PullSysFlag subscription bit).
	own := pullFields("OwnG", "SqlT", 0, 0, 0)
	own["sysFlag"] = strconv.Itoa(pullSubscription)
	own["expressionType"] = "SQL92"
	own["subscription"] = "a > 7 OR TAGS = 'y' AND a IS NULL" // AND binds first
	resp = p.expect(wire.Success, "", wire.PullMessage, own, nil)
	got = got[:0]
	for _, r := range records(t, resp.Body) {
		got = append(got, string(r.Body()))
	}
	if strings.Join(got, ",") != "m7,m8,m10" {
		t.Fatalf("own expression delivered %v, want m7,m8,m10", got)
	}
}

// TestPullSQL92Refused: what Java refuses is refused, with its codes, and
// the remark names the problem; the heartbeat still registers the group.
func TestPullSQL92Refused(t *testing.T) {
	off := startBroker(t, nil) // enablePropertyFilter=false, Java's default
	p := newPeer(t, off, nil)
	p.createTopic("SqlT", 1)
	p.send("SqlT", 0, "a\x014", "m")
	if remark := p.sqlHeartbeat("SqlG", "SqlT", "a = 4"); !strings.Contains(remark, "enablePropertyFilter=false") {
		t.Fatalf("heartbeat remark %q", remark)
	}
	if ids := p.consumerIDs("SqlG"); len(ids) != 1 {
		t.Fatalf("group not registered: %v", ids)
	}
	p.expect(wire.SystemError, "The broker does not support consumer to filter message by SQL92", wire.PullMessage, pullFields("SqlG", "SqlT", 0, 0, 0), nil)
	// The key is live, as in Java.
	p.expect(wire.Success, "", wire.UpdateBrokerConfig, nil, []byte("enablePropertyFilter=true\n"))
	p.expect(wire.Success, "", wire.PullMessage, pullFields("SqlG", "SqlT", 0, 0, 0), nil)

	on := startBroker(t, map[string]string{"enablePropertyFilter": "true"})
	p = newPeer(t, on, nil)
	p.createTopic("SqlT", 1)
	p.send("SqlT", 0, "a\x014", "m")
	if remark := p.sqlHeartbeat("BadG", "SqlT", "a BETWEEN 5 AND 1"); !strings.Contains(remark, "must less than or equal") {
		t.Fatalf("heartbeat remark %q", remark)
	}
	p.expect(wire.SubscriptionParseFailed, "left value(5) must less than or equal to right value(1)", wire.PullMessage, pullFields("BadG", "SqlT", 0, 0, 0), nil)
	for expr, remark := range map[string]string{
		"a = ":      "encountered end of expression",
		"a != 1":    `unexpected character '!' at column 3`,
		"":          "expected an expression",
		"a IN (1)":  "expected a string literal",
		"a > 'abc'": "cannot be compared",
	} {
		own := pullFields("OwnG", "SqlT", 0, 0, 0)
		own["sysFlag"] = strconv.Itoa(pullSubscription)
		own["expressionType"] = "SQL92"
		own["subscription"] = expr
		p.expect(wire.SubscriptionParseFailed, remark, wire.PullMessage, own, nil)
	}
	own := pullFields("OwnG", "SqlT", 0, 0, 0)
	own["sysFlag"] = strconv.Itoa(pullSubscription)
	own["expressionType"] = "CLASS"
	own["subscription"] = "a = 1"
	p.expect(wire.SubscriptionParseFailed, `expression type "CLASS" is not supported`, wire.PullMessage, own, nil)
}

// TestCheckClientConfig: the start-up check of Java consumers.
func TestCheckClientConfig(t *testing.T) {
	check := func(p *peer, want int32, remark, typ, expr string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"clientId": "c@1", "group": "G",
			"subscriptionData": wire.SubscriptionData{Topic: "T", SubString: expr, ExpressionType: typ, SubVersion: 1}})
		p.expect(want, remark, wire.CheckClientConfig, nil, body)
	}
	off := newPeer(t, startBroker(t, nil), nil)
	check(off, wire.Success, "", "TAG", "a || b")
	check(off, wire.SystemError, "does not support consumer to filter message by SQL92", "SQL92", "a = 1")
	on := newPeer(t, startBroker(t, map[string]string{"enablePropertyFilter": "true"}), nil)
	check(on, wire.Success, "", "SQL92", "a = 1")
	check(on, wire.SubscriptionParseFailed, "invalid SQL92 expression", "SQL92", "a = = 1")
	on.expect(wire.Success, "", wire.CheckClientConfig, nil, nil)
	on.expect(wire.SystemError, "malformed", wire.CheckClientConfig, nil, []byte("{"))
}

// BenchmarkPullSQL92 is BenchmarkPullPipelined with an SQL92 subscription
// that selects 24 of 64 stored messages: every pull evaluates 64 of them.
func BenchmarkPullSQL92(b *testing.B) {
	br := startBroker(b, map[string]string{"enablePropertyFilter": "true"})
	conn, err := net.Dial("tcp", br.srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 64; i++ {
		req := wire.NewRequest(wire.SendMessageV2, map[string]string{
			"a": "PG", "b": "BenchSQL", "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "0", "h": "0",
			"i": fmt.Sprintf("TAGS\x01%c\x02UNIQ_KEY\x017F0000010001000000001A2B3C4D%04d\x02a\x01%d\x02", "xyz"[i%3], i, i%8),
			"j": "0", "k": "false",
		}, make([]byte, 1024))
		roundTrip(b, conn, wire.AppendFrame(nil, req))
	}
	pullBench(b, br, conn, wire.SubscriptionData{Topic: "BenchSQL", SubString: "a BETWEEN 3 AND 5 AND TAGS IN ('x','y','z')", ExpressionType: "SQL92"}, 64, 24*1024)
}

// TestPullSQL92PathAllocations: filtering allocates nothing per message,
// matched or not (see TestPullPathAllocations).
func TestPullSQL92PathAllocations(t *testing.T) {
	atMostOneAlloc(t, "a request on the pull path with an SQL92 filter", BenchmarkPullSQL92)
}
