package remoting

import (
	"bufio"
	"bytes"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mqops/mqops/wire"
)

// dialFrom opens a TCP connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc
}

// served reports whether a request on nc is answered.
func served(t *testing.T, nc net.Conn) {
	t.Helper()
	if _, err := nc.Write(wire.AppendFrame(nil, request(10, 5, []byte("ping")))); err != nil {
		t.Fatal(err)
	}
	if resp := mustRead(t, nc, bufio.NewReader(nc)); resp.Opaque != 5 {
		t.Fatalf("answer opaque %d", resp.Opaque)
	}
}

func limitedServer(t *testing.T, l Limits, o serverOpts) *testServer {
	t.Helper()
	o.limits = &l
	return startServer(t, o)
}

// TestConnLimits: past the per-address limit a new connection from that
// address is closed at once, other addresses are still served, past the
// daemon limit every new connection is closed, a closed connection frees
// its place, and refusals are counted and logged once per period.
func TestConnLimits(t *testing.T) {
	checkLeaks(t)
	srv := limitedServer(t, Limits{MaxConns: 3, MaxConnsPerAddr: 2}, serverOpts{handler: echo})
	a1 := dialFrom(t, "127.0.0.1", srv.addr())
	served(t, a1)
	served(t, dialFrom(t, "127.0.0.1", srv.addr()))
	expectClosed(t, dialFrom(t, "127.0.0.1", srv.addr()))
	served(t, dialFrom(t, "127.0.0.2", srv.addr()))
	expectClosed(t, dialFrom(t, "127.0.0.3", srv.addr()))
	if st := srv.Stats(); st.Refused != 2 || st.Conns != 3 {
		t.Fatalf("stats %+v, want 2 refused and 3 connections", st)
	}
	rec := srv.log.wait(t, "[CONN_REFUSED]")
	if rec.attrs["limit"] != "maxConnectionsPerAddress" {
		t.Fatalf("first refusal logged %s", rec)
	}
	srv.log.mu.Lock()
	n := 0
	for _, r := range srv.log.recs {
		if strings.Contains(r.msg, "[CONN_REFUSED]") {
			n++
		}
	}
	srv.log.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d refusal lines logged within the rate-limit period, want 1", n)
	}
	_ = a1.Close()
	waitFor(t, "the closed connection to be uncounted", func() bool { return srv.Stats().Conns == 2 })
	served(t, dialFrom(t, "127.0.0.3", srv.addr()))
}

// TestConnLimitsDefaults: defaults derive from RLIMIT_NOFILE and keep the
// reserve out of the connections' reach.
func TestConnLimitsDefaults(t *testing.T) {
	l := Limits{}.WithDefaults()
	nofile := openFileLimit()
	if l.FDReserve < minFDReserve || l.MaxConns != max(nofile-l.FDReserve, 1) || l.MaxConnsPerAddr != max(l.MaxConns/4, 1) {
		t.Fatalf("defaults %+v for RLIMIT_NOFILE %d", l, nofile)
	}
	if l.FrameBudget != DefaultFrameBudget || l.HighWater != DefaultHighWater || l.LowWater != DefaultLowWater {
		t.Fatalf("defaults %+v", l)
	}
	if l := (Limits{HighWater: 1 << 20, LowWater: 2 << 20}).WithDefaults(); l.LowWater >= l.HighWater {
		t.Fatalf("low-water mark %d not below high %d", l.LowWater, l.HighWater)
	}
}

// TestFrameBudget: reservations wait for releases, a closed connection
// stops waiting, and a frame larger than the whole budget gets through
// alone.
func TestFrameBudget(t *testing.T) {
	b := newFrameBudget(100)
	if !b.acquire(60, nil) {
		t.Fatal("first reservation refused")
	}
	got := make(chan bool)
	go func() { got <- b.acquire(60, nil) }()
	done := make(chan struct{})
	aborted := make(chan bool)
	go func() { aborted <- b.acquire(60, done) }()
	close(done)
	if recv(t, "aborted wait", aborted) {
		t.Fatal("a wait whose connection closed reserved anyway")
	}
	select {
	case <-got:
		t.Fatal("reserved 120 of 100 bytes")
	default:
	}
	b.release(60)
	if !recv(t, "the waiting reservation", got) || b.inUse() != 60 {
		t.Fatalf("after release: %d in use", b.inUse())
	}
	b.release(60)
	if ok, _ := b.tryAcquire(1000); !ok {
		t.Fatal("a frame larger than the budget is refused on an idle budget")
	}
	if ok, _ := b.tryAcquire(1); ok {
		t.Fatal("reserved past an oversized frame")
	}
	b.release(1000)
}

