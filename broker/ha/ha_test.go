package ha

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// Server and client run in-process over real TCP on real stores.

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

func openStore(t *testing.T, segSize int64, role store.Role) *store.Store {
	t.Helper()
	s, err := store.Open(store.Config{
		RootDir: t.TempDir(), SegmentSize: segSize, CQUnitsPerFile: 1000,
		FlushInterval: 20 * time.Millisecond, StoreHost: []byte{127, 0, 0, 1, 0, 0, 0x2A, 0x9F},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if role == store.RoleSlave {
		if err := s.SetRole(store.RoleSlave); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// put stores n messages with bodies of varying length (so records straddle
// chunk ends at different places) and returns the end offset.
func put(t *testing.T, s *store.Store, n int, topic string) int64 {
	t.Helper()
	var end int64
	for i := 0; i < n; i++ {
		body := bytes.Repeat([]byte{byte('a' + i%26)}, 100+(i*37)%900)
		r := s.Put(&store.Message{Topic: topic, QueueID: int32(i % 4), BornTimestamp: 1700000000000,
			BornHost: []byte{10, 0, 0, 9, 0, 0, 0x30, 0x39}, Body: body,
			Properties: wire.AppendProperty(nil, "KEYS", fmt.Sprintf("k%d", i))})
		if r.Status != store.PutOK {
			t.Fatalf("put %d: %v", i, r.Status)
		}
		end = r.EndOffset
	}
	return end
}

func testConfig(log io.Writer) Config {
	return Config{
		HeartbeatInterval: 200 * time.Millisecond, HousekeepingInterval: 2 * time.Second,
		TransferBatchSize: 1000, FallbehindMax: 1 << 20, SlaveTimeout: 3 * time.Second,
		Log: slog.New(slog.NewTextHandler(log, nil)),
	}
}

func startServer(t *testing.T, st *store.Store, cfg Config) *Server {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Close() })
	return srv
}

func startClient(t *testing.T, st *store.Store, cfg Config, master string) *Client {
	t.Helper()
	cl := NewClient(st, cfg)
	cl.retry = 50 * time.Millisecond
	cl.SetMaster(master)
	cl.Start()
	t.Cleanup(cl.Close)
	return cl
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readLog reads [from, to) of a store's commit log.
func readLog(t *testing.T, s *store.Store, from, to int64) []byte {
	t.Helper()
	out := make([]byte, 0, to-from)
	buf := make([]byte, 64<<10)
	for off := from; off < to; {
		n, err := s.ReadCommitLog(buf[:min(int64(len(buf)), to-off)], off)
		if err != nil {
			t.Fatalf("read commit log at %d: %v", off, err)
		}
		if n == 0 {
			t.Fatalf("read commit log at %d: nothing below %d", off, to)
		}
		out = append(out, buf[:n]...)
		off += int64(n)
	}
	return out
}

func sameLog(t *testing.T, m, s *store.Store, from int64) {
	t.Helper()
	to := m.MaxPhyOffset()
	if got := s.MaxPhyOffset(); got != to {
		t.Fatalf("slave max %d, master max %d", got, to)
	}
	if !bytes.Equal(readLog(t, m, from, to), readLog(t, s, from, to)) {
		t.Fatalf("commit logs differ in [%d, %d)", from, to)
	}
}

// A slave that follows from the start ends byte-identical to its master
// across several segment roll-overs (blank fillers included) with chunks
// of 1000 bytes that cut records anywhere, and its dispatcher rebuilds
// the same consume queues from the complete records.
func TestStreamByteIdentical(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	m := openStore(t, 64<<10, store.RoleMaster)
	s := openStore(t, 64<<10, store.RoleSlave)
	srv := startServer(t, m, cfg)
	startClient(t, s, cfg, srv.Addr().String())
	waitFor(t, "the slave to connect", func() bool { return len(srv.Status()) == 1 && srv.Status()[0].AckOffset == 0 })

	end := put(t, m, 300, "TopicHA") // ~170 KiB: 3 segments
	if end <= 2*(64<<10) {
		t.Fatalf("only %d bytes: no roll-over", end)
	}
	waitFor(t, "the slave to catch up", func() bool { return s.MaxPhyOffset() == m.MaxPhyOffset() })
	sameLog(t, m, s, 0)
	if s.MinPhyOffset() != 0 {
		t.Fatalf("slave min %d", s.MinPhyOffset())
	}
	// 300 messages over 4 queues: 75 each, rebuilt by the slave from the
	// complete records only.
	waitFor(t, "both dispatchers", func() bool {
		for q := int32(0); q < 4; q++ {
			if s.MaxOffset("TopicHA", q) != 75 || m.MaxOffset("TopicHA", q) != 75 {
				return false
			}
		}
		return true
	})
	waitFor(t, "the final ack", func() bool { return srv.MaxAck() == end })
	st := srv.Status()
	if len(st) != 1 || st[0].AckOffset != end || st[0].Lag != 0 || st[0].LastCaughtUp.IsZero() || st[0].TransferredBytes < end {
		t.Fatalf("status %+v", st)
	}
}

// An empty slave joining a master with several segments receives only the
// master's last segment, as Java's does.
func TestEmptySlaveStartsAtLastSegment(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	m := openStore(t, 64<<10, store.RoleMaster)
	s := openStore(t, 64<<10, store.RoleSlave)
	put(t, m, 300, "TopicHA")
	srv := startServer(t, m, cfg)
	startClient(t, s, cfg, srv.Addr().String())
	waitFor(t, "the slave to catch up", func() bool { return s.MaxPhyOffset() == m.MaxPhyOffset() })
	last := m.MaxPhyOffset() - m.MaxPhyOffset()%m.SegmentSize()
	if last == 0 {
		t.Fatal("master has one segment")
	}
	if s.MinPhyOffset() != last {
		t.Fatalf("slave starts at %d, want the master's last segment %d", s.MinPhyOffset(), last)
	}
	sameLog(t, m, s, last)
	// And it keeps following.
	put(t, m, 50, "TopicHA")
	waitFor(t, "the slave to follow", func() bool { return s.MaxPhyOffset() == m.MaxPhyOffset() })
	sameLog(t, m, s, last)
}

// A dropped connection is re-established and streaming resumes from the
// slave's own max offset.
func TestReconnectAfterDrop(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	m := openStore(t, 64<<10, store.RoleMaster)
	s := openStore(t, 64<<10, store.RoleSlave)
	srv := startServer(t, m, cfg)
	cl := startClient(t, s, cfg, srv.Addr().String())
	put(t, m, 50, "TopicHA")
	waitFor(t, "the slave to catch up", func() bool { return s.MaxPhyOffset() == m.MaxPhyOffset() })
	for _, c := range srv.hub.Conns() {
		c.nc.Close() // the network drops it
	}
	put(t, m, 200, "TopicHA")
	waitFor(t, "the slave to catch up again", func() bool { return s.MaxPhyOffset() == m.MaxPhyOffset() })
	sameLog(t, m, s, 0)
	if n := cl.Status().Reconnects; n < 2 {
		t.Fatalf("%d connections, want a reconnect", n)
	}
}

// rawSlave dials the HA port and writes b.
func rawSlave(t *testing.T, srv *Server, b []byte) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if len(b) > 0 {
		if _, err := nc.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	return nc
}

// expectClosed reads until the server closes the connection.
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Fatalf("connection not closed by the master: %v", err)
	}
}

// A slave claiming an offset beyond the master's max (another master's
// log, or a master that lost data) is refused with a log line, never
// streamed to from the middle of a record.
func TestReportBeyondMaxRefused(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	m := openStore(t, 64<<10, store.RoleMaster)
	end := put(t, m, 10, "TopicHA")
	srv := startServer(t, m, cfg)
	nc := rawSlave(t, srv, wire.AppendHAReport(nil, end+1))
	expectClosed(t, nc)
	waitFor(t, "the refusal in the log", func() bool {
		return strings.Contains(logs.String(), fmt.Sprintf("beyond this master's max offset %d", end))
	})
	if len(srv.Status()) != 0 {
		t.Fatal("refused slave still listed")
	}
}

// Garbage on the HA port closes that connection with a log line and
// nothing else: a real slave connected at the same time keeps streaming.
func TestGarbageOnPort(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	m := openStore(t, 64<<10, store.RoleMaster)
	s := openStore(t, 64<<10, store.RoleSlave)
	srv := startServer(t, m, cfg)
	startClient(t, s, cfg, srv.Addr().String())

	http := rawSlave(t, srv, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	expectClosed(t, http)
	negative := rawSlave(t, srv, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE})
	expectClosed(t, negative)
	waitFor(t, "the log lines", func() bool {
		l := logs.String()
		return strings.Contains(l, "beyond this master's max offset") && strings.Contains(l, "garbage on the HA port")
	})

	put(t, m, 100, "TopicHA")
	waitFor(t, "the real slave to catch up", func() bool { return s.MaxPhyOffset() == m.MaxPhyOffset() })
	sameLog(t, m, s, 0)
}

// A silent connection is closed after haHousekeepingInterval.
func TestSilentConnectionClosed(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	cfg.HousekeepingInterval = 300 * time.Millisecond
	m := openStore(t, 64<<10, store.RoleMaster)
	srv := startServer(t, m, cfg)
	nc := rawSlave(t, srv, nil)
	expectClosed(t, nc)
	waitFor(t, "the log line", func() bool {
		return strings.Contains(logs.String(), "no report from the slave within haHousekeepingInterval")
	})
}

// readFrame reads one classic frame from nc.
func readFrame(t *testing.T, nc net.Conn) (int64, []byte) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	var hdr [wire.HATransferHeaderSize]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		t.Fatal(err)
	}
	off, n, err := wire.HATransferHeader(hdr[:])
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(nc, body); err != nil {
		t.Fatal(err)
	}
	return off, body
}

