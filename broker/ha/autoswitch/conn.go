package autoswitch

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// conn is one replica connection on the master: a reader taking the
// handshake and the reports, a writer sending the epoch list and then the
// log (AutoSwitchHAConnection).
type conn struct {
	srv    *Service
	nc     net.Conn
	remote string

	slaveID  atomic.Int64 // -1 before the handshake
	ack      atomic.Int64 // last report, -1 before the first
	next     atomic.Int64 // next offset the writer sends
	caughtUp atomic.Int64 // unix nanos the replica last held the master's max
	lastMax  atomic.Int64 // master max offset at the last transfer
	lastSent atomic.Int64 // unix nanos of the last transfer
	learner  bool         // written before hello is closed
	lastFile bool

	hello     chan struct{} // closed on the handshake
	helloOnce sync.Once
	first     chan struct{} // closed on the first report
	firstOnce sync.Once
	dead      chan struct{}
	closeOnce sync.Once
	wake      chan struct{}
	iov       [2][]byte   // header and body of the frame being written
	bufs      net.Buffers // over iov; a field so that writev does not allocate
}

func newConn(s *Service, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, remote: nc.RemoteAddr().String(), hello: make(chan struct{}),
		first: make(chan struct{}), dead: make(chan struct{}), wake: make(chan struct{}, 1)}
	c.slaveID.Store(-1)
	c.ack.Store(-1)
	return c
}

func (c *conn) close(reason string, err error) {
	c.closeOnce.Do(func() {
		c.nc.Close()
		close(c.dead)
		c.srv.remove(c)
		if err != nil {
			c.srv.cfg.Log.Warn("[HA] replica connection closed", "remote", c.remote, "slave", c.slaveID.Load(), "reason", reason, "err", err)
		} else {
			c.srv.cfg.Log.Info("[HA] replica connection closed", "remote", c.remote, "slave", c.slaveID.Load(), "reason", reason)
		}
		c.srv.recompute()
	})
}

// readLoop parses the replica's frames: one HANDSHAKE (16 bytes) then
// TRANSFER reports (12 bytes). Anything else closes the connection.
func (c *conn) readLoop() {
	defer c.srv.wg.Done()
	var buf [64 * wire.HASlaveTransferSize]byte
	have := 0
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.HousekeepingInterval))
		n, err := c.nc.Read(buf[have:])
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				c.close("no frame from the replica within haHousekeepingInterval", nil)
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
				c.close("closed", nil)
			default:
				c.close("read failed", err)
			}
			return
		}
		have += n
		p := 0
		for have-p >= 4 {
			st, err := wire.HAFrameState(buf[p:have])
			if err != nil {
				c.close("not an AutoSwitch HA frame (garbage on the HA port?)", err)
				return
			}
			switch st {
			case wire.HAStateHandshake:
				if have-p < wire.HASlaveHandshakeSize {
					goto more
				}
				h, err := wire.DecodeHASlaveHandshake(buf[p:have])
				if err != nil {
					c.close("bad handshake", err)
					return
				}
				p += wire.HASlaveHandshakeSize
				select {
				case <-c.hello:
					c.close("refused", errors.New("a second handshake on one connection"))
					return
				default:
				}
				c.slaveID.Store(h.BrokerID)
				c.learner, c.lastFile = h.AsyncLearner, h.SyncFromLastFile
				c.helloOnce.Do(func() { close(c.hello) })
			case wire.HAStateTransfer:
				if have-p < wire.HASlaveTransferSize {
					goto more
				}
				off, err := wire.DecodeHASlaveTransfer(buf[p:have])
				if err != nil {
					c.close("bad report", err)
					return
				}
				p += wire.HASlaveTransferSize
				if !c.report(off) {
					return
				}
			default:
				c.close("unexpected state", fmt.Errorf("%w: state %d from a replica", wire.ErrHAFrame, st))
				return
			}
		}
	more:
		have = copy(buf[:], buf[p:have])
	}
}

