package remoting

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// TestReadLoopBurstSharesWrites: the answers to a burst of pipelined
// requests leave in few writes, in request order, and a long burst still
// flushes about every writeBurstMax bytes instead of holding everything.
func TestReadLoopBurstSharesWrites(t *testing.T) {
	checkLeaks(t)
	const n = 200
	answer := bytes.Repeat([]byte{'a'}, 4096) // 200 answers: about 800 KiB
	gate := make(chan struct{})
	first := true
	var cc *countConn
	srv := startServer(t, serverOpts{
		wrap: func(nc net.Conn) net.Conn { cc = &countConn{Conn: nc}; return cc },
		handler: HandlerFunc(func(c *Conn, req *wire.Command) {
			if first { // hold the read loop until the whole burst has arrived
				first = false
				<-gate
			}
			resp := wire.ResponseTo(req, wire.Success, "")
			resp.Body = answer
			c.Reply(req, &resp)
		}),
	})
	nc := dial(t, srv.addr())
	var stream []byte
	for i := int32(1); i <= n; i++ {
		stream = wire.AppendFrame(stream, request(10, i, nil))
	}
	if _, err := nc.Write(stream); err != nil {
		t.Fatal(err)
	}
	c := recv(t, "accepted connection", srv.conns)
	// Everything the client wrote is either read by the loop or queued in
	// the kernel: from here on the loop never waits for input.
	waitFor(t, "the burst to reach the server", func() bool {
		return int(cc.readBytes.Load())+inq(t, c.nc.(*countConn).Conn) == len(stream)
	})
	close(gate)

	r := bufio.NewReader(nc)
	for i := int32(1); i <= n; i++ {
		resp := mustRead(t, nc, r)
		if resp.Opaque != i || len(resp.Body) != len(answer) {
			t.Fatalf("answer %d: opaque %d, %d body bytes", i, resp.Opaque, len(resp.Body))
		}
	}
	frame := len(wire.AppendFrame(nil, &wire.Command{Opaque: n, Flag: wire.FlagResponse, Body: answer}))
	writes, maxWrite := cc.writes.Load(), cc.maxWrite.Load()
	t.Logf("%d answers (%d bytes) in %d writes, largest %d bytes; %d reads", n, n*frame, writes, maxWrite, cc.reads.Load())
	// The output is cut at writeBurstMax, plus at most two flushes where
	// the loop ran out of buffered input (before its second read and at
	// the end).
	if limit := int64(n*frame/writeBurstMax + 3); writes > limit {
		t.Fatalf("%d answers took %d writes, want at most %d", n, writes, limit)
	}
	if maxWrite > int64(writeBurstMax+frame) {
		t.Fatalf("a write of %d bytes: the loop held back more than writeBurstMax (%d)", maxWrite, writeBurstMax)
	}
}

