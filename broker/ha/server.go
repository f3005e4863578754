// Package ha replicates the commit log from a master broker to its slaves
// with RocketMQ's classic HA protocol (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/HAService.java and
// HAConnection.java; frames in wire/ha.go): the master streams raw
// commit-log byte ranges on haListenPort, each slave appends them at the
// same offsets and reports how far it got. The reports double as the acks a
// SYNC_MASTER waits for (Waiters, ack.go).
package ha

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// MasterStore is what the server reads: the master's commit log
// (implemented by *store.Store).
type MasterStore interface {
	MaxPhyOffset() int64
	// ViewCommitLog returns up to n bytes at off from the mapped log,
	// never past the end of off's segment or of the log.
	ViewCommitLog(off int64, n int) (store.CommitLogView, error)
	SegmentSize() int64
	// SetOnAppend registers a callback run on every append.
	SetOnAppend(fn func(maxPhy int64))
}

// Config holds the HA settings of broker.conf.
type Config struct {
	HeartbeatInterval    time.Duration // haSendHeartbeatInterval
	HousekeepingInterval time.Duration // haHousekeepingInterval: silence that closes a connection
	TransferBatchSize    int           // haTransferBatchSize: max body bytes per frame
	FallbehindMax        int64         // haSlaveFallbehindMax: lag beyond which a slave is not OK
	SlaveTimeout         time.Duration // slaveTimeout: SYNC_MASTER wait for a slave's ack
	Log                  *slog.Logger
}