// report records an ack; false means the connection was refused.
func (c *conn) report(off int64) bool {
	select {
	case <-c.hello:
	default:
		c.close("refused", errors.New("report before the handshake"))
		return false
	}
	maxOff := c.srv.store.MaxPhyOffset()
	if off > maxOff {
		c.close("refused", fmt.Errorf("the replica reports offset %d beyond this master's max offset %d "+
			"(it did not truncate to the consistent point)", off, maxOff))
		return false
	}
	c.ack.Store(off)
	now := time.Now()
	switch {
	case off == maxOff:
		c.caughtUp.Store(now.UnixNano())
	case off >= c.lastMax.Load() && c.lastSent.Load() > 0:
		c.caughtUp.Store(c.lastSent.Load())
	}
	c.firstOnce.Do(func() { close(c.first) })
	c.srv.maybeExpand(c, off)
	c.srv.recompute()
	return true
}

// writeLoop answers the handshake with the epoch list, then streams from
// the replica's first report: every frame inside one segment, one epoch and
// haTransferBatchSize, and a heartbeat after haSendHeartbeatInterval idle.
func (c *conn) writeLoop() {
	defer c.srv.wg.Done()
	s, cfg := c.srv, &c.srv.cfg
	select {
	case <-c.hello:
	case <-c.dead:
		return
	}
	entries := s.epochs.Entries()
	hs := make([]wire.HAEpochEntry, len(entries))
	for i, e := range entries {
		hs[i] = wire.HAEpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset}
	}
	maxOff := s.store.MaxPhyOffset()
	frame := wire.AppendHAMasterHandshake(nil, maxOff, s.epochs.LastEpoch(), hs)
	_ = c.nc.SetWriteDeadline(time.Now().Add(cfg.HousekeepingInterval))
	if _, err := c.nc.Write(frame); err != nil {
		c.close("write handshake", err)
		return
	}
	select {
	case <-c.first:
	case <-c.dead:
		return
	}
	next := c.ack.Load()
	if next == 0 {
		// An empty replica gets the whole retained log, or only the last
		// file with syncFromLastFile: either starts at a file start.
		next = s.store.MinPhyOffset()
		if c.lastFile {
			m := s.store.MaxPhyOffset()
			next = m - m%s.store.SegmentSize()
		}
	}
	c.next.Store(next)
	cfg.Log.Info("[HA] streaming to replica", "remote", c.remote, "slave", c.slaveID.Load(), "from", next)
	var hdr [wire.HAMasterTransferHeaderSize]byte
	timer := time.NewTimer(cfg.HeartbeatInterval)
	defer timer.Stop()
	// The first frame goes out at once, a heartbeat if there is nothing to
	// send: the replica learns the epoch and the confirm offset.
	var lastWrite time.Time
	for {
		maxOff := s.store.MaxPhyOffset()
		e, end, ok := s.epochs.Find(next, maxOff)
		var view store.CommitLogView
		if ok {
			var err error
			view, err = s.store.ViewCommitLog(next, int(min(int64(cfg.TransferBatchSize), end-next)))
			if err != nil {
				c.close("cannot read the commit log at the replica's offset", err)
				return
			}
		} else if next < maxOff {
			c.close("refused", fmt.Errorf("no epoch covers offset %d (epochs %v)", next, s.epochs.Entries()))
			return
		} else if last, has := s.epochs.Last(); has {
			e = last // heartbeat at the log's end
		}
		n := len(view.Bytes)
		now := time.Now()
		if n > 0 || now.Sub(lastWrite) >= cfg.HeartbeatInterval {
			// Header and body (straight from the mapped segment) in one writev.
			c.iov[0] = wire.AppendHAMasterTransfer(hdr[:0], wire.HAMasterTransfer{BodyLen: n, Offset: next, Epoch: e.Epoch,
				EpochStartOffset: e.StartOffset, ConfirmOffset: s.store.ConfirmOffset()})
			c.iov[1] = view.Bytes
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
				c.close("write failed", err)
				return
			}
			next += int64(n)
			c.next.Store(next)
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
		timer.Reset(cfg.HeartbeatInterval - time.Since(lastWrite))
		select {
		case <-c.wake:
		case <-timer.C:
		case <-c.dead:
			return
		}
	}
}
