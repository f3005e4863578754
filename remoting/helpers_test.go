package remoting

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// waitTimeout bounds every wait for a condition. It is generous on purpose:
// the machine running the tests may be loaded, and no test asserts a
// duration.
const waitTimeout = 30 * time.Second

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// recv returns the next value of ch or fails after waitTimeout.
func recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// logRec is one captured log record.
type logRec struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

func (r logRec) String() string { return fmt.Sprintf("%s %q %v", r.level, r.msg, r.attrs) }

// logSink is a slog.Handler keeping every record, for asserting what the
// connection code reports.
type logSink struct {
	mu   sync.Mutex
	recs []logRec
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{level: r.Level, msg: r.Message, attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Any()
		return true
	})
	s.mu.Lock()
	s.recs = append(s.recs, rec)
	s.mu.Unlock()
	return nil
}

func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *logSink) WithGroup(string) slog.Handler      { return s }

// find returns the first record whose message contains msg.
func (s *logSink) find(msg string) (logRec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recs {
		if strings.Contains(r.msg, msg) {
			return r, true
		}
	}
	return logRec{}, false
}

// wait waits for a record whose message contains msg.
func (s *logSink) wait(t testing.TB, msg string) logRec {
	t.Helper()
	var rec logRec
	waitFor(t, "log record "+msg, func() bool {
		var ok bool
		rec, ok = s.find(msg)
		return ok
	})
	return rec
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, r := range s.recs {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// errAttr returns a record's "err" attribute.
func errAttr(t testing.TB, r logRec) error {
	t.Helper()
	err, ok := r.attrs["err"].(error)
	if !ok {
		t.Fatalf("record %s has no err attribute", r)
	}
	return err
}

// connGoroutines returns the stacks of goroutines running connection or
// server loops; tests end with none left.
func connGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if strings.HasPrefix(line, "created by") {
				continue // only running frames count
			}
			if strings.Contains(line, "remoting.(*Conn).readLoop(") || strings.Contains(line, "remoting.(*Conn).writeLoop(") || strings.Contains(line, "remoting.(*Server).Serve(") {
				out = append(out, g)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}

// checkLeaks makes the test fail if connection goroutines outlive it.
// Call it first: cleanups run last-registered first, so the check runs
// after the test's servers and clients are closed.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		deadline := time.Now().Add(waitTimeout)
		for connGoroutines() != "" {
			if time.Now().After(deadline) {
				t.Errorf("connection goroutines left behind:\n%s", connGoroutines())
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// testServer is a Server on 127.0.0.1 with its log captured.
type testServer struct {
	*Server
	log   *logSink
	conns chan *Conn // every accepted connection, in order
	done  chan error // Serve's result
}

type serverOpts struct {
	handler Handler
	setup   func(*Conn)                     // runs on each connection before its loops start
	wrap    func(net.Conn) net.Conn         // wraps each accepted connection
	ln      func(net.Listener) net.Listener // wraps the listener
	limits  *Limits                         // replaces the default limits
}

func startServer(t *testing.T, o serverOpts) *testServer {
	t.Helper()
	sink := &logSink{}
	s, err := Listen("127.0.0.1:0", o.handler, slog.New(sink))
	if err != nil {
		t.Fatal(err)
	}
	if o.wrap != nil {
		s.ln = wrapListener{s.ln, o.wrap}
	}
	if o.ln != nil {
		s.ln = o.ln(s.ln)
	}
	if o.limits != nil {
		s.SetLimits(*o.limits)
	}
	ts := &testServer{Server: s, log: sink, conns: make(chan *Conn, 1024), done: make(chan error, 1)}
	go func() {
		ts.done <- s.Serve(func(c *Conn) {
			if o.setup != nil {
				o.setup(c)
			}
			ts.conns <- c
		})
	}()
	t.Cleanup(func() {
		s.Close()
		if err := recv(t, "Serve to return", ts.done); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func (s *testServer) addr() string { return s.Addr().String() }

type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(nc), nil
}

// countConn counts the syscalls the connection code makes on a real TCP
// connection. When gate is set, every Write waits for it to be closed.
type countConn struct {
	net.Conn
	reads, writes, readBytes atomic.Int64
	maxWrite                 atomic.Int64
	inWrite                  atomic.Int32
	gate                     chan struct{}
	mu                       sync.Mutex
	written                  []int // size of each write
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.reads.Add(1)
	c.readBytes.Add(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	c.inWrite.Add(1)
	defer c.inWrite.Add(-1)
	if c.gate != nil {
		<-c.gate
	}
	c.writes.Add(1)
	c.mu.Lock()
	c.written = append(c.written, len(p))
	c.mu.Unlock()
	for {
		m := c.maxWrite.Load()
		if int64(len(p)) <= m || c.maxWrite.CompareAndSwap(m, int64(len(p))) {
			break
		}
	}
	return c.Conn.Write(p)
}

// inq is the number of bytes waiting in the kernel's receive queue.
func inq(t testing.TB, nc net.Conn) int {
	t.Helper()
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}

// dial opens a raw TCP connection, closed when the test ends.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc
}

// silentPeer dials addr and never reads. Its small receive buffer keeps
// what the kernel absorbs well below the megabytes tests queue for it,
// whatever the host's autotuning limits.
func silentPeer(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc := dial(t, addr)
	if err := nc.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	return nc
}

// mustRead reads one frame with a deadline, failing the test otherwise.
func mustRead(t testing.TB, nc net.Conn, r *bufio.Reader) *wire.Command {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(waitTimeout))
	cmd, err := wire.ReadCommand(r)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return cmd
}

// expectClosed waits for the peer to close nc, discarding what it sends.
func expectClosed(t testing.TB, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server did not close the connection")
	}
}

// request builds a request frame with the given opaque and body.
func request(code, opaque int32, body []byte) *wire.Command {
	req := wire.NewRequest(code, map[string]string{"k": "v"}, body)
	req.Opaque = opaque
	return req
}

// echo answers SUCCESS with the request's body and extFields.
var echo = HandlerFunc(func(c *Conn, req *wire.Command) {
	resp := wire.ResponseTo(req, wire.Success, "")
	resp.Ext, resp.Body = req.Ext, req.Body
	c.Reply(req, &resp)
})

// newClient returns a Client logging to a sink, closed when the test ends.
func newClient(t *testing.T, h Handler) (*Client, *logSink) {
	t.Helper()
	sink := &logSink{}
	cl := NewClient(h, slog.New(sink))
	t.Cleanup(cl.Close)
	return cl, sink
}

// pendingCount is the number of calls waiting for an answer on c.
func pendingCount(c *Conn) int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.pending)
}
