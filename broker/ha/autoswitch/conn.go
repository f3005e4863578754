package autoswitch

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mqops/mqops/broker/ha"
	"github.com/mqops/mqops/broker/ha/epoch"
	"github.com/mqops/mqops/wire"
)

// replica is the AutoSwitch protocol on one replica connection
// (AutoSwitchHAConnection): the replica's handshake and reports in, the
// epoch list and then the log out, every frame inside one epoch. The
// connection machinery is ha's (ha.Hub).
type replica struct {
	srv *Service
	c   *ha.Conn

	learner, lastFile atomic.Bool   // from the handshake
	hello             chan struct{} // closed on the handshake
	helloOnce         sync.Once
	epoch             epoch.Entry // of the frame being written (writer only)
}

// Frames parses one HANDSHAKE (16 bytes), then TRANSFER reports (12
// bytes). Anything else closes the connection.
func (r *replica) Frames(b []byte) (int, bool) {
	p := 0
	for len(b)-p >= 4 {
		st, err := wire.HAFrameState(b[p:])
		if err != nil {
			r.c.Close("not an AutoSwitch HA frame (garbage on the HA port?)", err)
			return 0, false
		}
		switch st {
		case wire.HAStateHandshake:
			if len(b)-p < wire.HASlaveHandshakeSize {
				return p, true
			}
			h, err := wire.DecodeHASlaveHandshake(b[p:])
			if err != nil {
				r.c.Close("bad handshake", err)
				return 0, false
			}
			p += wire.HASlaveHandshakeSize
			select {
			case <-r.hello:
				r.c.Close("refused", errors.New("a second handshake on one connection"))
				return 0, false
			default:
			}
			r.c.SetID(h.BrokerID)
			r.learner.Store(h.AsyncLearner)
			r.lastFile.Store(h.SyncFromLastFile)
			r.helloOnce.Do(func() { close(r.hello) })
		case wire.HAStateTransfer:
			if len(b)-p < wire.HASlaveTransferSize {
				return p, true
			}
			off, err := wire.DecodeHASlaveTransfer(b[p:])
			if err != nil {
				r.c.Close("bad report", err)
				return 0, false
			}
			p += wire.HASlaveTransferSize
			if !r.report(off) {
				return 0, false
			}
		default:
			r.c.Close("unexpected state", fmt.Errorf("%w: state %d from a replica", wire.ErrHAFrame, st))
			return 0, false
		}
	}
	return p, true
}

// report records an ack; false means the connection was refused.
func (r *replica) report(off int64) bool {
	select {
	case <-r.hello:
	default:
		r.c.Close("refused", errors.New("report before the handshake"))
		return false
	}
	maxOff := r.srv.store.MaxPhyOffset()
	if off > maxOff {
		r.c.Close("refused", fmt.Errorf("the replica reports offset %d beyond this master's max offset %d "+
			"(it did not truncate to the consistent point)", off, maxOff))
		return false
	}
	r.c.Report(off, maxOff)
	r.srv.maybeExpand(r, off)
	r.srv.recompute()
	return true
}

// Begin answers the handshake with the epoch list and streams from the
// replica's first report.
func (r *replica) Begin() (int64, bool) {
	s := r.srv
	select {
	case <-r.hello:
	case <-r.c.Dead():
		return 0, false
	}
	entries := s.epochs.Entries()
	hs := make([]wire.HAEpochEntry, len(entries))
	for i, e := range entries {
		hs[i] = wire.HAEpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset}
	}
	frame := wire.AppendHAMasterHandshake(nil, s.store.MaxPhyOffset(), s.epochs.LastEpoch(), hs)
	if err := r.c.Write(frame); err != nil {
		r.c.Close("write handshake", err)
		return 0, false
	}
	if !r.c.WaitReport() {
		return 0, false
	}
	next := r.c.Ack()
	if next == 0 {
		// An empty replica gets the whole retained log, or only the last
		// file with syncFromLastFile: either starts at a file start.
		next = s.store.MinPhyOffset()
		if r.lastFile.Load() {
			m := s.store.MaxPhyOffset()
			next = m - m%s.store.SegmentSize()
		}
	}
	return next, true
}

// Next keeps a frame inside the epoch holding off and haTransferBatchSize;
// at the log's end the heartbeat carries the last epoch.
func (r *replica) Next(off, maxOff int64) (int, bool) {
	s := r.srv
	e, end, ok := s.epochs.Find(off, maxOff)
	switch {
	case ok:
		r.epoch = e
		return int(min(int64(s.cfg.TransferBatchSize), end-off)), true
	case off < maxOff:
		r.c.Close("refused", fmt.Errorf("no epoch covers offset %d (epochs %v)", off, s.epochs.Entries()))
		return 0, false
	}
	r.epoch, _ = s.epochs.Last()
	return 0, true
}

func (r *replica) Header(dst []byte, off int64, n int) []byte {
	return wire.AppendHAMasterTransfer(dst, wire.HAMasterTransfer{BodyLen: n, Offset: off, Epoch: r.epoch.Epoch,
		EpochStartOffset: r.epoch.StartOffset, ConfirmOffset: r.srv.store.ConfirmOffset()})
}

// Closed: the acks of the set may have changed.
func (r *replica) Closed() { r.srv.recompute() }
