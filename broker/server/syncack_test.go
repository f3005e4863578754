package server

import (
	"bufio"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// fsyncGate stalls commit-log fsyncs (store.Config.FsyncFault runs just
// before each one) while closed, and ends each stalled one with the error
// given to open.
type fsyncGate struct {
	dir     string
	mu      sync.Mutex
	closed  bool
	stalled int           // fsyncs waiting in the gate
	release chan error    // what the stalled fsyncs return
	entered chan struct{} // a token per fsync entering the gate
}

func newFsyncGate(dir string) *fsyncGate {
	return &fsyncGate{dir: filepath.Join(dir, "commitlog") + string(filepath.Separator), entered: make(chan struct{}, 1024)}
}

func (g *fsyncGate) hook(path string) error {
	if !strings.HasPrefix(path, g.dir) {
		return nil
	}
	g.mu.Lock()
	if !g.closed {
		g.mu.Unlock()
		return nil
	}
	g.stalled++
	ch := g.release
	g.mu.Unlock()
	g.entered <- struct{}{}
	return <-ch
}

func (g *fsyncGate) close() {
	g.mu.Lock()
	g.closed, g.release = true, make(chan error)
	g.mu.Unlock()
}

// open lets every stalled fsync return err (nil: go on to sync).
func (g *fsyncGate) open(err error) {
	g.mu.Lock()
	n, ch := g.stalled, g.release
	g.closed, g.stalled = false, 0
	g.mu.Unlock()
	for range n {
		ch <- err
	}
}

// syncSender is one connection with sends in flight: the answers are read
// by a goroutine, in the order they arrive.
type syncSender struct {
	conn net.Conn
	got  chan wire.Command
}

func newSyncSender(t *testing.T, addr string) *syncSender {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &syncSender{conn: conn, got: make(chan wire.Command, 1024)}
	go func() {
		r := bufio.NewReader(conn)
		for {
			cmd, err := wire.ReadCommand(r)
			if err != nil {
				close(s.got)
				return
			}
			s.got <- *cmd
		}
	}()
	return s
}

// send writes n sends, opaques from first on, without waiting.
func (s *syncSender) send(topic string, first, n int) error {
	var frames []byte
	for i := range n {
		req := wire.NewRequest(wire.SendMessageV2, map[string]string{
			"a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "0", "h": "0",
			"i": "TAGS\x01T\x02", "j": "0", "k": "false",
		}, []byte("m"+strconv.Itoa(first+i)))
		req.Opaque = int32(first + i)
		frames = wire.AppendFrame(frames, req)
	}
	_, err := s.conn.Write(frames)
	return err
}

// next returns the next answer.
func (s *syncSender) next(t *testing.T) wire.Command {
	t.Helper()
	cmd, ok := <-s.got
	if !ok {
		t.Fatal("connection closed")
	}
	return cmd
}

// TestSyncFlushAckAfterFsync: concurrent SYNC_FLUSH senders on several
// connections get no answer while the commit-log fsync that would cover
// their messages is stalled, each SEND_OK comes once the flushed offset
// (advanced only after an fsync returned) covers the message, and a
// failed fsync answers every waiting send SERVICE_NOT_AVAILABLE and
// refuses every later one: no ack is ever sent for bytes not known
// durable.
func TestSyncFlushAckAfterFsync(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := config.LoadBroker("", map[string]string{
		"listenPort": "0", "brokerIP1": "127.0.0.1", "namesrvAddr": "",
		"storePathRootDir": dir, "logDir": dir + "/logs", "mappedFileSizeCommitLog": strconv.Itoa(4 << 20),
		"maxHashSlotNum": "1000", "maxIndexNum": "4000", "flushDiskType": "SYNC_FLUSH",
		// The reaper must not answer FLUSH_DISK_TIMEOUT while the test
		// holds the fsync: only the fsync may end a wait here.
		"syncFlushTimeout": "600000",
	})
	if err != nil {
		t.Fatal(err)
	}
	gate := newFsyncGate(dir)
	b, err := New(Options{Config: cfg, Log: slog.New(slog.DiscardHandler), fsyncFault: gate.hook})
	if err != nil {
		t.Fatal(err)
	}
	b.Start()
	t.Cleanup(func() { _ = b.Close() })
	// Runs first: a failed check must not leave Close waiting for a
	// stalled fsync.
	t.Cleanup(func() { gate.open(nil) })
	addr := b.srv.Addr().String()
	const conns, each = 4, 16
	senders := make([]*syncSender, conns)
	for i := range senders {
		senders[i] = newSyncSender(t, addr)
	}
	// The topic exists before the gate closes (auto-creation is not the
	// subject here).
	if err := senders[0].send("AckTopic", 0, 1); err != nil {
		t.Fatal(err)
	}
	if r := senders[0].next(t); r.Code != wire.Success {
		t.Fatalf("first send: %d %s", r.Code, r.Remark)
	}

	// round sends each × conns messages from concurrent goroutines while
	// commit-log fsyncs stall, and returns once all are in the log and an
	// fsync is held in the gate.
	round := func(first int) {
		t.Helper()
		gate.close()
		start := b.store.MaxPhyOffset()
		var wg sync.WaitGroup
		for i, s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.send("AckTopic", first+i*each, each); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		// Every message is appended (its sender waits for the flush) ...
		waitFor(t, func() bool { return b.store.MaxPhyOffset() >= start+int64(conns*each*90) })
		// ... and the flusher is inside an fsync (the one the first
		// waiter started, or the next).
		<-gate.entered
		// Barrier: an answer each connection's read loop queues now. Had
		// any send been answered, its answer would come first.
		for _, s := range senders {
			req := wire.NewRequest(wire.GetBrokerRuntimeInfo, nil, nil)
			req.Opaque = -1
			if _, err := s.conn.Write(wire.AppendFrame(nil, req)); err != nil {
				t.Fatal(err)
			}
			if r := s.next(t); r.Opaque != -1 {
				t.Fatalf("answer to opaque %d (code %d) while the fsync covering it is stalled", r.Opaque, r.Code)
			}
		}
		if f := b.store.FlushedOffset(); f > start {
			t.Fatalf("flushed offset %d moved past %d while the fsync is stalled", f, start)
		}
	}

	round(1000)
	gate.open(nil)
	for _, s := range senders {
		for range each {
			r := s.next(t)
			if r.Code != wire.Success {
				t.Fatalf("opaque %d: %d %s", r.Opaque, r.Code, r.Remark)
			}
			_, _, phy, err := wire.ParseOffsetMsgID(r.GetString("msgId"))
			if err != nil {
				t.Fatal(err)
			}
			// The record starts at phy: an ack means flushed is past it.
			if f := b.store.FlushedOffset(); f <= phy {
				t.Fatalf("opaque %d acked with flushed offset %d, record at %d", r.Opaque, f, phy)
			}
		}
	}

	// A failed fsync: every waiting send is refused, and so is every
	// later one though later fsyncs succeed.
	flushed := b.store.FlushedOffset()
	round(2000)
	// Fail the stalled fsync; later ones (the gate is open) succeed.
	gate.open(unix.EIO)
	for _, s := range senders {
		for range each {
			if r := s.next(t); r.Code != wire.ServiceNotAvailable || !strings.Contains(string(r.Remark), "fsync") {
				t.Fatalf("opaque %d after a failed fsync: %d %q", r.Opaque, r.Code, r.Remark)
			}
		}
	}
	for i, s := range senders {
		if err := s.send("AckTopic", 3000+i*each, each); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range senders {
		for range each {
			if r := s.next(t); r.Code != wire.ServiceNotAvailable {
				t.Fatalf("opaque %d after the store failed: %d %q", r.Opaque, r.Code, r.Remark)
			}
		}
	}
	if f := b.store.FlushedOffset(); f != flushed {
		t.Fatalf("flushed offset moved from %d to %d after a failed fsync", flushed, f)
	}
}
