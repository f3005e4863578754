package server

import (
	"testing"

	"github.com/mqops/mqops/wire"
)

// TestTimerCheckpointServedAndReset: GET_TIMER_CHECK_POINT (60) answers
// the broker's timer progress in the 64-byte form with the master epoch as
// stateVersion and the commit-log end; a controller-mode broker turned
// slave empties its wheel (its log may be cut back), so it answers a fresh
// wheel's progress until the metadata sync refills it from the master.
func TestTimerCheckpointServedAndReset(t *testing.T) {
	b := startBroker(t, map[string]string{"enableControllerMode": "true", "controllerAddr": "127.0.0.1:1", "haListenPort": "0"})
	if err := b.becomeMaster(3); err != nil {
		t.Fatal(err)
	}
	p := newPeer(t, b, nil)
	p.createTopic("TT", 1)
	p.send("TT", 0, "TIMER_DELAY_SEC\x013600\x02", "far")
	waitFor(t, func() bool { return b.timers.Checkpoint(3).MasterTimerQueueOffset == 1 }) // a loop tick read it

	checkpoint := func() wire.TimerCheckpoint {
		t.Helper()
		resp := p.expect(wire.Success, "", wire.GetTimerCheckPoint, nil, nil)
		if len(resp.Body) != 64 {
			t.Fatalf("checkpoint body of %d bytes, want 64", len(resp.Body))
		}
		ck, err := wire.DecodeTimerCheckpoint(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return ck
	}
	ck := checkpoint()
	if ck.MasterTimerQueueOffset != 1 || ck.LastTimerQueueOffset != 1 || ck.LastReadTimeMs <= 0 || ck.LastReadTimeMs%1000 != 0 ||
		ck.CommitLogOffset != b.store.MaxPhyOffset() || ck.DataVersion.StateVersion != 3 || ck.LastTimerLogFlushPos <= 0 {
		t.Fatalf("master's checkpoint %+v (commit log at %d)", ck, b.store.MaxPhyOffset())
	}

	if err := b.becomeSlave("127.0.0.1:1", 2, 4); err != nil {
		t.Fatal(err)
	}
	if n := b.timers.Pending(); n != 0 {
		t.Fatalf("%d timers pending on a demoted broker, want an emptied wheel", n)
	}
	if ck := checkpoint(); ck.MasterTimerQueueOffset != 0 || ck.LastReadTimeMs != 0 || ck.DataVersion.StateVersion != 4 {
		t.Fatalf("demoted broker's checkpoint %+v", ck)
	}
}
