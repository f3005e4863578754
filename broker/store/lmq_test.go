package store

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mqops/mqops/wire"
)

// lightQueues is the number of light queues s counts.
func lightQueues(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lmqs
}

func lmqConfig(t testing.TB, logs *logBuf) Config {
	cfg := testConfig(t, logs)
	cfg.LightQueues = true
	return cfg
}

// lmqMsg is a message of topic T queue qid dispatched into lmqs.
func lmqMsg(qid int32, body string, lmqs ...string) *Message {
	return msg("T", qid, body, wire.PropTags, "tag", wire.PropInnerMultiDispatch, strings.Join(lmqs, ","))
}

// lmqOffsets returns the light queues and offsets stored in record v.
func lmqOffsets(t testing.TB, v wire.RecordView) map[string]int64 {
	t.Helper()
	names := wire.PropertyValue(v.Properties(), wire.PropInnerMultiDispatch)
	offs := wire.PropertyValue(v.Properties(), wire.PropInnerMultiQueueOffset)
	ns, os := strings.Split(string(names), ","), strings.Split(string(offs), ",")
	if len(ns) != len(os) {
		t.Fatalf("record at %d: %d queues, %d offsets (%q, %q)", v.PhysicalOffset(), len(ns), len(os), names, offs)
	}
	m := map[string]int64{}
	for i, n := range ns {
		q, err := strconv.ParseInt(os[i], 10, 64)
		if err != nil {
			t.Fatalf("record at %d: offset %q: %v", v.PhysicalOffset(), os[i], err)
		}
		m[n] = q
	}
	return m
}

// lmqState is every light queue's records, as physical offsets in queue
// order, checked for consistency with the offsets the records carry.
func lmqState(t testing.TB, s *Store, lmqs ...string) map[string][]int64 {
	t.Helper()
	out := map[string][]int64{}
	for _, l := range lmqs {
		var phys []int64
		for i, v := range readAll(t, s, l, 0) {
			if got := lmqOffsets(t, v)[l]; got != int64(i) {
				t.Fatalf("%s: unit %d points at a record that carries offset %d for it", l, i, got)
			}
			if i > 0 && v.PhysicalOffset() <= phys[i-1] {
				t.Fatalf("%s: unit %d is not after unit %d in the log", l, i, i-1)
			}
			phys = append(phys, v.PhysicalOffset())
		}
		if mo := s.MaxOffset(l, 0); mo != int64(len(phys)) {
			t.Fatalf("%s: MaxOffset %d, %d records", l, mo, len(phys))
		}
		out[l] = phys
	}
	return out
}

