package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/version"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// outQueue bounds the frames waiting for the writer; a connection whose
// peer stops reading blocks its own read loop, not the gateway. Its
// pumps' delivery chunks are bounded in bytes as well (turns, pump.go).
const outQueue = 256

// outFrame is what the writer is handed: encoded frames, and for a
// delivery chunk its pooled buffer and the bytes its turn admitted.
type outFrame struct {
	b        []byte
	pool     *[]byte
	admitted int
}

// closeOkWait is how long a connection that sent connection.close waits
// for close-ok before it drops the socket.
const closeOkWait = 3 * time.Second

type conn struct {
	s   *Server
	nc  net.Conn
	id  uint64
	log *slog.Logger
	br  *bufio.Reader
	fr  *amqp.FrameReader

	out chan outFrame
	// queued counts frames put on out and not yet written to bw: while
	// it is 0 a sender may write its frame itself (sendNow).
	queued atomic.Int64
	// wmu guards bw, wIdle and wClosed: the writer and the senders that
	// write directly.
	wmu      sync.Mutex
	bw       *bufio.Writer
	wIdle    bool // nothing written since the last heartbeat tick
	wClosed  bool // the writer is gone: nothing more is written
	turns    turns
	done     chan struct{} // closed when the connection ends
	doneOnce sync.Once
	wrote    chan struct{}      // writer exits
	hbSet    chan time.Duration // the negotiated heartbeat, to the writer

	// Negotiated in tune-ok; fixed once open.
	heartbeat  time.Duration
	frameMax   uint32
	channelMax uint16

	vhost    string
	user     string
	access   wire.AMQPUserAccess // from the login
	perm     *permission         // the user's in vhost, once open
	channels map[uint16]*channel
	closing  bool   // this side sent connection.close
	opened   uint64 // channels opened so far, for unique sessions
	// ownsExclusive: an exclusive queue was declared; consumed: a
	// consumer was registered. Either way the broker releases the
	// connection's share when it ends.
	ownsExclusive bool
	// cancelNotify: the client takes basic.cancel from the server
	// (capability consumer_cancel_notify).
	cancelNotify bool
	consumed     bool

	// published: a basic.publish was read; set after vhost and blockCap,
	// which other goroutines read only once they see it.
	published atomic.Bool
	blockCap  bool       // the client advertised connection.blocked
	blockMu   sync.Mutex // orders blocked/unblocked notifications
	blockSent bool       // connection.blocked sent, unblocked not yet
}

func newConn(s *Server, nc net.Conn, id uint64) *conn {
	br := bufio.NewReaderSize(nc, 64<<10)
	return &conn{
		s: s, nc: nc, id: id, br: br,
		log:      s.cfg.Log.With("conn", id, "remote", nc.RemoteAddr().String()),
		fr:       amqp.NewFrameReader(br, amqp.FrameMinSize),
		out:      make(chan outFrame, outQueue),
		bw:       bufio.NewWriterSize(nc, 64<<10),
		done:     make(chan struct{}),
		wrote:    make(chan struct{}),
		hbSet:    make(chan time.Duration, 1),
		channels: map[uint16]*channel{},
	}
}

func (c *conn) owner() wire.AMQPOwner { return wire.AMQPOwner{Gateway: c.s.cfg.GatewayID, Conn: c.id} }

// serve runs the connection to its end.
func (c *conn) serve() {
	go c.writeLoop()
	err := c.run()
	c.finish()
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Debug("amqp connection closed")
	default:
		c.log.Info("amqp connection ended", "err", err)
	}
	// A peer that stopped reading must not hold the writer (and this
	// goroutine) forever.
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeOkWait))
	<-c.wrote
	_ = c.nc.Close()
	// Connection loss: what was read is still published, unacked
	// deliveries go back to their queues.
	c.closeChannels()
	if c.ownsExclusive || c.consumed {
		if err := c.s.cfg.Backend.Call(c.vhost, wire.AMQPReleaseOwner, c.owner(), nil); err != nil {
			c.log.Warn("releasing the connection's exclusive queues failed; the broker removes them with the gateway lease", "err", err)
		}
	}
}

