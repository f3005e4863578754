package amqpengine

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// readyBytesOf is the queue's ready body bytes as the limits see them.
func readyBytesOf(t *testing.T, r *rig, queue string) int64 {
	t.Helper()
	d, err := r.e.path()
	must(t, err)
	q, err := d.lookup(r.e, "/", queue)
	must(t, err)
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.readyBytesLocked(d.be.Store)
}

// Drop-head by bytes: the oldest ready messages go (dead-lettered, reason
// maxlen) until the bodies fit; unacked messages do not count.
func TestMaxLengthBytesDropHead(t *testing.T) {
	r, _ := dlxRig(t, Args{"x-max-length-bytes": int64(10)})
	r.publish(t, "", "q", "aaaa", "bbbb", "cccc") // 12 bytes: aaaa goes
	if n := readyBytesOf(t, r, "q"); n != 8 {
		t.Fatalf("ready bytes %d, want 8", n)
	}
	// Unacked messages leave the count: two more fit beside them.
	ds := r.fetch(t, "q", "s", 2, 0)
	wantBodies(t, ds, "bbbb", "cccc")
	r.publish(t, "", "q", "dddd", "eeeee", "ff") // 11 bytes ready: dddd goes
	if n := readyBytesOf(t, r, "q"); n != 7 {
		t.Fatalf("ready bytes %d, want 7", n)
	}
	// Released messages count again, at the head: the trim after the
	// next publish drops them first.
	if n, err := r.e.Release("/", "s", nil); err != nil || n != 2 {
		t.Fatalf("released %d %v", n, err)
	}
	if n := readyBytesOf(t, r, "q"); n != 15 {
		t.Fatalf("ready bytes after release %d, want 15", n)
	}
	r.publish(t, "", "q", "g") // 16 bytes: bbbb, cccc go
	wantBodies(t, r.fetch(t, "q", "s2", 10, 0), "eeeee", "ff", "g")
	if n := readyBytesOf(t, r, "q"); n != 0 {
		t.Fatalf("ready bytes after fetching all %d, want 0", n)
	}
	dl := r.fetch(t, "dlq", "s", 10, 0)
	wantBodies(t, dl, "aaaa", "dddd", "bbbb", "cccc")
	if d, _ := death(t, headersOf(t, dl[0])); d["reason"] != ReasonMaxLen {
		t.Fatalf("x-death %v", d)
	}
}

// Reject-publish by bytes refuses a message that would not fit (RabbitMQ's
// classic queue: ready bytes + body > limit), also one bigger than the
// limit on an empty queue; a smaller one may still fit after.
func TestMaxLengthBytesRejectPublish(t *testing.T) {
	r, _ := dlxRig(t, Args{"x-max-length-bytes": int64(10), "x-overflow": "reject-publish-dlx"})
	res := r.publish(t, "", "q", "aaaaaaaaaaaa", "aaaa", "bbbb", "ccc", "dd", "e")
	want := []bool{false, true, true, false, true, false}
	for i, ok := range want {
		if got := res[i].Status == wire.AMQPStored; got != ok {
			t.Fatalf("message %d: %+v, want stored %v", i, res[i], ok)
		}
	}
	wantBodies(t, r.fetch(t, "q", "s", 10, 0), "aaaa", "bbbb", "dd")
	wantBodies(t, r.fetch(t, "dlq", "s", 10, 0), "aaaaaaaaaaaa", "ccc", "e")
	if res := r.publish(t, "", "q", "0123456789"); res[0].Status != wire.AMQPStored {
		t.Fatalf("exactly the limit on an emptied queue: %+v", res[0])
	}
}

// With both limits, whichever is reached first applies.
func TestMaxLengthAndBytes(t *testing.T) {
	r, _ := dlxRig(t, Args{"x-max-length": int64(3), "x-max-length-bytes": int64(6)})
	r.publish(t, "", "q", "a", "b", "c", "d") // the count limit: a goes
	r.publish(t, "", "q", "eeeee")            // the bytes limit: b, c go
	wantBodies(t, r.fetch(t, "q", "s", 10, 0), "d", "eeeee")
	wantBodies(t, r.fetch(t, "dlq", "s", 10, 0), "a", "b", "c")

	r2, _ := dlxRig(t, Args{"x-max-length": int64(2), "x-max-length-bytes": int64(100), "x-overflow": "reject-publish"})
	res := r2.publish(t, "", "q", "a", "b", "c")
	if res[2].Status != wire.AMQPFailed {
		t.Fatalf("third message past x-max-length 2: %+v", res[2])
	}
}