func TestLMQPutDispatch(t *testing.T) {
	s := openStore(t, lmqConfig(t, nil))
	// A client's own INNER_MULTI_QUEUE_OFFSET is replaced, not trusted.
	m := lmqMsg(1, "one", "%LMQ%a", "%LMQ%b")
	m.Properties = wire.AppendProperty(m.Properties, wire.PropInnerMultiQueueOffset, "7,9")
	r1 := mustPut(t, s, m)
	r2 := mustPut(t, s, lmqMsg(1, "two", "%LMQ%b"))
	r3 := mustPut(t, s, msg("T", 1, "plain"))
	r4 := mustPut(t, s, lmqMsg(2, "three", "%LMQ%b", "%LMQ%a", "%LMQ%c"))
	waitDispatch(t, s)

	if r1.QueueOffset != 0 || r2.QueueOffset != 1 || r3.QueueOffset != 2 || r4.QueueOffset != 0 {
		t.Fatalf("own queue offsets %d %d %d %d", r1.QueueOffset, r2.QueueOffset, r3.QueueOffset, r4.QueueOffset)
	}
	want := map[string][]int64{
		"%LMQ%a": {r1.PhysicalOffset, r4.PhysicalOffset},
		"%LMQ%b": {r1.PhysicalOffset, r2.PhysicalOffset, r4.PhysicalOffset},
		"%LMQ%c": {r4.PhysicalOffset},
	}
	if got := lmqState(t, s, "%LMQ%a", "%LMQ%b", "%LMQ%c"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("light queues %v, want %v", got, want)
	}
	rec, err := s.ReadRecord(r4.PhysicalOffset, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Same order as INNER_MULTI_DISPATCH; the other properties are kept.
	props := wire.RecordView(rec).Properties()
	if got := string(wire.PropertyValue(props, wire.PropInnerMultiQueueOffset)); got != "2,1,0" {
		t.Fatalf("INNER_MULTI_QUEUE_OFFSET %q, want 2,1,0", got)
	}
	if string(wire.PropertyValue(props, wire.PropTags)) != "tag" {
		t.Fatalf("properties lost: %q", props)
	}
	rec, _ = s.ReadRecord(r1.PhysicalOffset, nil)
	if n := strings.Count(string(wire.RecordView(rec).Properties()), wire.PropInnerMultiQueueOffset); n != 1 {
		t.Fatalf("record carries INNER_MULTI_QUEUE_OFFSET %d times: %q", n, wire.RecordView(rec).Properties())
	}
	// The own queue holds the records as usual; a plain message is not
	// dispatched anywhere else.
	if got := readAll(t, s, "T", 1); len(got) != 3 || string(got[2].Body()) != "plain" {
		t.Fatalf("own queue: %d records", len(got))
	}
	if lightQueues(s) != 3 {
		t.Fatalf("LightQueues %d, want 3", lightQueues(s))
	}
	// Tag filtering works on light queues: the unit has the record's tags code.
	res := s.GetMessages("%LMQ%b", 0, 0, 32, 0, func(code int64) bool { return code == wire.TagsHashCode([]byte("tag")) }, nil, nil)
	if res.Status != Found || res.MsgCount != 3 {
		t.Fatalf("tag-filtered pull of %%LMQ%%b: %v, %d messages", res.Status, res.MsgCount)
	}
}

func TestLMQRefused(t *testing.T) {
	s := openStore(t, lmqConfig(t, nil))
	for _, list := range []string{"%LMQ%a,%LMQ%a", "plainTopic", "%LMQ%a,,%LMQ%b", "%LMQ%", "%LMQ%a/b", ",%LMQ%a",
		"%LMQ%" + strings.Repeat("x", 130)} {
		if r := s.Put(msg("T", 0, "x", wire.PropInnerMultiDispatch, list)); r.Status != MultiDispatchIllegal {
			t.Errorf("INNER_MULTI_DISPATCH %q: %v, want MULTI_DISPATCH_ILLEGAL", list, r.Status)
		}
	}
	// A trailing separator is dropped, as Java's String.split does.
	if r := s.Put(msg("T", 0, "x", wire.PropInnerMultiDispatch, "%LMQ%z,")); r.Status != PutOK {
		t.Errorf("trailing separator: %v", r.Status)
	}
	// 40 names with one duplicate: the set path, not the pairwise one.
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("%%LMQ%%q%d", i))
	}
	many = append(many, "%LMQ%q7")
	if r := s.Put(lmqMsg(0, "x", many...)); r.Status != MultiDispatchIllegal {
		t.Errorf("duplicate in a long list: %v", r.Status)
	}
	if r, _ := s.PutBatch([]Message{*lmqMsg(0, "x", "%LMQ%a")}); r.Status != MultiDispatchIllegal {
		t.Errorf("batch with INNER_MULTI_DISPATCH: %v", r.Status)
	}
	// Properties that no longer fit once the offsets are added.
	long := msg("T", 0, "x", "P", strings.Repeat("p", wire.MaxPropertiesLen-60), wire.PropInnerMultiDispatch, "%LMQ%a,%LMQ%b")
	if r := s.Put(long); r.Status != PropertiesTooLong {
		t.Errorf("properties too long with the offsets: %v", r.Status)
	}
	// Retry and dead-letter copies carry the original's lists: stored, not
	// dispatched again.
	for _, topic := range []string{"%RETRY%g", "%DLQ%g", "SCHEDULE_TOPIC_XXXX", "rmq_sys_wheel_timer", "RMQ_SYS_TRANS_HALF_TOPIC", "%LMQ%own"} {
		m := msg(topic, 0, "copy", wire.PropInnerMultiDispatch, "%LMQ%a", wire.PropInnerMultiQueueOffset, "0")
		mustPut(t, s, m)
	}
	waitDispatch(t, s)
	// A record sent straight to a light queue is in it once.
	if s.MaxOffset("%LMQ%a", 0) != 0 || lightQueues(s) != 2 || s.MaxOffset("%LMQ%z", 0) != 1 || s.MaxOffset("T", 0) != 1 ||
		s.MaxOffset("%LMQ%own", 0) != 1 {
		t.Fatalf("refused or excluded puts left units: %%LMQ%%a %d, T %d, light queues %d",
			s.MaxOffset("%LMQ%a", 0), s.MaxOffset("T", 0), lightQueues(s))
	}
}

