package schedule

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/broker/timer"
	"github.com/mqops/mqops/wire"
)

// putTimer parks body for Orders queue 1, due at at.
func putTimer(t *testing.T, st *store.Store, body string, at int64) {
	t.Helper()
	m := store.Message{Topic: "Orders", QueueID: 1, BornTimestamp: time.Now().UnixMilli(), Body: []byte(body),
		Properties: []byte("TIMER_DELIVER_MS\x01x\x02")}
	ParkTimer(nil, &m, at)
	if r := st.Put(&m); r.Status != store.PutOK {
		t.Fatal(r.Status)
	}
}

// copyLog copies from's commit log beyond to's end into to, as the HA
// client does, and waits for to's dispatcher.
func copyLog(t *testing.T, from, to *store.Store) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for off := to.MaxPhyOffset(); off < from.MaxPhyOffset(); {
		n, err := from.ReadCommitLog(buf, off)
		if err != nil {
			t.Fatal(err)
		}
		if err := to.AppendAt(off, buf[:n]); err != nil {
			t.Fatal(err)
		}
		off += int64(n)
	}
	if err := to.WaitDispatched(context.Background(), to.MaxPhyOffset()); err != nil {
		t.Fatal(err)
	}
}

func openTimers(t *testing.T, st *store.Store, dir string) *Timers {
	t.Helper()
	tm, err := OpenTimers(st, dir, time.Hour, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tm.Close() })
	return tm
}

// bodies lists what Orders queue 1 of st holds.
func bodies(t *testing.T, st *store.Store) (out []string) {
	t.Helper()
	for off := range st.MaxOffset("Orders", 1) {
		u, ok := st.UnitAt("Orders", 1, off)
		if !ok {
			t.Fatalf("Orders/1 offset %d missing", off)
		}
		rec, err := st.ReadRecord(u.Phys, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(wire.RecordView(rec).Body()))
	}
	return out
}

