package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/mqops/mqops/wire"
)

// TestPutGetAcrossSegments writes ~3.5 segments of messages to three
// queues and reads them all back byte for byte.
func TestPutGetAcrossSegments(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	type sent struct {
		res  PutResult
		body string
	}
	perQueue := map[int32][]sent{}
	for i := range 3000 {
		qid := int32(i % 3)
		m := msg("TopicA", qid, bodyOf(i, 1000+i%300), wire.PropTags, fmt.Sprintf("tag%d", i%5), wire.PropKeys, fmt.Sprint(i))
		r := mustPut(t, s, m)
		if want := int64(len(perQueue[qid])); r.QueueOffset != want {
			t.Fatalf("msg %d: queue offset %d, want %d", i, r.QueueOffset, want)
		}
		if r.EndOffset != r.PhysicalOffset+int64(r.WroteBytes) {
			t.Fatalf("EndOffset %d != %d+%d", r.EndOffset, r.PhysicalOffset, r.WroteBytes)
		}
		perQueue[qid] = append(perQueue[qid], sent{r, string(m.Body)})
	}
	waitDispatch(t, s)
	if n := len(s.clog.segs); n < 4 {
		t.Fatalf("expected ≥ 4 segments, got %d", n)
	}

	// Every segment but the last ends with a blank filler right after its
	// last record, and no record crosses a segment boundary.
	var prevEnd int64
	for qid := range int32(3) {
		for _, m := range perQueue[qid] {
			p := m.res.PhysicalOffset
			if p/s.segSize != (m.res.EndOffset-1)/s.segSize {
				t.Fatalf("record at %d crosses a segment boundary", p)
			}
			prevEnd = max(prevEnd, m.res.EndOffset)
		}
	}
	for _, seg := range s.clog.segs[:len(s.clog.segs)-1] {
		// Walk records to the filler.
		off := int64(0)
		for {
			v := wire.RecordView(seg.data[off:])
			if v.Magic() == wire.MagicBlank {
				if int64(v.TotalSize()) != s.segSize-off {
					t.Fatalf("filler size %d, want %d", v.TotalSize(), s.segSize-off)
				}
				break
			}
			if v.Magic() != wire.MagicMessage {
				t.Fatalf("segment %d: no filler, magic %#x at %d", seg.base, v.Magic(), off)
			}
			off += int64(v.TotalSize())
		}
	}

	for qid := range int32(3) {
		got := readAll(t, s, "TopicA", qid)
		want := perQueue[qid]
		if len(got) != len(want) {
			t.Fatalf("queue %d: read %d, want %d", qid, len(got), len(want))
		}
		for i, v := range got {
			w := want[i]
			if string(v.Body()) != w.body || v.QueueOffset() != int64(i) || v.PhysicalOffset() != w.res.PhysicalOffset ||
				v.StoreTimestamp() != w.res.StoreTimestamp || string(v.Topic()) != "TopicA" || v.QueueID() != qid ||
				!bytes.Equal(v.StoreHost(), testStoreHost) {
				t.Fatalf("queue %d msg %d mismatch: offset %d phys %d", qid, i, v.QueueOffset(), v.PhysicalOffset())
			}
		}
		if mo := s.MaxOffset("TopicA", qid); mo != int64(len(want)) {
			t.Fatalf("MaxOffset = %d, want %d", mo, len(want))
		}
		if mo := s.MinOffset("TopicA", qid); mo != 0 {
			t.Fatalf("MinOffset = %d", mo)
		}
	}
	if s.MaxPhyOffset() != prevEnd {
		t.Fatalf("MaxPhyOffset %d, want %d", s.MaxPhyOffset(), prevEnd)
	}

	// The pull body decodes with the official client.
	r := s.GetMessages("TopicA", 1, 5, 4, 1<<20, nil, nil, nil)
	msgs := primitive.DecodeMessage(r.Body)
	if r.Status != Found || len(msgs) != 4 {
		t.Fatalf("GetMessages: %v, decoded %d", r.Status, len(msgs))
	}
	for i, m := range msgs {
		w := perQueue[1][5+i]
		if string(m.Body) != w.body || m.QueueOffset != int64(5+i) || m.CommitLogOffset != w.res.PhysicalOffset ||
			m.OffsetMsgId != wire.OffsetMsgID(testStoreHost, w.res.PhysicalOffset) || m.GetTags() != fmt.Sprintf("tag%d", (3*(5+i)+1)%5) {
			t.Fatalf("client decode %d: %+v", i, m)
		}
	}
}

