package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/wire"
)

// timerRecords collects, per message body, the distinct records it
// arrived in ("queue:offset" of the real topic). A consumer reading one
// record again after a failover (its offset was committed on the old
// master after the last sync) is the same record; a timer message
// delivered twice is two records.
type timerRecords struct {
	mu   sync.Mutex
	recs map[string]map[string]bool
	all  map[string]bool
}

func (r *timerRecords) consume(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		rec := fmt.Sprintf("%d:%d", m.Queue.QueueId, m.QueueOffset)
		if r.recs[string(m.Body)] == nil {
			r.recs[string(m.Body)] = map[string]bool{}
		}
		r.recs[string(m.Body)][rec] = true
		r.all[rec] = true
	}
	return consumer.ConsumeSuccess, nil
}

// count is how many records carried body.
func (r *timerRecords) count(body string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recs[body])
}

func (r *timerRecords) records() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}

// timerCheckpoint asks addr for its timer checkpoint (GET_TIMER_CHECK_POINT,
// raw remoting frames); ok is false when it answers anything but SUCCESS
// with a valid body.
func timerCheckpoint(addr string) (wire.TimerCheckpoint, bool) {
	resp := ctlCall(addr, wire.GetTimerCheckPoint, nil, nil)
	if resp == nil || resp.Code != wire.Success {
		return wire.TimerCheckpoint{}, false
	}
	ck, err := wire.DecodeTimerCheckpoint(resp.Body)
	return ck, err == nil
}

// sendTimers sends n timer messages prefix-0.. due from first on, step
// apart, and returns their bodies and the last due time.
func sendTimers(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic, prefix string, n int, first, step time.Duration) ([]string, time.Time) {
	t.Helper()
	var bodies []string
	var last time.Time
	for i := range n {
		body := fmt.Sprintf("%s-%d", prefix, i)
		last = sendTimer(t, p, topic, body, "TIMER_DELIVER_MS", at(first+time.Duration(i)*step))
		bodies = append(bodies, body)
	}
	return bodies, last
}