// TestTimersFollowMaster: a slave that followed its master's checkpoint
// and is then promoted delivers neither of the timer messages the master
// delivered before the checkpoint, holds the one still waiting, and
// delivers the one the master had read but not processed when it answered
// although its time has passed. It follows only once its commit log holds what the checkpoint
// counts on, never while its own loop runs, never with a checkpoint
// fetched before a Reset.
func TestTimersFollowMaster(t *testing.T) {
	mdir, sdir := t.TempDir(), t.TempDir()
	ms, ss := openStore(t, mdir), openStore(t, sdir)
	defer ms.Close()
	defer ss.Close()
	if err := ss.SetRole(store.RoleSlave); err != nil {
		t.Fatal(err)
	}
	mt, st := openTimers(t, ms, filepath.Join(mdir, "timerwheel")), openTimers(t, ss, filepath.Join(sdir, "timerwheel"))

	now := time.Now().UnixMilli()
	putTimer(t, ms, "past-1", now-3000)
	putTimer(t, ms, "past-2", now-2500)
	putTimer(t, ms, "future", now+3_600_000)
	waitMax(t, ms, meta.TopicTimer, 0, 3)
	// The master's loop, one tick.
	mt.enqueue(now)
	if err := mt.w.Due(now, mt.deliver); err != nil {
		t.Fatal(err)
	}
	mt.publish()
	waitMax(t, ms, "Orders", 1, 2)
	// Parked and already due: the master reads it, but answers the
	// checkpoint before its Due processed it.
	putTimer(t, ms, "past-unread", now-2000)
	waitMax(t, ms, meta.TopicTimer, 0, 4)
	mt.enqueue(now)
	ck := mt.Checkpoint(7)
	if ck.MasterTimerQueueOffset != 3 || ck.LastTimerQueueOffset != 3 || ck.CommitLogOffset >= ms.MaxPhyOffset() ||
		ck.LastReadTimeMs != (now/1000-1)*1000 || ck.DataVersion.StateVersion != 7 || ck.DataVersion.Counter != 1 {
		t.Fatalf("master checkpoint %+v (commit log at %d, now %d)", ck, ms.MaxPhyOffset(), now)
	}
	if again := mt.Checkpoint(7); again.DataVersion != ck.DataVersion {
		t.Fatalf("data version changed without progress: %+v then %+v", ck.DataVersion, again.DataVersion)
	}

	gen := st.Generation()
	if ok, err := st.Follow(ck, gen); ok || err != nil {
		t.Fatalf("followed a checkpoint beyond the slave's commit log: %v %v", ok, err)
	}
	copyLog(t, ms, ss)
	if ok, err := st.Follow(ck, gen); !ok || err != nil {
		t.Fatalf("follow: %v %v", ok, err)
	}
	if st.Pending() != 1 || st.wheel().Source() != 3 || st.Followed() != ck {
		t.Fatalf("slave wheel: %d pending, source %d, followed %+v; want 1 pending (future), source 3", st.Pending(), st.wheel().Source(), st.Followed())
	}
	// Following again changes nothing.
	if ok, err := st.Follow(ck, gen); !ok || err != nil || st.Pending() != 1 {
		t.Fatalf("follow again: %v %v, %d pending", ok, err, st.Pending())
	}

	// Promoted: one tick of its loop.
	if err := ss.SetRole(store.RoleMaster); err != nil {
		t.Fatal(err)
	}
	now = time.Now().UnixMilli()
	st.enqueue(now)
	if err := st.w.Due(now, st.deliver); err != nil {
		t.Fatal(err)
	}
	waitMax(t, ss, "Orders", 1, 3)
	if got := bodies(t, ss); len(got) != 3 || got[0] == got[2] || got[1] == got[2] || got[2] != "past-unread" {
		t.Fatalf("Orders/1 on the promoted slave: %q, want both past ones once (replicated) and then past-unread", got)
	}
	if st.Pending() != 1 {
		t.Fatalf("%d timers pending on the promoted slave, want 1 (future)", st.Pending())
	}

	st.Start()
	if _, err := st.Follow(ck, st.Generation()); err == nil {
		t.Fatal("a running timer loop followed a checkpoint")
	}
	if err := st.Stop(); err != nil {
		t.Fatal(err)
	}
	gen = st.Generation()
	if err := st.Reset(); err != nil {
		t.Fatal(err)
	}
	if st.Pending() != 0 || st.wheel().Source() != 0 || st.Followed() != (wire.TimerCheckpoint{}) {
		t.Fatalf("after Reset: %d pending, source %d, followed %+v", st.Pending(), st.wheel().Source(), st.Followed())
	}
	if _, err := st.Follow(ck, gen); !errors.Is(err, ErrStaleCheckpoint) {
		t.Fatalf("a checkpoint fetched before Reset: %v, want ErrStaleCheckpoint", err)
	}
}

// TestTimersResetLeftover: a wheel set aside by a Reset that crashed
// before deleting it is deleted at open.
func TestTimersResetLeftover(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	wdir := filepath.Join(dir, "timerwheel")
	if err := os.MkdirAll(filepath.Join(wdir+".old", "log"), 0o755); err != nil {
		t.Fatal(err)
	}
	openTimers(t, st, wdir)
	if _, err := os.Stat(wdir + ".old"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover wheel: %v", err)
	}
}

