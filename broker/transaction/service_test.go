package transaction

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

var quiet = slog.New(slog.DiscardHandler)

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	levels := []time.Duration{time.Second}
	st, err := store.Open(store.Config{RootDir: dir, SegmentSize: 1 << 20, StoreHost: []byte{127, 0, 0, 1, 0, 0, 0x2A, 0x9F}, Logger: quiet,
		TagsCode: func(v wire.RecordView) int64 {
			if string(v.Topic()) == meta.TopicSchedule {
				return schedule.DeliverAt(levels, v)
			}
			return store.DefaultTagsCode(v)
		}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// checks records the check-backs a Service sends.
type checks struct {
	mu   sync.Mutex
	sent []map[string]string
	live bool
}

func (c *checks) check(group string, f map[string]string, body []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		return false
	}
	f["group"] = group
	if v := wire.RecordView(body); string(v.Topic()) != "Orders" {
		f["bodyTopic"] = string(v.Topic())
	}
	c.sent = append(c.sent, f)
	return true
}

func openService(t *testing.T, st *store.Store, dir string, c *checks) *Service {
	t.Helper()
	s, err := Open(Options{Store: st, StateFile: filepath.Join(dir, "transaction.json"), Timeout: time.Second, Interval: time.Hour,
		CheckMax: 2, MaxDelay: 1, Check: c.check, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// prepare stores a half message and returns its physical and queue offsets.
func prepare(t *testing.T, st *store.Store, body string, extra ...string) (int64, int64) {
	t.Helper()
	props := []byte("PGROUP\x01PG\x02TRAN_MSG\x01true\x02UNIQ_KEY\x01" + body + "\x02")
	for i := 0; i+1 < len(extra); i += 2 {
		props = append(props, extra[i]+"\x01"+extra[i+1]+"\x02"...)
	}
	m := store.Message{Topic: "Orders", QueueID: 3, SysFlag: wire.SysFlagTransactionPrepared, BornTimestamp: time.Now().Add(-time.Minute).UnixMilli(), Body: []byte(body), Properties: props}
	Prepare(nil, &m)
	r := st.Put(&m)
	if r.Status != store.PutOK {
		t.Fatalf("put half %s: %v", body, r.Status)
	}
	waitDispatched(t, st, meta.TopicTransHalf, r.QueueOffset+1)
	return r.PhysicalOffset, r.QueueOffset
}

func waitDispatched(t *testing.T, st *store.Store, topic string, n int64) {
	t.Helper()
	q := int32(0)
	if topic == "Orders" {
		q = 3
	}
	for deadline := time.Now().Add(5 * time.Second); st.MaxOffset(topic, q) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%s not dispatched to %d", topic, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// bodies reads what queue 3 of Orders holds.
func bodies(t *testing.T, st *store.Store) []string {
	t.Helper()
	var out []string
	for off := int64(0); off < st.MaxOffset("Orders", 3); off++ {
		u, ok := st.UnitAt("Orders", 3, off)
		if !ok {
			t.Fatalf("unit %d missing", off)
		}
		rec, err := st.ReadRecord(u.Phys, nil)
		if err != nil {
			t.Fatal(err)
		}
		v := wire.RecordView(rec)
		if v.SysFlag()&wire.SysFlagTransactionMask != wire.SysFlagTransactionCommit {
			t.Fatalf("committed record has sysFlag %#x", v.SysFlag())
		}
		out = append(out, string(v.Body()))
	}
	return out
}

// TestCommitRollbackCheckDiscard walks every decision a half message can
// get, then reopens store and service and checks nothing decided comes
// back and nothing pending is forgotten.
func TestCommitRollbackCheckDiscard(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	c := &checks{live: true}
	s := openService(t, st, dir, c)

	commitPhys, commitQ := prepare(t, st, "commit")
	rbPhys, rbQ := prepare(t, st, "rollback")
	_, pendingQ := prepare(t, st, "pending")
	_, doomedQ := prepare(t, st, "doomed")
	if st.MaxOffset("Orders", 3) != 0 {
		t.Fatal("a half message is visible in its real topic")
	}

	if err := s.End("PG", commitQ, commitPhys, true); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// Refusals: END_TRANSACTION's code and remark (Answer), and the
	// sentinel a 5.x client's answer is chosen by.
	refused := func(what string, err, want error, remark string) {
		t.Helper()
		if code, r := Answer(err); code != wire.SystemError || r != remark || !errors.Is(err, want) {
			t.Fatalf("%s: %d %q (%v), want SYSTEM_ERROR %q and %v", what, code, r, err, remark, want)
		}
	}
	refused("a second commit of the same half message", s.End("PG", commitQ, commitPhys, true),
		ErrDecided, fmt.Sprintf("transaction already decided: half message at queue offset %d", commitQ))
	refused("a rollback from another producer group", s.End("other", rbQ, rbPhys, false), ErrMismatch, "The producer group wrong")
	refused("a rollback naming the wrong queue offset", s.End("PG", rbQ+1, rbPhys, false), ErrMismatch, "The transaction state table offset wrong")
	if err := s.End("PG", rbQ, rbPhys, false); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	waitDispatched(t, st, "Orders", 1)
	u, ok := st.UnitAt("Orders", 3, 0)
	if !ok {
		t.Fatal("committed message missing")
	}
	refused("a commit naming a message in its real topic", s.End("PG", pendingQ, u.Phys, true),
		ErrNotHalf, fmt.Sprintf("the message at commit log offset %d is not a half message", u.Phys))
	if got := bodies(t, st); len(got) != 1 || got[0] != "commit" {
		t.Fatalf("real topic holds %v", got)
	}

	// Two rounds check the undecided ones; the third discards them.
	for i := 0; i < 2; i++ {
		s.checkRound(time.Now())
	}
	c.mu.Lock()
	if len(c.sent) != 4 || c.sent[0]["tranStateTableOffset"] != itoa(pendingQ) || c.sent[0]["group"] != "PG" || c.sent[0]["bodyTopic"] != "" {
		t.Fatalf("check-backs %v", c.sent)
	}
	c.mu.Unlock()
	if err := s.End("PG", pendingQ, physOf(t, st, pendingQ), true); err != nil {
		t.Fatalf("commit after a check-back refused: %v", err)
	}
	s.checkRound(time.Now())
	waitDispatched(t, st, meta.TopicTransMaxTime, 1)
	if s.Pending() != 0 {
		t.Fatalf("%d half messages pending, want 0", s.Pending())
	}
	if err := s.End("PG", doomedQ, physOf(t, st, doomedQ), true); !errors.Is(err, ErrDecided) {
		t.Fatalf("a discarded half message: %v, want %v", err, ErrDecided)
	}

	// One more undecided, then restart everything.
	_, lateQ := prepare(t, st, "late")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, dir)
	defer st.Close()
	c2 := &checks{live: true}
	s = openService(t, st, dir, c2)
	if s.Pending() != 1 {
		t.Fatalf("after a restart %d half messages pending, want 1", s.Pending())
	}
	s.checkRound(time.Now())
	if len(c2.sent) != 1 || c2.sent[0]["tranStateTableOffset"] != itoa(lateQ) {
		t.Fatalf("after a restart the broker asked about %v", c2.sent)
	}
	if err := s.End("PG", commitQ, commitPhys, true); !errors.Is(err, ErrDecided) {
		t.Fatalf("a commit decided before the restart: %v, want %v", err, ErrDecided)
	}
	if err := s.End("PG", lateQ, physOf(t, st, lateQ), true); err != nil {
		t.Fatalf("commit of the late message refused: %v", err)
	}
	waitDispatched(t, st, "Orders", 3)
	if got := bodies(t, st); len(got) != 3 || got[0] != "commit" || got[1] != "pending" || got[2] != "late" {
		t.Fatalf("real topic holds %v", got)
	}
}

// TestNoProducerOnline: checks that reach nobody are not counted, so a
// producer that comes back later still gets transactionCheckMax chances.
func TestNoProducerOnline(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	c := &checks{}
	s := openService(t, st, dir, c)
	prepare(t, st, "orphan")
	for i := 0; i < 5; i++ {
		s.checkRound(time.Now())
	}
	if st.MaxOffset(meta.TopicTransMaxTime, 0) != 0 || s.Pending() != 1 {
		t.Fatal("a half message was discarded while no producer was online")
	}
	c.live = true
	s.checkRound(time.Now())
	if len(c.sent) != 1 {
		t.Fatalf("%d check-backs once the producer is back", len(c.sent))
	}
}

// TestCommitWithDelay: a committed message carrying DELAY is parked in
// SCHEDULE_TOPIC_XXXX, not delivered at once.
func TestCommitWithDelay(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	s := openService(t, st, dir, &checks{})
	phys, q := prepare(t, st, "later", "DELAY", "1")
	if err := s.End("PG", q, phys, true); err != nil {
		t.Fatalf("commit: %v", err)
	}
	waitDispatched(t, st, meta.TopicSchedule, 1)
	if st.MaxOffset("Orders", 3) != 0 {
		t.Fatal("a delayed commit was delivered at once")
	}
}

func physOf(t *testing.T, st *store.Store, q int64) int64 {
	t.Helper()
	u, ok := st.UnitAt(meta.TopicTransHalf, 0, q)
	if !ok {
		t.Fatalf("half message %d missing", q)
	}
	return u.Phys
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A committed message the store refuses for good (its real topic cannot
// be stored) used to leave the transaction open, answered SYSTEM_ERROR,
// to be checked back and refused again until checkMax. Now the decision
// is recorded at once and the answer says why.
func TestCommitRefusedForGood(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	s := openService(t, st, dir, &checks{live: true})
	defer s.Close()
	m := store.Message{Topic: "a/b", SysFlag: wire.SysFlagTransactionPrepared, BornTimestamp: time.Now().UnixMilli(), Body: []byte("x"),
		Properties: []byte("PGROUP\x01PG\x02TRAN_MSG\x01true\x02")}
	Prepare(nil, &m)
	r := st.Put(&m)
	if r.Status != store.PutOK {
		t.Fatal(r.Status)
	}
	waitDispatched(t, st, meta.TopicTransHalf, r.QueueOffset+1)
	code, remark := Answer(s.End("PG", r.QueueOffset, r.PhysicalOffset, true))
	if code != wire.MessageIllegal || s.Pending() != 0 {
		t.Fatalf("End = %d %q with %d pending; want MESSAGE_ILLEGAL and the transaction closed", code, remark, s.Pending())
	}
}