func TestGetStatuses(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	for i := range 10 {
		mustPut(t, s, msg("T", 0, bodyOf(i, 10)))
	}
	waitDispatch(t, s)

	tests := []struct {
		name            string
		topic           string
		qid             int32
		offset          int64
		want            GetStatus
		wantNext, count int64
	}{
		{"no queue", "Nope", 0, 5, NoMatchedLogicQueue, 0, 0},
		{"no queue id", "T", 3, 0, NoMatchedLogicQueue, 0, 0},
		{"overflow one", "T", 0, 10, OffsetOverflowOne, 10, 0},
		{"overflow badly", "T", 0, 11, OffsetOverflowBadly, 10, 0},
		{"found", "T", 0, 0, Found, 4, 4},
		{"found tail", "T", 0, 8, Found, 10, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.GetMessages(tc.topic, tc.qid, tc.offset, 4, 1<<20, nil, nil, nil)
			if r.Status != tc.want || r.NextBeginOffset != tc.wantNext || int64(r.MsgCount) != tc.count {
				t.Fatalf("got %v next %d count %d, want %v next %d count %d",
					r.Status, r.NextBeginOffset, r.MsgCount, tc.want, tc.wantNext, tc.count)
			}
			if r.Status != NoMatchedLogicQueue && (r.MinOffset != 0 || r.MaxOffset != 10) {
				t.Fatalf("min/max %d/%d", r.MinOffset, r.MaxOffset)
			}
		})
	}

	// Byte budget: the first message is always taken.
	if r := s.GetMessages("T", 0, 0, 10, 1, nil, nil, nil); r.Status != Found || r.MsgCount != 1 || r.NextBeginOffset != 1 {
		t.Fatalf("byte budget: %v %d %d", r.Status, r.MsgCount, r.NextBeginOffset)
	}
	// maxMsgs 0 still returns one message, like Java.
	if r := s.GetMessages("T", 0, 3, 0, 0, nil, nil, nil); r.Status != Found || r.MsgCount != 1 || r.NextBeginOffset != 4 {
		t.Fatalf("maxMsgs 0: %v %d %d", r.Status, r.MsgCount, r.NextBeginOffset)
	}

	// NO_MESSAGE_IN_QUEUE: a queue that exists without units.
	s.getOrCreateCQ([]byte("Empty"), 0)
	if r := s.GetMessages("Empty", 0, 3, 4, 0, nil, nil, nil); r.Status != NoMessageInQueue || r.NextBeginOffset != 0 {
		t.Fatalf("empty queue: %v %d", r.Status, r.NextBeginOffset)
	}

	// OFFSET_FOUND_NULL: the consume-queue file for the offset is gone.
	// (CQUnitsPerFile is 100, so put enough for a second file.)
	for i := range 150 {
		mustPut(t, s, msg("Big", 0, bodyOf(i, 10)))
	}
	waitDispatch(t, s)
	cq := s.cqs.get("Big", 0)
	cq.mu.Lock()
	hidden := cq.files[0]
	cq.files = cq.files[1:]
	cq.mu.Unlock()
	r := s.GetMessages("Big", 0, 42, 4, 0, nil, nil, nil)
	if r.Status != OffsetFoundNull || r.NextBeginOffset != 100 {
		t.Fatalf("missing cq file: %v next %d", r.Status, r.NextBeginOffset)
	}
	if r := s.GetMessages("Big", 0, 120, 4, 0, nil, nil, nil); r.Status != Found || r.NextBeginOffset != 124 {
		t.Fatalf("second file: %v next %d", r.Status, r.NextBeginOffset)
	}
	cq.mu.Lock()
	cq.files = append([]*mmapFile{hidden}, cq.files...)
	cq.mu.Unlock()
	// A read never crosses a consume-queue file.
	if r := s.GetMessages("Big", 0, 98, 32, 0, nil, nil, nil); r.Status != Found || r.MsgCount != 2 || r.NextBeginOffset != 100 {
		t.Fatalf("file boundary: %v count %d next %d", r.Status, r.MsgCount, r.NextBeginOffset)
	}
}