// Several reports in one read: the last one counts. A report split across
// reads is reassembled.
func TestReportsBatchedAndSplit(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	cfg.TransferBatchSize = 100
	m := openStore(t, 64<<10, store.RoleMaster)
	end := put(t, m, 20, "TopicHA")
	srv := startServer(t, m, cfg)

	two := wire.AppendHAReport(wire.AppendHAReport(nil, end), 500)
	nc := rawSlave(t, srv, two)
	off, body := readFrame(t, nc)
	if off != 500 || len(body) != 100 || !bytes.Equal(body, readLog(t, m, 500, 600)) {
		t.Fatalf("first frame at %d with %d bytes, want 500 and 100", off, len(body))
	}
	// A report split in two writes (3 + 5 bytes).
	rep := wire.AppendHAReport(nil, end)
	if _, err := nc.Write(rep[:3]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the master to read the first half", func() bool { return srv.Status()[0].NextOffset > 600 })
	if _, err := nc.Write(rep[3:]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the split report", func() bool { return srv.Status()[0].AckOffset == end })
	if srv.MaxAck() != end {
		t.Fatalf("max ack %d, want %d", srv.MaxAck(), end)
	}
}

// fakeMaster accepts HA connections and answers each with frames from fn.
func fakeMaster(t *testing.T, fn func(n int, nc net.Conn)) (string, chan int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan int, 100)
	go func() {
		for n := 1; ; n++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- n
			go func() {
				defer nc.Close()
				fn(n, nc)
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

// A frame that does not continue the slave's log makes it drop the
// connection and reconnect (re-reporting its max) without appending.
func TestClientRefusesWrongOffset(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	m := openStore(t, 64<<10, store.RoleMaster)
	put(t, m, 10, "TopicHA")
	s := openStore(t, 64<<10, store.RoleSlave)
	// Give the slave a first record from the "master".
	first := readLog(t, m, 0, m.MaxPhyOffset())
	if err := s.AppendAt(0, first[:500]); err != nil {
		t.Fatal(err)
	}
	reports := make(chan int64, 100)
	addr, accepted := fakeMaster(t, func(n int, nc net.Conn) {
		var rep [8]byte
		if _, err := io.ReadFull(nc, rep[:]); err != nil {
			return
		}
		off, _ := wire.HAReport(rep[:])
		reports <- off
		frame := wire.AppendHATransferHeader(nil, off+7, 4) // not where the slave is
		nc.Write(append(frame, 1, 2, 3, 4))
		io.Copy(io.Discard, nc)
	})
	startClient(t, s, cfg, addr)
	for i := 1; i <= 2; i++ {
		select {
		case <-accepted:
		case <-time.After(20 * time.Second):
			t.Fatalf("connection %d never came", i)
		}
		if off := <-reports; off != 500 {
			t.Fatalf("report %d: %d, want 500", i, off)
		}
	}
	if s.MaxPhyOffset() != 500 {
		t.Fatalf("slave appended a frame at the wrong offset: max %d", s.MaxPhyOffset())
	}
	waitFor(t, "the log line", func() bool { return strings.Contains(logs.String(), "not equal to this slave's max offset 500") })
}

// SYNC_MASTER acknowledgement over a real connection: SlaveOK needs a live
// slave that has reported and is less than haSlaveFallbehindMax behind;
// WaitAck completes on the slave's report.
func TestSlaveOKAndWaitAck(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	cfg.FallbehindMax = 10 << 10
	m := openStore(t, 64<<10, store.RoleMaster)
	s := openStore(t, 64<<10, store.RoleSlave)
	srv := startServer(t, m, cfg)
	if srv.SlaveOK(0) {
		t.Fatal("SlaveOK without a slave")
	}
	cl := startClient(t, s, cfg, srv.Addr().String())
	waitFor(t, "the first report", func() bool { return srv.SlaveOK(0) })
	if srv.SlaveOK(10 << 10) {
		t.Fatal("SlaveOK for an end haSlaveFallbehindMax ahead of the slave")
	}
	end := put(t, m, 5, "TopicHA")
	acked := make(chan bool, 1)
	srv.WaitAck(end, func(ok bool) { acked <- ok })
	select {
	case ok := <-acked:
		if !ok {
			t.Fatal("wait failed")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no ack")
	}
	if s.MaxPhyOffset() < end {
		t.Fatalf("acked at %d before the slave had %d", s.MaxPhyOffset(), end)
	}
	cl.Close()
	waitFor(t, "the connection to go", func() bool { return !srv.SlaveOK(end) })
	// Without a slave a wait times out.
	srv.acks.mu.Lock()
	srv.acks.timeout = 100 * time.Millisecond
	srv.acks.mu.Unlock()
	srv.WaitAck(end+1, func(ok bool) { acked <- ok })
	if ok := <-acked; ok {
		t.Fatal("a wait with no slave succeeded")
	}
}

// Frames split anywhere by the network (a header in pieces, a body in
// pieces, several frames in one read) and bodies that end in the middle of
// a record: the slave appends exactly the master's bytes, acks the end, and
// dispatches every complete record.
func TestClientReassemblesSplitFrames(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	m := openStore(t, 64<<10, store.RoleMaster)
	end := put(t, m, 40, "TopicHA")
	src := readLog(t, m, 0, end)
	var stream []byte
	for off, i := 0, 0; off < len(src); i++ {
		n := min([]int{1, 700, 3, 5000, 333}[i%5], len(src)-off)
		stream = wire.AppendHATransferHeader(stream, int64(off), n)
		stream = append(stream, src[off:off+n]...)
		if i%3 == 0 {
			stream = wire.AppendHATransferHeader(stream, int64(off+n), 0) // heartbeat
		}
		off += n
	}
	acked := make(chan struct{})
	addr, _ := fakeMaster(t, func(n int, nc net.Conn) {
		if n > 1 {
			return // one connection is enough
		}
		var rep [8]byte
		if _, err := io.ReadFull(nc, rep[:]); err != nil {
			return
		}
		for p, i := 0, 0; p < len(stream); i++ {
			k := min(1+i*7%50, len(stream)-p)
			if _, err := nc.Write(stream[p : p+k]); err != nil {
				return
			}
			p += k
		}
		for {
			if _, err := io.ReadFull(nc, rep[:]); err != nil {
				return
			}
			if off, _ := wire.HAReport(rep[:]); off == end {
				close(acked)
				io.Copy(io.Discard, nc)
				return
			}
		}
	})
	s := openStore(t, 64<<10, store.RoleSlave)
	startClient(t, s, cfg, addr)
	select {
	case <-acked:
	case <-time.After(20 * time.Second):
		t.Fatalf("no ack of %d; slave at %d", end, s.MaxPhyOffset())
	}
	sameLog(t, m, s, 0)
	waitFor(t, "the slave's dispatcher", func() bool {
		total := int64(0)
		for q := int32(0); q < 4; q++ {
			total += s.MaxOffset("TopicHA", q)
		}
		return total == 40
	})
}

// countingStore counts the slave store's appends.
type countingStore struct {
	*store.Store
	appends atomic.Int64
}

func (c *countingStore) AppendAt(off int64, b []byte) error {
	c.appends.Add(1)
	return c.Store.AppendAt(off, b)
}

// The frames of one read are appended with one store append, also across
// a segment boundary, and the slave's log is the master's.
func TestClientAppendsFramesOfOneReadAtOnce(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	m := openStore(t, 64<<10, store.RoleMaster)
	end := put(t, m, 200, "TopicHA") // past the first 64 KiB segment
	if end <= 64<<10 {
		t.Fatalf("log of %d bytes does not cross a segment", end)
	}
	src := readLog(t, m, 0, end)
	// 1000-byte frames that, as a master's, never cross a segment.
	var stream []byte
	frames := 0
	for off := int64(0); off < end; frames++ {
		n := min(1000, end-off, (off/(64<<10)+1)*(64<<10)-off)
		stream = wire.AppendHATransferHeader(stream, off, int(n))
		stream = append(stream, src[off:off+n]...)
		off += n
	}
	acked := make(chan struct{})
	addr, _ := fakeMaster(t, func(n int, nc net.Conn) {
		if n > 1 {
			return
		}
		var rep [8]byte
		if _, err := io.ReadFull(nc, rep[:]); err != nil {
			return
		}
		if _, err := nc.Write(stream); err != nil { // one write: few reads
			return
		}
		for {
			if _, err := io.ReadFull(nc, rep[:]); err != nil {
				return
			}
			if off, _ := wire.HAReport(rep[:]); off == end {
				close(acked)
				io.Copy(io.Discard, nc)
				return
			}
		}
	})
	s := &countingStore{Store: openStore(t, 64<<10, store.RoleSlave)}
	cl := NewClient(s, cfg)
	cl.retry = 50 * time.Millisecond
	cl.SetMaster(addr)
	cl.Start()
	t.Cleanup(cl.Close)
	select {
	case <-acked:
	case <-time.After(20 * time.Second):
		t.Fatalf("no ack of %d; slave at %d", end, s.MaxPhyOffset())
	}
	sameLog(t, m, s.Store, 0)
	if n := s.appends.Load(); n*4 > int64(frames) {
		t.Fatalf("%d store appends for %d frames sent in one write", n, frames)
	}
}

// Flow control: one-second windows of at most max bytes.
func TestRateLimitWindows(t *testing.T) {
	sec := int64(time.Second)
	r := rateLimit{max: 1000}
	t0 := 5 * sec
	if n, wait := r.allow(t0, 600); n != 600 || wait != 0 {
		t.Fatalf("first: %d %v", n, wait)
	}
	r.sent(600)
	if n, _ := r.allow(t0+sec/2, 600); n != 400 {
		t.Fatalf("rest of the window: %d, want 400", n)
	}
	r.sent(400)
	if n, wait := r.allow(t0+sec*3/4, 600); n != 0 || wait != time.Duration(sec/4) {
		t.Fatalf("window used up: %d, wait %v", n, wait)
	}
	if n, _ := r.allow(t0+sec, 600); n != 600 {
		t.Fatalf("next window: %d, want 600", n)
	}
	off := rateLimit{}
	if n, wait := off.allow(t0, 1<<20); n != 1<<20 || wait != 0 {
		t.Fatalf("no limit: %d %v", n, wait)
	}
}

// haFlowControlEnable: the transfer to a slave never exceeds
// maxHaTransferByteInSecond, so a log 3.5 times that size takes at least
// three full windows; the copy is still exact.
func TestFlowControlCapsTransfer(t *testing.T) {
	var logs logBuf
	cfg := testConfig(&logs)
	m := openStore(t, 1<<20, store.RoleMaster)
	end := put(t, m, 200, "TopicHA")
	cfg.MaxTransferBytesPerSecond = end * 2 / 7
	s := openStore(t, 1<<20, store.RoleSlave)
	srv := startServer(t, m, cfg)
	start := time.Now()
	startClient(t, s, cfg, srv.Addr().String())
	waitFor(t, "the slave to catch up", func() bool { return s.MaxPhyOffset() == end })
	if el := time.Since(start); el < 3*time.Second {
		t.Fatalf("%d bytes at most %d a second arrived in %v", end, cfg.MaxTransferBytesPerSecond, el)
	}
	sameLog(t, m, s, 0)
	if !strings.Contains(logs.String(), "flow control") {
		t.Fatal("no flow-control log line")
	}
}
