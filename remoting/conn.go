// Package remoting runs RocketMQ remoting connections: a read loop per
// connection that decodes frames and hands requests to a Handler, a writer
// that batches responses into few syscalls, and request/response matching by
// opaque for calls either side initiates.
package remoting

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/wire"
)

// Handler serves requests. ServeRequest runs on the connection's read loop:
// req aliases the read buffer and is reused after the call returns, so a
// handler that answers later must Clone it first, and a handler that blocks
// delays every later request of that connection.
type Handler interface {
	ServeRequest(c *Conn, req *wire.Command)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(c *Conn, req *wire.Command)

// ServeRequest implements Handler.
func (f HandlerFunc) ServeRequest(c *Conn, req *wire.Command) { f(c, req) }

// ErrClosed is returned for calls on a closed connection.
var ErrClosed = errors.New("connection closed")

// ErrTimeout is returned when a peer does not answer in time.
var ErrTimeout = errors.New("request timed out")

const (
	writeBurstMax   = 256 << 10 // output the read loop holds back at most
	readBufSize     = 64 << 10
	keepFrameBuf    = 1 << 20  // frame buffers up to this size are reused
	maxPendingWrite = 64 << 20 // a peer that stops reading is disconnected past this
	writeTimeout    = 30 * time.Second
)

var nextOpaque atomic.Int32

// NextOpaque returns a process-wide request id.
func NextOpaque() int32 { return nextOpaque.Add(1) }

// Conn is one remoting connection, either accepted or dialled.
type Conn struct {
	nc      net.Conn
	handler Handler
	log     *slog.Logger
	idle    time.Duration

	// Limits on a peer that does not read, fixed before the loops start
	// (tests lower them): a flush not written within writeTimeout, or more
	// than maxPending bytes queued, closes the connection.
	writeTimeout time.Duration
	maxPending   int

	// Server limits (nil and 0 on dialled connections): the budget large
	// frames are read from, the output water marks, and the server's
	// counters of stalled connections.
	budget    *frameBudget
	high, low int
	adm       *admission

	wmu      sync.Mutex // guards out, inflight, closed, readBusy, congested, holds, pending
	out      []byte
	inflight int // bytes taken from out by the flush writing them now
	closed   bool
	readBusy bool // the read loop is serving and will flush out itself
	// wakeOwed: QueueFrame queued output and left the writer's wake-up
	// to its caller's Wake.
	wakeOwed bool
	// congested: unread output passed high and has not yet fallen below
	// low; the read loop pauses, held pulls wait. drained gets a token
	// when it clears.
	congested bool
	// holds: PauseReading calls not yet matched by ResumeReading; the
	// read loop pauses while there are any, as while congested.
	holds   int
	drained chan struct{}
	wake    chan struct{}
	pending map[int32]chan *wire.Command

	iomu  sync.Mutex // serialises writes to nc; guards spare, writeSetAt
	spare []byte

	// When the write deadline and (read loop only) the read deadline were
	// last set; see extendDeadline.
	writeSetAt, readSetAt time.Time

	done      chan struct{}
	closeOnce sync.Once
	onClose   []func(*Conn)

	// Attachment holds per-connection state of the owning server (client
	// identity for the broker, registered broker for the name server).
	Attachment atomic.Value
}

func newConn(nc net.Conn, h Handler, log *slog.Logger, idle time.Duration) *Conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &Conn{
		nc: nc, handler: h, log: log, idle: idle,
		writeTimeout: writeTimeout, maxPending: maxPendingWrite,
		wake:    make(chan struct{}, 1),
		drained: make(chan struct{}, 1),
		pending: make(map[int32]chan *wire.Command),
		done:    make(chan struct{}),
	}
}

// limit applies a server's limits to a connection before its loops start.
func (c *Conn) limit(a *admission) {
	c.budget, c.adm = a.budget, a
	if a.limits.HighWater > 0 {
		c.high, c.low = a.limits.HighWater, a.limits.LowWater
	}
}

// Congested reports whether more output than the high-water mark waits for
// the peer to read it. Work that would only add output (a held pull's
// answer) should wait until it is not.
func (c *Conn) Congested() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.congested
}

