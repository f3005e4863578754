package ha

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/store"
)

// Hub is the master side of a replication protocol, classic or AutoSwitch:
// it accepts replicas on the HA port, runs a reader and a writer goroutine
// for each and wakes the writers on every append. The writers stream the
// commit log straight from the mapped segments. What the protocols differ
// in (the replica's frames, the handshake, the frame headers) is a Stream.
type Hub struct {
	cfg   Config
	store MasterStore
	ln    net.Listener
	noun  string // "slave" or "replica", for log lines
	// admit returns the protocol for a new connection, nil to refuse it.
	admit func(*Conn) Stream
	// heartbeatFirst: the writer's first frame goes out at once, a
	// heartbeat if there is nothing to send (AutoSwitch: the replica learns
	// the epoch and the confirm offset).
	heartbeatFirst bool

	mu    sync.Mutex
	conns map[*Conn]struct{}
	// live is the connection list Wake and the status calls read: copied
	// on connect and disconnect so Wake neither locks nor allocates.
	live atomic.Pointer[[]*Conn]

	stop chan struct{}
	wg   sync.WaitGroup
}

// Stream is one connection's protocol, called by the connection's
// goroutines (Frames by the reader, the others by the writer).
type Stream interface {
	// Frames handles the whole frames at the start of b (the replica's
	// reports, and its handshake) and returns how many bytes it used;
	// false once it has closed the connection (Conn.Close).
	Frames(b []byte) (int, bool)
	// Begin runs on the writer before the first frame: it waits for what
	// the protocol needs (Conn.WaitReport) and returns the offset to
	// stream from; false once the connection is closed.
	Begin() (int64, bool)
	// Next says how many bytes the frame at off may carry (0: a
	// heartbeat), maxOff being the log's end; false once it has closed
	// the connection.
	Next(off, maxOff int64) (int, bool)
	// Header appends the header of a frame carrying n bytes at off.
	Header(dst []byte, off int64, n int) []byte
	// Closed runs once, after the connection is closed and removed.
	Closed()
}

// maxHeader is room for the longest frame header (AutoSwitch's).
const maxHeader = 64

// NewHub serves ln; Start accepts. noun names the peer in log lines.
func NewHub(ln net.Listener, st MasterStore, cfg Config, noun string, heartbeatFirst bool, admit func(*Conn) Stream) *Hub {
	cfg.fill()
	h := &Hub{cfg: cfg, store: st, ln: ln, noun: noun, admit: admit, heartbeatFirst: heartbeatFirst,
		conns: map[*Conn]struct{}{}, stop: make(chan struct{})}
	h.live.Store(&[]*Conn{})
	return h
}

// Addr is the bound address.
func (h *Hub) Addr() net.Addr { return h.ln.Addr() }

// Start accepts connections.
func (h *Hub) Start() {
	h.wg.Add(1)
	go h.acceptLoop()
}

// Close stops accepting and closes every connection; later calls do
// nothing.
func (h *Hub) Close() error {
	h.mu.Lock() // orders with acceptLoop's registration of a new conn
	select {
	case <-h.stop:
		h.mu.Unlock()
		return nil
	default:
	}
	close(h.stop)
	h.mu.Unlock()
	err := h.ln.Close()
	h.DropAll(h.noun + " HA server stopping")
	h.wg.Wait()
	return err
}

// Conns is the current connection list; callers must not modify it.
func (h *Hub) Conns() []*Conn { return *h.live.Load() }

