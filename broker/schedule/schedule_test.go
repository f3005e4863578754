package schedule

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/broker/timer"
	"github.com/mqops/mqops/wire"
)

var quiet = slog.New(slog.DiscardHandler)

var testLevels = []time.Duration{time.Second, 5 * time.Second}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Config{RootDir: dir, SegmentSize: 1 << 20, StoreHost: []byte{127, 0, 0, 1, 0, 0, 0x2A, 0x9F}, Logger: quiet,
		TagsCode: func(v wire.RecordView) int64 {
			switch string(v.Topic()) {
			case meta.TopicSchedule:
				return DeliverAt(testLevels, v)
			case meta.TopicTimer:
				return TimerOutMs(v)
			}
			return store.DefaultTagsCode(v)
		}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func waitMax(t *testing.T, st *store.Store, topic string, q int32, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); st.MaxOffset(topic, q) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%s/%d not dispatched to %d", topic, q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// park stores a message for topic Orders queue 2 with DELAY=level and
// returns its store time.
func park(t *testing.T, st *store.Store, body string, level int) int64 {
	t.Helper()
	m := store.Message{Topic: "Orders", QueueID: 2, BornTimestamp: time.Now().UnixMilli(), Body: []byte(body),
		Properties: []byte("DELAY\x01" + string(rune('0'+level)) + "\x02KEYS\x01k\x02")}
	if lvl := Level(m.Properties, len(testLevels)); lvl != level {
		t.Fatalf("Level = %d, want %d", lvl, level)
	}
	Park(nil, &m, level)
	r := st.Put(&m)
	if r.Status != store.PutOK {
		t.Fatal(r.Status)
	}
	waitMax(t, st, meta.TopicSchedule, int32(level-1), r.QueueOffset+1)
	return r.StoreTimestamp
}

// TestLevelsDeliverWhenDue: a parked message is re-published to its real
// topic and queue exactly when its level's delay has passed, without the
// parking properties, and the progress survives a reopen.
func TestLevelsDeliverWhenDue(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	path := filepath.Join(dir, "delayOffset.json")
	l, err := OpenLevels(st, testLevels, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	stored := park(t, st, "a", 1)
	park(t, st, "b", 2)
	l.deliverLevel(0, stored+999)
	if st.MaxOffset("Orders", 2) != 0 {
		t.Fatal("delivered before its delay")
	}
	l.deliverLevel(0, stored+1000)
	l.deliverLevel(1, stored+1000)
	waitMax(t, st, "Orders", 2, 1)
	u, _ := st.UnitAt("Orders", 2, 0)
	rec, err := st.ReadRecord(u.Phys, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := wire.RecordView(rec)
	p := v.Properties()
	if string(v.Body()) != "a" || len(wire.PropertyValue(p, wire.PropDelay)) > 0 || len(wire.PropertyValue(p, wire.PropRealTopic)) > 0 ||
		string(wire.PropertyValue(p, wire.PropKeys)) != "k" {
		t.Fatalf("delivered %q with properties %q", v.Body(), p)
	}
	if got := l.Progress(); got[0] != [2]int64{1, 1} || got[1] != [2]int64{0, 1} {
		t.Fatalf("progress %v", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = OpenLevels(st, testLevels, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	l.deliverLevel(0, stored+10000)
	if n := st.MaxOffset("Orders", 2); n != 1 {
		t.Fatalf("after a reopen level 1 delivered again: %d messages", n)
	}
	l.deliverLevel(1, stored+6000)
	waitMax(t, st, "Orders", 2, 2)
	st.Close()

	// Saved progress beyond the queue (a crash lost the log's tail) is
	// pulled back, so new parked messages are not skipped.
	if err := os.WriteFile(path, []byte(`{"offsetTable":{"1":99}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, dir)
	defer st.Close()
	l, err = OpenLevels(st, testLevels, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if l.offsets[0] != 1 {
		t.Fatalf("level 1 resumes at %d, want 1", l.offsets[0])
	}
	if err := os.WriteFile(path, []byte(`{"offsetTable":{"x":1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLevels(st, testLevels, path, quiet); err == nil {
		t.Fatal("a corrupt delayOffset.json was accepted")
	}
}

func TestLevelParsing(t *testing.T) {
	for props, want := range map[string]int{"": 0, "DELAY\x010\x02": 0, "DELAY\x01-3\x02": 0, "DELAY\x01x\x02": 0, "DELAY\x012\x02": 2, "DELAY\x0199\x02": 18} {
		if got := Level([]byte(props), 18); got != want {
			t.Errorf("Level(%q) = %d, want %d", props, got, want)
		}
	}
}

func TestTimerDeliverAt(t *testing.T) {
	const now = 1_000_000
	max := 10 * time.Second
	for _, c := range []struct {
		props   string
		at      int64
		ok      bool
		err     bool
		tooLong bool
	}{
		{"KEYS\x01k\x02", 0, false, false, false},
		{"TIMER_DELIVER_MS\x011005000\x02", 1005000, true, false, false},
		{"TIMER_DELAY_SEC\x013\x02", 1003000, true, false, false},
		{"TIMER_DELAY_MS\x01250\x02", 1000250, true, false, false},
		{"TIMER_DELAY_SEC\x0111\x02", 0, false, true, true},
		{"TIMER_DELIVER_MS\x012000000\x02", 0, false, true, true},
		{"TIMER_DELAY_MS\x01soon\x02", 0, false, true, false},
	} {
		at, ok, err := TimerDeliverAt([]byte(c.props), now, max)
		if at != c.at || ok != c.ok || (err != nil) != c.err || errors.Is(err, ErrTimerTooLong) != c.tooLong {
			t.Errorf("%q: %d %v %v", c.props, at, ok, err)
		}
	}
}

// TestTimerRollAndDeliver: a timer record that comes up before its time
// (the wheel was told the roll window, not the delivery time) is parked
// again as a fresh copy; a due one goes to its real topic without the
// timer properties.
func TestTimerRollAndDeliver(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	tm, err := OpenTimers(st, filepath.Join(dir, "timerwheel"), time.Hour, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	if tm.rollWindow != 30*time.Minute {
		t.Fatalf("roll window %v for a 1h retention, want 30m", tm.rollWindow)
	}
	put := func(body string, at int64) int64 {
		m := store.Message{Topic: "Orders", QueueID: 1, BornTimestamp: time.Now().UnixMilli(), Body: []byte(body), Properties: []byte("TIMER_DELAY_SEC\x01x\x02")}
		ParkTimer(nil, &m, at)
		r := st.Put(&m)
		if r.Status != store.PutOK {
			t.Fatal(r.Status)
		}
		return r.PhysicalOffset
	}
	now := time.Now().UnixMilli()
	far := put("far", now+3_600_000)
	due := put("due", now-1)
	waitMax(t, st, meta.TopicTimer, 0, 2)

	// Both enter the wheel (the far one at the roll window).
	tm.enqueue(now)
	if tm.Pending() != 2 {
		t.Fatalf("%d timers pending, want 2", tm.Pending())
	}
	for _, phys := range []int64{far, due} {
		if err := tm.deliver(timerEntry(phys)); err != nil {
			t.Fatal(err)
		}
	}
	waitMax(t, st, meta.TopicTimer, 0, 3)
	waitMax(t, st, "Orders", 1, 1)
	u, _ := st.UnitAt(meta.TopicTimer, 0, 2)
	if u.TagsCode != now+3_600_000 {
		t.Fatalf("re-parked copy is due at %d, want %d", u.TagsCode, now+3_600_000)
	}
	u, _ = st.UnitAt("Orders", 1, 0)
	rec, err := st.ReadRecord(u.Phys, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := wire.RecordView(rec)
	if string(v.Body()) != "due" || len(wire.PropertyValue(v.Properties(), wire.PropTimerOutMs)) > 0 || len(wire.PropertyValue(v.Properties(), wire.PropTimerDelaySec)) > 0 {
		t.Fatalf("delivered %q with %q", v.Body(), v.Properties())
	}
}

func timerEntry(phys int64) timer.Entry { return timer.Entry{Phys: phys} }
