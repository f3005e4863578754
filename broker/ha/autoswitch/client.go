package autoswitch

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/ha"
	"github.com/mqops/mqops/broker/ha/epoch"
	"github.com/mqops/mqops/wire"
)

// ErrNoConsistentPoint means the replica's epochs share nothing with the
// master's: its log cannot be cut to a common prefix and an operator must
// decide (wipe the replica's store, or elect it).
var ErrNoConsistentPoint = errors.New("no common epoch with the master")

// Client is the slave side (AutoSwitchHAClient): READY (cut a partial tail)
// → HANDSHAKE (send id and flags, receive the master's epochs, truncate to
// the consistent point) → TRANSFER (report, append, ack). The connection
// machinery is ha's (ha.Client); this is its protocol (ha.Follower).
type Client struct {
	srv     *Service
	localID int64
	hc      *ha.Client

	mu       sync.Mutex
	minEpoch int32 // a master older than this is stale and not followed

	truncated atomic.Int64 // last truncation point, -1 none
	curEpoch  int32        // epoch of the frames arriving (client goroutine)
	startOnce sync.Once
}

func newClient(s *Service, localID int64) *Client {
	c := &Client{srv: s, localID: localID}
	c.truncated.Store(-1)
	c.hc = ha.NewFollower(s.store, ha.Config{HeartbeatInterval: s.cfg.HeartbeatInterval,
		HousekeepingInterval: s.cfg.HousekeepingInterval, TransferBatchSize: s.cfg.TransferBatchSize, Log: s.cfg.Log},
		"replica", c)
	return c
}

func (c *Client) follow(addr string, minEpoch int32) {
	c.mu.Lock()
	c.minEpoch = minEpoch
	c.mu.Unlock()
	c.hc.SetMaster(addr)
	c.startOnce.Do(c.hc.Start)
}

func (c *Client) setAddr(addr string) { c.hc.SetMaster(addr) }

func (c *Client) close() { c.hc.Close() }

// ClientStatus is the slave's view of its replication.
type ClientStatus struct {
	Master        string
	Connected     bool
	LastRead      time.Time
	ReceivedBytes int64
	Truncated     int64 // offset of the last truncation, -1 none
	LastError     string
}

func (c *Client) status() ClientStatus {
	hs := c.hc.Status()
	return ClientStatus{Master: hs.Master, Connected: hs.Connected, LastRead: hs.LastRead, ReceivedBytes: hs.ReceivedBytes,
		Truncated: c.truncated.Load(), LastError: hs.LastError}
}

// Prepare is READY: a partial record at the tail is not part of any
// epoch's data.
func (c *Client) Prepare() error {
	end, err := c.srv.store.TruncatePartialTail()
	if err != nil {
		return fmt.Errorf("cut the partial tail: %w", err)
	}
	return c.srv.epochs.TruncateFrom(end + 1)
}

// Handshake is HANDSHAKE: send the broker id and flags, receive the
// master's epochs and truncate to the consistent point.
func (c *Client) Handshake(nc net.Conn, addr string, buf []byte) error {
	st := c.srv.store
	cfg := &c.srv.cfg
	c.mu.Lock()
	minEpoch := c.minEpoch
	c.mu.Unlock()
	c.curEpoch = -1
	_ = nc.SetDeadline(time.Now().Add(cfg.HousekeepingInterval))
	hello := wire.AppendHASlaveHandshake(nil, wire.HASlaveHandshake{SyncFromLastFile: cfg.SyncFromLastFile,
		AsyncLearner: cfg.AsyncLearner, BrokerID: c.localID})
	if _, err := nc.Write(hello); err != nil {
		return fmt.Errorf("send handshake: %w", err)
	}
	if _, err := io.ReadFull(nc, buf[:wire.HAMasterHandshakeHeaderSize]); err != nil {
		return fmt.Errorf("read the master's handshake: %w", err)
	}
	h, err := wire.DecodeHAMasterHandshake(buf[:wire.HAMasterHandshakeHeaderSize])
	if err != nil {
		return err
	}
	if h.Entries*wire.HAEpochEntrySize > len(buf) {
		return fmt.Errorf("%w: %d epoch entries", wire.ErrHAFrame, h.Entries)
	}
	body := buf[:h.Entries*wire.HAEpochEntrySize]
	if _, err := io.ReadFull(nc, body); err != nil {
		return fmt.Errorf("read the master's epochs: %w", err)
	}
	wl, err := wire.AppendHAEpochEntries(nil, body)
	if err != nil {
		return err
	}
	if h.LastEpoch < minEpoch {
		return fmt.Errorf("the master at %s is at epoch %d, older than epoch %d the controller announced: not following a stale master",
			addr, h.LastEpoch, minEpoch)
	}
	master := make([]epoch.Entry, len(wl))
	for i, e := range wl {
		master[i] = epoch.Entry{Epoch: e.Epoch, StartOffset: e.StartOffset}
	}
	if err := c.truncate(master, h.MaxOffset); err != nil {
		return err
	}
	cfg.Log.Info("[HA] following the master", "master", addr, "masterEpoch", h.LastEpoch, "masterMax", h.MaxOffset,
		"from", st.MaxPhyOffset())
	return nil
}