// TestLMQDisabled: without LightQueues the property is an ordinary one.
func TestLMQDisabled(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	r := mustPut(t, s, lmqMsg(0, "x", "%LMQ%a", "%LMQ%a"))
	waitDispatch(t, s)
	rec, _ := s.ReadRecord(r.PhysicalOffset, nil)
	if wire.PropertyValue(wire.RecordView(rec).Properties(), wire.PropInnerMultiQueueOffset) != nil || s.MaxOffset("%LMQ%a", 0) != 0 {
		t.Fatal("multi-dispatch ran without LightQueues")
	}
}

func TestLMQLimitAndDelete(t *testing.T) {
	cfg := lmqConfig(t, nil)
	cfg.MaxLightQueues = 3
	s := openStore(t, cfg)
	mustPut(t, s, lmqMsg(0, "1", "%LMQ%a", "%LMQ%b"))
	if r := s.Put(lmqMsg(0, "2", "%LMQ%c", "%LMQ%d")); r.Status != LMQNumExceeded {
		t.Fatalf("fourth light queue: %v, want LMQ_CONSUME_QUEUE_NUM_EXCEEDED", r.Status)
	}
	mustPut(t, s, lmqMsg(0, "3", "%LMQ%a", "%LMQ%c"))
	mustPut(t, s, lmqMsg(0, "4", "%LMQ%c", "%LMQ%b", "%LMQ%a"))
	waitDispatch(t, s)
	if lightQueues(s) != 3 {
		t.Fatalf("LightQueues %d", lightQueues(s))
	}

	if err := s.DeleteLMQ("T"); !errors.Is(err, ErrNotLMQ) {
		t.Fatalf("DeleteLMQ of a topic: %v", err)
	}
	if err := s.DeleteLMQ("%LMQ%c"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.RootDir, "consumequeue", "%LMQ%c")); !os.IsNotExist(err) {
		t.Fatalf("consume queue of the deleted light queue still there: %v", err)
	}
	if r := s.GetMessages("%LMQ%c", 0, 0, 32, 0, nil, nil, nil); r.Status != NoMatchedLogicQueue {
		t.Fatalf("pull of the deleted light queue: %v", r.Status)
	}
	// Its slot is free; the others go on.
	mustPut(t, s, lmqMsg(0, "5", "%LMQ%d", "%LMQ%a"))
	waitDispatch(t, s)
	st := lmqState(t, s, "%LMQ%a", "%LMQ%b", "%LMQ%d")
	if len(st["%LMQ%a"]) != 4 || len(st["%LMQ%b"]) != 2 || len(st["%LMQ%d"]) != 1 {
		t.Fatalf("after delete: %v", st)
	}
	// A restart brings back neither the deleted queue nor its count.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg)
	if s.MaxOffset("%LMQ%c", 0) != 0 || lightQueues(s) != 3 {
		t.Fatalf("after restart: %%LMQ%%c max %d, light queues %d", s.MaxOffset("%LMQ%c", 0), lightQueues(s))
	}
	if r := s.Put(lmqMsg(0, "6", "%LMQ%e")); r.Status != LMQNumExceeded {
		t.Fatalf("after restart, a fourth light queue: %v", r.Status)
	}
	// A deleted light queue named again starts at offset 0.
	if err := s.DeleteLMQ("%LMQ%d"); err != nil {
		t.Fatal(err)
	}
	r := mustPut(t, s, lmqMsg(0, "7", "%LMQ%d"))
	waitDispatch(t, s)
	rec, _ := s.ReadRecord(r.PhysicalOffset, nil)
	if got := lmqOffsets(t, wire.RecordView(rec))["%LMQ%d"]; got != 0 || s.MaxOffset("%LMQ%d", 0) != 1 {
		t.Fatalf("re-created light queue: offset %d, max %d", got, s.MaxOffset("%LMQ%d", 0))
	}
}