// After a restart the byte count is rebuilt from the store when the
// queue's state loads: the limit holds across it.
func TestMaxLengthBytesRestart(t *testing.T) {
	r := newRig(t)
	v, _ := r.e.Vhost("/")
	_, err := v.DeclareQueue(QueueDecl{Name: "q", Durable: true, Args: Args{"x-max-length-bytes": int64(10), "x-overflow": "reject-publish"}})
	must(t, err)
	r.publish(t, "", "q", "aaa", "bbb", "ccc")
	ds := r.fetch(t, "q", "s", 1, 0) // in flight at the crash: ready again after
	wantBodies(t, ds, "aaa")
	r.reopen(t)
	if n := readyBytesOf(t, r, "q"); n != 9 {
		t.Fatalf("ready bytes after restart %d, want 9", n)
	}
	res := r.publish(t, "", "q", "dd", "e")
	if res[0].Status != wire.AMQPFailed || res[1].Status != wire.AMQPStored {
		t.Fatalf("results after restart %+v", res)
	}
	wantBodies(t, r.fetch(t, "q", "s", 10, 0), "aaa", "bbb", "ccc", "e")
}

// The ready bytes kept step by step equal a count rebuilt from the store
// after every step of a random mix of what makes messages ready or not:
// publish (drop-head trims), fetch, ack, reject, release, consume
// timeout, expiry at the head, purge. After each publish the queue is
// within its limit.
func TestMaxLengthBytesBookkeeping(t *testing.T) {
	r, _ := dlxRig(t, Args{"x-max-length-bytes": int64(64)})
	exp, err := encodeProperties(&amqp.Properties{Expiration: "1"})
	must(t, err)
	d, err := r.e.path()
	must(t, err)
	q, err := d.lookup(r.e, "/", "q")
	must(t, err)
	check := func(step int, op string) int64 {
		t.Helper()
		q.mu.Lock()
		defer q.mu.Unlock()
		kept := q.readyBytesLocked(d.be.Store)
		q.bytes.on = false
		if rebuilt := q.readyBytesLocked(d.be.Store); kept != rebuilt {
			t.Fatalf("step %d (%s): ready bytes kept %d, rebuilt from the store %d", step, op, kept, rebuilt)
		}
		return kept
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var held []uint64
	take := func() uint64 {
		i := rnd.IntN(len(held))
		h := held[i]
		held = slices.Delete(held, i, i+1)
		return h
	}
	for step := range 600 {
		op := ""
		switch k := rnd.IntN(10); {
		case k < 4:
			op = "publish"
			var ms []PublishMsg
			for range 1 + rnd.IntN(3) {
				m := PublishMsg{RoutingKey: "q", Body: make([]byte, rnd.IntN(24))}
				if rnd.IntN(4) == 0 {
					m.Properties = exp
				}
				ms = append(ms, m)
			}
			_, err := r.e.Publish("/", "", ms)
			must(t, err)
			if n := check(step, op); n > 64 {
				t.Fatalf("step %d: %d ready bytes after a publish, limit 64", step, n)
			}
			continue
		case k < 6:
			op = "fetch"
			session := []string{"s1", "s2"}[rnd.IntN(2)]
			ds, _, _, err := r.e.Fetch("/", "q", session, 1+rnd.IntN(3), 0, false, time.Hour)
			must(t, err)
			for _, dl := range ds {
				held = append(held, dl.Handle)
			}
		case k == 6 && len(held) > 0:
			op = "ack/reject"
			it := SettleItem{Handle: take(), Op: []string{wire.AMQPAck, wire.AMQPReject}[rnd.IntN(2)]}
			must2(r.e.Settle("/", []SettleItem{it}))
		case k == 7:
			op = "release s1"
			must2(r.e.Release("/", "s1", nil))
		case k == 8:
			op = "expire"
			r.e.SweepExpired(time.Now().Add(time.Hour))
			if rnd.IntN(4) == 0 {
				op = "consume timeout"
				r.e.ExpireDeliveries(time.Now().Add(2 * time.Hour))
			}
		case k == 9 && rnd.IntN(5) == 0:
			op = "purge"
			_, err := r.e.PurgeQueue("/", "q", Owner{})
			must(t, err)
		}
		check(step, op)
	}
}
