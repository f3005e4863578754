package e2e

import (
	"context"
	"fmt"
	"strings"
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

// Controller mode, two replicas: timer messages due before a kill -9 of
// the master are delivered by it; once the slave's timer checkpoint (synced
// from the master every 10 s) covers them, the slave, elected master,
// delivers them no second time, and it delivers every timer message that
// was still waiting, nothing lost.
func TestControllerModeTimerFailover(t *testing.T) {
	nss, ctl := startControllerNamesrvs(t, 1)
	ns := nss[0]
	keys := []string{"brokerClusterName=DefaultCluster", "brokerName=broker-a", "brokerId=-1", "brokerRole=SLAVE",
		"enableControllerMode=true", "controllerAddr=" + ctl[0], "allAckInSyncStateSet=true",
		"syncBrokerMetadataPeriod=1000", "checkSyncStateSetPeriod=1000", "brokerHeartbeatInterval=500",
		"controllerHeartBeatTimeoutMills=3000", "flushDiskType=ASYNC_FLUSH"}
	procs := []*proc{startBroker(t, newBrokerDir(t), ns, keys...), startBroker(t, newBrokerDir(t), ns, keys...)}
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
	slave := 1 - master
	m, s := procs[master].addr, procs[slave].addr
	topic := fmt.Sprintf("TimerFailover%d", time.Now().UnixNano())
	createTopicOn(t, ns, m, topic)
	waitFor(t, 30*time.Second, "the topic's route", func() bool { return routeMaster(t, ns, topic) == m })

	// The master serves its checkpoint on the wire.
	ck0, ok := timerCheckpoint(m)
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

	// Early timers, due within seconds: the old master delivers them.
	p := newProducer(t, ns)
	var early, late []string
	var lastEarly time.Time
	for i := range 20 {
		body := fmt.Sprintf("early-%d", i)
		lastEarly = sendTimer(t, p, topic, body, "TIMER_DELIVER_MS", at(3*time.Second+time.Duration(i)*150*time.Millisecond))
		early = append(early, body)
	}
	waitFor(t, 60*time.Second, "the early timers consumed", func() bool {
		for _, b := range early {
			if recs.count(b) == 0 {
				return false
			}
		}
		return true
	})
	// The slave's timer progress (it answers code 60 with the checkpoint
	// it follows) passes them: the metadata sync has run since.
	waitFor(t, 60*time.Second, "the slave's timer checkpoint past the early timers", func() bool {
		ck, ok := timerCheckpoint(s)
		return ok && ck.LastReadTimeMs > lastEarly.UnixMilli()
	})
	// Late timers, due after the kill; SEND_OK (allAckInSyncStateSet)
	// means the slave holds them.
	for i := range 20 {
		body := fmt.Sprintf("late-%d", i)
		sendTimer(t, p, topic, body, "TIMER_DELIVER_MS", at(4*time.Second+time.Duration(i)*300*time.Millisecond))
		late = append(late, body)
	}

	lateBeforeKill := recs.records() - len(early)
	killed := time.Now()
	procs[master].kill()
	waitFor(t, 60*time.Second, "the slave elected master", func() bool {
		h, _ := replicaInfo(t, ctl)
		return h.MasterAddress == s
	})
	waitFor(t, 60*time.Second, "the route to list the new master as id 0", func() bool { return routeMaster(t, ns, topic) == s })
	t.Logf("new master in the route %v after kill -9", time.Since(killed).Round(time.Millisecond))

	// Every timer message arrives, and the consumer has read every record
	// the new master holds in the topic (redeliveries included).
	waitFor(t, 120*time.Second, "every timer message consumed", func() bool {
		for _, b := range append(append([]string(nil), early...), late...) {
			if recs.count(b) == 0 {
				return false
			}
		}
		return true
	})
	var stored int64
	waitFor(t, 60*time.Second, "every record in the topic consumed", func() bool {
		stored = 0
		for q := range 4 {
			stored += maxOffset(t, s, topic, q)
		}
		return int64(recs.records()) >= stored
	})

	var dups []string
	total := 0
	for _, b := range append(append([]string(nil), early...), late...) {
		if n := recs.count(b); n > 1 {
			total += n - 1
			dups = append(dups, fmt.Sprintf("%s×%d", b, n))
		}
	}
	t.Logf("%d timer messages, %d records in the topic, %d duplicate deliveries %v", len(early)+len(late), stored, total, dups)
	if lateBeforeKill >= len(late) {
		t.Errorf("every late timer was consumed before the kill: nothing was left for the new master to deliver")
	}
	for _, b := range early {
		if n := recs.count(b); n != 1 {
			t.Errorf("%s, delivered by the old master before the last timer checkpoint sync, arrived in %d records", b, n)
		}
	}
	if int(stored) != len(early)+len(late)+total {
		t.Errorf("the topic holds %d records for %d timer messages and %d duplicates", stored, len(early)+len(late), total)
	}
	if t.Failed() {
		t.Logf("duplicates: %s", strings.Join(dups, " "))
	}
}