// TestTimersRollAtStoreTime: the wheel is told to re-park a long timer
// rollWindow after the record was stored, whenever it is read, so a slave
// reading it later gives its wheel the master's time.
func TestTimersRollAtStoreTime(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	tm := openTimers(t, st, filepath.Join(dir, "timerwheel"))
	putTimer(t, st, "long", time.Now().Add(240*time.Hour).UnixMilli())
	waitMax(t, st, meta.TopicTimer, 0, 1)
	u, _ := st.UnitAt(meta.TopicTimer, 0, 0)
	rec, err := st.ReadRecord(u.Phys, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.RecordView(rec).StoreTimestamp() + tm.rollWindow.Milliseconds()
	for _, now := range []int64{time.Now().UnixMilli(), time.Now().Add(5 * time.Hour).UnixMilli()} {
		if got := tm.rollAt(u.Phys, now); got != want {
			t.Fatalf("rollAt read at %d: %d, want store time + roll window %d", now, got, want)
		}
	}
	if got := tm.rollAt(st.MaxPhyOffset()+100, 1000); got != 1000+tm.rollWindow.Milliseconds() {
		t.Fatalf("rollAt of an unreadable record: %d", got)
	}
}

// TestTimersFollowAcrossCut: a slave whose wheel read a timer record from
// a divergent tail (followed before the HA client cut it) starts its wheel
// over once the log is cut and refilled with the master's records, so the
// master's record at that queue offset is not skipped and the divergent
// one is gone.
func TestTimersFollowAcrossCut(t *testing.T) {
	mdir, sdir := t.TempDir(), t.TempDir()
	ms, ss := openStore(t, mdir), openStore(t, sdir)
	defer ms.Close()
	defer ss.Close()
	mt, st := openTimers(t, ms, filepath.Join(mdir, "timerwheel")), openTimers(t, ss, filepath.Join(sdir, "timerwheel"))
	later := time.Now().Add(time.Hour).UnixMilli()

	putTimer(t, ms, "common", later)
	if err := ss.SetRole(store.RoleSlave); err != nil {
		t.Fatal(err)
	}
	copyLog(t, ms, ss)
	common := ss.MaxPhyOffset()
	if err := ss.SetRole(store.RoleMaster); err != nil {
		t.Fatal(err)
	}
	putTimer(t, ss, "divergent", later) // written alone, as a master
	waitMax(t, ss, meta.TopicTimer, 0, 2)
	if err := ss.SetRole(store.RoleSlave); err != nil {
		t.Fatal(err)
	}
	// Followed before the cut (a Java-form checkpoint: nothing to gate on).
	if ok, err := st.Follow(wire.TimerCheckpoint{MasterTimerQueueOffset: 2, CommitLogOffset: -1}, st.Generation()); !ok || err != nil {
		t.Fatalf("follow: %v %v", ok, err)
	}

	putTimer(t, ms, "master-1", later)
	putTimer(t, ms, "master-2", later)
	waitMax(t, ms, meta.TopicTimer, 0, 3)
	if err := ss.TruncateTo(common); err != nil {
		t.Fatal(err)
	}
	copyLog(t, ms, ss)
	mt.enqueue(time.Now().UnixMilli())
	mt.publish()
	gen := st.Generation()
	if ok, err := st.Follow(mt.Checkpoint(1), gen); !ok || err != nil {
		t.Fatalf("follow after the cut: %v %v", ok, err)
	}
	if st.Generation() == gen {
		t.Fatal("the wheel was not started over after the cut")
	}
	var got []int64
	if err := st.w.Due(later+1000, func(e timer.Entry) error { got = append(got, e.Phys); return nil }); err != nil {
		t.Fatal(err)
	}
	var want []int64
	for q := range int64(3) {
		u, _ := ms.UnitAt(meta.TopicTimer, 0, q)
		want = append(want, u.Phys)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("slave wheel holds records at %v, want the master's %v", got, want)
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTimersCheckpointAfterFailedDue: while delivering fails (the store
// refuses writes), the checkpoint stays at the last successful Due: the
// entry the failed Due stopped at, due long ago but linked into the
// cursor's second, must not look delivered to a slave.
func TestTimersCheckpointAfterFailedDue(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	var logs lockedBuf
	tm, err := OpenTimers(st, filepath.Join(dir, "timerwheel"), time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	putTimer(t, st, "past", time.Now().Add(-10*time.Second).UnixMilli())
	waitMax(t, st, meta.TopicTimer, 0, 1)
	if err := st.SetRole(store.RoleSlave); err != nil { // puts refused from now on
		t.Fatal(err)
	}
	tm.Start()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "delivering due timer messages failed"); {
		if time.Now().After(deadline) {
			t.Fatalf("no failed delivery logged: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ck := tm.Checkpoint(1); ck.MasterTimerQueueOffset != 0 {
		t.Fatalf("checkpoint after a failed Due: %+v, want the state before the entry was read", ck)
	}
}
