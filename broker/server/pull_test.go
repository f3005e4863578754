package server

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// asyncPull sends a pull from its own goroutine; the answer (or error)
// arrives on the returned channel.
func (p *peer) asyncPull(fields map[string]string, timeout time.Duration) <-chan pullResult {
	ch := make(chan pullResult, 1)
	go func() {
		resp, err := p.cl.Invoke(p.addr, wire.NewRequest(wire.PullMessage, fields, nil), timeout)
		ch <- pullResult{resp, err}
	}()
	return ch
}

type pullResult struct {
	resp *wire.Command
	err  error
}

func waitPull(t *testing.T, ch <-chan pullResult) *wire.Command {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("pull: %v", r.err)
		}
		return r.resp
	case <-time.After(waitTimeout):
		t.Fatal("pull not answered")
		return nil
	}
}

func heldPulls(b *Broker) int64 { return b.holds.count.Load() }

// TestLongPollReleasedBySend: a pull that finds nothing is held; while it
// is held the same connection is served; a message sent to its queue
// answers it with that message (not the suspend timeout's PULL_NOT_FOUND).
func TestLongPollReleasedBySend(t *testing.T) {
	b := startBroker(t, nil)
	c := newPeer(t, b, nil)
	c.createTopic("LP", 2)
	c.heartbeat("consumer@1", "CG", "", map[string]string{"LP": "*"})

	pull := c.asyncPull(pullFields("CG", "LP", 1, 0, 20*time.Second), time.Minute)
	waitFor(t, func() bool { return heldPulls(b) == 1 })
	// Requests behind the held one on the same connection are answered.
	if off, _ := c.expect(wire.Success, "", wire.GetMaxOffset, map[string]string{"topic": "LP", "queueId": "1"}, nil).GetInt("offset"); off != 0 {
		t.Fatalf("max offset %d", off)
	}
	// A message to the other queue does not answer it.
	c.send("LP", 0, "", "other queue")
	waitFor(t, func() bool { return b.store.MaxOffset("LP", 0) == 1 })
	select {
	case r := <-pull:
		t.Fatalf("a message to queue 0 answered the pull of queue 1: %+v", r)
	default:
	}

	c.send("LP", 1, "TAGS\x01T", "hello")
	resp := waitPull(t, pull)
	if resp.Code != wire.Success {
		t.Fatalf("held pull answered %s %q, want SUCCESS", wire.ResponseName(resp.Code), resp.Remark)
	}
	recs := records(t, resp.Body)
	if len(recs) != 1 || string(recs[0].Body()) != "hello" || recs[0].QueueID() != 1 {
		t.Fatalf("held pull got %d records", len(recs))
	}
	if next, _ := resp.GetInt("nextBeginOffset"); next != 1 {
		t.Fatalf("nextBeginOffset %d, want 1", next)
	}
	waitFor(t, func() bool { return heldPulls(b) == 0 })
}

// TestLongPollSuspendTimeout: a held pull nothing arrives for is answered
// PULL_NOT_FOUND at its suspend time, leaving the consumer where it was.
func TestLongPollSuspendTimeout(t *testing.T) {
	b := startBroker(t, nil)
	c := newPeer(t, b, nil)
	c.createTopic("LPT", 1)
	c.heartbeat("consumer@1", "CG", "", map[string]string{"LPT": "*"})
	c.send("LPT", 0, "", "m0")
	waitFor(t, func() bool { return b.store.MaxOffset("LPT", 0) == 1 })

	resp := waitPull(t, c.asyncPull(pullFields("CG", "LPT", 0, 1, 300*time.Millisecond), time.Minute))
	if resp.Code != wire.PullNotFound {
		t.Fatalf("suspended pull answered %s, want PULL_NOT_FOUND", wire.ResponseName(resp.Code))
	}
	if next, _ := resp.GetInt("nextBeginOffset"); next != 1 {
		t.Fatalf("nextBeginOffset %d, want 1", next)
	}
	if maxOff, _ := resp.GetInt("maxOffset"); maxOff != 1 {
		t.Fatalf("maxOffset %d, want 1", maxOff)
	}
	if n := heldPulls(b); n != 0 {
		t.Fatalf("%d pulls still held", n)
	}
}