func TestTagFiltering(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	tags := []string{"A", "B", "", "A", "C", "B", "A"}
	for i, tag := range tags {
		var m *Message
		if tag == "" {
			m = msg("T", 0, bodyOf(i, 20))
		} else {
			m = msg("T", 0, bodyOf(i, 20), wire.PropTags, tag)
		}
		mustPut(t, s, m)
	}
	waitDispatch(t, s)
	codeA := wire.TagsHashCode([]byte("A"))
	matchA := func(code int64) bool { return code == codeA }
	r := s.GetMessages("T", 0, 0, 32, 0, matchA, nil, nil)
	recs := records(t, r.Body)
	if r.Status != Found || len(recs) != 3 || r.NextBeginOffset != 7 {
		t.Fatalf("tag A: %v %d next %d", r.Status, len(recs), r.NextBeginOffset)
	}
	for _, v := range recs {
		if string(wire.PropertyValue(v.Properties(), wire.PropTags)) != "A" {
			t.Fatalf("got non-A record")
		}
	}
	// Filtered units are skipped: from offset 1 the first A is at 3.
	if r := s.GetMessages("T", 0, 1, 1, 0, matchA, nil, nil); r.Status != Found || r.NextBeginOffset != 4 {
		t.Fatalf("skip: %v next %d", r.Status, r.NextBeginOffset)
	}
	// Nothing matches: NO_MATCHED_MESSAGE and the whole range is skipped.
	none := func(int64) bool { return false }
	if r := s.GetMessages("T", 0, 2, 32, 0, none, nil, nil); r.Status != NoMatchedMessage || r.NextBeginOffset != 7 || len(r.Body) != 0 {
		t.Fatalf("no match: %v next %d", r.Status, r.NextBeginOffset)
	}
	// The record check sees exact bytes (hash collisions are filtered there).
	onlyC := func(rec []byte) bool {
		return string(wire.PropertyValue(wire.RecordView(rec).Properties(), wire.PropTags)) == "C"
	}
	if r := s.GetMessages("T", 0, 0, 32, 0, nil, onlyC, nil); r.Status != Found || r.MsgCount != 1 || r.NextBeginOffset != 7 {
		t.Fatalf("record filter: %v %d next %d", r.Status, r.MsgCount, r.NextBeginOffset)
	}
	// Untagged messages have tags code 0.
	u, _ := s.cqs.get("T", 0).unitAt(2)
	if u.tagsCode != 0 {
		t.Fatalf("untagged code %d", u.tagsCode)
	}
	// Scan limit: max(16000 B, maxMsgs×20 B) = 800 units per call.
	for i := range 900 {
		mustPut(t, s, msg("Scan", 0, bodyOf(i, 8), wire.PropTags, "X"))
	}
	waitDispatch(t, s)
	if r := s.GetMessages("Scan", 0, 0, 32, 0, none, nil, nil); r.Status != NoMatchedMessage || r.NextBeginOffset != 100 {
		// Bounded first by the 100-unit consume-queue file.
		t.Fatalf("scan limit (file): %v next %d", r.Status, r.NextBeginOffset)
	}
}

func TestScanLimit(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.CQUnitsPerFile = 2000
	s := openStore(t, cfg)
	for i := range 1000 {
		mustPut(t, s, msg("Scan", 0, bodyOf(i, 8), wire.PropTags, "X"))
	}
	waitDispatch(t, s)
	none := func(int64) bool { return false }
	if r := s.GetMessages("Scan", 0, 0, 32, 0, none, nil, nil); r.Status != NoMatchedMessage || r.NextBeginOffset != 800 {
		t.Fatalf("scan limit: %v next %d", r.Status, r.NextBeginOffset)
	}
	if r := s.GetMessages("Scan", 0, 0, 900, 0, none, nil, nil); r.NextBeginOffset != 900 {
		t.Fatalf("scan limit by maxMsgs: next %d", r.NextBeginOffset)
	}
}