// TestFrameBudgetBoundsLargeFrames: with a 1 MiB budget, a peer holding a
// 900 KiB frame half sent keeps another peer's 900 KiB frame unread (it
// stays in the kernel, not in memory) while small frames are still served;
// once the first frame completes both are answered.
func TestFrameBudgetBoundsLargeFrames(t *testing.T) {
	checkLeaks(t)
	srv := limitedServer(t, Limits{FrameBudget: 1 << 20}, serverOpts{handler: lengthHandler})
	frame := wire.AppendFrame(nil, request(10, 1, bytes.Repeat([]byte{'a'}, 900<<10)))

	a := dial(t, srv.addr())
	recv(t, "accepted a", srv.conns)
	if _, err := a.Write(frame[:len(frame)/2]); err != nil {
		t.Fatal(err)
	}
	// A recycled buffer larger than the frame is charged whole.
	waitFor(t, "a's frame to reserve the budget", func() bool { return srv.Stats().FrameBytes >= int64(len(frame)-4) })

	b := dial(t, srv.addr())
	bc := recv(t, "accepted b", srv.conns)
	go func() { _, _ = b.Write(frame) }()
	waitFor(t, "b to wait for the budget", func() bool { return goroutineIn("remoting.(*frameBudget).acquire(") })
	if n := inq(t, bc.nc); n == 0 {
		t.Fatal("b's frame was read while the budget was spent")
	}
	served(t, dial(t, srv.addr()))

	if _, err := a.Write(frame[len(frame)/2:]); err != nil {
		t.Fatal(err)
	}
	for _, nc := range []net.Conn{a, b} {
		if resp := mustRead(t, nc, bufio.NewReader(nc)); resp.Code != wire.Success {
			t.Fatalf("large frame answered %d", resp.Code)
		}
	}
	waitFor(t, "the budget to be free", func() bool { return srv.Stats().FrameBytes == 0 })
}

// goroutineIn reports whether some goroutine is running fn.
func goroutineIn(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}

// TestWaterMarksPauseReading: a peer that stops reading while answers
// produced off the read loop pile up makes its connection congested: the
// server stops reading its requests (they stay in the kernel) and counts
// it stalled; when the peer reads again every answer arrives, in full,
// and reading resumes.
func TestWaterMarksPauseReading(t *testing.T) {
	checkLeaks(t)
	gate := make(chan struct{})
	var answered atomic.Int64
	var wg sync.WaitGroup
	big := bytes.Repeat([]byte{'b'}, 1<<20)
	// Answers leave off the read loop, as held pulls' do.
	async := HandlerFunc(func(c *Conn, req *wire.Command) {
		req = req.Clone()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			resp := wire.ResponseTo(req, wire.Success, "")
			resp.Body = big
			c.Reply(req, &resp)
			answered.Add(1)
		}()
	})
	// Before the server's clean-up, so it runs after it: until the read
	// loop has ended, the handler may still be adding to wg.
	t.Cleanup(wg.Wait)
	srv := limitedServer(t, Limits{HighWater: 1 << 20, LowWater: 512 << 10}, serverOpts{handler: async})
	peer := silentPeer(t, srv.addr())
	c := recv(t, "accepted connection", srv.conns)
	// The water marks count output not yet handed to the kernel. With the
	// host's send-buffer autotuning (up to tcp_wmem's 4 MiB) the kernel
	// could take a whole in-flight write without the peer reading, and
	// output queued so far could fall below the low mark: a legitimate
	// resume. A small send buffer makes every 1 MiB answer's write block
	// until the peer reads, so once congested the connection stays so.
	if err := c.nc.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}

	var first []byte
	for i := int32(1); i <= 16; i++ {
		first = wire.AppendFrame(first, request(10, i, nil))
	}
	if _, err := peer.Write(first); err != nil {
		t.Fatal(err)
	}
	close(gate)
	waitFor(t, "the connection to congest", func() bool { return c.Congested() && srv.Stats().Stalled == 1 })
	// More requests than the read buffer holds: the read loop takes at
	// most one buffer of them before it pauses.
	var second []byte
	for i := int32(17); i <= 32; i++ {
		second = wire.AppendFrame(second, request(10, i, bytes.Repeat([]byte{'r'}, 16<<10)))
	}
	go func() { _, _ = peer.Write(second) }()
	waitFor(t, "the read loop to pause", func() bool { return goroutineIn("remoting.(*Conn).waitDrained(") })
	// The writer goroutine may not have written yet: the kernel must
	// come to hold its bytes, which a server reading while congested
	// would take.
	waitFor(t, "requests left unread in the socket while congested", func() bool { return inq(t, c.nc) > 0 })
	if !goroutineIn("remoting.(*Conn).waitDrained(") {
		t.Fatalf("the read loop left its pause before the peer read anything: answered %d, congested %v, %+v", answered.Load(), c.Congested(), srv.Stats())
	}

	r := bufio.NewReader(peer)
	seen := map[int32]bool{}
	for len(seen) < 32 {
		resp := mustRead(t, peer, r)
		if resp.Code != wire.Success || len(resp.Body) != len(big) || seen[resp.Opaque] {
			t.Fatalf("answer opaque %d code %d with %d body bytes", resp.Opaque, resp.Code, len(resp.Body))
		}
		seen[resp.Opaque] = true
	}
	// The writer notices the drain after its last write returns, which
	// can be after the peer has read it all.
	waitFor(t, "the connection to leave congestion", func() bool { return !c.Congested() && srv.Stats().Stalled == 0 })
	if st := srv.Stats(); st.StalledTotal < 1 {
		t.Fatalf("after draining: %+v", st)
	}
}