func (c *Config) fill() {
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if c.HousekeepingInterval <= 0 {
		c.HousekeepingInterval = 20 * time.Second
	}
	if c.TransferBatchSize <= 0 {
		c.TransferBatchSize = 32 << 10
	}
	if c.FallbehindMax <= 0 {
		c.FallbehindMax = 256 << 20
	}
	if c.SlaveTimeout <= 0 {
		c.SlaveTimeout = 3 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Server is the master side: it accepts slaves on haListenPort and streams
// the commit log to each.
type Server struct {
	cfg   Config
	store MasterStore
	ln    net.Listener
	acks  *Waiters

	mu    sync.Mutex
	conns map[*conn]struct{}
	// live is the connection list the append callback wakes: copied on
	// connect and disconnect so the callback neither locks nor allocates.
	live atomic.Pointer[[]*conn]

	stop chan struct{}
	wg   sync.WaitGroup
}

// Listen binds addr; Start accepts.
func Listen(addr string, st MasterStore, cfg Config) (*Server, error) {
	cfg.fill()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HA listen on %s: %w", addr, err)
	}
	s := &Server{cfg: cfg, store: st, ln: ln, conns: map[*conn]struct{}{}, stop: make(chan struct{})}
	s.acks = NewWaiters(cfg.SlaveTimeout, 0, time.Now)
	s.live.Store(&[]*conn{})
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Start accepts slaves and wakes their writers on every append.
func (s *Server) Start() {
	s.store.SetOnAppend(s.onAppend)
	s.acks.Start()
	s.wg.Add(1)
	go s.acceptLoop()
}

// Close stops accepting, closes every slave connection and fails the
// sends still waiting for an ack (FLUSH_SLAVE_TIMEOUT).
func (s *Server) Close() error {
	s.mu.Lock() // orders with acceptLoop's registration of a new conn
	close(s.stop)
	list := *s.live.Load()
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range list {
		c.close("HA server stopping", nil)
	}
	s.wg.Wait()
	s.acks.Close()
	return err
}

func (s *Server) onAppend(int64) {
	for _, c := range *s.live.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			// Out of file descriptors and the like: slaves retry, so do we.
			s.cfg.Log.Error("[HA] accept failed, retrying in 100 ms", "err", err)
			select {
			case <-s.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		c := &conn{srv: s, nc: nc, remote: nc.RemoteAddr().String(), wake: make(chan struct{}, 1),
			first: make(chan struct{}), dead: make(chan struct{}), since: time.Now()}
		c.ack.Store(-1)
		s.mu.Lock()
		select {
		case <-s.stop:
			s.mu.Unlock()
			nc.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.publish()
		s.mu.Unlock()
		s.cfg.Log.Info("[HA] slave connected", "remote", c.remote)
		s.wg.Add(2)
		go c.readLoop()
		go c.writeLoop()
	}
}

// publish copies the connection set for onAppend; s.mu held.
func (s *Server) publish() {
	list := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		list = append(list, c)
	}
	s.live.Store(&list)
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.publish()
	}
	s.mu.Unlock()
}

// SlaveOK is Java's HAService.isSlaveOK: a slave is connected and has
// reported, and it is less than haSlaveFallbehindMax behind end. When it
// is false a SYNC_MASTER answers SLAVE_NOT_AVAILABLE without waiting.
func (s *Server) SlaveOK(end int64) bool {
	best := int64(-1)
	for _, c := range *s.live.Load() {
		best = max(best, c.ack.Load())
	}
	return best >= 0 && end-best < s.cfg.FallbehindMax
}

// WaitAck calls done(true) once a slave has acknowledged every byte below
// end, or done(false) after slaveTimeout.
func (s *Server) WaitAck(end int64, done func(ok bool)) { s.acks.Wait(end, done) }

// SlaveStatus is one slave connection as the master sees it.
type SlaveStatus struct {
	Addr string // slave's remote address
	// AckOffset is the slave's last report (its max offset); -1 before the first.
	AckOffset int64
	// NextOffset is where the master sends from next.
	NextOffset int64
	// Lag is the master's max offset minus AckOffset (bytes).
	Lag int64
	// LastCaughtUp is when the slave last reported the master's max offset
	// (zero if never).
	LastCaughtUp time.Time
	// TransferredBytes is everything sent on this connection; BytesPerSecond
	// the rate over the last second or so.
	TransferredBytes int64
	BytesPerSecond   int64
	ConnectedAt      time.Time
}

// Status lists the connected slaves (for GET_BROKER_HA_STATUS and lag metrics).
func (s *Server) Status() []SlaveStatus {
	maxOff := s.store.MaxPhyOffset()
	var out []SlaveStatus
	for _, c := range *s.live.Load() {
		out = append(out, c.status(maxOff))
	}
	return out
}

// MaxAck is the highest offset any slave has acknowledged.
func (s *Server) MaxAck() int64 { return s.acks.Acked() }

// conn is one slave connection: a reader goroutine taking reports, a writer
// goroutine streaming the log.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string
	since  time.Time

	ack       atomic.Int64 // last report, -1 before the first
	next      atomic.Int64 // next offset the writer sends
	caughtUp  atomic.Int64 // unix nanos of the last report at the master's max
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

func (c *conn) status(maxOff int64) SlaveStatus {
	st := SlaveStatus{Addr: c.remote, AckOffset: c.ack.Load(), NextOffset: c.next.Load(),
		TransferredBytes: c.sent.Load(), ConnectedAt: c.since}
	if time.Now().UnixNano()-c.rateAt.Load() < 2*int64(time.Second) {
		st.BytesPerSecond = c.rateBytes.Load() // else idle: nothing sent for a while
	}
	if st.AckOffset >= 0 {
		st.Lag = max(maxOff-st.AckOffset, 0)
	} else {
		st.Lag = maxOff
	}
	if t := c.caughtUp.Load(); t > 0 {
		st.LastCaughtUp = time.Unix(0, t)
	}
	return st
}

func (c *conn) close(reason string, err error) {
	c.closeOnce.Do(func() {
		c.nc.Close()
		close(c.dead)
		c.srv.remove(c)
		c.firstOnce.Do(func() { close(c.first) })
		if err != nil {
			c.srv.cfg.Log.Warn("[HA] slave connection closed", "remote", c.remote, "reason", reason, "err", err)
		} else {
			c.srv.cfg.Log.Info("[HA] slave connection closed", "remote", c.remote, "reason", reason)
		}
	})
}

// readLoop takes 8-byte reports. Several may arrive in one read (only the
// last counts) and one may be split across reads. No report for
// haHousekeepingInterval closes the connection (the slave reports every
// haSendHeartbeatInterval).
func (c *conn) readLoop() {
	defer c.srv.wg.Done()
	var buf [64 * wire.HAReportSize]byte
	have := 0
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.HousekeepingInterval))
		n, err := c.nc.Read(buf[have:])
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				c.close("no report from the slave within haHousekeepingInterval", nil)
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
				c.close("closed", nil)
			default:
				c.close("read failed", err)
			}
			return
		}
		have += n
		whole := have - have%wire.HAReportSize
		if whole == 0 {
			continue
		}
		off, err := wire.HAReport(buf[whole-wire.HAReportSize : whole])
		if err != nil {
			c.close("not an HA report (garbage on the HA port?)", err)
			return
		}
		have = copy(buf[:], buf[whole:have])
		if !c.report(off) {
			return
		}
	}
}