// TestWriterBatchesQueuedOutput: frames queued by other goroutines while
// a write is in progress leave together in the next write, in order.
func TestWriterBatchesQueuedOutput(t *testing.T) {
	checkLeaks(t)
	gate := make(chan struct{})
	var cc *countConn
	srv := startServer(t, serverOpts{wrap: func(nc net.Conn) net.Conn { cc = &countConn{Conn: nc, gate: gate}; return cc }})
	nc := dial(t, srv.addr())
	c := recv(t, "accepted connection", srv.conns)

	if err := c.Send(request(40, 0, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the writer to be in a write", func() bool { return cc.inWrite.Load() == 1 })
	const n = 100
	for i := int32(1); i <= n; i++ {
		if err := c.Send(request(40, i, nil)); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)

	r := bufio.NewReader(nc)
	for i := int32(0); i <= n; i++ {
		if cmd := mustRead(t, nc, r); cmd.Opaque != i {
			t.Fatalf("frame %d has opaque %d: order lost", i, cmd.Opaque)
		}
	}
	if w := cc.writes.Load(); w != 2 {
		t.Fatalf("%d frames took %d writes, want 2 (the one in progress, then all that queued behind it)", n+1, w)
	}
}

// stuckWriter queues more output than the socket buffers hold for a peer
// that never reads, and returns once the connection's writer is in a write.
func stuckWriter(t *testing.T, c *Conn, cc *countConn) {
	t.Helper()
	big := request(40, 0, bytes.Repeat([]byte{'z'}, 1<<20))
	for i := 0; i < 16; i++ { // 16 MiB: more than the socket buffers of a peer that never read
		if err := c.Send(big); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	// The peer never reads, so the writer never gets all of it out.
	waitFor(t, "a write in progress", func() bool { return cc.inWrite.Load() == 1 })
}

// TestSlowReaderDoesNotBlockOthers: while the server cannot write to a
// peer that stopped reading, its other connections are served, frames can
// still be queued for the stuck peer without blocking, and Close returns.
func TestSlowReaderDoesNotBlockOthers(t *testing.T) {
	checkLeaks(t)
	ccs := make(chan *countConn, 4)
	srv := startServer(t, serverOpts{
		handler: echo,
		wrap:    func(nc net.Conn) net.Conn { cc := &countConn{Conn: nc}; ccs <- cc; return cc },
		// Far beyond the test's waits: Close must not depend on it.
		setup: func(c *Conn) { c.writeTimeout = time.Hour },
	})
	silentPeer(t, srv.addr())
	sc := recv(t, "accepted connection", srv.conns)
	stuckWriter(t, sc, <-ccs)

	other := dial(t, srv.addr())
	r := bufio.NewReader(other)
	for i := int32(1); i <= 50; i++ {
		if _, err := other.Write(wire.AppendFrame(nil, request(10, i, []byte(strconv.Itoa(int(i)))))); err != nil {
			t.Fatal(err)
		}
		if resp := mustRead(t, other, r); resp.Opaque != i {
			t.Fatalf("other connection: answer %d has opaque %d", i, resp.Opaque)
		}
	}
	// Queuing for the stuck peer does not block the caller either.
	for i := 0; i < 100; i++ {
		if err := sc.Send(request(40, 0, []byte("more"))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-sc.Done():
		t.Fatal("stuck peer closed before its write timed out")
	default:
	}
	if sc.nc.(*countConn).inWrite.Load() != 1 {
		t.Fatal("the stuck peer's write completed although it never read")
	}
	// Close does not wait for the stuck write: it closes the socket under it.
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	recv(t, "Close with a stuck write", closed)
}

// TestWriteTimeoutClosesStuckPeer: a flush that cannot be written within
// writeTimeout closes the connection, logged with the deadline error.
func TestWriteTimeoutClosesStuckPeer(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{setup: func(c *Conn) { c.writeTimeout = 200 * time.Millisecond }})
	peer := silentPeer(t, srv.addr())
	c := recv(t, "accepted connection", srv.conns)
	big := request(40, 0, bytes.Repeat([]byte{'z'}, 1<<20))
	for i := 0; i < 32; i++ { // more than the socket buffers hold
		if err := c.Send(big); err != nil {
			break // already timed out
		}
	}
	recv(t, "the stuck connection to close", c.Done())
	rec := srv.log.wait(t, "write failed")
	if err := errAttr(t, rec); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write failed with %v, want a deadline error", err)
	}
	if err := c.Send(request(40, 0, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after the timeout: %v, want ErrClosed", err)
	}
	expectClosed(t, peer)
}

// TestPendingLimitClosesNonReader: a peer that lets more than maxPending
// bytes pile up is disconnected instead of growing the buffer for ever.
func TestPendingLimitClosesNonReader(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{setup: func(c *Conn) { c.maxPending = 4 << 20 }})
	silentPeer(t, srv.addr())
	c := recv(t, "accepted connection", srv.conns)
	chunk := request(40, 0, bytes.Repeat([]byte{'y'}, 1<<20))
	var err error
	// The peer never reads: once the socket buffers are full the writer
	// is stuck and the queue grows past the limit.
	for i := 0; i < 64 && err == nil; i++ {
		err = c.Send(chunk)
	}
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("queuing 64 MiB for a peer that does not read: %v, want ErrClosed", err)
	}
	recv(t, "connection closed", c.Done())
	if _, ok := srv.log.find("peer does not read"); !ok {
		t.Fatalf("no warning logged:\n%s", srv.log)
	}
}
