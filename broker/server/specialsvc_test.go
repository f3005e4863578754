package server

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

var specialLoops = []string{"schedule.(*Levels).loop", "schedule.(*Timers).loop", "transaction.(*Service).loop"}

// specialRunning reports which of the special service loops run.
func specialRunning() []string {
	g := projectGoroutines()
	var on []string
	for _, l := range specialLoops {
		if strings.Contains(g, l) {
			on = append(on, l)
		}
	}
	return on
}

// replicate copies old's commit log beyond to's end into to, as the HA
// client does, and waits until to's dispatcher covers it.
func replicate(t *testing.T, from, to *Broker) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for off := to.store.MaxPhyOffset(); off < from.store.MaxPhyOffset(); {
		n, err := from.store.ReadCommitLog(buf, off)
		if err != nil {
			t.Fatal(err)
		}
		if err := to.store.AppendAt(off, buf[:n]); err != nil {
			t.Fatal(err)
		}
		off += int64(n)
	}
	to.store.SetConfirmOffset(to.store.MaxPhyOffset())
	if err := to.store.WaitDispatched(context.Background(), to.store.MaxPhyOffset()); err != nil {
		t.Fatal(err)
	}
}

// TestControllerSpecialServicesFollowRole: in controller mode the delay,
// timer and transaction services run only while the broker is master. A
// slave promoted after the old master delivered and decided some of its
// messages delivers the rest exactly once and checks back only the
// undecided half message.
func TestControllerSpecialServicesFollowRole(t *testing.T) {
	tx := map[string]string{"transactionTimeOut": "1", "transactionCheckInterval": "100", "transactionCheckMax": "1000000", "messageDelayLevel": "1s 3s"}
	m := openBroker(t, t.TempDir(), tx)
	m.Start()
	mClosed := false
	defer func() {
		if !mClosed {
			_ = m.Close()
		}
	}()
	// No controller answers: the broker stays fenced (a slave) until the
	// test promotes it as the controller's notification would.
	s := startBroker(t, merged(tx, map[string]string{"enableControllerMode": "true", "controllerAddr": "127.0.0.1:1", "haListenPort": "0"}))
	waitFor(t, func() bool { return len(specialRunning()) == 3 }) // the old master's

	mp := newPeer(t, m, nil)
	mp.createTopic("DT", 1)
	mp.createTopic("TT", 1)
	mp.createTopic("TX", 1)
	mp.heartbeat("p@1", "", "TPG", nil)

	// Delivered and decided on the old master before the failover.
	mp.send("DT", 0, "DELAY\x011\x02", "d1")
	half := func(n int) {
		f := sendFields("TX", 0, "TRAN_MSG\x01true\x02PGROUP\x01TPG\x02UNIQ_KEY\x01AC11000100002A9F000000000000000"+strconv.Itoa(n))
		f["a"], f["f"] = "TPG", strconv.Itoa(int(wire.SysFlagTransactionPrepared))
		mp.expect(wire.Success, "", wire.SendMessageV2, f, []byte("half"))
	}
	half(1)
	check := mp.nextCall("CHECK_TRANSACTION_STATE")
	mp.expect(wire.Success, "", wire.EndTransaction, map[string]string{
		"producerGroup": "TPG", "tranStateTableOffset": check.GetString("tranStateTableOffset"),
		"commitLogOffset": check.GetString("commitLogOffset"), "commitOrRollback": "8", "fromTransactionCheck": "true",
		"msgId": check.GetString("msgId"),
	}, nil)
	waitFor(t, func() bool { return m.store.MaxOffset("DT", 0) == 1 && m.store.MaxOffset("TX", 0) == 1 })
	// Pending at the failover.
	mp.send("DT", 0, "DELAY\x012\x02", "d2")
	mp.send("TT", 0, "TIMER_DELAY_SEC\x013\x02", "t1")
	half(2)

	replicate(t, m, s)
	if err := s.delay.Replace(m.delay.Encode()); err != nil { // the slave metadata sync's delay offsets
		t.Fatal(err)
	}
	mClosed = true
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if on := specialRunning(); len(on) != 0 {
		t.Fatalf("a controller-mode slave runs %v", on)
	}

	if err := s.becomeMaster(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(specialRunning()) == 3 })
	sp := newPeer(t, s, nil)
	sp.heartbeat("p@2", "", "TPG", nil)
	for checks := 0; checks < 2; {
		c := sp.nextCall("CHECK_TRANSACTION_STATE")
		if id := c.GetString("msgId"); !strings.HasSuffix(id, "2") {
			t.Fatalf("the promoted broker checks back the decided half message %s", id)
		}
		checks++
	}
	// d1 was due long ago: delivered again, it would precede d2.
	waitFor(t, func() bool { return s.store.MaxOffset("DT", 0) >= 2 && s.store.MaxOffset("TT", 0) >= 1 })
	bodies := func(topic string) (out []string) {
		for off := int64(0); off < s.store.MaxOffset(topic, 0); off++ {
			u, ok := s.store.UnitAt(topic, 0, off)
			if !ok {
				t.Fatalf("%s offset %d missing", topic, off)
			}
			rec, err := s.store.ReadRecord(u.Phys, nil)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(wire.RecordView(rec).Body()))
		}
		return out
	}
	if got := strings.Join(bodies("DT"), ","); got != "d1,d2" {
		t.Fatalf("delayed messages in DT: %s, want d1,d2", got)
	}
	if got := strings.Join(bodies("TT"), ","); got != "t1" {
		t.Fatalf("timer messages in TT: %s, want t1", got)
	}

	if err := s.becomeSlave("127.0.0.1:1", 2, 2); err != nil {
		t.Fatal(err)
	}
	if s.store.Role() != store.RoleSlave {
		t.Fatal("the store is not a slave's")
	}
	if on := specialRunning(); len(on) != 0 {
		t.Fatalf("a demoted broker runs %v", on)
	}
}
