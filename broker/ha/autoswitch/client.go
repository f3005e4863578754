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

	"github.com/mqops/mqops/broker/ha/epoch"
	"github.com/mqops/mqops/wire"
)

// Client timings: Java's AutoSwitchHAClient reconnects after 5 s; a 4 MiB
// read buffer holds the largest frame.
const (
	reconnectInterval = 5 * time.Second
	dialTimeout       = 3 * time.Second
	clientBufferSize  = 4 << 20
)

// ErrNoConsistentPoint means the replica's epochs share nothing with the
// master's: its log cannot be cut to a common prefix and an operator must
// decide (wipe the replica's store, or elect it).
var ErrNoConsistentPoint = errors.New("no common epoch with the master")

// Client is the slave side (AutoSwitchHAClient): READY (cut a partial tail)
// → HANDSHAKE (send id and flags, receive the master's epochs, truncate to
// the consistent point) → TRANSFER (report, append, ack).
type Client struct {
	srv     *Service
	localID int64
	retry   time.Duration

	mu       sync.Mutex
	addr     string
	minEpoch int32 // a master older than this is stale and not followed
	cur      net.Conn

	connected  atomic.Bool
	lastRead   atomic.Int64
	received   atomic.Int64
	truncated  atomic.Int64 // last truncation point, -1 none
	lastErr    atomic.Pointer[string]
	kick       chan struct{}
	stop       chan struct{}
	done       chan struct{}
	stopOnce   sync.Once
	startOnce  sync.Once
	reconnects atomic.Int64
}

func newClient(s *Service, localID int64) *Client {
	c := &Client{srv: s, localID: localID, retry: reconnectInterval, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	c.truncated.Store(-1)
	return c
}

func (c *Client) follow(addr string, minEpoch int32) {
	c.mu.Lock()
	c.minEpoch = minEpoch
	c.mu.Unlock()
	c.setAddr(addr)
	c.startOnce.Do(func() { go c.loop() })
}

func (c *Client) setAddr(addr string) {
	c.mu.Lock()
	if addr == c.addr {
		c.mu.Unlock()
		return
	}
	c.addr = addr
	if c.cur != nil {
		c.cur.Close()
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Client) close() {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.mu.Lock()
		if c.cur != nil {
			c.cur.Close()
		}
		c.mu.Unlock()
		c.startOnce.Do(func() { close(c.done) }) // never started
		<-c.done
	})
}

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
	c.mu.Lock()
	st := ClientStatus{Master: c.addr}
	c.mu.Unlock()
	st.Connected, st.ReceivedBytes, st.Truncated = c.connected.Load(), c.received.Load(), c.truncated.Load()
	if t := c.lastRead.Load(); t > 0 {
		st.LastRead = time.Unix(0, t)
	}
	if e := c.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

func (c *Client) loop() {
	defer close(c.done)
	buf := make([]byte, clientBufferSize)
	var last string
	for {
		c.mu.Lock()
		addr := c.addr
		c.mu.Unlock()
		if addr != "" {
			err := c.session(addr, buf)
			select {
			case <-c.stop:
				return
			default:
			}
			if err != nil {
				msg := err.Error()
				c.lastErr.Store(&msg)
				if msg != last {
					c.srv.cfg.Log.Warn("[HA] replication from the master stopped, retrying", "master", addr, "err", err)
					last = msg
				}
			}
		}
		select {
		case <-c.stop:
			return
		case <-c.kick:
		case <-time.After(c.retry):
		}
	}
}

// session runs one connection: READY, HANDSHAKE, TRANSFER.
func (c *Client) session(addr string, buf []byte) error {
	st, eps := c.srv.store, c.srv.epochs
	// READY: a partial record at the tail is not part of any epoch's data.
	end, err := st.TruncatePartialTail()
	if err != nil {
		return fmt.Errorf("cut the partial tail: %w", err)
	}
	if err := eps.TruncateFrom(end + 1); err != nil {
		return err
	}
	d := net.Dialer{Timeout: dialTimeout}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("dial master HA %s: %w", addr, err)
	}
	c.mu.Lock()
	select {
	case <-c.stop:
		c.mu.Unlock()
		nc.Close()
		return nil
	default:
	}
	if c.addr != addr {
		c.mu.Unlock()
		nc.Close()
		return nil
	}
	c.cur = nc
	minEpoch := c.minEpoch
	c.mu.Unlock()
	c.reconnects.Add(1)
	c.connected.Store(true)
	defer func() {
		c.connected.Store(false)
		c.mu.Lock()
		c.cur = nil
		c.mu.Unlock()
		nc.Close()
	}()
	cfg := &c.srv.cfg
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
	return c.transfer(nc, buf)
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

