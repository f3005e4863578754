package schedule

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// parkFor parks a message for topic queue 0 at level 1.
func parkFor(t *testing.T, st *store.Store, topic, body string) int64 {
	t.Helper()
	m := store.Message{Topic: topic, BornTimestamp: time.Now().UnixMilli(), Body: []byte(body), Properties: []byte("DELAY\x011\x02")}
	Park(nil, &m, 1)
	r := st.Put(&m)
	if r.Status != store.PutOK {
		t.Fatal(r.Status)
	}
	waitMax(t, st, meta.TopicSchedule, 0, r.QueueOffset+1)
	return r.StoreTimestamp
}

func dlqOf(m *store.Message) (string, bool) {
	g, ok := strings.CutPrefix(m.Topic, meta.RetryPrefix)
	dlq := meta.DLQPrefix + g
	return dlq, ok && wire.StorableTopic(dlq)
}

// A message whose real topic the store refuses for good (a send-back of
// group "a/b" made %RETRY%a/b) used to be retried forever, and nothing
// behind it at its level was delivered again, across restarts. Now it
// goes to its dead-letter topic, or is skipped with an error, and the
// level moves on.
func TestPoisonedLevelMovesOn(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	path := filepath.Join(dir, "delayOffset.json")
	l, err := OpenLevels(st, testLevels, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	l.DeadLetter = dlqOf
	longGroup := strings.Repeat("g", wire.MaxGroupLen+1) // %RETRY%… is 128 bytes, %DLQ%… 126
	at := parkFor(t, st, "%RETRY%a/b", "poison")
	parkFor(t, st, meta.RetryPrefix+longGroup, "too long")
	parkFor(t, st, "%RETRY%good", "good 1")
	l.deliverLevel(0, at+60_000)
	waitMax(t, st, "%RETRY%good", 0, 1)
	waitMax(t, st, meta.DLQPrefix+longGroup, 0, 1)
	if got := l.Progress()[0]; got != [2]int64{3, 3} {
		t.Fatalf("level 1 progress %v, want past all three", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// After a restart the level neither stalls nor repeats.
	st = openStore(t, dir)
	defer st.Close()
	l, err = OpenLevels(st, testLevels, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	l.DeadLetter = dlqOf
	at = parkFor(t, st, "%RETRY%good", "good 2")
	l.deliverLevel(0, at+60_000)
	waitMax(t, st, "%RETRY%good", 0, 2)
	if n := st.MaxOffset("%RETRY%good", 0); n != 2 {
		t.Fatalf("%d delivered, want 2", n)
	}
}

// A refused timer message used to stop the wheel at its entry for good.
func TestPoisonedTimerIsSkipped(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	tm, err := OpenTimers(st, filepath.Join(dir, "timerwheel"), time.Hour, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	m := store.Message{Topic: "%RETRY%a/b", BornTimestamp: time.Now().UnixMilli(), Body: []byte("poison")}
	ParkTimer(nil, &m, time.Now().UnixMilli()-1)
	r := st.Put(&m)
	if r.Status != store.PutOK {
		t.Fatal(r.Status)
	}
	if err := tm.deliver(timerEntry(r.PhysicalOffset)); err != nil {
		t.Fatalf("a message the store refuses for good stops the wheel: %v", err)
	}
}
