package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/wire"
)

// lmqUnit is one message of a light queue as a raw pull returns it.
type lmqUnit struct {
	body string
	phys int64
}

// pullLMQ reads light queue lmq (queue 0) from offset 0 to its end with raw
// PULL_MESSAGE requests, checking the answers' offsets and that every
// record carries its offset in that queue in INNER_MULTI_QUEUE_OFFSET.
func pullLMQ(t *testing.T, broker, group, lmq string) []lmqUnit {
	t.Helper()
	var out []lmqUnit
	for off := int64(0); ; {
		f := pullFields(group, lmq, "0")
		f["queueOffset"], f["maxMsgNums"] = strconv.FormatInt(off, 10), "7"
		resp := invoke(t, broker, wire.PullMessage, f, nil)
		maxOff, _ := resp.GetInt("maxOffset")
		next, _ := resp.GetInt("nextBeginOffset")
		if resp.Code == wire.PullNotFound && off == maxOff {
			return out
		}
		if resp.Code != wire.Success {
			t.Fatalf("pull %s at %d: code %d %s", lmq, off, resp.Code, resp.Remark)
		}
		for body := resp.Body; len(body) > 0; {
			n, err := wire.CheckRecord(body)
			if err != nil {
				t.Fatalf("pull %s at %d: bad record: %v", lmq, off, err)
			}
			v := wire.RecordView(body[:n])
			body = body[n:]
			names := strings.Split(string(wire.PropertyValue(v.Properties(), wire.PropInnerMultiDispatch)), ",")
			offs := strings.Split(string(wire.PropertyValue(v.Properties(), wire.PropInnerMultiQueueOffset)), ",")
			i := -1
			for k, n := range names {
				if n == lmq {
					i = k
				}
			}
			if i < 0 || len(offs) != len(names) || offs[i] != strconv.Itoa(len(out)) {
				t.Fatalf("%s unit %d: record lists %q with offsets %q", lmq, len(out), names, offs)
			}
			if string(v.Topic()) != "LmqSource" {
				t.Fatalf("%s unit %d: record of topic %s", lmq, len(out), v.Topic())
			}
			out = append(out, lmqUnit{string(v.Body()), v.PhysicalOffset()})
		}
		if next != int64(len(out)) {
			t.Fatalf("pull %s at %d: nextBeginOffset %d after %d messages", lmq, off, next, len(out))
		}
		off = next
	}
}