// Wake tells every writer that the log grew. It runs on the append path:
// it neither blocks nor allocates.
func (h *Hub) Wake() {
	for _, c := range *h.live.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// DropAll closes every connection.
func (h *Hub) DropAll(reason string) {
	for _, c := range *h.live.Load() {
		c.Close(reason, nil)
	}
}

func (h *Hub) acceptLoop() {
	defer h.wg.Done()
	for {
		nc, err := h.ln.Accept()
		if err != nil {
			select {
			case <-h.stop:
				return
			default:
			}
			// Out of file descriptors and the like: replicas retry, so do we.
			h.cfg.Log.Error("[HA] accept failed, retrying in 100 ms", "err", err)
			select {
			case <-h.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		c := &Conn{hub: h, nc: nc, remote: nc.RemoteAddr().String(), wake: make(chan struct{}, 1),
			first: make(chan struct{}), dead: make(chan struct{}), since: time.Now()}
		c.ack.Store(-1)
		c.id.Store(-1)
		if c.stream = h.admit(c); c.stream == nil {
			nc.Close()
			continue
		}
		h.mu.Lock()
		select {
		case <-h.stop:
			h.mu.Unlock()
			nc.Close()
			return
		default:
		}
		h.conns[c] = struct{}{}
		h.publish()
		h.mu.Unlock()
		h.cfg.Log.Info("[HA] "+h.noun+" connected", "remote", c.remote)
		h.wg.Add(2)
		go c.readLoop()
		go c.writeLoop()
	}
}

// publish copies the connection set for Wake; h.mu held.
func (h *Hub) publish() {
	list := make([]*Conn, 0, len(h.conns))
	for c := range h.conns {
		list = append(list, c)
	}
	h.live.Store(&list)
}

func (h *Hub) remove(c *Conn) {
	h.mu.Lock()
	if _, ok := h.conns[c]; ok {
		delete(h.conns, c)
		h.publish()
	}
	h.mu.Unlock()
}

// Conn is one replica connection on the master.
type Conn struct {
	hub    *Hub
	nc     net.Conn
	remote string
	since  time.Time
	stream Stream

	id        atomic.Int64 // the replica's broker id (AutoSwitch handshake), -1 unknown
	ack       atomic.Int64 // last report, -1 before the first
	next      atomic.Int64 // next offset the writer sends
	caughtUp  atomic.Int64 // unix nanos the replica last held everything the master had
	lastMax   atomic.Int64 // master's max offset at the last frame with a body
	lastSent  atomic.Int64 // unix nanos of that frame
	sent      atomic.Int64 // bytes written (headers included)
	rateBytes atomic.Int64 // bytes/s over the last full second
	rateMark  atomic.Int64 // sent at the start of the current second
	rateAt    atomic.Int64 // unix nanos of that start

	first     chan struct{} // closed on the first report (or on close)
	firstOnce sync.Once
	dead      chan struct{} // closed on close
	wake      chan struct{}
	closeOnce sync.Once
	iov       [2][]byte   // header and body of the frame being written
	bufs      net.Buffers // over iov; a field so that writev does not allocate
}

// Stream is the connection's protocol.
func (c *Conn) Stream() Stream { return c.stream }

// Remote is the replica's address.
func (c *Conn) Remote() string { return c.remote }

// ID is the replica's broker id, -1 until SetID.
func (c *Conn) ID() int64 { return c.id.Load() }

// SetID records the replica's broker id (its handshake).
func (c *Conn) SetID(id int64) { c.id.Store(id) }

// Ack is the replica's last report, -1 before the first.
func (c *Conn) Ack() int64 { return c.ack.Load() }

// CaughtUp is when the replica last held everything the master had (zero
// if never).
func (c *Conn) CaughtUp() time.Time {
	if t := c.caughtUp.Load(); t > 0 {
		return time.Unix(0, t)
	}
	return time.Time{}
}

// Dead is closed when the connection is.
func (c *Conn) Dead() <-chan struct{} { return c.dead }

// ConnStatus is a connection's transfer state.
type ConnStatus struct {
	Addr         string
	AckOffset    int64 // -1 before the first report
	NextOffset   int64 // where the master sends from next
	LastCaughtUp time.Time
	// TransferredBytes is everything sent on this connection;
	// BytesPerSecond the rate over the last second or so.
	TransferredBytes int64
	BytesPerSecond   int64
	ConnectedAt      time.Time
}

// Status is the connection's transfer state.
func (c *Conn) Status() ConnStatus {
	st := ConnStatus{Addr: c.remote, AckOffset: c.ack.Load(), NextOffset: c.next.Load(), LastCaughtUp: c.CaughtUp(),
		TransferredBytes: c.sent.Load(), ConnectedAt: c.since}
	if time.Now().UnixNano()-c.rateAt.Load() < 2*int64(time.Second) {
		st.BytesPerSecond = c.rateBytes.Load() // else idle: nothing sent for a while
	}
	return st
}

// Close closes the connection and logs why (err is a warning); later
// calls do nothing.
func (c *Conn) Close(reason string, err error) {
	c.closeOnce.Do(func() {
		c.nc.Close()
		close(c.dead)
		c.hub.remove(c)
		c.firstOnce.Do(func() { close(c.first) })
		args := []any{"remote", c.remote, "reason", reason}
		if id := c.id.Load(); id >= 0 {
			args = append(args, "brokerId", id)
		}
		if err != nil {
			c.hub.cfg.Log.Warn("[HA] "+c.hub.noun+" connection closed", append(args, "err", err)...)
		} else {
			c.hub.cfg.Log.Info("[HA] "+c.hub.noun+" connection closed", args...)
		}
		c.stream.Closed()
	})
}

// Report records the replica's report off (maxOff is the master's max
// offset, off ≤ maxOff): it is caught up if it holds the master's max, or
// everything the master had when it sent the last frame.
func (c *Conn) Report(off, maxOff int64) {
	c.ack.Store(off)
	switch {
	case off == maxOff:
		c.caughtUp.Store(time.Now().UnixNano())
	case off >= c.lastMax.Load() && c.lastSent.Load() > 0:
		c.caughtUp.Store(c.lastSent.Load())
	}
	c.firstOnce.Do(func() { close(c.first) })
}

// WaitReport waits for the replica's first report; false if the
// connection closed first.
func (c *Conn) WaitReport() bool {
	select {
	case <-c.first:
	case <-c.dead:
		return false
	}
	return c.ack.Load() >= 0
}

// Write writes b (a handshake) within haHousekeepingInterval.
func (c *Conn) Write(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.hub.cfg.HousekeepingInterval))
	_, err := c.nc.Write(b)
	return err
}

// readLoop hands what the replica sends to the protocol. A frame may be
// split across reads. Nothing for haHousekeepingInterval closes the
// connection (replicas report every haSendHeartbeatInterval).
func (c *Conn) readLoop() {
	defer c.hub.wg.Done()
	var buf [1024]byte // far more than the longest frame (16 bytes)
	have := 0
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.hub.cfg.HousekeepingInterval))
		n, err := c.nc.Read(buf[have:])
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				c.Close("no report from the "+c.hub.noun+" within haHousekeepingInterval", nil)
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
				c.Close("closed", nil)
			default:
				c.Close("read failed", err)
			}
			return
		}
		have += n
		used, ok := c.stream.Frames(buf[:have])
		if !ok {
			return
		}
		have = copy(buf[:], buf[used:have])
	}
}