// checkCongestion runs under wmu after output was queued or written, and
// moves the connection in or out of the congested state.
func (c *Conn) checkCongestion() {
	switch pending := len(c.out) + c.inflight; {
	case c.high <= 0:
	case !c.congested && pending > c.high:
		c.congested = true
		if c.adm != nil {
			c.adm.stalled.Add(1)
			c.adm.stallsN.Add(1)
		}
	case c.congested && (pending < c.low || c.closed):
		c.congested = false
		if c.adm != nil {
			c.adm.stalled.Add(-1)
		}
		select {
		case c.drained <- struct{}{}:
		default: // a token is waiting already
		}
	}
}

// PauseReading stops reading new requests from the connection until the
// matching ResumeReading (calls nest), while answers keep leaving: what the
// read loop queued is handed to the writer, as when the peer stops reading
// its output. A produce quota's delay uses it to mute a producer for the
// delay without holding back answers already due (Kafka's quota design
// mutes the channel the same way). Called from a handler, it takes effect
// before the next request is read.
func (c *Conn) PauseReading() {
	c.wmu.Lock()
	if !c.closed {
		c.holds++
		if c.holds == 1 && c.adm != nil {
			c.adm.paused.Add(1)
			c.adm.pausesN.Add(1)
		}
	}
	c.wmu.Unlock()
}

// ResumeReading ends one PauseReading; reading goes on once none is left.
func (c *Conn) ResumeReading() {
	c.wmu.Lock()
	if c.holds > 0 {
		c.holds--
		if c.holds == 0 {
			c.unpaused()
		}
	}
	c.wmu.Unlock()
}

// unpaused runs under wmu when the last hold ends.
func (c *Conn) unpaused() {
	if c.adm != nil {
		c.adm.paused.Add(-1)
	}
	select {
	case c.drained <- struct{}{}:
	default: // a token is waiting already
	}
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is this side's address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// OnClose registers fn to run once when the connection closes.
func (c *Conn) OnClose(fn func(*Conn)) {
	c.wmu.Lock()
	closed := c.closed
	if !closed {
		c.onClose = append(c.onClose, fn)
	}
	c.wmu.Unlock()
	if closed {
		fn(c)
	}
}

// Close closes the connection and fails outstanding calls.
func (c *Conn) Close() {
	c.closeOnce.Do(func() {
		c.wmu.Lock()
		c.closed = true
		c.checkCongestion()
		if c.holds > 0 {
			c.holds = 0
			c.unpaused()
		}
		fns := c.onClose
		c.onClose = nil
		for op, ch := range c.pending {
			close(ch)
			delete(c.pending, op)
		}
		c.wmu.Unlock()
		_ = c.nc.Close()
		close(c.done)
		for _, fn := range fns {
			fn(c)
		}
	})
}

// Send queues one frame for writing. It never blocks on the network.
func (c *Conn) Send(cmd *wire.Command) error {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return ErrClosed
	}
	c.out = wire.AppendFrame(c.out, cmd)
	return c.queued()
}

func (c *Conn) pendingOut() (n int, congested bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.out), c.congested
}

// SendFrame queues an already encoded frame (built with wire.AppendFrame).
func (c *Conn) SendFrame(frame []byte) error {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return ErrClosed
	}
	c.out = append(c.out, frame...)
	return c.queued()
}

// QueueFrame queues an encoded frame like SendFrame but leaves waking the
// writer to the caller: it reports true when the caller must call Wake
// once it has queued the rest of its burst (at most once until then).
// Answers completed together (the sends one fsync covered) so leave in
// one write instead of each waking the writer.
func (c *Conn) QueueFrame(frame []byte) (wake bool, err error) {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return false, ErrClosed
	}
	c.out = append(c.out, frame...)
	if len(c.out) > c.maxPending {
		c.wmu.Unlock()
		c.log.Warn("peer does not read its responses, closing", "remote", c.RemoteAddr().String())
		c.Close()
		return false, ErrClosed
	}
	c.checkCongestion()
	wake = !c.readBusy && !c.wakeOwed
	c.wakeOwed = c.wakeOwed || wake
	c.wmu.Unlock()
	return wake, nil
}

