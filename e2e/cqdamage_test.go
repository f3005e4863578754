package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// cqSent is what was sent to one topic: the send results and the body of
// message i (sendN's "prefix-i").
type cqSent struct {
	topic, prefix string
	res           []*primitive.SendResult
}

// readBack pulls every queue of s.topic from 0 to its max offset with the
// official client and counts the sent messages that are not readable at
// their queue offset (missing) or have another message in their place
// (wrong). A pull answered with nothing at the same offset (a unit being
// rebuilt) is retried until the deadline.
func readBack(t *testing.T, c *cluster, group string, s cqSent, queues int) (missing, wrong int) {
	t.Helper()
	pc := newPullConsumer(t, c.ns.addr, group, s.topic)
	got := map[int]map[int64]*primitive.MessageExt{}
	deadline := time.Now().Add(15 * time.Second)
	for q := range queues {
		got[q] = map[int64]*primitive.MessageExt{}
		mq := &primitive.MessageQueue{Topic: s.topic, BrokerName: "broker-a", QueueId: q}
		end := maxOffset(t, c.broker.addr, s.topic, q)
		for off := int64(0); off < end; {
			res, err := pc.PullFrom(context.Background(), mq, off, 32)
			if err != nil {
				t.Fatalf("pull %s/%d at %d: %v", s.topic, q, off, err)
			}
			switch {
			case res.Status == primitive.PullFound:
				for _, m := range res.GetMessageExts() {
					got[q][m.QueueOffset] = m
				}
				off = res.NextBeginOffset
			case res.NextBeginOffset > off:
				off = res.NextBeginOffset // skipped: what the old store did at damage
			case time.Now().After(deadline):
				off++
			default:
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	for i, r := range s.res {
		m := got[r.MessageQueue.QueueId][r.QueueOffset]
		switch {
		case m == nil:
			missing++
		case m.Topic != s.topic || string(m.Body) != fmt.Sprintf("%s-%d", s.prefix, i):
			wrong++
		}
	}
	return missing, wrong
}

// storePath is a path under the broker's store dir.
func storePath(c *cluster, elem ...string) string {
	return filepath.Join(append([]string{string(c.dir), "store"}, elem...)...)
}

// cqFilePath is the consume-queue file of topic/queue holding unit base
// (100 units per file in these tests).
func cqFilePath(c *cluster, topic string, queue int, base int64) string {
	return storePath(c, "consumequeue", topic, fmt.Sprint(queue), fmt.Sprintf("%020d", base*20))
}

// recordSize reads the TOTALSIZE of the record at phys in the first
// segment.
func recordSize(t *testing.T, c *cluster, phys int64) int32 {
	t.Helper()
	f, err := os.Open(storePath(c, "commitlog", "00000000000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], phys); err != nil {
		t.Fatal(err)
	}
	return int32(binary.BigEndian.Uint32(b[:]))
}

// flipUnits points units [from, to) of topic/queue's file at base at the
// records of other (20-byte units: phys, size, tags code), as a bad write
// would. A running broker sees the change through its shared mapping.
func flipUnits(t *testing.T, c *cluster, topic string, queue int, base, from, to int64, other []*primitive.SendResult) {
	t.Helper()
	f, err := os.OpenFile(cqFilePath(c, topic, queue, base), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var u [20]byte
	for q := from; q < to; q++ {
		phys := phyOffset(t, other[int(q)%len(other)])
		binary.BigEndian.PutUint64(u[0:], uint64(phys))
		binary.BigEndian.PutUint32(u[8:], uint32(recordSize(t, c, phys)))
		binary.BigEndian.PutUint64(u[12:], 0)
		if _, err := f.WriteAt(u[:], (q-base)*20); err != nil {
			t.Fatal(err)
		}
	}
}

// waitCheckpoint waits until the store's checkpoint (broker/store
// checkpoint.go: dispatched offset at byte 16) covers the record at phys,
// so that damage below it is not undone by re-dispatch after a kill.
func waitCheckpoint(t *testing.T, c *cluster, r *primitive.SendResult) {
	t.Helper()
	phys := phyOffset(t, r)
	end := phys + int64(recordSize(t, c, phys))
	waitFor(t, 10*time.Second, "the checkpoint to cover every message", func() bool {
		b, err := os.ReadFile(storePath(c, "checkpoint"))
		return err == nil && len(b) >= 24 && int64(binary.BigEndian.Uint64(b[16:])) >= end
	})
}

// TestConsumeQueueDamage damages the consume queues of a stopped broker
// (one topic's directory deleted, a file cut, a middle file deleted), of
// a running one (units pointing at another topic's messages) and of a
// killed one (a queue's last file deleted), and reads every acknowledged
// message back at its queue offset with the official client.
func TestConsumeQueueDamage(t *testing.T) {
	cqConf := "mappedFileSizeConsumeQueue=2000" // 100 units per file
	c := startCluster(t, cqConf)
	createTopic(t, c, "CqA", 2)
	createTopic(t, c, "CqB", 2)
	p := newProducer(t, c.ns.addr)
	a := cqSent{"CqA", "a", sendN(t, p, "CqA", "a", 1500)}
	b := cqSent{"CqB", "b", sendN(t, p, "CqB", "b", 1500)}
	var b0 []*primitive.SendResult
	for _, r := range b.res {
		if r.MessageQueue.QueueId == 0 {
			b0 = append(b0, r)
		}
	}
	check := func(step, group string) {
		t.Helper()
		for _, s := range []cqSent{a, b} {
			missing, wrong := readBack(t, c, group+s.topic, s, 2)
			t.Logf("%s: %s: %d of %d messages unreadable at their queue offset, %d with another message served",
				step, s.topic, missing, len(s.res), wrong)
			if missing+wrong != 0 {
				t.Errorf("%s: %s: %d unreadable, %d wrong", step, s.topic, missing, wrong)
			}
		}
	}

	// 1. Stopped cleanly; CqB's directory deleted, CqA/0's fourth file cut
	// to 27 units and a bit, CqA/1's sixth file deleted.
	c.broker.stop()
	if err := os.RemoveAll(storePath(c, "consumequeue", "CqB")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(cqFilePath(c, "CqA", 0, 300), 27*20+9); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(cqFilePath(c, "CqA", 1, 500)); err != nil {
		t.Fatal(err)
	}
	c.broker = restartBroker(t, c, cqConf)
	check("after a clean stop and damage", "CG_cq1")
	if log := readLog(t, c, "storeerror.log"); strings.Count(log, "[RECOVERY] rebuilt consume queue") != 4 {
		t.Errorf("want 4 rebuilds logged (CqB/0, CqB/1, CqA/0, CqA/1):\n%s", log)
	}

	// 2. Running: ten units of CqA/1 point at CqB/0's messages.
	flipUnits(t, c, "CqA", 1, 100, 140, 150, b0)
	check("after units were flipped in a running broker", "CG_cq2")
	if log := readLog(t, c, "storeerror.log"); !strings.Contains(log, "[CONSUME_QUEUE] consume queue unit does not match its record") ||
		!strings.Contains(log, "[CONSUME_QUEUE] rebuilt consume queue") {
		t.Errorf("flipped units not logged and rebuilt:\n%s", log)
	}

	// 3. Killed after a checkpoint; CqA/0's last file deleted.
	waitCheckpoint(t, c, b.res[len(b.res)-1])
	c.broker.kill()
	if err := os.Remove(cqFilePath(c, "CqA", 0, 700)); err != nil {
		t.Fatal(err)
	}
	c.broker = restartBroker(t, c, cqConf)
	check("after kill -9 and damage", "CG_cq3")
	if log := readLog(t, c, "storeerror.log"); !strings.Contains(log, "queue ends at 700") {
		t.Errorf("lost tail not logged:\n%s", log)
	}

	// New messages continue at the right queue offsets.
	r, err := p.SendSync(context.Background(), primitive.NewMessage("CqB", []byte("after")))
	if err != nil {
		t.Fatal(err)
	}
	if r.QueueOffset != 750 {
		t.Errorf("send after the repairs at queue offset %d, want 750", r.QueueOffset)
	}
}