// truncate cuts the local log to the last offset it shares with the master
// (AutoSwitchHAClient.doTruncate). An empty epoch list is a new replica.
func (c *Client) truncate(master []epoch.Entry, masterMax int64) error {
	st, eps := c.srv.store, c.srv.epochs
	local := eps.Entries()
	if len(local) == 0 {
		return nil
	}
	localMax := st.MaxPhyOffset()
	point := epoch.FindConsistentPoint(local, localMax, master, masterMax)
	if point < 0 {
		return fmt.Errorf("%w: local epochs %v, master's %v", ErrNoConsistentPoint, local, master)
	}
	if point < localMax {
		c.srv.cfg.Log.Warn("[HA] truncating the commit log to the consistent point with the master",
			"from", localMax, "to", point, "local", local, "master", master)
		if err := st.TruncateTo(point); err != nil {
			return fmt.Errorf("truncate to the consistent point %d: %w", point, err)
		}
		c.truncated.Store(point)
	}
	return eps.TruncateFrom(point + 1)
}

// Report is TRANSFER's ack.
func (c *Client) Report(dst []byte, off int64) []byte { return wire.AppendHASlaveTransfer(dst, off) }

// HeaderSize is the master's TRANSFER header.
func (c *Client) HeaderSize() int { return wire.HAMasterTransferHeaderSize }

// Header decodes a TRANSFER header.
func (c *Client) Header(b []byte) (wire.HAMasterTransfer, error) {
	return wire.DecodeHAMasterTransfer(b)
}

// Frame records the epoch of a frame. Heartbeats carry the epoch too (as
// in Java): a replica that is level with a master elected after the last
// write records the master's empty epoch, so both epoch files agree.
func (c *Client) Frame(h wire.HAMasterTransfer, local int64) error {
	if h.Epoch != c.curEpoch && (h.BodyLen > 0 || h.Epoch > 0 && h.EpochStartOffset <= local) {
		if err := c.enterEpoch(h.Epoch, h.EpochStartOffset); err != nil {
			return err
		}
		c.curEpoch = h.Epoch
	}
	return nil
}

// Applied moves the confirm offset: consumers see only what the master
// confirmed.
func (c *Client) Applied(h wire.HAMasterTransfer) {
	st := c.srv.store
	st.SetConfirmOffset(min(h.ConfirmOffset, st.MaxPhyOffset()))
}

// enterEpoch records the epoch of the frames now arriving. An epoch the
// replica already has is fine (reconnect); an older one than its last
// means a stale master.
func (c *Client) enterEpoch(e int32, start int64) error {
	eps := c.srv.epochs
	last := eps.LastEpoch()
	switch {
	case e == last:
		return nil
	case e < last:
		if slices.Contains(eps.Entries(), epoch.Entry{Epoch: e, StartOffset: start}) {
			return nil // catching up inside an older epoch the replica knows
		}
		return fmt.Errorf("master sends epoch %d, older than this replica's epoch %d", e, last)
	}
	if err := eps.Append(epoch.Entry{Epoch: e, StartOffset: start}); err != nil {
		return fmt.Errorf("record epoch %d from the master: %w", e, err)
	}
	return nil
}