// writeLoop streams the log from where the protocol's Begin says: header
// and body (straight from the mapped segment) in one writev, never across
// a segment, and a heartbeat after haSendHeartbeatInterval without a frame.
func (c *Conn) writeLoop() {
	defer c.hub.wg.Done()
	h := c.hub
	cfg := &h.cfg
	next, ok := c.stream.Begin()
	if !ok {
		return
	}
	c.next.Store(next)
	h.cfg.Log.Info("[HA] streaming to "+h.noun, "remote", c.remote, "from", next)
	var hdr [maxHeader]byte
	timer := time.NewTimer(cfg.HeartbeatInterval)
	defer timer.Stop()
	var lastWrite time.Time
	if !h.heartbeatFirst {
		lastWrite = time.Now()
	}
	rate := rateLimit{max: cfg.MaxTransferBytesPerSecond}
	for {
		maxOff := h.store.MaxPhyOffset()
		limit, ok := c.stream.Next(next, maxOff)
		if !ok {
			return
		}
		now := time.Now()
		var throttled time.Duration // > 0: flow control holds the rest until then
		if limit > 0 {
			if limit, throttled = rate.allow(now.UnixNano(), limit); throttled > 0 && !rate.logged {
				rate.logged = true
				h.cfg.Log.Info("[HA] flow control: transfer to the "+h.noun+" held at maxHaTransferByteInSecond",
					"remote", c.remote, "bytesPerSecond", rate.max)
			}
		}
		var view store.CommitLogView
		if limit > 0 {
			var err error
			if view, err = h.store.ViewCommitLog(next, limit); err != nil {
				c.Close("cannot read the commit log at the "+h.noun+"'s offset", err)
				return
			}
		}
		n := len(view.Bytes)
		if n > 0 || now.Sub(lastWrite) >= cfg.HeartbeatInterval {
			c.iov[0], c.iov[1] = c.stream.Header(hdr[:0], next, n), view.Bytes
			c.bufs = c.iov[:]
			if n > 0 {
				c.lastMax.Store(maxOff)
				c.lastSent.Store(now.UnixNano())
			}
			_ = c.nc.SetWriteDeadline(now.Add(cfg.HousekeepingInterval))
			_, err := c.bufs.WriteTo(c.nc)
			view.Release()
			c.iov[1] = nil
			if err != nil {
				c.Close("write failed", err)
				return
			}
			next += int64(n)
			c.next.Store(next)
			c.count(int64(len(c.iov[0])+n), now)
			rate.sent(n)
			lastWrite = now
			if n > 0 {
				continue
			}
		}
		view.Release()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		wait, wake := cfg.HeartbeatInterval-time.Since(lastWrite), c.wake
		if throttled > 0 {
			// Appends cannot be sent before the window ends: sleep till then.
			wait, wake = min(wait, throttled), nil
		}
		timer.Reset(wait)
		select {
		case <-wake:
		case <-timer.C:
		case <-c.dead:
			return
		}
	}
}

// rateLimit is Java's HA flow control (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/FlowMonitor.java, with
// haFlowControlEnable and maxHaTransferByteInSecond): at most max body
// bytes per connection and one-second window.
type rateLimit struct {
	max    int64 // bytes per second; 0: no limit
	start  int64 // unix nanos the window began
	used   int64 // bytes sent in it
	logged bool  // the first throttling was logged
}

// allow says how many of want bytes may go at now; if none, how long
// until the window ends.
func (r *rateLimit) allow(now int64, want int) (int, time.Duration) {
	if r.max <= 0 {
		return want, 0
	}
	if now-r.start >= int64(time.Second) {
		r.start, r.used = now, 0
	}
	if left := r.max - r.used; left > 0 {
		return int(min(int64(want), left)), 0
	}
	return 0, time.Duration(r.start + int64(time.Second) - now)
}

func (r *rateLimit) sent(n int) { r.used += int64(n) }

// count adds written bytes and rolls the per-second rate.
func (c *Conn) count(n int64, now time.Time) {
	total := c.sent.Add(n)
	at := c.rateAt.Load()
	if el := now.UnixNano() - at; el >= int64(time.Second) {
		if at > 0 {
			c.rateBytes.Store((total - c.rateMark.Load()) * int64(time.Second) / el)
		}
		c.rateMark.Store(total)
		c.rateAt.Store(now.UnixNano())
	}
}
