package pop

import (
	"path/filepath"
	"testing"
)

// TestLoadAfterCrashWithOlderOffsets: the committed-offset table and the
// POP state are saved on separate timers, so after kill -9 the offsets
// may be older than the POP state, which no longer holds the done marks
// between the two. Loading brings committed up to the saved state's, and
// acking the leases that survived advances it to the end again.
func TestLoadAfterCrashWithOlderOffsets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "popState.json")
	o := newOffsets()
	s := New(o)
	ls := take(s, k0, 10, 1000, 60_000)
	for _, l := range ls[:2] {
		if err := s.Ack(k0, l.Offset, l.PopTime, 2000); err != nil {
			t.Fatal(err)
		}
	}
	older := newOffsets() // the offset file flushed now: committed 2
	older.Commit(k0.Group, k0.Topic, k0.Queue, 2)
	for _, l := range ls[2:5] {
		if err := s.Ack(k0, l.Offset, l.PopTime, 2000); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := o.Query(k0.Group, k0.Topic, k0.Queue); c != 5 {
		t.Fatalf("committed %d before the crash, want 5", c)
	}
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}

	s2 := New(older) // restart: the older offsets, the newer POP state
	if err := s2.Load(path); err != nil {
		t.Fatal(err)
	}
	if c, _ := older.Query(k0.Group, k0.Topic, k0.Queue); c != 5 {
		t.Errorf("committed %d after loading, want the saved state's 5", c)
	}
	for _, l := range ls[5:] {
		if err := s2.Ack(k0, l.Offset, l.PopTime, 2000); err != nil {
			t.Fatalf("ack of a lease that survived: %v", err)
		}
	}
	if c, _ := older.Query(k0.Group, k0.Topic, k0.Queue); c != 10 {
		t.Errorf("committed %d after acking every lease, want 10", c)
	}

	// Offsets newer than the state (flushed after the last save) stay.
	newer := newOffsets()
	newer.Commit(k0.Group, k0.Topic, k0.Queue, 8)
	if err := New(newer).Load(path); err != nil {
		t.Fatal(err)
	}
	if c, _ := newer.Query(k0.Group, k0.Topic, k0.Queue); c != 8 {
		t.Errorf("committed %d, want the newer offsets' 8", c)
	}
}