// Controller mode, two replicas: timer messages due before a kill -9 of
// the master are delivered by it; once the slave's timer checkpoint (synced
// from the master every 10 s) covers them, the slave, elected master,
// delivers them no second time, and it delivers every timer message that
// was still waiting, nothing lost. The old master comes back as a slave
// (its wheel emptied: its log may be cut), follows the new master, and when
// the new master is killed in turn the same holds again.
func TestControllerModeTimerFailover(t *testing.T) {
	nss, ctl := startControllerNamesrvs(t, 1)
	ns := nss[0]
	keys := []string{"brokerClusterName=DefaultCluster", "brokerName=broker-a", "brokerId=-1", "brokerRole=SLAVE",
		"enableControllerMode=true", "controllerAddr=" + ctl[0], "allAckInSyncStateSet=true",
		"syncBrokerMetadataPeriod=1000", "checkSyncStateSetPeriod=1000", "brokerHeartbeatInterval=500",
		"controllerHeartBeatTimeoutMills=3000", "flushDiskType=ASYNC_FLUSH"}
	dirs := []brokerDir{newBrokerDir(t), newBrokerDir(t)}
	procs := []*proc{startBroker(t, dirs[0], ns, keys...), startBroker(t, dirs[1], ns, keys...)}
	index := func(addr string) int {
		for i, p := range procs {
			if p.addr == addr {
				return i
			}
		}
		return -1
	}
	master := -1
	waitFor(t, 60*time.Second, "a master with both replicas in the SyncStateSet", func() bool {
		h, set := replicaInfo(t, ctl)
		master = index(h.MasterAddress)
		return master >= 0 && len(set.SyncStateSet) == 2
	})
	topic := fmt.Sprintf("TimerFailover%d", time.Now().UnixNano())
	createTopicOn(t, procs[master].addr, topic)
	waitFor(t, 30*time.Second, "the topic's route", func() bool { return routeMaster(t, ns, topic) == procs[master].addr })

	// The master serves its checkpoint on the wire.
	ck0, ok := timerCheckpoint(procs[master].addr)
	if !ok || ck0.LastReadTimeMs <= 0 || ck0.DataVersion.StateVersion < 1 {
		t.Fatalf("GET_TIMER_CHECK_POINT on the master: %+v (ok %v)", ck0, ok)
	}

	recs := &timerRecords{recs: map[string]map[string]bool{}, all: map[string]bool{}}
	pc, err := consumer.NewPushConsumer(consumer.WithNameServer([]string{ns}), consumer.WithGroupName(instance("CG")),
		consumer.WithInstance(instance("c")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{}, recs.consume); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })
	p := newProducer(t, ns)
	consumed := func(what string, bodies []string) {
		t.Helper()
		waitFor(t, 120*time.Second, what+" consumed", func() bool {
			for _, b := range bodies {
				if recs.count(b) == 0 {
					return false
				}
			}
			return true
		})
	}

	var all []string
	for round := 1; round <= 2; round++ {
		slave := 1 - master
		// Early timers, due within seconds: the master delivers them, and
		// the slave's timer progress (it answers code 60 with the checkpoint
		// it follows) passes them: the metadata sync has run since.
		early, lastEarly := sendTimers(t, p, topic, fmt.Sprintf("early%d", round), 20, 3*time.Second, 150*time.Millisecond)
		all = append(all, early...)
		consumed("the early timers", early)
		waitFor(t, 60*time.Second, "the slave's timer checkpoint past the early timers", func() bool {
			ck, ok := timerCheckpoint(procs[slave].addr)
			return ok && ck.LastReadTimeMs > lastEarly.UnixMilli()
		})
		// Late timers, due after the kill; SEND_OK (allAckInSyncStateSet)
		// means the slave holds them.
		late, _ := sendTimers(t, p, topic, fmt.Sprintf("late%d", round), 20, 4*time.Second, 300*time.Millisecond)
		all = append(all, late...)
		lateBeforeKill := recs.records() - len(all) + len(late)

		killed := time.Now()
		procs[master].kill()
		waitFor(t, 60*time.Second, "the slave elected master", func() bool {
			h, _ := replicaInfo(t, ctl)
			return h.MasterAddress == procs[slave].addr
		})
		waitFor(t, 60*time.Second, "the route to list the new master as id 0", func() bool {
			return routeMaster(t, ns, topic) == procs[slave].addr
		})
		t.Logf("round %d: new master in the route %v after kill -9", round, time.Since(killed).Round(time.Millisecond))

		// Every timer message arrives, and the consumer has read every
		// record the new master holds in the topic (redeliveries included).
		consumed("every timer message", all)
		var stored int64
		waitFor(t, 60*time.Second, "every record in the topic consumed", func() bool {
			stored = 0
			for q := range 4 {
				stored += maxOffset(t, procs[slave].addr, topic, q)
			}
			return int64(recs.records()) >= stored
		})
		var dups []string
		total := 0
		for _, b := range all {
			if n := recs.count(b); n > 1 {
				total += n - 1
				dups = append(dups, fmt.Sprintf("%s×%d", b, n))
			}
		}
		t.Logf("round %d: %d timer messages, %d records in the topic, %d duplicate deliveries %v", round, len(all), stored, total, dups)
		if lateBeforeKill >= len(late) {
			t.Errorf("round %d: every late timer was consumed before the kill: nothing was left for the new master to deliver", round)
		}
		// Every message so far was delivered before a checkpoint sync
		// that preceded a failover (the late ones of round 1 before the
		// early ones of round 2).
		for _, b := range all {
			if n := recs.count(b); n != 1 {
				t.Errorf("round %d: %s arrived in %d records", round, b, n)
			}
		}
		if int(stored) != len(all)+total {
			t.Errorf("round %d: the topic holds %d records for %d timer messages and %d duplicates", round, stored, len(all), total)
		}
		if t.Failed() || round == 2 {
			return
		}

		// The old master returns on its address as the new master's slave.
		procs[master] = startBroker(t, dirs[master], ns, append(keys, procs[master].samePorts()...)...)
		waitFor(t, 60*time.Second, "the old master back in the SyncStateSet", func() bool {
			h, set := replicaInfo(t, ctl)
			return h.MasterAddress == procs[slave].addr && len(set.SyncStateSet) == 2
		})
		master = slave
	}
}
