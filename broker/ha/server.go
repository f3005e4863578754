// Package ha replicates the commit log from a master broker to its slaves
// with RocketMQ's classic HA protocol (apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/ha/HAService.java and
// HAConnection.java; frames in wire/ha.go): the master streams raw
// commit-log byte ranges on haListenPort, each slave appends them at the
// same offsets and reports how far it got. The reports double as the acks a
// SYNC_MASTER waits for (Waiters, ack.go).
package ha

import (
	"fmt"
	"log/slog"
	"net"
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
	// MaxTransferBytesPerSecond caps each connection's transfer (bytes of
	// log per second; haFlowControlEnable with maxHaTransferByteInSecond);
	// 0: no cap.
	MaxTransferBytesPerSecond int64
	Log                       *slog.Logger
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
// the commit log to each (Hub, with the classic frames).
type Server struct {
	cfg   Config
	store MasterStore
	hub   *Hub
	acks  *Waiters
}

// Listen binds addr; Start accepts.
func Listen(addr string, st MasterStore, cfg Config) (*Server, error) {
	cfg.fill()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HA listen on %s: %w", addr, err)
	}
	s := &Server{cfg: cfg, store: st, acks: NewWaiters(cfg.SlaveTimeout, 0, time.Now)}
	s.hub = NewHub(ln, st, cfg, "slave", false, func(c *Conn) Stream { return &classic{srv: s, c: c} })
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.hub.Addr() }

// Start accepts slaves and wakes their writers on every append.
func (s *Server) Start() {
	s.store.SetOnAppend(func(int64) { s.hub.Wake() })
	s.acks.Start()
	s.hub.Start()
}

// Close stops accepting, closes every slave connection and fails the
// sends still waiting for an ack (FLUSH_SLAVE_TIMEOUT).
func (s *Server) Close() error {
	err := s.hub.Close()
	s.acks.Close()
	return err
}

// SlaveOK is Java's HAService.isSlaveOK: a slave is connected and has
// reported, and it is less than haSlaveFallbehindMax behind end. When it
// is false a SYNC_MASTER answers SLAVE_NOT_AVAILABLE without waiting.
func (s *Server) SlaveOK(end int64) bool {
	best := int64(-1)
	for _, c := range s.hub.Conns() {
		best = max(best, c.Ack())
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
	// LastCaughtUp is when the slave last held everything the master had
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
	for _, c := range s.hub.Conns() {
		cs := c.Status()
		st := SlaveStatus{Addr: cs.Addr, AckOffset: cs.AckOffset, NextOffset: cs.NextOffset, LastCaughtUp: cs.LastCaughtUp,
			TransferredBytes: cs.TransferredBytes, BytesPerSecond: cs.BytesPerSecond, ConnectedAt: cs.ConnectedAt}
		if st.AckOffset >= 0 {
			st.Lag = max(maxOff-st.AckOffset, 0)
		} else {
			st.Lag = maxOff
		}
		out = append(out, st)
	}
	return out
}

// MaxAck is the highest offset any slave has acknowledged.
func (s *Server) MaxAck() int64 { return s.acks.Acked() }

// classic is the classic protocol on one slave connection: 8-byte reports
// in, 12-byte headers out.
type classic struct {
	srv *Server
	c   *Conn
}

// Frames takes the slave's 8-byte reports; of several in one read only the
// last counts.
func (p *classic) Frames(b []byte) (int, bool) {
	whole := len(b) - len(b)%wire.HAReportSize
	if whole == 0 {
		return 0, true
	}
	off, err := wire.HAReport(b[whole-wire.HAReportSize : whole])
	if err != nil {
		p.c.Close("not an HA report (garbage on the HA port?)", err)
		return 0, false
	}
	maxOff := p.srv.store.MaxPhyOffset()
	if off > maxOff {
		// Java accepts such a first report and streams from the middle of a
		// record, corrupting the slave: refuse it (never auto-truncate a
		// classic slave).
		p.c.Close("refused", fmt.Errorf("the slave reports offset %d beyond this master's max offset %d: "+
			"its commit log is not a copy of this master's (wrong master, or this master lost data); fix the slave by hand", off, maxOff))
		return 0, false
	}
	p.c.Report(off, maxOff)
	p.srv.acks.Raise(off)
	return whole, true
}

// Begin streams from the slave's first report. An empty slave starts at
// the master's last segment, as Java does: older segments are never sent
// to it.
func (p *classic) Begin() (int64, bool) {
	if !p.c.WaitReport() {
		return 0, false
	}
	next := p.c.Ack()
	if next == 0 {
		maxOff := p.srv.store.MaxPhyOffset()
		next = maxOff - maxOff%p.srv.store.SegmentSize()
	}
	return next, true
}

// Next: at most haTransferBatchSize per frame.
func (p *classic) Next(int64, int64) (int, bool) { return p.srv.cfg.TransferBatchSize, true }

func (p *classic) Header(dst []byte, off int64, n int) []byte {
	return wire.AppendHATransferHeader(dst, off, n)
}

func (p *classic) Closed() {}
