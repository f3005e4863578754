package acl

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mqops/mqops/wire"
)

// sendRequest is a SEND_MESSAGE_V2 as v2.1.2 sends it, signed.
func sendRequest(body int) *wire.Command {
	c := cmd(310, strings.Repeat("x", body), "a", "ProducerGroupA", "b", "TopicA", "c", "TBW102", "d", "4", "e", "1",
		"f", "0", "g", "1700000000000", "h", "0", "i", "UNIQ_KEY\x01AC1100010001000000000000000000AB\x02", "j", "0",
		"k", "false", "l", "16", "m", "false")
	wire.Sign(c, "producerA", "secretA1", "")
	return c
}

// BenchmarkACLVerify checks signed sends of three body sizes, with the
// fields in the order a Java client may send them (AccessKey and
// Signature last) and in key order, as rocketmq-client-go v2.1.2 and
// mqbench send them.
func BenchmarkACLVerify(b *testing.B) {
	ch := NewChecker(BrokerTable, mustParse(b, rules))
	for _, size := range []int{128, 1 << 10, 1 << 20} {
		for _, sorted := range []bool{false, true} {
			name := fmt.Sprintf("%dB", size)
			switch size {
			case 1 << 10:
				name = "1KiB"
			case 1 << 20:
				name = "1MiB"
			}
			if sorted {
				name += "-sorted"
			}
			b.Run(name, func(b *testing.B) {
				req := sendRequest(size)
				if sorted {
					slices.SortFunc(req.Ext, func(x, y wire.KV) int { return bytes.Compare(x.Key, y.Key) })
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu0 := cpuTime(b)
				for b.Loop() {
					if d := ch.Check(local, req); !d.OK {
						b.Fatal(d.Remark)
					}
				}
				// CPU time per check: on a shared machine ns/op counts the
				// time other processes held the CPU too.
				b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The check of an allowed request allocates nothing (ground rule 5).
func TestCheckAllocations(t *testing.T) {
	if raceOn {
		t.Skip("sync.Pool drops items under the race detector")
	}
	ch := NewChecker(BrokerTable, mustParse(t, rules))
	req := sendRequest(1024)
	ch.Check(local, req) // warm the account's HMAC pool
	if n := testing.AllocsPerRun(100, func() {
		if !ch.Check(local, req).OK {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}

// FuzzVerify: no input makes the checker panic, and the order of the
// extFields never changes the decision.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("topic\x00TopicTest\x00AccessKey\x00RocketMQ"), []byte("body"), "0jiwhsaYp5ObE5GObbZH1I8/FT4=", uint64(1), int32(10))
	f.Add([]byte("topic\x00TopicA\x00SecurityToken\x00t"), []byte{}, "", uint64(7), int32(34))
	f.Add([]byte("consumerGroup\x00GroupA\x00topic\x00%RETRY%GroupA"), []byte(`{"consumerGroup":"GroupA","mqSet":[{"topic":"TopicB"}]}`), "x", uint64(3), int32(41))
	s := mustParse(f, rules+"- accessKey: RocketMQ\n  secretKey: 12345678\n")
	broker := NewChecker(BrokerTable, s)
	ns := NewChecker(NamesrvTable, s)
	f.Fuzz(func(t *testing.T, fields, body []byte, sig string, seed uint64, code int32) {
		parts := strings.Split(string(fields), "\x00")
		c := &wire.Command{Code: code, Version: wire.Version, Body: body}
		seen := map[string]bool{}
		for i := 0; i+1 < len(parts); i += 2 {
			if seen[parts[i]] {
				continue
			}
			seen[parts[i]] = true
			c.Ext = append(c.Ext, wire.KV{Key: []byte(parts[i]), Value: []byte(parts[i+1])})
		}
		if !seen["AccessKey"] && seed%2 == 0 {
			c.Ext = append(c.Ext, wire.KV{Key: []byte("AccessKey"), Value: []byte("RocketMQ")})
		}
		if seed%3 == 0 {
			wire.Sign(c, "RocketMQ", "12345678", "")
		} else if !seen["Signature"] {
			c.Ext = append(c.Ext, wire.KV{Key: []byte("Signature"), Value: []byte(sig)})
		}
		for _, ch := range []*Checker{broker, ns} {
			want := ch.Check(local, c)
			if seed%3 == 0 && want.Reason == ReasonSignature {
				t.Fatalf("own signature refused: %+v", c)
			}
			r := rand.New(rand.NewPCG(seed, seed>>1))
			for range 3 {
				r.Shuffle(len(c.Ext), func(i, j int) { c.Ext[i], c.Ext[j] = c.Ext[j], c.Ext[i] })
				if got := ch.Check(local, c); got.OK != want.OK || got.Remark != want.Remark {
					t.Fatalf("order changed the decision: %+v vs %+v", got, want)
				}
			}
		}
	})
}

// The checks' cache of the last account and allowed topic never decides
// for another topic, another permission or other rules: between checks
// that hit it (the same request again), a topic the account may not use,
// a pull needing SUB on the cached topic, and reloaded rules that deny the
// topic, change the secret or drop the account are all decided afresh.
func TestCheckCacheFollowsRules(t *testing.T) {
	ch := NewChecker(BrokerTable, mustParse(t, rules))
	send := func(topic, sk string) *wire.Command {
		return signed(cmd(310, "body", "a", "PG", "b", topic), "producerA", sk)
	}
	expect := func(what string, req *wire.Command, ok bool, r Reason) {
		t.Helper()
		for range 3 { // the first fills the cache, the next ones hit it
			if d := ch.Check(local, req); d.OK != ok || d.Reason != r {
				t.Fatalf("%s: %+v, want ok=%v reason %v", what, d, ok, r)
			}
		}
	}
	expect("allowed topic", send("TopicA", "secretA1"), true, ReasonNone)
	expect("other topic", send("TopicB", "secretA1"), false, ReasonTopic)
	expect("allowed topic again", send("TopicA", "secretA1"), true, ReasonNone)
	expect("SUB on a topic held for PUB", signed(cmd(30, "", "topic", "TopicA"), "producerA", "secretA1"), false, ReasonTopic)
	expect("wrong secret", send("TopicA", "secretXX"), false, ReasonSignature)

	ch.Swap(mustParse(t, strings.Replace(rules, "  - TopicA=PUB\n- accessKey: consumerA", "  - TopicA=DENY\n- accessKey: consumerA", 1)))
	expect("topic denied by the reload", send("TopicA", "secretA1"), false, ReasonTopic)
	ch.Swap(mustParse(t, strings.Replace(rules, "secretKey: secretA1", "secretKey: secretA2", 1)))
	expect("old secret after the reload", send("TopicA", "secretA1"), false, ReasonSignature)
	expect("new secret", send("TopicA", "secretA2"), true, ReasonNone)
	ch.Swap(mustParse(t, strings.Replace(rules, "accessKey: producerA", "accessKey: producerB", 1)))
	expect("account removed by the reload", send("TopicA", "secretA2"), false, ReasonUnknownAccount)
}