// fillLMQ puts n messages from `writers` goroutines at once, each into a
// random subset of the light queues, and returns how many went into each.
func fillLMQ(t *testing.T, s *Store, n, writers int, lmqs []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for i := w; i < n; i += writers {
				var to []string
				for _, l := range lmqs {
					if rng.Intn(2) == 0 {
						to = append(to, l)
					}
				}
				m := msg("T", int32(i%3), bodyOf(i, 200+rng.Intn(600)), wire.PropTags, "tag")
				if len(to) > 0 {
					m.Properties = wire.AppendProperty(m.Properties, wire.PropInnerMultiDispatch, strings.Join(to, ","))
				}
				if r := s.Put(m); r.Status != PutOK {
					errs <- fmt.Errorf("put %d: %v", i, r.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

var testLMQs = []string{"%LMQ%a", "%LMQ%b", "%LMQ%c", "%LMQ%d"}

// TestLMQConcurrentPuts: offsets are assigned in log order under the
// append lock, whatever the interleaving: every light queue holds
// 0..n-1 without gaps, each unit's record carries that offset, and the
// order in every queue is the log's.
func TestLMQConcurrentPuts(t *testing.T) {
	s := openStore(t, lmqConfig(t, nil))
	fillLMQ(t, s, 2000, 4, testLMQs)
	waitDispatch(t, s)
	total := 0
	for _, phys := range lmqState(t, s, testLMQs...) {
		total += len(phys)
	}
	if total < 3000 {
		t.Fatalf("only %d units in the light queues", total)
	}
}

// TestLMQCrashRecovery: after a crash, and after losing consume-queue
// files, the light queues come back identical from the commit log, and
// new messages continue their offsets.
func TestLMQCrashRecovery(t *testing.T) {
	cfg := lmqConfig(t, nil)
	s := openStore(t, cfg)
	fillLMQ(t, s, 3000, 3, testLMQs)
	waitDispatch(t, s)
	before := lmqState(t, s, testLMQs...)

	s.crashForTest() // the last units may not be on disk
	s = openStore(t, cfg)
	if got := lmqState(t, s, testLMQs...); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatal("light queues differ after a crash")
	}
	r := mustPut(t, s, lmqMsg(0, "after crash", "%LMQ%b", "%LMQ%a"))
	rec, _ := s.ReadRecord(r.PhysicalOffset, nil)
	if got := lmqOffsets(t, wire.RecordView(rec)); got["%LMQ%a"] != int64(len(before["%LMQ%a"])) || got["%LMQ%b"] != int64(len(before["%LMQ%b"])) {
		t.Fatalf("offsets after the crash %v, queues held %d and %d", got, len(before["%LMQ%a"]), len(before["%LMQ%b"]))
	}
	waitDispatch(t, s)
	before = lmqState(t, s, testLMQs...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// One light queue's directory lost (the manifest says it existed),
	// another's last file cut: rebuilt from the log.
	cq := filepath.Join(cfg.RootDir, "consumequeue")
	if err := os.RemoveAll(filepath.Join(cq, "%LMQ%a")); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cq, "%LMQ%c", "0", "*"))
	if len(files) < 2 {
		t.Fatalf("%%LMQ%%c has %d files", len(files))
	}
	if err := os.Truncate(files[len(files)-2], 7*cqUnitSize); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	cfg.Logger = testConfig(t, logs).Logger
	s = openStore(t, cfg)
	if got := lmqState(t, s, testLMQs...); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("light queues differ after losing files:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "%LMQ%a") || !strings.Contains(logs.String(), "%LMQ%c") {
		t.Fatalf("rebuilds not reported:\n%s", logs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Every consume queue and the checkpoint gone: all rebuilt from the log.
	if err := os.RemoveAll(cq); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"checkpoint", "cqmanifest"} {
		if err := os.Remove(filepath.Join(cfg.RootDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	s = openStore(t, cfg)
	if got := lmqState(t, s, testLMQs...); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatal("light queues differ after a rebuild from the commit log")
	}
	if lightQueues(s) != len(testLMQs) {
		t.Fatalf("LightQueues %d after a rebuild", lightQueues(s))
	}
}

// TestLMQTornTail: a crash that tore the log's last records drops their
// units from the light queues too; the offsets they had are given again,
// in step with the records' own queues.
func TestLMQTornTail(t *testing.T) {
	cfg := lmqConfig(t, nil)
	s := openStore(t, cfg)
	var rs []PutResult
	for i := range 300 {
		rs = append(rs, mustPut(t, s, lmqMsg(0, bodyOf(i, 300), "%LMQ%a", "%LMQ%b")))
	}
	waitDispatch(t, s)
	if err := s.flushConsumeQueues(); err != nil { // units of the torn records are on disk
		t.Fatal(err)
	}
	s.crashForTest()
	// Tear record 250: zero from its middle on, as a torn write would.
	cut := rs[250].PhysicalOffset + int64(rs[250].WroteBytes)/2
	seg := filepath.Join(cfg.RootDir, "commitlog", fmt.Sprintf("%020d", cut-cut%cfg.SegmentSize))
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, rs[299].EndOffset-cut), cut%cfg.SegmentSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The checkpoint vouches for nothing past the cut.
	ck := checkpoint{flushed: rs[200].PhysicalOffset, dispatched: rs[200].PhysicalOffset}
	if err := writeCheckpoint(cfg.RootDir, ck); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, cfg)
	st := lmqState(t, s, "%LMQ%a", "%LMQ%b")
	if len(st["%LMQ%a"]) != 250 || len(st["%LMQ%b"]) != 250 || s.MaxOffset("T", 0) != 250 {
		t.Fatalf("after the torn tail: %d, %d light units, %d own", len(st["%LMQ%a"]), len(st["%LMQ%b"]), s.MaxOffset("T", 0))
	}
	r := mustPut(t, s, lmqMsg(0, "next", "%LMQ%b"))
	rec, _ := s.ReadRecord(r.PhysicalOffset, nil)
	if got := lmqOffsets(t, wire.RecordView(rec))["%LMQ%b"]; got != 250 || r.QueueOffset != 250 {
		t.Fatalf("next message: light offset %d, own %d, want 250", got, r.QueueOffset)
	}
	waitDispatch(t, s)
	lmqState(t, s, "%LMQ%a", "%LMQ%b")
}

// TestLMQReplica: a slave derives the same light queues from the master's
// bytes, and continues their offsets once promoted.
func TestLMQReplica(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	mcfg := replConfig(t, nil)
	mcfg.LightQueues = true
	master := openStore(t, mcfg)
	fillLMQ(t, master, 800, 2, testLMQs)
	scfg := replConfig(t, nil)
	scfg.LightQueues = true
	slave := openSlave(t, scfg)
	replicate(t, master, slave, rng, 0)
	waitDispatch(t, master)
	waitDispatch(t, slave)
	want := lmqState(t, master, testLMQs...)
	if got := lmqState(t, slave, testLMQs...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatal("slave's light queues differ from the master's")
	}
	if err := slave.SetRole(RoleMaster); err != nil {
		t.Fatal(err)
	}
	r := mustPut(t, slave, lmqMsg(0, "promoted", "%LMQ%d"))
	rec, _ := slave.ReadRecord(r.PhysicalOffset, nil)
	if got := lmqOffsets(t, wire.RecordView(rec))["%LMQ%d"]; got != int64(len(want["%LMQ%d"])) {
		t.Fatalf("promoted slave gave offset %d, the queue held %d", got, len(want["%LMQ%d"]))
	}
}

// TestLMQReadAllocations: reading a light queue checks each unit against
// its record's lists without allocating, as reading any queue does.
func TestLMQReadAllocations(t *testing.T) {
	s := openStore(t, lmqConfig(t, nil))
	for i := range 40 {
		mustPut(t, s, lmqMsg(0, bodyOf(i, 100), "%LMQ%a", "%LMQ%b"))
	}
	waitDispatch(t, s)
	buf := make([]byte, 0, 64<<10)
	allocs := testing.AllocsPerRun(50, func() {
		if r := s.GetMessages("%LMQ%b", 0, 3, 32, 0, nil, nil, buf[:0]); r.Status != Found || r.MsgCount != 32 {
			t.Fatalf("%v %d", r.Status, r.MsgCount)
		}
	})
	if allocs != 0 {
		t.Fatalf("GetMessages on a light queue: %v allocations", allocs)
	}
}