func TestMinMaxOffsetAndStoreTime(t *testing.T) {
	cfg := testConfig(t, nil)
	clk := newFakeClock()
	cfg.Now = clk.Now
	s := openStore(t, cfg)
	if s.MinOffset("X", 0) != -1 || s.MaxOffset("X", 0) != 0 {
		t.Fatalf("missing queue min/max = %d/%d", s.MinOffset("X", 0), s.MaxOffset("X", 0))
	}
	var ts []int64
	for i := range 5 {
		clk.Advance(time.Second)
		ts = append(ts, mustPut(t, s, msg("X", 1, bodyOf(i, 10))).StoreTimestamp)
	}
	waitDispatch(t, s)
	if s.MinOffset("X", 1) != 0 || s.MaxOffset("X", 1) != 5 {
		t.Fatalf("min/max = %d/%d", s.MinOffset("X", 1), s.MaxOffset("X", 1))
	}
	if got := s.QueueIDs("X"); !slices.Equal(got, []int32{1}) {
		t.Fatalf("QueueIDs = %v", got)
	}
	for i, want := range ts {
		if got, ok := s.StoreTimeAt("X", 1, int64(i)); !ok || got != want {
			t.Fatalf("StoreTimeAt(%d) = %d,%v want %d", i, got, ok, want)
		}
	}
	if _, ok := s.StoreTimeAt("X", 1, 5); ok {
		t.Fatalf("StoreTimeAt past max succeeded")
	}
}

func TestOffsetByTime(t *testing.T) {
	cfg := testConfig(t, nil)
	clk := newFakeClock()
	cfg.Now = clk.Now
	s := openStore(t, cfg)
	// Store times: 1000, 2000, 2000, 3000, 5000, 9000 (ms after start).
	start := clk.Now().UnixMilli()
	steps := []int64{1000, 1000, 0, 1000, 2000, 4000}
	var times []int64
	for i, d := range steps {
		clk.Advance(time.Duration(d) * time.Millisecond)
		times = append(times, mustPut(t, s, msg("T", 0, bodyOf(i, 10))).StoreTimestamp-start)
	}
	waitDispatch(t, s)
	if !slices.Equal(times, []int64{1000, 2000, 2000, 3000, 5000, 9000}) {
		t.Fatalf("store times %v", times)
	}
	tests := []struct {
		ts   int64
		want int64
	}{
		{0, 0},      // all later → first
		{1000, 0},   // exact
		{2000, 1},   // exact, first of equals
		{2400, 2},   // nearer to 2000
		{2600, 3},   // nearer to 3000
		{4000, 3},   // tie → earlier
		{5000, 4},   // exact
		{8000, 5},   // nearer to 9000
		{9000, 5},   // exact last
		{99999, 5},  // all earlier → last message, not max
		{-50000, 0}, // before everything
	}
	for _, tc := range tests {
		if got := s.OffsetByTime("T", 0, start+tc.ts); got != tc.want {
			t.Errorf("OffsetByTime(+%d) = %d, want %d", tc.ts, got, tc.want)
		}
	}
	if got := s.OffsetByTime("None", 0, start); got != 0 {
		t.Errorf("missing queue: %d", got)
	}
}

func TestStoreTimestampsNeverGoBack(t *testing.T) {
	cfg := testConfig(t, nil)
	clk := newFakeClock()
	cfg.Now = clk.Now
	s := openStore(t, cfg)
	a := mustPut(t, s, msg("T", 0, "a")).StoreTimestamp
	clk.Advance(-time.Hour)
	if b := mustPut(t, s, msg("T", 0, "b")).StoreTimestamp; b != a {
		t.Fatalf("store time went back: %d after %d", b, a)
	}
}