// TestLongPollTagFilter: a message the subscription filters out does not
// deliver to a held pull; it moves the consumer past it, and a matching
// message then answers the next held pull.
func TestLongPollTagFilter(t *testing.T) {
	b := startBroker(t, nil)
	c := newPeer(t, b, nil)
	c.createTopic("LPF", 1)
	c.heartbeat("consumer@1", "CG", "", map[string]string{"LPF": "TagA"})

	pull := c.asyncPull(pullFields("CG", "LPF", 0, 0, 20*time.Second), time.Minute)
	waitFor(t, func() bool { return heldPulls(b) == 1 })
	c.send("LPF", 0, "TAGS\x01TagB", "filtered")
	resp := waitPull(t, pull)
	if resp.Code == wire.Success {
		t.Fatalf("a TagA subscription received %d records of TagB", len(records(t, resp.Body)))
	}
	next, _ := resp.GetInt("nextBeginOffset")
	if resp.Code != wire.PullRetryImmediately || next != 1 {
		t.Fatalf("after a filtered message: %s next %d, want PULL_RETRY_IMMEDIATELY next 1", wire.ResponseName(resp.Code), next)
	}

	pull = c.asyncPull(pullFields("CG", "LPF", 0, next, 20*time.Second), time.Minute)
	waitFor(t, func() bool { return heldPulls(b) == 1 })
	c.send("LPF", 0, "TAGS\x01TagA", "wanted")
	resp = waitPull(t, pull)
	recs := records(t, resp.Body)
	if resp.Code != wire.Success || len(recs) != 1 || string(recs[0].Body()) != "wanted" {
		t.Fatalf("matching message: %s with %d records", wire.ResponseName(resp.Code), len(recs))
	}
}

// TestHeldPullOfClosedConnection: a consumer that disconnects while its
// pull is held is forgotten; later sends to the queue are not answered to
// a dead connection.
func TestHeldPullOfClosedConnection(t *testing.T) {
	b := startBroker(t, nil)
	c := newPeer(t, b, nil)
	c.createTopic("LPC", 1)
	c.heartbeat("consumer@1", "CG", "", map[string]string{"LPC": "*"})
	pull := c.asyncPull(pullFields("CG", "LPC", 0, 0, 20*time.Second), time.Minute)
	waitFor(t, func() bool { return heldPulls(b) == 1 })
	c.cl.Close()
	if r := <-pull; !errors.Is(r.err, remoting.ErrClosed) {
		t.Fatalf("pull on a closed client: %v", r.err)
	}
	waitFor(t, func() bool { return heldPulls(b) == 0 })
	// The group lost its only member.
	p := newPeer(t, b, nil)
	if ids := p.consumerIDs("CG"); ids != nil {
		t.Fatalf("group still lists %v", ids)
	}
	p.send("LPC", 0, "", "after")
}

// TestCloseWithHeldPulls: closing the broker with pulls held fails them at
// once on the client side and leaves no goroutine of this module behind.
func TestCloseWithHeldPulls(t *testing.T) {
	b := openBroker(t, t.TempDir(), nil)
	b.Start()
	c := newPeer(t, b, nil)
	c.createTopic("LPX", 4)
	c.heartbeat("consumer@1", "CG", "", map[string]string{"LPX": "*"})
	var pulls []<-chan pullResult
	for q := 0; q < 4; q++ {
		pulls = append(pulls, c.asyncPull(pullFields("CG", "LPX", q, 0, 20*time.Second), time.Hour))
	}
	waitFor(t, func() bool { return heldPulls(b) == 4 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range pulls {
		if r := <-ch; !errors.Is(r.err, remoting.ErrClosed) {
			t.Fatalf("held pull when the broker closed: %v %+v", r.err, r.resp)
		}
	}
	c.cl.Close()
	deadline := time.Now().Add(waitTimeout)
	for projectGoroutines() != "" {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after Close:\n%s", projectGoroutines())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHeldCopyKeepsOnlyPullFields: a held pull keeps the fields it is
// answered from and its frame identity, not other header fields, a body
// or a remark, however large the peer made them.
func TestHeldCopyKeepsOnlyPullFields(t *testing.T) {
	req := wire.NewRequest(wire.PullMessage, map[string]string{
		"consumerGroup": "G", "topic": "T", "queueId": "1", "queueOffset": "7", "maxMsgNums": "32", "sysFlag": "6",
		"commitOffset": "0", "suspendTimeoutMillis": "20000", "subVersion": "3", "subscription": "a||b", "expressionType": "TAG",
		"junk": strings.Repeat("j", 1<<20),
	}, []byte("body"))
	req.Opaque, req.Flag, req.Remark, req.SerializeType = 42, 0, []byte("remark"), wire.SerializeRocketMQ
	cp := heldCopy(req)
	if cp.Opaque != 42 || cp.Code != wire.PullMessage || cp.SerializeType != wire.SerializeRocketMQ || cp.Body != nil || cp.Remark != nil {
		t.Fatalf("copy %+v", cp)
	}
	want := req.Fields()
	delete(want, "junk")
	if got := cp.Fields(); !maps.Equal(got, want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	var h pullHeader
	if f, _ := parsePullHeader(cp, &h); f != "" || h.offset != 7 || string(h.subscription) != "a||b" {
		t.Fatalf("copy parses as %+v (field %q)", h, f)
	}
}
