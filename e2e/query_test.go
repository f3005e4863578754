package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/wire"
)

// records splits a body of concatenated stored records.
func records(t *testing.T, body []byte) []wire.RecordView {
	t.Helper()
	var out []wire.RecordView
	for len(body) > 0 {
		n, err := wire.CheckRecord(body)
		if err != nil {
			t.Fatalf("record %d: %v", len(out), err)
		}
		out = append(out, wire.RecordView(body[:n]))
		body = body[n:]
	}
	return out
}

func queryMessage(t *testing.T, broker, topic, key string, unique bool, begin, end int64) (*wire.Command, []wire.RecordView) {
	t.Helper()
	f := map[string]string{"topic": topic, "key": key, "maxNum": "64",
		"beginTimestamp": strconv.FormatInt(begin, 10), "endTimestamp": strconv.FormatInt(end, 10)}
	if unique {
		f["_UNIQUE_KEY_QUERY"] = "true"
	}
	resp := invoke(t, broker, wire.QueryMessage, f, nil)
	if resp.Code != wire.Success {
		return resp, nil
	}
	return resp, records(t, resp.Body)
}

// TestQueryMessages: by key with a time range, by unique key and by offset
// message id, also after a restart (the index lives on disk).
func TestQueryMessages(t *testing.T) {
	c := startCluster(t)
	const topic = "Indexed"
	createTopic(t, c, topic, 2)
	p := newProducer(t, c.ns.addr)
	start := time.Now().Add(-time.Second).UnixMilli()
	var results []*primitive.SendResult
	for i := 0; i < 6; i++ {
		m := primitive.NewMessage(topic, []byte(fmt.Sprintf("order-%d", i)))
		m.WithKeys([]string{fmt.Sprintf("order-%d", i), fmt.Sprintf("customer-%d", i%2)})
		r, err := p.SendSync(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	end := time.Now().Add(time.Second).UnixMilli()
	waitDispatched(t, c.broker.addr, topic, 2, 6)

	check := func(when string) {
		_, recs := queryMessage(t, c.broker.addr, topic, "customer-1", false, start, end)
		if len(recs) != 3 {
			t.Fatalf("%s: key customer-1 found %d messages, want 3", when, len(recs))
		}
		for _, r := range recs {
			if string(r.Topic()) != topic || int(r.Body()[len(r.Body())-1]-'0')%2 != 1 {
				t.Fatalf("%s: key customer-1 returned %q", when, r.Body())
			}
		}
		if resp, _ := queryMessage(t, c.broker.addr, topic, "customer-1", false, 0, start-60_000); resp.Code != wire.QueryNotFound {
			t.Fatalf("%s: a time range before the sends answered %s", when, wire.ResponseName(resp.Code))
		}
		if resp, _ := queryMessage(t, c.broker.addr, topic, "nobody", false, start, end); resp.Code != wire.QueryNotFound {
			t.Fatalf("%s: unknown key answered %s", when, wire.ResponseName(resp.Code))
		}
		_, recs = queryMessage(t, c.broker.addr, topic, results[4].MsgID, true, start, end)
		if len(recs) != 1 || string(recs[0].Body()) != "order-4" {
			t.Fatalf("%s: unique key lookup returned %d records", when, len(recs))
		}
		_, _, off, err := wire.ParseOffsetMsgID(results[2].OffsetMsgID)
		if err != nil {
			t.Fatal(err)
		}
		resp := invoke(t, c.broker.addr, wire.ViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}, nil)
		if recs := records(t, resp.Body); resp.Code != wire.Success || len(recs) != 1 || string(recs[0].Body()) != "order-2" {
			t.Fatalf("%s: view by id: %s", when, wire.ResponseName(resp.Code))
		}
	}
	check("running")
	c.broker.stop()
	c.broker = restartBroker(t, c)
	check("after restart")
}