// closeChannels tears down every channel and waits for their workers.
func (c *conn) closeChannels() {
	for id, ch := range c.channels {
		ch.teardown()
		ch.drain()
		ch.setState(stateClosed)
		delete(c.channels, id)
		c.s.stats.channels.Add(-1)
	}
}

func (c *conn) finish() { c.doneOnce.Do(func() { close(c.done) }) }

// send writes encoded frames; false once the connection is ending.
//
// When nothing is queued for the writer and no one else is writing, the
// caller writes and flushes the frame itself: a confirm then leaves from
// the goroutine that got the broker's answer, without waking the writer
// (one goroutine hand-off less per confirm). Otherwise it queues behind
// what is queued, which keeps each sender's frames in order: the writer
// counts a frame out of queued only once it is in bw.
func (c *conn) send(frame []byte) bool {
	if c.lockDirect() {
		_, err := c.bw.Write(frame)
		return c.unlockDirect(err)
	}
	return c.sendOut(outFrame{b: frame})
}

// lockDirect reports, holding wmu, that the caller may write to bw
// itself: nothing is queued for the writer and no one else writes.
func (c *conn) lockDirect() bool {
	if c.queued.Load() != 0 || !c.wmu.TryLock() {
		return false
	}
	if c.queued.Load() == 0 && !c.wClosed {
		return true
	}
	c.wmu.Unlock()
	return false
}

// unlockDirect flushes what a lockDirect caller wrote (err: its write's)
// and releases wmu; false when the connection failed.
func (c *conn) unlockDirect(err error) bool {
	if err == nil {
		err = c.bw.Flush()
	}
	c.wIdle = false
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
		return false
	}
	return true
}

func (c *conn) sendOut(f outFrame) bool {
	c.queued.Add(1)
	select {
	case c.out <- f:
		return true
	case <-c.done:
		c.queued.Add(-1)
		return false
	}
}

// written recycles a frame the writer is done with and gives its room
// back to the pumps.
func (c *conn) written(f outFrame) {
	if f.admitted > 0 {
		c.unqueue(f.admitted)
	}
	if f.pool != nil {
		chunkPool.Put(f.pool)
	}
}

func (c *conn) sendMethod(ch uint16, m amqp.Method) {
	if c.lockDirect() {
		// Encoded straight into the write buffer: no frame allocated.
		b, err := amqp.AppendMethodFrame(c.bw.AvailableBuffer(), ch, m)
		if err == nil {
			_, err = c.bw.Write(b)
			c.unlockDirect(err)
			return
		}
		c.wmu.Unlock()
		c.log.Error("encode method", "method", m.Name(), "err", err)
		return
	}
	b, err := amqp.AppendMethodFrame(nil, ch, m)
	if err != nil {
		// Only an over-long shortstr can fail, and the gateway's own
		// strings are short: a bug, logged rather than sent half-made.
		c.log.Error("encode method", "method", m.Name(), "err", err)
		return
	}
	c.send(b)
}

// writeLoop writes queued frames, flushing when the queue runs dry, and
// a heartbeat when nothing was written for H/2 (amqp091-go drops a
// connection silent for 1.5·H).
func (c *conn) writeLoop() {
	defer close(c.wrote)
	defer func() {
		c.wmu.Lock()
		c.wClosed = true
		c.wmu.Unlock()
	}()
	var tick <-chan time.Time
	c.wmu.Lock()
	c.wIdle = true
	c.wmu.Unlock()
	for {
		select {
		case f := <-c.out:
			c.wmu.Lock()
			_, err := c.bw.Write(f.b)
			c.queued.Add(-1)
			c.wIdle = false
			if err == nil && len(c.out) == 0 {
				err = c.bw.Flush()
			}
			c.wmu.Unlock()
			c.written(f)
			if err != nil {
				c.fail(err)
				return
			}
		case hb := <-c.hbSet:
			if hb > 0 {
				ticker := time.NewTicker(hb / 2)
				defer ticker.Stop()
				tick = ticker.C
			}
		case <-tick:
			c.wmu.Lock()
			var err error
			if c.wIdle {
				if _, err = c.bw.Write(amqp.AppendHeartbeat(nil)); err == nil {
					err = c.bw.Flush()
				}
			}
			c.wIdle = true
			c.wmu.Unlock()
			if err != nil {
				c.fail(err)
				return
			}
		case <-c.done:
			// Write what is queued (a connection.close) before the socket
			// goes; nothing is written after.
			c.wmu.Lock()
			defer c.wmu.Unlock()
			for {
				select {
				case f := <-c.out:
					_, err := c.bw.Write(f.b)
					c.queued.Add(-1)
					c.written(f)
					if err != nil {
						c.wClosed = true
						return
					}
				default:
					_ = c.bw.Flush()
					c.wClosed = true
					return
				}
			}
		}
	}
}

