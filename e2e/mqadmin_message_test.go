package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// jsonSend is a row of message send -o json.
type jsonSend struct {
	BrokerName  string `json:"brokerName"`
	QueueID     int    `json:"queueId"`
	Status      string `json:"sendResult"`
	MsgID       string `json:"msgId"`
	OffsetMsgID string `json:"offsetMsgId"`
	QueueOffset int64  `json:"queueOffset"`
}

// jsonMessage is a message of message get/query -o json.
type jsonMessage struct {
	admin.Message
	Body    string        `json:"body"`
	BodyHex string        `json:"bodyHex"`
	Tracks  []admin.Track `json:"tracks"`
}

// block parses a "Label:   value" message block.
func block(sec string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(sec, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestMqadminMessages is use cases 2 and 8: send with mqadmin, then find
// messages by offset id, by queue offset, by tag (bounded scan) and by key
// or unique key (index), and see which groups consumed them.
func TestMqadminMessages(t *testing.T) {
	c := startCluster(t)
	ns, broker := c.ns.addr, c.broker.addr
	cli(t, ns, "topic", "create", "-t", "UC2", "-b", broker, "--queues", "2")
	waitRoute(t, ns, "UC2", 1)
	begin := time.Now().UnixMilli()

	sent := tableOf(t, cli(t, ns, "message", "send", "-t", "UC2", "--body", "hello-1", "--tags", "TagA", "--keys", "k1,k2", "-b", "broker-a", "-q", "1"))
	sent.wantHeader(t, "Broker Name", "QID", "Send Result", "MsgId", "Offset MsgId", "Queue Offset")
	first := sent.rows[0]
	if len(sent.rows) != 1 || first["Broker Name"] != "broker-a" || first["QID"] != "1" || first["Send Result"] != "SEND_OK" || first["Queue Offset"] != "0" {
		t.Fatalf("send row %v", sent.rows)
	}
	var more []jsonSend
	cliJSON(t, ns, &more, "message", "send", "-t", "UC2", "--body", "\x01\x02binary", "--tags", "TagB", "--count", "3")
	if len(more) != 3 || more[0].Status != "SEND_OK" || more[0].OffsetMsgID == "" {
		t.Fatalf("send json %+v", more)
	}
	p := newProducer(t, ns)
	for i := 0; i < 6; i++ {
		tag := []string{"TagA", "TagB"}[i%2]
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("UC2", []byte(fmt.Sprintf("m-%d", i))).WithTag(tag)); err != nil {
			t.Fatal(err)
		}
	}
	waitDispatched(t, broker, "UC2", 2, 10)

	// Two groups: one takes everything, one only TagB.
	all, onlyB := newCollector(), newCollector()
	newPushConsumer(t, ns, "CG_uc2_all", "UC2", consumer.MessageSelector{}, all, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	newPushConsumer(t, ns, "CG_uc2_b", "UC2", consumer.MessageSelector{Type: consumer.TAG, Expression: "TagB"}, onlyB, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	var views []jsonMessage
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("consumed %d and %d distinct bodies; last message get: %+v", all.count(), onlyB.count(), views)
		}
	})
	// Bodies repeat (the three binary sends), so 8 and 4 distinct ones.
	waitFor(t, 30*time.Second, "both groups consumed", func() bool { return all.count() == 8 && onlyB.count() == 4 })

	// By offset id: fields, body, and the consumers' verdicts once their
	// offsets are committed (the Go client commits every few seconds).
	waitFor(t, 30*time.Second, "tracks CONSUMED", func() bool {
		cliJSON(t, ns, &views, "message", "get", "--id", first["Offset MsgId"])
		if len(views) != 1 || len(views[0].Tracks) != 2 {
			return false
		}
		tr := views[0].Tracks
		return tr[0].Group == "CG_uc2_all" && tr[0].Type == "CONSUMED" && tr[1].Group == "CG_uc2_b" && tr[1].Type == "CONSUMED_BUT_FILTERED"
	})
	v := views[0]
	if v.Topic != "UC2" || v.Tags != "TagA" || strings.Join(v.Keys, " ") != "k1 k2" || v.QueueID != 1 || v.QueueOffset != 0 ||
		v.Body != "hello-1" || v.StoreHost != broker || v.MsgID != first["MsgId"] || v.BrokerName != "broker-a" ||
		v.StoreTimestamp < begin || v.Properties[wire.PropUniqKey] != first["MsgId"] || !v.Tracks[0].Online {
		t.Fatalf("message json %+v", v)
	}
	out := cli(t, ns, "message", "get", "--id", first["Offset MsgId"])
	secs := sections(out)
	if len(secs) != 2 {
		t.Fatalf("message get output:\n%s", out)
	}
	b := block(secs[0])
	if b["Topic"] != "UC2" || b["Tags"] != "[TagA]" || b["Keys"] != "[k1 k2]" || b["Queue ID"] != "1" || b["Queue Offset"] != "0" ||
		b["Message Body"] != "hello-1" || b["Store Host"] != broker || !strings.HasPrefix(b["Born Host"], "127.0.0.1") || b["OffsetID"] != first["Offset MsgId"] {
		t.Fatalf("message block %v", b)
	}
	tracks := parseTable(t, secs[1])
	tracks.wantHeader(t, "Consumer Group", "Track Type", "Online", "Detail")
	if r := tracks.one(t, "Consumer Group", "CG_uc2_b"); r["Track Type"] != "CONSUMED_BUT_FILTERED" || r["Online"] != "true" {
		t.Fatalf("track row %v", r)
	}

	// By queue offset, and a binary body in hex.
	bin := more[0]
	out = cli(t, ns, "message", "get", "-t", "UC2", "-b", "broker-a", "-q", strconv.Itoa(bin.QueueID), "--offset", strconv.FormatInt(bin.QueueOffset, 10), "--no-track")
	if b := block(out); b["Message Body (hex)"] != "0102"+strings.ToUpper(fmt.Sprintf("%x", "binary")) || b["OffsetID"] != bin.OffsetMsgID || b["Tags"] != "[TagB]" {
		t.Fatalf("by offset:\n%s", out)
	}

	// By tag: a bounded scan of both queues.
	tagB := tableOf(t, cli(t, ns, "message", "query", "-t", "UC2", "--tag", "TagB", "--begin", strconv.FormatInt(begin, 10)))
	tagB.wantHeader(t, "Message ID", "QID", "Offset", "Broker Name", "Store Time", "Tags", "Keys", "Offset Message ID")
	if len(tagB.rows) != 6 || len(tagB.where("Tags", "TagB")) != 6 {
		t.Fatalf("tag scan rows %v", tagB.rows)
	}
	var capped []jsonMessage
	cliJSON(t, ns, &capped, "message", "query", "-t", "UC2", "--tag", "TagA || TagB", "--max", "4")
	if len(capped) != 4 {
		t.Fatalf("capped scan: %d rows", len(capped))
	}
	future := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	if empty := tableOf(t, cli(t, ns, "message", "query", "-t", "UC2", "--tag", "TagA", "--begin", future)); len(empty.rows) != 0 {
		t.Fatalf("scan from the future found %v", empty.rows)
	}

	// Failures.
	if msg := cliFail(t, ns, "message", "get", "--id", "not-an-id"); !strings.Contains(msg, "not an offset message id") {
		t.Fatalf("bad id: %s", msg)
	}
	if msg := cliFail(t, ns, "message", "get", "-t", "UC2", "-b", "broker-a", "-q", "0", "--offset", "999"); !strings.Contains(msg, "no message at offset 999") {
		t.Fatalf("bad offset: %s", msg)
	}

	// By key and by unique key go through the broker's index.
	byKey := tableOf(t, cli(t, ns, "message", "query", "-t", "UC2", "--key", "k2"))
	if r := byKey.one(t, "Message ID", first["MsgId"]); r["QID"] != "1" || r["Offset"] != "0" || r["Keys"] != "k1,k2" {
		t.Fatalf("by key %v", r)
	}
	cliJSON(t, ns, &views, "message", "get", "--unique-key", first["MsgId"], "-t", "UC2", "--no-track")
	if len(views) != 1 || views[0].OffsetMsgID != first["Offset MsgId"] {
		t.Fatalf("by unique key %+v", views)
	}
	// A client id given as --id falls back to the index with -t.
	cliJSON(t, ns, &views, "message", "get", "--id", first["MsgId"], "-t", "UC2", "--no-track")
	if len(views) != 1 || views[0].Body != "hello-1" {
		t.Fatalf("id fallback %+v", views)
	}
}