// TestLightMessageQueues: the official producer sends messages whose
// INNER_MULTI_DISPATCH names light queues; raw pulls on each %LMQ% queue
// get exactly its messages at offsets 0, 1, …, also after kill -9 and a
// lost consume queue, and new messages continue the offsets. Consumer
// offsets and DELETE_TOPIC_IN_BROKER work on a light queue.
func TestLightMessageQueues(t *testing.T) {
	lmqOn := []string{"enableLmq=true", "enableMultiDispatch=true", "maxLmqConsumeQueueNum=3"}
	c := startCluster(t, lmqOn...)
	createTopic(t, c, "LmqSource", 2)
	p := newProducer(t, c.ns.addr)
	lmqs := []string{"%LMQ%e2e_a", "%LMQ%e2e_b", "%LMQ%e2e_c"}
	want := map[string][]string{}
	send := func(from, to int) {
		for i := from; i < to; i++ {
			var targets []string
			for k, l := range lmqs {
				if i%(k+1) == 0 { // a: every message, b: every 2nd, c: every 3rd
					targets = append(targets, l)
				}
			}
			body := fmt.Sprintf("lmq-%d", i)
			m := primitive.NewMessage("LmqSource", []byte(body))
			m.WithTag("t")
			m.WithProperty(wire.PropInnerMultiDispatch, strings.Join(targets, ","))
			r, err := p.SendSync(context.Background(), m)
			if err != nil || r.Status != primitive.SendOK {
				t.Fatalf("send %s: %v %v", body, err, r)
			}
			for _, l := range targets {
				want[l] = append(want[l], body)
			}
		}
	}
	check := func(what string) map[string][]lmqUnit {
		got := map[string][]lmqUnit{}
		for _, l := range lmqs {
			waitFor(t, 10*time.Second, l+" dispatched", func() bool { return maxOffset(t, c.broker.addr, l, 0) == int64(len(want[l])) })
			got[l] = pullLMQ(t, c.broker.addr, "lmq_e2e_group", l)
			var bodies []string
			for _, u := range got[l] {
				bodies = append(bodies, u.body)
			}
			if fmt.Sprint(bodies) != fmt.Sprint(want[l]) {
				t.Fatalf("%s: %s holds %v, want %v", what, l, bodies, want[l])
			}
		}
		return got
	}
	send(0, 30)
	before := check("after sending")

	// Consumer offsets for a light queue and a group.
	commit := invoke(t, c.broker.addr, wire.UpdateConsumerOffset, offsetFields("lmq_e2e_group", lmqs[1], "0", "9"), nil)
	if commit.Code != wire.Success {
		t.Fatalf("commit offset on %s: %d %s", lmqs[1], commit.Code, commit.Remark)
	}
	if off, code := committedOffset(t, c.broker.addr, "lmq_e2e_group", lmqs[1], 0); code != wire.Success || off != 9 {
		t.Fatalf("committed offset on %s: %d (code %d)", lmqs[1], off, code)
	}

	// kill -9, one light queue's consume queue lost meanwhile: the same
	// units come back from the commit log.
	c.broker.kill()
	if err := os.RemoveAll(filepath.Join(string(c.dir), "store", "consumequeue", lmqs[1])); err != nil {
		t.Fatal(err)
	}
	c.broker = restartBroker(t, c, lmqOn...)
	if after := check("after kill -9"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("light queues moved after kill -9:\nbefore %v\nafter  %v", before, after)
	}
	send(30, 45)
	before = check("after more sends")

	// A clean stop vouches for every unit (checkpoint and consume-queue
	// manifest at the log's end): a light queue's consume queue lost then
	// is rebuilt from the records' INNER_MULTI_QUEUE_OFFSET, not
	// re-dispatched.
	c.broker.stop()
	if err := os.RemoveAll(filepath.Join(string(c.dir), "store", "consumequeue", lmqs[0])); err != nil {
		t.Fatal(err)
	}
	c.broker = restartBroker(t, c, lmqOn...)
	if after := check("after a lost consume queue"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("light queues moved after a rebuild:\nbefore %v\nafter  %v", before, after)
	}

	// A light queue's consume queue is deleted like a topic's.
	del := invoke(t, c.broker.addr, wire.DeleteTopicInBroker, map[string]string{"topic": lmqs[2]}, nil)
	if del.Code != wire.Success {
		t.Fatalf("delete %s: %d %s", lmqs[2], del.Code, del.Remark)
	}
	if mo := maxOffset(t, c.broker.addr, lmqs[2], 0); mo != 0 {
		t.Fatalf("%s after delete: max offset %d", lmqs[2], mo)
	}
	if _, err := os.Stat(filepath.Join(string(c.dir), "store", "consumequeue", lmqs[2])); !os.IsNotExist(err) {
		t.Fatalf("%s consume queue after delete: %v", lmqs[2], err)
	}

	// maxLmqConsumeQueueNum=3: two exist, one more may be created, not two.
	over := primitive.NewMessage("LmqSource", []byte("over"))
	over.WithProperty(wire.PropInnerMultiDispatch, "%LMQ%e2e_d,%LMQ%e2e_e")
	if _, err := p.SendSync(context.Background(), over); err == nil || !strings.Contains(err.Error(), "LMQ_CONSUME_QUEUE_NUM_EXCEEDED") {
		t.Fatalf("send creating two light queues past the limit: %v", err)
	}
	bad := primitive.NewMessage("LmqSource", []byte("bad"))
	bad.WithProperty(wire.PropInnerMultiDispatch, "%LMQ%e2e_a,NotLight")
	if _, err := p.SendSync(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "INNER_MULTI_DISPATCH must list") {
		t.Fatalf("send with a list naming an ordinary topic: %v", err)
	}
	lmqs = lmqs[:2] // the deleted one is no longer sent to or checked
	send(45, 48)
	check("after refused sends")
}

// TestLightMessageQueuesOff: without enableLmq a %LMQ% topic is unknown
// and INNER_MULTI_DISPATCH is an ordinary property.
func TestLightMessageQueuesOff(t *testing.T) {
	c := startCluster(t)
	createTopic(t, c, "LmqSource", 1)
	p := newProducer(t, c.ns.addr)
	m := primitive.NewMessage("LmqSource", []byte("x"))
	m.WithProperty(wire.PropInnerMultiDispatch, "%LMQ%off")
	if _, err := p.SendSync(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	waitDispatched(t, c.broker.addr, "LmqSource", 1, 1)
	resp := invoke(t, c.broker.addr, wire.PullMessage, pullFields("g", "%LMQ%off", "0"), nil)
	if resp.Code != wire.TopicNotExist {
		t.Fatalf("pull of a light queue with enableLmq off: %d %s", resp.Code, resp.Remark)
	}
}