// report records a slave's report; false means the connection was refused.
func (c *conn) report(off int64) bool {
	maxOff := c.srv.store.MaxPhyOffset()
	if off > maxOff {
		// Java accepts such a first report and streams from the middle of a
		// record, corrupting the slave: refuse it (never auto-truncate a
		// classic slave).
		c.close("refused", fmt.Errorf("the slave reports offset %d beyond this master's max offset %d: "+
			"its commit log is not a copy of this master's (wrong master, or this master lost data); fix the slave by hand", off, maxOff))
		return false
	}
	c.ack.Store(off)
	if off == maxOff {
		c.caughtUp.Store(time.Now().UnixNano())
	}
	c.firstOnce.Do(func() { close(c.first) })
	c.srv.acks.Raise(off)
	return true
}

// writeLoop streams the log from the slave's first report: header and body
// (straight from the mapped segment) in one writev, at most
// haTransferBatchSize and never across a segment, and a heartbeat after
// haSendHeartbeatInterval without a frame.
func (c *conn) writeLoop() {
	defer c.srv.wg.Done()
	cfg := &c.srv.cfg
	select {
	case <-c.first:
	case <-c.dead:
		return
	}
	next := c.ack.Load()
	if next < 0 {
		return // closed before any report
	}
	if next == 0 {
		// An empty slave starts at the master's last segment, as Java does:
		// older segments are never sent to it.
		maxOff := c.srv.store.MaxPhyOffset()
		next = maxOff - maxOff%c.srv.store.SegmentSize()
	}
	c.next.Store(next)
	c.srv.cfg.Log.Info("[HA] streaming to slave", "remote", c.remote, "from", next)
	var hdr [wire.HATransferHeaderSize]byte
	timer := time.NewTimer(cfg.HeartbeatInterval)
	defer timer.Stop()
	lastWrite := time.Now()
	for {
		view, err := c.srv.store.ViewCommitLog(next, cfg.TransferBatchSize)
		if err != nil {
			c.close("cannot read the commit log at the slave's offset", err)
			return
		}
		n := len(view.Bytes)
		now := time.Now()
		if n > 0 || now.Sub(lastWrite) >= cfg.HeartbeatInterval {
			c.iov[0], c.iov[1] = wire.AppendHATransferHeader(hdr[:0], next, n), view.Bytes
			c.bufs = c.iov[:]
			_ = c.nc.SetWriteDeadline(now.Add(cfg.HousekeepingInterval))
			_, err := c.bufs.WriteTo(c.nc)
			view.Release()
			c.iov[1] = nil
			if err != nil {
				c.close("write failed", err)
				return
			}
			next += int64(n)
			c.next.Store(next)
			c.count(int64(wire.HATransferHeaderSize+n), now)
			lastWrite = now
			if n > 0 {
				continue
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(cfg.HeartbeatInterval - time.Since(lastWrite))
		select {
		case <-c.wake:
		case <-timer.C:
		case <-c.dead:
			return
		}
	}
}

// count adds written bytes and rolls the per-second rate.
func (c *conn) count(n int64, now time.Time) {
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