func (c *conn) fail(err error) {
	c.log.Debug("amqp write failed", "err", err)
	c.finish()
	_ = c.nc.Close()
}

// run negotiates and then processes frames until the connection ends.
func (c *conn) run() error {
	_ = c.nc.SetDeadline(time.Now().Add(c.s.cfg.HandshakeTimeout))
	if err := amqp.ReadProtocolHeader(c.br); err != nil {
		var he *amqp.ProtocolHeaderError
		if errors.As(err, &he) {
			// AMQP 0-9-1 §4.2.2: answer with the header we speak, then close.
			c.send(amqp.ProtocolHeader[:])
		}
		return err
	}
	if err := c.handshake(); err != nil {
		return c.hardError(err)
	}
	for {
		c.waitPublishable()
		if c.heartbeat > 0 {
			// RabbitMQ drops a peer silent for two heartbeat intervals.
			_ = c.nc.SetReadDeadline(time.Now().Add(2 * c.heartbeat))
		} else {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		// After the deadline: Shutdown sets draining, then the deadline.
		if c.s.draining.Load() {
			return c.drainClose()
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			if c.s.draining.Load() {
				return c.drainClose()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.log.Warn("amqp client missed heartbeats: connection dropped", "heartbeat", c.heartbeat)
				return fmt.Errorf("no frame for %v: %w", 2*c.heartbeat, err)
			}
			return c.hardError(err)
		}
		done, err := c.frame(f)
		if err != nil {
			return c.hardError(err)
		}
		if done {
			return nil
		}
	}
}

// drainClose ends the connection for Shutdown: what its channels read is
// handed to the broker and answered (confirms, returns) first, then
// connection.close 320 goes out, as RabbitMQ closes its connections when
// it stops.
func (c *conn) drainClose() error {
	for _, ch := range c.channels {
		ch.drain()
	}
	return c.hardError(&amqp.Error{Code: amqp.ConnectionForced, Text: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", Hard: true})
}

// hardError sends connection.close for an AMQP exception and waits for
// close-ok; other errors (I/O) just end the connection.
func (c *conn) hardError(err error) error {
	e, ok := amqp.AsError(err)
	if !ok || c.closing {
		return err
	}
	if !e.Hard {
		// A channel-level code surfacing at connection level (handshake).
		e = &amqp.Error{Code: e.Code, Text: e.Text, ClassID: e.ClassID, MethodID: e.MethodID, Hard: true}
	}
	c.log.Info("amqp connection exception", "code", e.Code, "text", e.Text, "class", e.ClassID, "method", e.MethodID)
	c.closing = true
	c.s.stats.connErrors.Add(1)
	c.sendMethod(0, &amqp.ConnectionClose{ReplyCode: e.Code, ReplyText: amqp.ReplyText(e.Text), ClassID: e.ClassID, MethodID: e.MethodID})
	_ = c.nc.SetReadDeadline(time.Now().Add(closeOkWait))
	for {
		f, rerr := c.fr.ReadFrame()
		if rerr != nil {
			return err
		}
		if f.Channel != 0 || f.Type != amqp.FrameMethod {
			continue
		}
		cls, mth, _, _ := amqp.MethodIDs(f.Payload)
		switch {
		case cls == 10 && mth == 51: // close-ok
			return err
		case cls == 10 && mth == 50: // crossing close
			c.sendMethod(0, &amqp.ConnectionCloseOk{})
			return err
		}
	}
}

// expect reads the next frame of the handshake, which must be method m on
// channel 0.
func (c *conn) expect(m amqp.Method) error {
	f, err := c.fr.ReadFrame()
	if err != nil {
		return err
	}
	wc, wm := m.IDs()
	if f.Type != amqp.FrameMethod || f.Channel != 0 {
		return amqp.Errorf(amqp.UnexpectedFrame, "expected %s on channel 0, got frame type %d on channel %d", m.Name(), f.Type, f.Channel)
	}
	cls, mth, args, err := amqp.MethodIDs(f.Payload)
	if err != nil {
		return err
	}
	if cls == 10 && mth == 50 {
		// The client gave up (amqplib closes on a tune it dislikes).
		c.sendMethod(0, &amqp.ConnectionCloseOk{})
		c.closing = true
		return io.EOF
	}
	if cls != wc || mth != wm {
		e := amqp.Errorf(amqp.CommandInvalid, "expected %s, got method (%d,%d)", m.Name(), cls, mth)
		e.ClassID, e.MethodID = cls, mth
		return e
	}
	return m.Read(args)
}

// capabilities advertises only what this gateway implements.
func serverProperties() amqp.Table {
	host, _ := os.Hostname()
	return amqp.Table{
		"product":      "mqops",
		"version":      version.Version,
		"platform":     "Go",
		"copyright":    "mqops authors",
		"information":  "AMQP 0-9-1 gateway over the mqops broker",
		"cluster_name": host,
		"capabilities": amqp.Table{
			"exchange_exchange_bindings":   true,
			"authentication_failure_close": true,
			"basic.nack":                   true,
			"publisher_confirms":           true,
			"consumer_cancel_notify":       true,
			"connection.blocked":           true,
			"per_consumer_qos":             true,
			"direct_reply_to":              true,
		},
	}
}

func (c *conn) handshake() error {
	c.sendMethod(0, &amqp.ConnectionStart{VersionMajor: 0, VersionMinor: 9, ServerProperties: serverProperties(),
		Mechanisms: "PLAIN AMQPLAIN", Locales: "en_US"})
	var so amqp.ConnectionStartOk
	if err := c.expect(&so); err != nil {
		return err
	}
	user, ok, err := c.authenticate(&so)
	if err != nil {
		// The user database (the default vhost's broker) did not answer,
		// or its ACL refused the gateway's own account: not the client's
		// fault, so not a 403.
		c.log.Error("amqp login could not be checked", "user", user, "err", err)
		code := uint16(amqp.InternalError)
		if ae, ok := amqp.AsError(err); ok && ae.Code == amqp.AccessRefused {
			code = amqp.NotAllowed
		}
		e := amqp.Errorf(code, "the login of user '%s' could not be checked: %v", user, err)
		e.ClassID, e.MethodID = so.IDs()
		return e
	}
	if !ok {
		text := fmt.Sprintf("ACCESS_REFUSED - Login was refused using authentication mechanism %s. For details see the broker logfile.", so.Mechanism)
		c.log.Warn("amqp login refused", "user", user, "mechanism", so.Mechanism)
		c.s.stats.loginsRefused.Add(1)
		if caps, _ := so.ClientProperties["capabilities"].(amqp.Table); caps["authentication_failure_close"] == true {
			return &amqp.Error{Code: amqp.AccessRefused, Text: text, Hard: true}
		}
		return errors.New("login refused")
	}
	c.user = user
	caps, _ := so.ClientProperties["capabilities"].(amqp.Table)
	c.cancelNotify = caps["consumer_cancel_notify"] == true
	c.blockCap = caps["connection.blocked"] == true
	cfg := &c.s.cfg
	c.sendMethod(0, &amqp.ConnectionTune{ChannelMax: cfg.ChannelMax, FrameMax: cfg.FrameMax, Heartbeat: cfg.Heartbeat})
	var to amqp.ConnectionTuneOk
	if err := c.expect(&to); err != nil {
		return err
	}
	// rabbit_reader:validate_negotiated_integer_value: the same checks and
	// texts.
	if to.FrameMax < amqp.FrameMinSize {
		return tuneError(fmt.Sprintf("frame_max=%d < %d min size", to.FrameMax, amqp.FrameMinSize))
	}
	if to.FrameMax > cfg.FrameMax {
		return tuneError(fmt.Sprintf("frame_max=%d > %d max size", to.FrameMax, cfg.FrameMax))
	}
	if to.ChannelMax > cfg.ChannelMax {
		return tuneError(fmt.Sprintf("channel_max=%d > %d max size", to.ChannelMax, cfg.ChannelMax))
	}
	c.frameMax = to.FrameMax
	c.channelMax = to.ChannelMax
	if c.channelMax == 0 {
		c.channelMax = cfg.ChannelMax
	}
	c.heartbeat = time.Duration(to.Heartbeat) * time.Second
	c.hbSet <- c.heartbeat
	c.fr.SetFrameMax(c.frameMax)
	var op amqp.ConnectionOpen
	if err := c.expect(&op); err != nil {
		return err
	}
	exists, err := c.s.cfg.Backend.VhostExists(op.VirtualHost)
	if e, ok := amqp.AsError(err); ok {
		// The broker ACL refused the gateway's account on this vhost.
		c.log.Error("amqp vhost refused by the broker", "vhost", op.VirtualHost, "err", err)
		e = amqp.Errorf(amqp.NotAllowed, "%s", clipText(e.Text))
		e.ClassID, e.MethodID = op.IDs()
		return e
	}
	if err != nil {
		c.log.Error("amqp vhost lookup failed", "vhost", op.VirtualHost, "err", err)
		e := amqp.Errorf(amqp.InternalError, "vhost '%s' is not reachable: %v", op.VirtualHost, err)
		e.ClassID, e.MethodID = op.IDs()
		return e
	}
	if !exists {
		e := amqp.Errorf(amqp.NotAllowed, "vhost %s not found", op.VirtualHost)
		e.ClassID, e.MethodID = op.IDs()
		return e
	}
	perm, ok := c.access.Permissions[op.VirtualHost]
	if !ok {
		// rabbit_access_control:check_vhost_access.
		e := amqp.Errorf(amqp.NotAllowed, "access to vhost '%s' refused for user '%s'", op.VirtualHost, c.user)
		e.ClassID, e.MethodID = op.IDs()
		return e
	}
	if c.perm, err = compilePermission(perm); err != nil {
		e := amqp.Errorf(amqp.InternalError, "permissions of user '%s' in vhost '%s': %v", c.user, op.VirtualHost, err)
		e.ClassID, e.MethodID = op.IDs()
		return e
	}
	c.vhost = op.VirtualHost
	c.s.servedVhost(c.vhost)
	_ = c.nc.SetDeadline(time.Time{})
	c.sendMethod(0, &amqp.ConnectionOpenOk{})
	c.log.Debug("amqp connection open", "user", user, "vhost", c.vhost, "heartbeat", c.heartbeat, "frameMax", c.frameMax, "channelMax", c.channelMax)
	return nil
}

func tuneError(text string) error {
	e := amqp.Errorf(amqp.NotAllowed, "%s", text)
	e.ClassID, e.MethodID = 10, 31
	return e
}

// authenticate checks the start-ok response against the broker's user
// database (AMQP_AUTHENTICATE to the default vhost's broker); users named
// in loopbackUsers (guest by default, RabbitMQ's loopback_users) only from a
// loopback address. err is set when the database could not be asked.
func (c *conn) authenticate(so *amqp.ConnectionStartOk) (user string, ok bool, err error) {
	var pass string
	switch so.Mechanism {
	case "PLAIN":
		// [authzid] NUL authcid NUL passwd (RFC 4616).
		parts := strings.Split(so.Response, "\x00")
		if len(parts) != 3 {
			return "", false, nil
		}
		user, pass = parts[1], parts[2]
	case "AMQPLAIN":
		t, err := amqp.DecodeTableEntries([]byte(so.Response))
		if err != nil {
			return "", false, nil
		}
		user, _ = t["LOGIN"].(string)
		pass, _ = t["PASSWORD"].(string)
	default:
		return "", false, nil
	}
	if slices.Contains(c.s.cfg.LoopbackUsers, user) {
		if addr, isTCP := c.nc.RemoteAddr().(*net.TCPAddr); !isTCP || !addr.IP.IsLoopback() {
			c.log.Warn("amqp user refused from a non-loopback address (loopbackUsers, RabbitMQ's loopback_users)", "user", user)
			return user, false, nil
		}
	}
	var access wire.AMQPUserAccess
	if err := c.s.cfg.Backend.Call(amqpDefaultVhost, wire.AMQPAuthenticate, wire.AMQPLogin{User: user, Password: pass}, &access); err != nil {
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.AccessRefused && strings.HasPrefix(ae.Text, "ACCESS_REFUSED - Login was refused") {
			return user, false, nil // the engine's answer: a bad login
		}
		return user, false, err
	}
	c.access = access
	return user, true, nil
}

// frame processes one frame after the handshake; done reports a clean
// end (close-ok or close from the client).
func (c *conn) frame(f amqp.Frame) (done bool, err error) {
	if f.Type == amqp.FrameHeartbeat {
		return false, nil
	}
	if f.Channel == 0 {
		if f.Type != amqp.FrameMethod {
			return false, amqp.Errorf(amqp.UnexpectedFrame, "frame type %d on channel 0", f.Type)
		}
		cls, mth, args, err := amqp.MethodIDs(f.Payload)
		if err != nil {
			return false, err
		}
		switch {
		case cls == 10 && mth == 50:
			var m amqp.ConnectionClose
			if err := m.Read(args); err != nil {
				return false, err
			}
			// Channels still open close implicitly; their publishes reach
			// the broker first (amqplib's send.js closes the connection
			// right after publishing, with channel 1 open).
			c.closeChannels()
			c.sendMethod(0, &amqp.ConnectionCloseOk{})
			return true, nil
		case cls == 10 && mth == 51:
			return true, nil
		}
		m, err := amqp.NewMethod(cls, mth)
		if err != nil {
			return false, err
		}
		e := amqp.Errorf(amqp.NotImplemented, "%s is not supported", m.Name())
		if cls != 10 {
			e = amqp.Errorf(amqp.CommandInvalid, "%s on channel 0", m.Name())
		}
		e.ClassID, e.MethodID = cls, mth
		return false, e
	}
	ch := c.channels[f.Channel]
	if ch == nil {
		return false, c.openChannel(f)
	}
	if err := ch.handle(f); err != nil {
		if e, ok := amqp.AsError(err); ok && !e.Hard {
			ch.serverClose(e)
			return false, nil
		}
		return false, err
	}
	if ch.getState() == stateClosed {
		delete(c.channels, f.Channel)
		c.s.stats.channels.Add(-1)
	}
	return false, nil
}

// openChannel handles a frame for a channel id not in use: only
// channel.open is allowed (rabbit_reader: 504 otherwise).
func (c *conn) openChannel(f amqp.Frame) error {
	var cls, mth uint16
	if f.Type == amqp.FrameMethod {
		var err error
		if cls, mth, _, err = amqp.MethodIDs(f.Payload); err != nil {
			return err
		}
	}
	if cls != 20 || mth != 10 {
		e := amqp.Errorf(amqp.ChannelError, "expected 'channel.open' on channel %d", f.Channel)
		e.ClassID, e.MethodID = cls, mth
		return e
	}
	// channel_max bounds how many channels are open, not their ids, as in
	// RabbitMQ (rabbitmq-server deps/rabbit/src/rabbit_reader.erl
	// create_channel).
	if len(c.channels) >= int(c.channelMax) {
		e := amqp.Errorf(amqp.NotAllowed, "number of channels opened (%d) has reached the negotiated channel_max (%d)", len(c.channels), c.channelMax)
		e.ClassID, e.MethodID = cls, mth
		return e
	}
	c.opened++
	c.s.stats.channels.Add(1)
	c.channels[f.Channel] = newChannel(c, f.Channel, fmt.Sprintf("%s/%d/%d", c.s.cfg.GatewayID, c.id, c.opened))
	c.sendMethod(f.Channel, &amqp.ChannelOpenOk{})
	return nil
}
