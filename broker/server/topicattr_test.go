package server

import (
	"testing"

	"github.com/mqops/mqops/wire"
)

// TestTopicAttributesOverRemoting: UPDATE_AND_CREATE_TOPIC's "attributes"
// header (Java 5's mqadmin updateTopic -a) sets message.type, a request
// without it keeps the attribute, bad changes are refused and change
// nothing, and the attribute survives a restart (topics.json).
func TestTopicAttributesOverRemoting(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	b.Start()
	p := newPeer(t, b, nil)
	create := func(attrs string) map[string]string {
		return map[string]string{"topic": "Typed", "readQueueNums": "2", "writeQueueNums": "2", "perm": "6", "attributes": attrs}
	}
	p.expect(wire.SystemError, "only adding", wire.UpdateAndCreateTopic, create("-message.type"), nil)
	p.expect(wire.Success, "", wire.UpdateAndCreateTopic, create("+message.type=FIFO"), nil)
	if got := b.topics.Lookup("Typed").MessageType(); got != "FIFO" {
		t.Fatalf("message.type %q", got)
	}
	p.expect(wire.SystemError, "not one of", wire.UpdateAndCreateTopic, create("+message.type=ORDERED"), nil)
	p.expect(wire.SystemError, "unsupported", wire.UpdateAndCreateTopic, create("+queue.type=BCQ"), nil)
	p.createTopic("Typed", 4) // a 4.x request: no attributes header
	if tc := b.topics.Lookup("Typed"); tc.MessageType() != "FIFO" || tc.WriteQueueNums != 4 {
		t.Fatalf("after a 4.x update: %+v", tc)
	}
	p.expect(wire.Success, "", wire.UpdateAndCreateTopic, create("+message.type=TRANSACTION"), nil)
	_ = b.Close()

	b2 := openBroker(t, dir, nil)
	defer b2.Close()
	if got := b2.topics.Lookup("Typed").MessageType(); got != "TRANSACTION" {
		t.Fatalf("after restart: message.type %q", got)
	}
	b2.Start()
	p2 := newPeer(t, b2, nil)
	p2.expect(wire.Success, "", wire.UpdateAndCreateTopic, create("-message.type"), nil)
	if tc := b2.topics.Lookup("Typed"); tc.Attributes != nil || tc.MessageType() != "NORMAL" {
		t.Fatalf("after removal: %+v", tc)
	}
}

// TestGroupOrderlyAndRetryPolicy: RocketMQ 5's consumeMessageOrderly and
// groupRetryPolicy are stored with the group (and survive a restart); a
// policy that cannot space retries is refused.
func TestGroupOrderlyAndRetryPolicy(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, nil)
	b.Start()
	p := newPeer(t, b, nil)
	p.expect(wire.SystemError, "neither", wire.UpdateAndCreateSubGroup, nil,
		[]byte(`{"groupName":"G5","groupRetryPolicy":{"type":"LINEAR"}}`))
	p.expect(wire.SystemError, "initial", wire.UpdateAndCreateSubGroup, nil,
		[]byte(`{"groupName":"G5","groupRetryPolicy":{"type":"EXPONENTIAL","exponentialRetryPolicy":{"initial":0,"max":10,"multiplier":2}}}`))
	if b.groups.Lookup("G5") != nil {
		t.Fatal("a refused group was stored")
	}
	p.expect(wire.Success, "", wire.UpdateAndCreateSubGroup, nil,
		[]byte(`{"groupName":"G5","consumeEnable":true,"consumeMessageOrderly":true,"groupRetryPolicy":{"type":"EXPONENTIAL","exponentialRetryPolicy":{"initial":5000,"max":7200000,"multiplier":2}}}`))
	_ = b.Close()
	b2 := openBroker(t, dir, nil)
	defer b2.Close()
	g := b2.groups.Lookup("G5")
	if g == nil || !g.ConsumeMessageOrderly || g.GroupRetryPolicy == nil || g.GroupRetryPolicy.Type != wire.RetryPolicyExponential ||
		*g.GroupRetryPolicy.ExponentialRetryPolicy != (wire.ExponentialRetryPolicy{Initial: 5000, Max: 7200000, Multiplier: 2}) {
		t.Fatalf("after restart: %+v", g)
	}
}