// TestLargeFramesRecycled: a peer that sends a 200 KiB request and waits
// for its answer each time (a synchronous producer of large messages)
// gives its buffer up while it waits, and the next frame takes a recycled
// one instead of allocating.
func TestLargeFramesRecycled(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: lengthHandler})
	nc := dial(t, srv.addr())
	r := bufio.NewReader(nc)
	frame := wire.AppendFrame(nil, request(10, 1, bytes.Repeat([]byte{'p'}, 200<<10)))
	send := func() {
		if _, err := nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		if resp := mustRead(t, nc, r); resp.Code != wire.Success {
			t.Fatalf("answer %d", resp.Code)
		}
	}
	send()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const frames = 50
	for i := 0; i < frames; i++ {
		send()
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d frames of %d bytes: %d bytes allocated", frames, len(frame), alloc)
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random")
	}
	if alloc > frames*uint64(len(frame))/4 {
		t.Fatalf("%d synchronous 200 KiB frames allocated %d bytes", frames, alloc)
	}
}

// TestPauseReading: a handler that pauses its connection (a produce
// quota's delay) stops the reading of later requests, not the output: an
// answer released by another goroutine during the pause reaches the peer,
// the request after the paused one is not served until the pause ends,
// and its answer follows the held one.
func TestPauseReading(t *testing.T) {
	checkLeaks(t)
	releaseA, releaseB := make(chan struct{}), make(chan struct{})
	pausedB := make(chan struct{})
	var servedC atomic.Bool
	var wg sync.WaitGroup
	h := HandlerFunc(func(c *Conn, req *wire.Command) {
		switch req.Opaque {
		case 1: // answered later, as a send waiting for its flush
			req = req.Clone()
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-releaseA
				c.ReplyCode(req, wire.Success, "A")
			}()
		case 2: // throttled: reading paused until its held answer leaves
			c.PauseReading()
			req = req.Clone()
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-releaseB
				c.ReplyCode(req, wire.Success, "B")
				c.ResumeReading()
			}()
			close(pausedB)
		default:
			servedC.Store(true)
			c.ReplyCode(req, wire.Success, "C")
		}
	})
	srv := startServer(t, serverOpts{handler: h})
	t.Cleanup(wg.Wait)
	nc := dial(t, srv.addr())
	var frames []byte
	for op := int32(1); op <= 3; op++ {
		frames = wire.AppendFrame(frames, request(10, op, nil))
	}
	if _, err := nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	recv(t, "the paused request to be served", pausedB)
	close(releaseA)
	r := bufio.NewReader(nc)
	if resp := mustRead(t, nc, r); string(resp.Remark) != "A" {
		t.Fatalf("first answer %q, want A (released during the pause)", resp.Remark)
	}
	if st := srv.Stats(); st.Paused != 1 || st.PausedTotal != 1 || servedC.Load() {
		t.Fatalf("during the pause: %+v, third request served %v", st, servedC.Load())
	}
	close(releaseB)
	for _, want := range []string{"B", "C"} {
		if resp := mustRead(t, nc, r); string(resp.Remark) != want {
			t.Fatalf("answer %q, want %s", resp.Remark, want)
		}
	}
	if st := srv.Stats(); st.Paused != 0 {
		t.Fatalf("after the pause: %+v", st)
	}
}