func TestPutBatch(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	mustPut(t, s, msg("B", 2, "single"))
	var ms []Message
	for i := range 10 {
		ms = append(ms, *msg("B", 2, bodyOf(i, 100), wire.PropKeys, fmt.Sprint(i)))
	}
	r, phys := s.PutBatch(ms)
	if r.Status != PutOK || len(phys) != 10 || r.QueueOffset != 1 || phys[0] != r.PhysicalOffset {
		t.Fatalf("PutBatch: %+v %v", r, phys)
	}
	waitDispatch(t, s)
	all := readAll(t, s, "B", 2)
	if len(all) != 11 {
		t.Fatalf("read %d", len(all))
	}
	for i, v := range all[1:] {
		if v.PhysicalOffset() != phys[i] || v.QueueOffset() != int64(1+i) || string(v.Body()) != string(ms[i].Body) {
			t.Fatalf("batch item %d mismatch", i)
		}
		if i > 0 && phys[i] != phys[i-1]+int64(all[i].TotalSize()) {
			t.Fatalf("batch records not consecutive")
		}
	}
	if end := phys[9] + int64(all[10].TotalSize()); r.EndOffset != end || r.WroteBytes != int32(end-phys[0]) {
		t.Fatalf("EndOffset %d want %d, WroteBytes %d", r.EndOffset, end, r.WroteBytes)
	}
	ids := wire.AppendOffsetMsgID(nil, s.StoreHost(), phys[3])
	if _, _, off, err := wire.ParseOffsetMsgID(string(ids)); err != nil || off != phys[3] {
		t.Fatalf("msg id %s: %v", ids, err)
	}

	// A batch that does not fit the rest of the segment moves as a whole.
	big := make([]Message, 4)
	for i := range big {
		big[i] = *msg("B", 2, strings.Repeat("z", 200_000))
	}
	for range 2 {
		r, phys := s.PutBatch(big)
		if r.Status != PutOK {
			t.Fatalf("big batch: %v", r.Status)
		}
		if phys[0]/s.segSize != (r.EndOffset-1)/s.segSize {
			t.Fatalf("batch spans segments: %d..%d", phys[0], r.EndOffset)
		}
	}

	bad := []struct {
		name string
		ms   []Message
		want PutStatus
	}{
		{"empty", nil, MessageIllegal},
		{"mixed topics", []Message{*msg("B", 2, "a"), *msg("C", 2, "b")}, MessageIllegal},
		{"mixed queues", []Message{*msg("B", 2, "a"), *msg("B", 3, "b")}, MessageIllegal},
		{"prepared", []Message{{Topic: "B", QueueID: 2, SysFlag: wire.SysFlagTransactionPrepared}}, MessageIllegal},
		{"too big for a segment", append(slices.Clone(big), big...), MessageIllegal},
	}
	before := s.MaxPhyOffset()
	for _, tc := range bad {
		if r, _ := s.PutBatch(tc.ms); r.Status != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, r.Status, tc.want)
		}
	}
	if s.MaxPhyOffset() != before {
		t.Fatalf("rejected batches touched the log")
	}
	phys2 := make([]int64, 0, 16)
	if a := testing.AllocsPerRun(50, func() { _, phys2 = s.PutBatchTo(phys2[:0], ms[:3]) }); a != 0 {
		t.Errorf("PutBatchTo allocs = %v", a)
	}
}

func TestPutRejects(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	mustPut(t, s, msg("T", 0, "ok"))
	before := s.MaxPhyOffset()
	tests := []struct {
		name string
		m    *Message
		want PutStatus
	}{
		{"empty topic", msg("", 0, "x"), MessageIllegal},
		{"topic 128", msg(strings.Repeat("t", 128), 0, "x"), MessageIllegal},
		{"topic with slash", msg("../etc", 0, "x"), MessageIllegal},
		{"body over max", msg("T", 0, strings.Repeat("b", 4<<20+1)), MessageIllegal},
		{"record over segment", &Message{Topic: "T", Body: make([]byte, 1<<20)}, MessageIllegal},
		{"properties too long", &Message{Topic: "T", Properties: make([]byte, 32768)}, PropertiesTooLong},
		{"bad born host", &Message{Topic: "T", BornHost: []byte{1, 2, 3}}, MessageIllegal},
	}
	for _, tc := range tests {
		if r := s.Put(tc.m); r.Status != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, r.Status, tc.want)
		}
	}
	if s.MaxPhyOffset() != before {
		t.Fatalf("rejected puts touched the log")
	}
	if r := mustPut(t, s, msg(strings.Repeat("t", 127), 0, "x")); r.QueueOffset != 0 {
		t.Fatalf("127-byte topic: %+v", r)
	}
	s.Close()
	if r := s.Put(msg("T", 0, "late")); r.Status != ServiceNotAvailable {
		t.Fatalf("put after close: %v", r.Status)
	}
	if PutOK.String() != "PUT_OK" || Found.String() != "FOUND" || OffsetOverflowOne.String() != "OFFSET_OVERFLOW_ONE" {
		t.Fatalf("status names")
	}
}