// Wake hands output queued with QueueFrame to the writer.
func (c *Conn) Wake() {
	c.wmu.Lock()
	c.wakeOwed = false
	c.wmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// queued runs with the write lock held after output was appended: it
// releases the lock and wakes the writer. A peer that stops reading is
// disconnected rather than allowed to grow the buffer without bound.
func (c *Conn) queued() error {
	over := len(c.out) > c.maxPending
	c.checkCongestion()
	// While the read loop serves a burst of requests it writes the output
	// itself when the burst ends, saving a writer wake-up per burst.
	wake := !c.readBusy
	c.wmu.Unlock()
	if over {
		c.log.Warn("peer does not read its responses, closing", "remote", c.RemoteAddr().String())
		c.Close()
		return ErrClosed
	}
	if wake {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Reply sends resp unless req asked for no answer.
func (c *Conn) Reply(req, resp *wire.Command) {
	if req.IsOneway() {
		return
	}
	_ = c.Send(resp)
}

// ReplyCode answers req with a code and remark only.
func (c *Conn) ReplyCode(req *wire.Command, code int32, remark string) {
	resp := wire.ResponseTo(req, code, remark)
	c.Reply(req, &resp)
}

// Invoke sends a request and waits for its response.
func (c *Conn) Invoke(cmd *wire.Command, timeout time.Duration) (*wire.Command, error) {
	cmd.Opaque = NextOpaque()
	cmd.Flag &^= wire.FlagResponse | wire.FlagOneway
	ch := make(chan *wire.Command, 1)
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return nil, c.callError(cmd, ErrClosed)
	}
	c.pending[cmd.Opaque] = ch
	c.wmu.Unlock()
	if err := c.Send(cmd); err != nil {
		return nil, c.callError(cmd, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, c.callError(cmd, ErrClosed)
		}
		return resp, nil
	case <-t.C:
		c.wmu.Lock()
		delete(c.pending, cmd.Opaque)
		c.wmu.Unlock()
		return nil, c.callError(cmd, ErrTimeout)
	}
}

// InvokeOneway sends a request that must not be answered.
func (c *Conn) InvokeOneway(cmd *wire.Command) error {
	cmd.Opaque = NextOpaque()
	cmd.Flag = (cmd.Flag &^ wire.FlagResponse) | wire.FlagOneway
	if err := c.Send(cmd); err != nil {
		return c.callError(cmd, err)
	}
	return nil
}

// callError names the request and the peer a call failed with.
func (c *Conn) callError(cmd *wire.Command, err error) error {
	return fmt.Errorf("code %d to %s: %w", cmd.Code, c.RemoteAddr(), err)
}

// isClosed reports whether Close has begun.
func (c *Conn) isClosed() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.closed
}

// writeLoop writes output queued by goroutines other than the read loop
// (long-poll answers, flush callbacks, calls this side starts).
func (c *Conn) writeLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		if !c.flush(false) {
			return
		}
	}
}