// transfer reports the local max and appends the master's frames, acking
// after each append and every haSendHeartbeatInterval.
func (c *Client) transfer(nc net.Conn, buf []byte) error {
	st, cfg := c.srv.store, &c.srv.cfg
	var rep [wire.HASlaveTransferSize]byte
	reported := st.MaxPhyOffset()
	report := func(off int64) error {
		_ = nc.SetWriteDeadline(time.Now().Add(cfg.HousekeepingInterval))
		if _, err := nc.Write(wire.AppendHASlaveTransfer(rep[:0], off)); err != nil {
			return fmt.Errorf("report offset %d: %w", off, err)
		}
		reported = off
		return nil
	}
	if err := report(reported); err != nil {
		return err
	}
	lastReport, lastFrame := time.Now(), time.Now()
	curEpoch := int32(-1)
	start, have := 0, 0
	const hdr = wire.HAMasterTransferHeaderSize
	for {
		appended := false
		for have-start >= hdr {
			h, err := wire.DecodeHAMasterTransfer(buf[start:have])
			if err != nil {
				return err
			}
			if h.BodyLen > len(buf)-hdr {
				return fmt.Errorf("%w: frame body of %d bytes exceeds the %d-byte buffer", wire.ErrHAFrame, h.BodyLen, len(buf))
			}
			if have-start < hdr+h.BodyLen {
				break
			}
			body := buf[start+hdr : start+hdr+h.BodyLen]
			start += hdr + h.BodyLen
			lastFrame = time.Now()
			c.lastRead.Store(lastFrame.UnixNano())
			local := st.MaxPhyOffset()
			if local != 0 && h.Offset != local {
				return fmt.Errorf("master pushed offset %d, not equal to this replica's max offset %d", h.Offset, local)
			}
			// Heartbeats carry the epoch too (as in Java): a replica that is
			// level with a master elected after the last write records the
			// master's empty epoch, so both epoch files agree.
			if h.Epoch != curEpoch && (h.BodyLen > 0 || h.Epoch > 0 && h.EpochStartOffset <= local) {
				if err := c.enterEpoch(h.Epoch, h.EpochStartOffset); err != nil {
					return err
				}
				curEpoch = h.Epoch
			}
			if h.BodyLen > 0 {
				if err := st.AppendAt(h.Offset, body); err != nil {
					return fmt.Errorf("append %d bytes from the master at %d: %w", h.BodyLen, h.Offset, err)
				}
				c.received.Add(int64(h.BodyLen))
				appended = true
			}
			// Consumers see only what the master confirmed.
			st.SetConfirmOffset(min(h.ConfirmOffset, st.MaxPhyOffset()))
		}
		if start == have {
			start, have = 0, 0
		} else if len(buf)-start < hdr+tailLen(buf[start:have]) {
			have = copy(buf, buf[start:have])
			start = 0
		}
		now := time.Now()
		if local := st.MaxPhyOffset(); (appended && local > reported) || now.Sub(lastReport) >= cfg.HeartbeatInterval {
			if err := report(local); err != nil {
				return err
			}
			lastReport = now
		}
		if now.Sub(lastFrame) >= cfg.HousekeepingInterval {
			return fmt.Errorf("no frame from the master for %v (haHousekeepingInterval)", cfg.HousekeepingInterval)
		}
		select {
		case <-c.stop:
			return nil
		default:
		}
		_ = nc.SetReadDeadline(lastReport.Add(cfg.HeartbeatInterval))
		r, err := nc.Read(buf[have:])
		have += r
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, io.EOF) {
				return errors.New("master closed the connection")
			}
			return err
		}
	}
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

// tailLen is the body length of the partial frame at the start of b, or 0
// while its header is incomplete.
func tailLen(b []byte) int {
	if h, err := wire.DecodeHAMasterTransfer(b); err == nil {
		return h.BodyLen
	}
	return 0
}