func TestTransactionTypesNotDispatched(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	mustPut(t, s, msg("T", 0, "plain"))
	var half PutResult
	for _, f := range []int32{wire.SysFlagTransactionPrepared, wire.SysFlagTransactionRollback} {
		m := msg("T", 0, "half")
		m.SysFlag = f
		if half = mustPut(t, s, m); half.QueueOffset != 0 {
			t.Fatalf("sysFlag %#x: queue offset %d, want 0", f, half.QueueOffset)
		}
	}
	m := msg("T", 0, "commit")
	m.SysFlag = wire.SysFlagTransactionCommit
	r := mustPut(t, s, m)
	if r.QueueOffset != 1 {
		t.Fatalf("commit queue offset %d", r.QueueOffset)
	}
	waitDispatch(t, s)
	got := readAll(t, s, "T", 0)
	if len(got) != 2 || string(got[0].Body()) != "plain" || string(got[1].Body()) != "commit" {
		t.Fatalf("dispatched %d records", len(got))
	}
	// The undispatched record is still readable by physical offset.
	if v := wire.RecordView(mustRead(t, s, half.PhysicalOffset)); string(v.Body()) != "half" {
		t.Fatalf("ReadRecord of rollback record: %q", v.Body())
	}
}

func TestConcurrentPutsQueueOffsets(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	var dispatched sync.Map
	s.OnDispatch(func(topic string, qid int32, qoff, code int64) {
		dispatched.Store(fmt.Sprintf("%s/%d/%d", topic, qid, qoff), code)
	})
	const workers, each = 8, 300
	var wg sync.WaitGroup
	results := make([][]PutResult, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				results[w] = append(results[w], s.Put(msg("C", int32(i%4), bodyOf(i, 50), wire.PropTags, "t")))
			}
		}()
	}
	// Readers run concurrently with the writers.
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	for q := range int32(4) {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			off := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := s.GetMessages("C", q, off, 16, 1<<20, nil, nil, nil)
				if r.Status == Found {
					for _, v := range records(t, r.Body) {
						if v.QueueOffset() != off {
							t.Errorf("queue %d: read offset %d, want %d", q, v.QueueOffset(), off)
						}
						off++
					}
				}
			}
		}()
	}
	wg.Wait()
	waitDispatch(t, s)
	close(stop)
	rwg.Wait()

	seen := map[int32]map[int64]bool{}
	for _, rs := range results {
		for _, r := range rs {
			if r.Status != PutOK {
				t.Fatalf("put: %v", r.Status)
			}
			qid := wire.RecordView(mustRead(t, s, r.PhysicalOffset)).QueueID()
			if seen[qid] == nil {
				seen[qid] = map[int64]bool{}
			}
			if seen[qid][r.QueueOffset] {
				t.Fatalf("duplicate queue offset %d in queue %d", r.QueueOffset, qid)
			}
			seen[qid][r.QueueOffset] = true
		}
	}
	for q := range int32(4) {
		n := int64(len(seen[q]))
		if s.MaxOffset("C", q) != n || n != workers*each/4 {
			t.Fatalf("queue %d: max %d, %d offsets", q, s.MaxOffset("C", q), n)
		}
		for i := range n {
			if !seen[q][i] {
				t.Fatalf("queue %d: offset %d missing", q, i)
			}
			if _, ok := dispatched.Load(fmt.Sprintf("C/%d/%d", q, i)); !ok {
				t.Fatalf("OnDispatch missed C/%d/%d", q, i)
			}
		}
	}
}

func mustRead(t testing.TB, s *Store, phy int64) []byte {
	t.Helper()
	b, err := s.ReadRecord(phy, nil)
	if err != nil {
		t.Fatalf("ReadRecord(%d): %v", phy, err)
	}
	return b
}

func TestReadRecord(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	r := mustPut(t, s, msg("T", 0, "hello", wire.PropUniqKey, "ABC"))
	b := mustRead(t, s, r.PhysicalOffset)
	if v := wire.RecordView(b); string(v.Body()) != "hello" || len(b) != int(r.WroteBytes) {
		t.Fatalf("ReadRecord body %q", v.Body())
	}
	for _, off := range []int64{-1, r.PhysicalOffset + 1, r.EndOffset, 1 << 40} {
		if _, err := s.ReadRecord(off, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("ReadRecord(%d) err = %v", off, err)
		}
	}
}

