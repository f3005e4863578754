package store

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

var testStoreHost = []byte{127, 0, 0, 1, 0, 0, 0x2A, 0x9F} // 127.0.0.1:10911

// logBuf collects log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeClock is a settable clock for store timestamps and retention.
type fakeClock struct{ ms atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ms.Store(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

func testConfig(t testing.TB, logs *logBuf) Config {
	var w = logs
	if w == nil {
		w = &logBuf{}
	}
	return Config{
		RootDir:        t.TempDir(),
		SegmentSize:    1 << 20,
		CQUnitsPerFile: 100,
		FlushInterval:  20 * time.Millisecond,
		StoreHost:      testStoreHost,
		Logger:         slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitDispatch(t testing.TB, s *Store) {
	t.Helper()
	if !s.waitDispatched(s.MaxPhyOffset(), 5*time.Second) {
		t.Fatalf("dispatch stuck: behind %d", s.DispatchBehind())
	}
}

func msg(topic string, qid int32, body string, props ...string) *Message {
	var p []byte
	for i := 0; i+1 < len(props); i += 2 {
		p = wire.AppendProperty(p, props[i], props[i+1])
	}
	return &Message{
		Topic: topic, QueueID: qid, BornTimestamp: 1700000000000,
		BornHost: []byte{10, 0, 0, 9, 0, 0, 0x30, 0x39}, Body: []byte(body), Properties: p,
	}
}

func mustPut(t testing.TB, s *Store, m *Message) PutResult {
	t.Helper()
	r := s.Put(m)
	if r.Status != PutOK {
		t.Fatalf("Put(%s/%d): %v", m.Topic, m.QueueID, r.Status)
	}
	return r
}

// records splits a GetMessages body into validated record views.
func records(t testing.TB, body []byte) []wire.RecordView {
	t.Helper()
	var out []wire.RecordView
	for len(body) > 0 {
		n, err := wire.CheckRecord(body)
		if err != nil {
			t.Fatalf("bad record in body: %v", err)
		}
		out = append(out, wire.RecordView(body[:n]))
		body = body[n:]
	}
	return out
}

// readAll pulls every message of a queue from its min offset.
func readAll(t testing.TB, s *Store, topic string, qid int32) []wire.RecordView {
	t.Helper()
	var out []wire.RecordView
	off := s.MinOffset(topic, qid)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("readAll does not terminate (at offset %d)", off)
		}
		r := s.GetMessages(topic, qid, off, 32, 1<<20, nil, nil, nil)
		switch r.Status {
		case Found:
			out = append(out, records(t, r.Body)...)
		case OffsetOverflowOne, NoMatchedLogicQueue, NoMessageInQueue:
			return out
		case OffsetFoundNull:
			if r.NextBeginOffset == off {
				time.Sleep(time.Millisecond) // a damaged unit: its queue is being rebuilt
			}
		case NoMatchedMessage, MessageWasRemoving:
		default:
			t.Fatalf("GetMessages(%s/%d @%d) = %v", topic, qid, off, r.Status)
		}
		off = r.NextBeginOffset
	}
}

func bodyOf(i int, size int) string {
	s := fmt.Sprintf("msg-%06d-", i)
	if len(s) < size {
		s += strings.Repeat("x", size-len(s))
	}
	return s
}
