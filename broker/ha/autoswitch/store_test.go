package autoswitch

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/ha/epoch"
	"github.com/mqops/mqops/broker/store"
)

// openStore opens a real broker store with small segments.
func openStore(t *testing.T, role store.Role) *store.Store {
	t.Helper()
	st, err := store.Open(store.Config{RootDir: t.TempDir(), SegmentSize: 64 << 10, CQUnitsPerFile: 1000,
		FlushInterval: 20 * time.Millisecond, StoreHost: []byte{127, 0, 0, 1, 0, 0, 0x2A, 0x9F},
		Logger: slog.New(slog.DiscardHandler), ConfirmGate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetRole(role); err != nil {
		t.Fatal(err)
	}
	return st
}

func putN(t *testing.T, st *store.Store, n int, tag string) {
	t.Helper()
	for i := range n {
		r := st.Put(&store.Message{Topic: "T", QueueID: 0, Body: fmt.Appendf(nil, "%s-%d-%s", tag, i, bytes.Repeat([]byte{'x'}, 300))})
		if r.Status != store.PutOK {
			t.Fatalf("put %s %d: %v", tag, i, r.Status)
		}
	}
}

func logBytes(t *testing.T, st *store.Store) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 64<<10)
	for off := st.MinPhyOffset(); off < st.MaxPhyOffset(); {
		n, err := st.ReadCommitLog(buf, off)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:n]...)
		off += int64(n)
	}
	return out
}

func newStoreService(t *testing.T, st *store.Store, cfg Config) *Service {
	t.Helper()
	f, err := epoch.Open(filepath.Join(t.TempDir(), "epochFileCheckpoint"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HeartbeatInterval = 200 * time.Millisecond
	s, err := Listen("127.0.0.1:0", st, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Close() })
	return s
}

// Real stores: a replica copies the master across segment boundaries and
// consumers on it see only confirmed records; after a failover the old
// master, with records it wrote alone, becomes a slave, truncates them
// (commit log and consume queue) and copies the new master.
func TestRealStoresFailover(t *testing.T) {
	a, b := openStore(t, store.RoleSlave), openStore(t, store.RoleSlave)
	sa := newStoreService(t, a, Config{AllAckInSyncStateSet: true})
	sb := newStoreService(t, b, Config{AllAckInSyncStateSet: true})
	if err := sa.ChangeToMaster(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.SetRole(store.RoleMaster); err != nil {
		t.Fatal(err)
	}
	putN(t, a, 400, "first") // ~140 KiB: three 64 KiB segments
	sb.ChangeToSlave(sa.Addr().String(), 1, 2)
	waitFor(t, "B to copy A", func() bool { return b.MaxPhyOffset() == a.MaxPhyOffset() })
	if !bytes.Equal(logBytes(t, a), logBytes(t, b)) {
		t.Fatal("B's commit log differs from A's")
	}
	waitFor(t, "B to dispatch what A confirmed", func() bool { return b.MaxOffset("T", 0) == 400 })

	// A writes alone (B is cut off), then B is elected with epoch 2.
	sb.ChangeToSlave("", 1, 2)
	putN(t, a, 50, "alone")
	common := b.MaxPhyOffset()
	if err := sb.ChangeToMaster(2, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.SetRole(store.RoleMaster); err != nil {
		t.Fatal(err)
	}
	putN(t, b, 30, "second")
	if err := a.SetRole(store.RoleSlave); err != nil {
		t.Fatal(err)
	}
	sa.ChangeToSlave(sb.Addr().String(), 2, 1)
	waitFor(t, "A to cut its tail and copy B", func() bool { return a.MaxPhyOffset() == b.MaxPhyOffset() })
	if !bytes.Equal(logBytes(t, a), logBytes(t, b)) {
		t.Fatal("A's commit log differs from B's after the rejoin")
	}
	waitFor(t, "A's queue to hold B's records", func() bool { return a.MaxOffset("T", 0) == 430 })
	want := []epoch.Entry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: common}}
	if got := sa.Epochs().Entries(); !slices.Equal(got, want) {
		t.Fatalf("A's epochs %v, want %v", got, want)
	}
}

// An empty replica with syncFromLastFile copies only the master's last
// segment.
func TestRealStoresSyncFromLastFile(t *testing.T) {
	a, b := openStore(t, store.RoleSlave), openStore(t, store.RoleSlave)
	sa := newStoreService(t, a, Config{})
	sb := newStoreService(t, b, Config{SyncFromLastFile: true})
	if err := sa.ChangeToMaster(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.SetRole(store.RoleMaster); err != nil {
		t.Fatal(err)
	}
	putN(t, a, 400, "m")
	sb.ChangeToSlave(sa.Addr().String(), 1, 2)
	waitFor(t, "B to copy A's last file", func() bool { return b.MaxPhyOffset() == a.MaxPhyOffset() })
	if last := a.MaxPhyOffset() - a.MaxPhyOffset()%a.SegmentSize(); b.MinPhyOffset() != last || last == 0 {
		t.Fatalf("B starts at %d, want the last segment's start %d", b.MinPhyOffset(), last)
	}
}
