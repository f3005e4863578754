package ha

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/wire"
)

// SlaveStore is what the client writes: the slave's commit log
// (implemented by *store.Store).
type SlaveStore interface {
	MaxPhyOffset() int64
	// AppendAt appends master bytes at off, which must be the local max
	// offset (or a segment start on an empty log).
	AppendAt(off int64, b []byte) error
}

// Client timings (Java's HAClient: reconnect every 5 s; a 4 MiB read buffer).
const (
	reconnectInterval = 5 * time.Second
	dialTimeout       = 3 * time.Second
	clientBufferSize  = 4 << 20
)

// Client is the slave side: it follows one master's HA address, reports its
// max offset and appends what the master streams. The protocol's frames
// and handshake are a Follower (classic by default).
type Client struct {
	cfg   Config
	store SlaveStore
	proto Follower
	noun  string        // "slave" or "replica", for errors and log lines
	retry time.Duration // reconnect interval

	mu     sync.Mutex
	master string   // HA address to follow ("" = unknown yet)
	cur    net.Conn // connection in use, closed when master changes

	connected  atomic.Bool
	lastRead   atomic.Int64 // unix nanos of the last frame
	received   atomic.Int64 // body bytes appended
	reconnects atomic.Int64
	lastErr    atomic.Pointer[string]

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// Follower is what a replication protocol adds to the slave side; one
// connection at a time calls it, from the client's goroutine.
type Follower interface {
	// Prepare runs before each dial.
	Prepare() error
	// Handshake runs on a new connection before the transfer; buf is
	// scratch.
	Handshake(nc net.Conn, addr string, buf []byte) error
	// Report appends the report of the local max offset off.
	Report(dst []byte, off int64) []byte
	// HeaderSize is the length of a frame header from the master.
	HeaderSize() int
	// Header decodes the frame header at the start of b.
	Header(b []byte) (wire.HAMasterTransfer, error)
	// Frame runs for every frame before its body is appended (local is the
	// local max offset with the frames before it); Applied runs with the
	// last frame of a read once the bodies are appended.
	Frame(h wire.HAMasterTransfer, local int64) error
	Applied(h wire.HAMasterTransfer)
}

// NewClient makes a classic slave client for st; SetMaster gives it a
// target.
func NewClient(st SlaveStore, cfg Config) *Client {
	return NewFollower(st, cfg, "slave", classicFollower{})
}

// NewFollower makes a slave client speaking p; noun names this side in
// errors and log lines.
func NewFollower(st SlaveStore, cfg Config, noun string, p Follower) *Client {
	cfg.fill()
	return &Client{cfg: cfg, store: st, proto: p, noun: noun, retry: reconnectInterval, kick: make(chan struct{}, 1),
		stop: make(chan struct{})}
}

// SetMaster sets the master's HA address (haMasterAddress, or the
// haServerAddr a name server answers a slave's registration with). A
// changed address drops the current connection.
func (c *Client) SetMaster(addr string) {
	c.mu.Lock()
	if addr == c.master {
		c.mu.Unlock()
		return
	}
	old := c.master
	c.master = addr
	if c.cur != nil {
		c.cur.Close()
	}
	c.mu.Unlock()
	c.cfg.Log.Info("[HA] master HA address changed", "from", old, "to", addr)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Master is the HA address being followed.
func (c *Client) Master() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.master
}

// Start follows the master until Close.
func (c *Client) Start() {
	c.wg.Add(1)
	go c.loop()
}

// Close disconnects and stops; later calls do nothing.
func (c *Client) Close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	c.mu.Lock()
	if c.cur != nil {
		c.cur.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// ClientStatus is the slave's view of its replication.
type ClientStatus struct {
	Master        string
	Connected     bool
	MaxOffset     int64     // local max = what the slave reports
	LastRead      time.Time // last frame from the master (zero if none yet)
	ReceivedBytes int64     // body bytes appended since start
	Reconnects    int64
	LastError     string // why the last connection ended or failed ("" none)
}

// Status reports the connection state.
func (c *Client) Status() ClientStatus {
	st := ClientStatus{Master: c.Master(), Connected: c.connected.Load(), MaxOffset: c.store.MaxPhyOffset(),
		ReceivedBytes: c.received.Load(), Reconnects: c.reconnects.Load()}
	if t := c.lastRead.Load(); t > 0 {
		st.LastRead = time.Unix(0, t)
	}
	if e := c.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

func (c *Client) loop() {
	defer c.wg.Done()
	buf := make([]byte, clientBufferSize)
	var lastErr string
	for {
		addr := c.Master()
		if addr != "" {
			before := c.reconnects.Load()
			err := c.follow(addr, buf)
			select {
			case <-c.stop:
				return
			default:
			}
			if c.reconnects.Load() != before {
				lastErr = "" // a new connection's end is always news
			}
			if err != nil {
				msg := err.Error()
				c.lastErr.Store(&msg)
			}
			if msg := fmt.Sprint(err); err != nil && msg != lastErr {
				c.cfg.Log.Warn("[HA] connection to master lost, reconnecting every 5 s", "master", addr, "err", err)
				lastErr = msg
			} else if err == nil {
				lastErr = ""
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

// follow runs one connection to addr until it fails.
func (c *Client) follow(addr string, buf []byte) error {
	if err := c.proto.Prepare(); err != nil {
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
	if c.master != addr { // changed while dialling
		c.mu.Unlock()
		nc.Close()
		return nil
	}
	c.cur = nc
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
	c.cfg.Log.Info("[HA] connected to master", "master", addr, "maxOffset", c.store.MaxPhyOffset())
	if err := c.proto.Handshake(nc, addr, buf); err != nil {
		return err
	}
	return c.stream(nc, buf)
}

// stream reports the local max at once (Java waits up to 5 s) and then
// after every batch of appended frames and every haSendHeartbeatInterval,
// and appends the frames the master sends. No frame for
// haHousekeepingInterval (the master heartbeats every 5 s) closes the
// connection.
func (c *Client) stream(nc net.Conn, buf []byte) error {
	var rep [16]byte
	reported := c.store.MaxPhyOffset()
	report := func(off int64) error {
		_ = nc.SetWriteDeadline(time.Now().Add(c.cfg.HousekeepingInterval))
		if _, err := nc.Write(c.proto.Report(rep[:0], off)); err != nil {
			return fmt.Errorf("report offset %d: %w", off, err)
		}
		reported = off
		return nil
	}
	if err := report(reported); err != nil {
		return err
	}
	hdr := c.proto.HeaderSize()
	lastReport, lastFrame := time.Now(), time.Now()
	start, have := 0, 0 // buf[start:have] is unparsed
	for {
		// Parse every complete frame in the buffer. Their bodies are moved
		// together over the headers between them and appended at once: one
		// store append (and dispatcher wake-up) per read, not per frame.
		appended, parsed := false, false
		var last wire.HAMasterTransfer // the last frame parsed
		runFrom, runTo := 0, 0         // buf[runFrom:runTo]: bodies not appended yet
		var runOff int64               // their log offset
		for have-start >= hdr {
			h, err := c.proto.Header(buf[start:have])
			if err != nil {
				return err
			}
			if h.BodyLen > len(buf)-hdr {
				return fmt.Errorf("%w: frame body of %d bytes exceeds the %d-byte buffer", wire.ErrHAFrame, h.BodyLen, len(buf))
			}
			if have-start < hdr+h.BodyLen {
				break
			}
			from := start + hdr
			start += hdr + h.BodyLen
			lastFrame = time.Now()
			c.lastRead.Store(lastFrame.UnixNano())
			local := runOff + int64(runTo-runFrom) // the log's end once the run is appended
			if runTo == runFrom {
				local = c.store.MaxPhyOffset()
			}
			if local != 0 && h.Offset != local {
				return fmt.Errorf("master pushed offset %d, not equal to this %s's max offset %d", h.Offset, c.noun, local)
			}
			if parsed && h.Epoch != last.Epoch && runTo > runFrom {
				// The protocol sees a new epoch with the log up to it.
				if err := c.appendRun(runOff, buf[runFrom:runTo]); err != nil {
					return err
				}
				runFrom, runTo, appended = 0, 0, true
			}
			if err := c.proto.Frame(h, local); err != nil {
				return err
			}
			if h.BodyLen > 0 {
				if runTo == runFrom {
					runFrom, runTo, runOff = from, from+h.BodyLen, h.Offset
				} else {
					runTo += copy(buf[runTo:], buf[from:from+h.BodyLen])
				}
			}
			last, parsed = h, true
		}
		if runTo > runFrom {
			if err := c.appendRun(runOff, buf[runFrom:runTo]); err != nil {
				return err
			}
			appended = true
		}
		if parsed {
			c.proto.Applied(last)
		}
		if start == have {
			start, have = 0, 0
		} else if len(buf)-start < hdr+c.tail(buf[start:have]) {
			// Not enough room behind the partial frame: move it to the front.
			have = copy(buf, buf[start:have])
			start = 0
		}
		now := time.Now()
		if local := c.store.MaxPhyOffset(); (appended && local > reported) || now.Sub(lastReport) >= c.cfg.HeartbeatInterval {
			if err := report(local); err != nil {
				return err
			}
			lastReport = now
		}
		if now.Sub(lastFrame) >= c.cfg.HousekeepingInterval {
			return fmt.Errorf("no frame from the master for %v (haHousekeepingInterval)", c.cfg.HousekeepingInterval)
		}
		select {
		case <-c.stop:
			return nil
		default:
		}
		// Wake up for the next report even when the master is silent.
		_ = nc.SetReadDeadline(lastReport.Add(c.cfg.HeartbeatInterval))
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

// appendRun appends the master's bytes b at off.
func (c *Client) appendRun(off int64, b []byte) error {
	if err := c.store.AppendAt(off, b); err != nil {
		return fmt.Errorf("append %d bytes from the master at %d: %w", len(b), off, err)
	}
	c.received.Add(int64(len(b)))
	return nil
}

// tail is the body length of the partial frame at the start of b, or 0
// while its header is incomplete.
func (c *Client) tail(b []byte) int {
	if h, err := c.proto.Header(b); err == nil {
		return h.BodyLen
	}
	return 0
}

// classicFollower is the classic protocol: no handshake, 8-byte reports,
// 12-byte headers.
type classicFollower struct{}

func (classicFollower) Prepare() error                           { return nil }
func (classicFollower) Handshake(net.Conn, string, []byte) error { return nil }
func (classicFollower) Report(dst []byte, off int64) []byte      { return wire.AppendHAReport(dst, off) }
func (classicFollower) HeaderSize() int                          { return wire.HATransferHeaderSize }
func (classicFollower) Header(b []byte) (wire.HAMasterTransfer, error) {
	off, n, err := wire.HATransferHeader(b)
	return wire.HAMasterTransfer{Offset: off, BodyLen: n}, err
}
func (classicFollower) Frame(wire.HAMasterTransfer, int64) error { return nil }
func (classicFollower) Applied(wire.HAMasterTransfer)            {}