func TestDeleteTopic(t *testing.T) {
	cfg := testConfig(t, nil)
	s := openStore(t, cfg)
	for i := range 5 {
		mustPut(t, s, msg("Gone", int32(i%2), bodyOf(i, 10)))
		mustPut(t, s, msg("Kept", 0, bodyOf(i, 10)))
	}
	waitDispatch(t, s)
	if err := s.DeleteTopic("Gone"); err != nil {
		t.Fatal(err)
	}
	if s.QueueIDs("Gone") != nil || s.MaxOffset("Gone", 0) != 0 || s.MinOffset("Gone", 0) != -1 {
		t.Fatalf("topic still visible")
	}
	if _, err := os.Stat(filepath.Join(cfg.RootDir, "consumequeue", "Gone")); !os.IsNotExist(err) {
		t.Fatalf("consume queue dir still there: %v", err)
	}
	if r := mustPut(t, s, msg("Gone", 0, "again")); r.QueueOffset != 0 {
		t.Fatalf("queue offset after delete = %d", r.QueueOffset)
	}
	waitDispatch(t, s)
	s.Close()

	s2 := openStore(t, cfg)
	if got := readAll(t, s2, "Gone", 0); len(got) != 1 || string(got[0].Body()) != "again" {
		t.Fatalf("after reopen Gone/0 has %d messages", len(got))
	}
	if s2.QueueIDs("Gone") == nil || len(s2.QueueIDs("Gone")) != 1 || len(readAll(t, s2, "Kept", 0)) != 5 {
		t.Fatalf("after reopen: queues %v", s2.QueueIDs("Gone"))
	}
}

func TestPutAllocs(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	m := msg("Alloc", 0, strings.Repeat("b", 1024), wire.PropTags, "t")
	mustPut(t, s, m) // creates the queue-table entry
	if a := testing.AllocsPerRun(1000, func() { s.Put(m) }); a != 0 {
		t.Fatalf("Put allocs = %v", a)
	}
}

func TestOpenLock(t *testing.T) {
	cfg := testConfig(t, nil)
	openStore(t, cfg)
	if _, err := Open(cfg); err == nil {
		t.Fatalf("second Open of the same root succeeded")
	}
}

func TestBlankFillerLayout(t *testing.T) {
	s := openStore(t, testConfig(t, nil))
	// Fill until the segment rolls, then check the filler bytes on disk.
	var last PutResult
	for last.PhysicalOffset < s.segSize {
		last = mustPut(t, s, msg("F", 0, strings.Repeat("f", 10000)))
	}
	if last.PhysicalOffset != s.segSize {
		t.Fatalf("first record of segment 2 at %d", last.PhysicalOffset)
	}
	s.Close()
	b, err := os.ReadFile(filepath.Join(s.cfg.CommitLogDir, "00000000000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	off := int64(0)
	for wire.RecordView(b[off:]).Magic() == wire.MagicMessage {
		off += int64(wire.RecordView(b[off:]).TotalSize())
	}
	if got := binary.BigEndian.Uint32(b[off+4:]); got != 0xCBD43194 || int64(binary.BigEndian.Uint32(b[off:])) != s.segSize-off {
		t.Fatalf("filler at %d: % x", off, b[off:off+8])
	}
	if _, err := os.Stat(filepath.Join(s.cfg.CommitLogDir, "00000000000001048576")); err != nil {
		t.Fatalf("second segment name: %v", err)
	}
}

// TestSegmentCreateFailure: when the next segment cannot be created the
// append fails cleanly and the log is untouched; it recovers afterwards.
func TestSegmentCreateFailure(t *testing.T) {
	logs := &logBuf{}
	s := openStore(t, testConfig(t, logs))
	for s.MaxPhyOffset() < s.segSize-20000 {
		mustPut(t, s, msg("T", 0, strings.Repeat("a", 10000)))
	}
	blocker := fileName(s.cfg.CommitLogDir, s.segSize)
	if err := os.Mkdir(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	before, qoff := s.MaxPhyOffset(), *s.queueOffsets[queueKey{"T", 0}]
	if r := s.Put(msg("T", 0, strings.Repeat("a", 30000))); r.Status != ServiceNotAvailable {
		t.Fatalf("put needing a new segment: %v", r.Status)
	}
	if s.MaxPhyOffset() != before || *s.queueOffsets[queueKey{"T", 0}] != qoff {
		t.Fatalf("failed put changed the log")
	}
	if !strings.Contains(logs.String(), "cannot create commitlog segment") {
		t.Fatalf("failure not logged:\n%s", logs)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if r := mustPut(t, s, msg("T", 0, strings.Repeat("a", 30000))); r.PhysicalOffset != s.segSize {
		t.Fatalf("put after recovery at %d", r.PhysicalOffset)
	}
}