// flush writes all queued output in one syscall. endBurst also clears
// readBusy in the same critical section that takes the output, so a frame
// queued concurrently is either taken here or wakes the writer. It reports
// false once the connection failed.
func (c *Conn) flush(endBurst bool) bool {
	c.iomu.Lock()
	defer c.iomu.Unlock()
	c.wmu.Lock()
	if endBurst {
		c.readBusy = false
	}
	buf := c.out
	c.out = c.spare[:0]
	c.inflight = len(buf)
	c.wmu.Unlock()
	if len(buf) > 0 {
		extendDeadline(&c.writeSetAt, c.writeTimeout, c.nc.SetWriteDeadline)
		if _, err := c.nc.Write(buf); err != nil {
			c.log.Debug("write failed, closing", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			return false
		}
		c.wmu.Lock()
		c.inflight = 0
		c.checkCongestion()
		c.wmu.Unlock()
	}
	if cap(buf) > keepFrameBuf*4 {
		buf = nil
	}
	c.spare = buf[:0]
	return true
}

// beginBurst marks the read loop as serving; see queued.
func (c *Conn) beginBurst() {
	c.wmu.Lock()
	c.readBusy = true
	c.wmu.Unlock()
}

// readLoop decodes frames until the connection fails. A frame that is too
// large or whose header is broken closes the connection: the stream can no
// longer be trusted to be aligned on frame boundaries.
//
// Frames that fit the read buffer are decoded in place. Larger ones are
// read into a buffer of their own, which first reserves the frame's length
// from the server's frame budget and then grows as bytes arrive, and which
// is dropped when the peer pauses: idle connections hold no large buffer.
func (c *Conn) readLoop() {
	defer c.Close()
	r := bufio.NewReaderSize(c.nc, readBufSize)
	var prefix [4]byte
	var big []byte // buffer of the frames larger than r's
	var cmd wire.Command
	// busy: requests were served since the last flush and their answers
	// may be waiting in out. Before any read that may block, the loop
	// writes them, so an answer never waits for the peer's next bytes.
	busy := false
	endBurst := func(need int) bool {
		if busy && r.Buffered() < need {
			busy = false
			return c.flush(true)
		}
		return true
	}
	for {
		// A congested connection hands its output to the writer and is
		// not read until that drains; the read loop must not block in a
		// write of its own meanwhile.
		if stalled, ok := c.waitDrained(); !ok {
			return
		} else if stalled {
			busy = false
		}
		if !endBurst(4) {
			return
		}
		if r.Buffered() < 4 && big != nil {
			idle := big
			bigFrames.Put(&idle)
			big = nil
		}
		if c.idle > 0 {
			extendDeadline(&c.readSetAt, c.idle, c.nc.SetReadDeadline)
		}
		if _, err := io.ReadFull(r, prefix[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("read failed, closing", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		n, err := wire.FrameLength(prefix[:])
		if err != nil {
			c.log.Warn("bad frame, closing connection", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		if !endBurst(n) {
			return
		}
		var frame []byte
		var charge int64
		inPlace := n <= r.Size()
		if inPlace {
			if frame, err = r.Peek(n); errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
		} else {
			if big == nil {
				big = pooledFrame(n)
			}
			// The budget covers the memory the frame pins: a recycled
			// buffer larger than the frame counts whole.
			charge = int64(max(n, cap(big)))
			if !c.reserve(charge) {
				return
			}
			big, err = readFrame(r, big, n)
			frame = big
		}
		if err != nil {
			c.log.Warn("truncated frame, closing connection", "remote", c.RemoteAddr().String(), "err", err)
			if !inPlace {
				c.unreserve(charge)
			}
			return
		}
		err = wire.DecodeFrame(frame, &cmd)
		if err == nil {
			c.dispatch(&cmd, &busy)
		}
		if inPlace {
			_, _ = r.Discard(n)
		} else {
			c.unreserve(charge)
			if cap(big) > keepFrameBuf {
				big = nil
			}
		}
		if err != nil {
			c.log.Warn("bad frame header, closing connection", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		// A long burst must not hold back too much output.
		if queued, congested := c.pendingOut(); queued > writeBurstMax && !congested {
			busy = false
			if !c.flush(true) {
				return
			}
		}
	}
}

// bigFrames recycles the buffers of frames between the read buffer's size
// and keepFrameBuf that connections give up when their peer pauses, so a
// synchronous producer of large messages does not allocate one per send.
var bigFrames sync.Pool // of *[]byte

// pooledFrame returns a recycled buffer that holds n bytes, or nil.
func pooledFrame(n int) []byte {
	p, _ := bigFrames.Get().(*[]byte)
	if p == nil {
		return nil
	}
	if cap(*p) < n {
		bigFrames.Put(p)
		return nil
	}
	return (*p)[:0]
}

// dispatch hands a decoded frame to its waiting caller or the handler.
func (c *Conn) dispatch(cmd *wire.Command, busy *bool) {
	if !*busy {
		c.beginBurst()
		*busy = true
	}
	if !cmd.IsResponse() {
		c.serve(cmd)
		return
	}
	c.wmu.Lock()
	ch := c.pending[cmd.Opaque]
	delete(c.pending, cmd.Opaque)
	c.wmu.Unlock()
	if ch != nil {
		ch <- cmd.Clone()
		return
	}
	// Its caller timed out, or the peer answered a oneway request. Java
	// warns and drops it too (apache/rocketmq
	// remoting/src/main/java/org/apache/rocketmq/remoting/netty/
	// NettyRemotingAbstract.java, processResponseCommand).
	c.log.Warn("unmatched response dropped", "remote", c.RemoteAddr().String(), "opaque", cmd.Opaque, "code", cmd.Code)
}

// reserve takes a large frame's length from the server's budget. While the
// budget is spent the connection is simply not read (TCP pushes back on
// its peer); queued answers are written first, as before any wait.
func (c *Conn) reserve(n int64) bool {
	if c.budget == nil {
		return true
	}
	if ok, _ := c.budget.tryAcquire(n); ok {
		return true
	}
	if !c.flush(true) {
		return false
	}
	if !c.budget.acquire(n, c.done) {
		return false
	}
	// The wait does not count against the peer's idle time.
	if c.idle > 0 {
		extendDeadline(&c.readSetAt, c.idle, c.nc.SetReadDeadline)
	}
	return true
}

// extendDeadline moves a deadline to now + span, unless it was set less
// than span/64 ago: setting one updates a runtime timer (0.3–0.9 µs
// measured), which per request and per flush is a visible share of a
// small send's cost, and neither the idle nor the write timeout needs
// more precision than that (a 120 s idle timeout may fire 1.9 s early).
func extendDeadline(setAt *time.Time, span time.Duration, set func(time.Time) error) {
	now := time.Now()
	if now.Sub(*setAt) < span/64 {
		return
	}
	*setAt = now
	_ = set(now.Add(span))
}

func (c *Conn) unreserve(n int64) {
	if c.budget != nil {
		c.budget.release(n)
	}
}

// waitDrained stops reading while the connection is congested or a
// handler paused it (PauseReading), until the writer brings its output
// below the low-water mark and the pauses end, or the connection closes
// (ok false). Answers are never dropped: the peer gets them all once it
// reads again, or the connection is closed by the write timeout or the
// pending-output limit.
func (c *Conn) waitDrained() (stalled, ok bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for (c.congested || c.holds > 0) && !c.closed {
		if !stalled {
			stalled = true
			// From here the writer, not the read loop, writes what is queued.
			c.readBusy = false
			select {
			case c.wake <- struct{}{}:
			default:
			}
			if c.congested {
				c.log.Debug("peer does not read its responses, reading paused", "remote", c.RemoteAddr().String())
			}
		}
		c.wmu.Unlock()
		select {
		case <-c.drained:
		case <-c.done:
		}
		c.wmu.Lock()
	}
	return stalled, !c.closed
}

// readFrame reads the n bytes of a frame into buf's storage. Beyond the
// buffer it has, it allocates as the bytes arrive instead of trusting the
// length prefix: a peer announcing 16 MiB and sending little costs little.
// It grows fourfold, so that the buffers it outgrows (garbage until the
// next collection) add up to a third of the frame, not all of it.
func readFrame(r io.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n {
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), max(3*len(buf), readBufSize)))
		}
		m, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}

// serve runs the handler, turning a panic into SYSTEM_ERROR so that no input
// can take the process down.
func (c *Conn) serve(cmd *wire.Command) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panic", "code", cmd.Code, "remote", c.RemoteAddr().String(), "panic", p, "stack", string(debug.Stack()))
			c.ReplyCode(cmd, wire.SystemError, fmt.Sprintf("internal error: %v", p))
		}
	}()
	if c.handler == nil {
		c.ReplyCode(cmd, wire.RequestCodeNotSupported, fmt.Sprintf(" request type %d not supported", cmd.Code))
		return
	}
	c.handler.ServeRequest(c, cmd)
}
