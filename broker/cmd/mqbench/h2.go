package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// grpc-recv-h2 is grpc-recv on a lean gRPC client: HTTP/2 frames written
// and read with golang.org/x/net/http2's Framer and HPACK, one reader
// goroutine per connection that hands each call's gRPC messages to its
// caller's reader in place. It speaks the same gRPC as grpc-go (HEADERS
// with the x-mq-* metadata, DATA with gRPC's 5-byte message prefix,
// trailers with grpc-status, flow control in both directions); what it
// leaves out is grpc-go's per-call machinery (stream objects, goroutine
// hand-offs, buffer copies), which cost the receiver about as much CPU
// per message as the broker spent (README, Benchmarks).

// h2Conn is one HTTP/2 connection with calls in flight.
type h2Conn struct {
	conn net.Conn
	addr string

	wmu    sync.Mutex // serialises writes: stream ids must rise in HEADERS order
	bw     *bufio.Writer
	fr     *http2.Framer
	henc   *hpack.Encoder
	hbuf   []byte
	nextID uint32

	mu       sync.Mutex
	calls    map[uint32]*h2Call
	window   int64 // what the server lets us send on the connection
	maxFrame int
	winCond  *sync.Cond
	dead     error
	unacked  int64 // DATA bytes received since the last connection WINDOW_UPDATE
}

// h2Call is one unary or server-streaming call: read gets every complete
// gRPC message of the response, in place (it must not keep it).
type h2Call struct {
	read   func([]byte) error
	buf    []byte // a message split over DATA frames
	status string
	msg    string
	err    error
	done   chan struct{}
}

// Windows this client grants: the whole range, replenished in bulk, so
// the server never waits for us.
const (
	h2Window      = 1<<31 - 1
	h2WindowTopUp = 1 << 30
)

func dialH2(addr string) (*h2Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &h2Conn{conn: nc, addr: addr, bw: bufio.NewWriterSize(nc, 64<<10), nextID: 1, calls: map[uint32]*h2Call{},
		window: 65535, maxFrame: 16384}
	c.winCond = sync.NewCond(&c.mu)
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(nc, 64<<10))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	c.henc = hpack.NewEncoder(&hpackSink{c})
	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		return nil, err
	}
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2Window},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0}); err != nil {
		return nil, err
	}
	if err := c.fr.WriteWindowUpdate(0, h2Window-65535); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

// hpackSink collects an encoded header block.
type hpackSink struct{ c *h2Conn }

func (s *hpackSink) Write(p []byte) (int, error) {
	s.c.hbuf = append(s.c.hbuf, p...)
	return len(p), nil
}

// invoke makes one call of method with the encoded request and waits for
// its end.
func (c *h2Conn) invoke(ctx context.Context, method string, md []string, req []byte, call *h2Call) error {
	call.buf, call.status, call.msg, call.err = call.buf[:0], "", "", nil
	frame := make([]byte, 5, 5+len(req))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(req)))
	frame = append(frame, req...)

	c.mu.Lock()
	for c.window < int64(len(frame)) && c.dead == nil {
		c.winCond.Wait()
	}
	if c.dead != nil {
		c.mu.Unlock()
		return c.dead
	}
	c.window -= int64(len(frame))
	c.mu.Unlock()

	c.wmu.Lock()
	id := c.nextID
	c.nextID += 2
	c.mu.Lock()
	c.calls[id] = call
	maxFrame := c.maxFrame
	c.mu.Unlock()
	c.hbuf = c.hbuf[:0]
	hf := func(k, v string) { _ = c.henc.WriteField(hpack.HeaderField{Name: k, Value: v}) }
	hf(":method", "POST")
	hf(":scheme", "http")
	hf(":path", method)
	hf(":authority", c.addr)
	hf("content-type", "application/grpc")
	hf("te", "trailers")
	if dl, ok := ctx.Deadline(); ok {
		hf("grpc-timeout", strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1), 10)+"m")
	}
	for i := 0; i+1 < len(md); i += 2 {
		hf(md[i], md[i+1])
	}
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf, EndHeaders: true})
	for len(frame) > 0 && err == nil {
		n := min(len(frame), maxFrame)
		err = c.fr.WriteData(id, n == len(frame), frame[:n])
		frame = frame[n:]
	}
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
		return err
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		// A bench call that times out ends the run on this connection.
		c.fail(fmt.Errorf("call %s: %w", method, ctx.Err()))
		<-call.done
		return ctx.Err()
	}
	if call.err != nil {
		return call.err
	}
	if call.status != "0" {
		return fmt.Errorf("grpc-status %s: %s", call.status, call.msg)
	}
	return nil
}

// fail ends the connection and every call on it.
func (c *h2Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return
	}
	c.dead = err
	for id, call := range c.calls {
		call.err = err
		delete(c.calls, id)
		close(call.done)
	}
	c.winCond.Broadcast()
	_ = c.conn.Close()
}

func (c *h2Conn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead != nil
}

func (c *h2Conn) end(id uint32, err error) {
	c.mu.Lock()
	call := c.calls[id]
	delete(c.calls, id)
	c.mu.Unlock()
	if call != nil {
		if err != nil && call.err == nil {
			call.err = err
		}
		call.done <- struct{}{}
	}
}

func (c *h2Conn) readLoop() {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.fail(fmt.Errorf("read frame: %w", err))
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			_ = f.ForeachSetting(func(s http2.Setting) error {
				if s.ID == http2.SettingMaxFrameSize {
					c.mu.Lock()
					c.maxFrame = int(s.Val)
					c.mu.Unlock()
				}
				return nil
			})
			c.write(func() error { return c.fr.WriteSettingsAck() })
		case *http2.PingFrame:
			if !f.IsAck() {
				c.write(func() error { return c.fr.WritePing(true, f.Data) })
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				c.mu.Lock()
				c.window += int64(f.Increment)
				c.winCond.Broadcast()
				c.mu.Unlock()
			} // streams: each request fits the initial stream window
		case *http2.MetaHeadersFrame:
			c.headers(f)
		case *http2.DataFrame:
			c.data(f)
		case *http2.RSTStreamFrame:
			c.end(f.StreamID, fmt.Errorf("stream reset: %v", f.ErrCode))
		case *http2.GoAwayFrame:
			c.fail(fmt.Errorf("GOAWAY %v", f.ErrCode))
			return
		}
	}
}

// write runs a control-frame write from the reader goroutine.
func (c *h2Conn) write(w func() error) {
	c.wmu.Lock()
	err := w()
	if err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
	}
}

func (c *h2Conn) call(id uint32) *h2Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

func (c *h2Conn) headers(f *http2.MetaHeadersFrame) {
	call := c.call(f.StreamID)
	if call == nil {
		return
	}
	for _, h := range f.Fields {
		switch h.Name {
		case ":status":
			if h.Value != "200" {
				call.err = fmt.Errorf("HTTP status %s", h.Value)
			}
		case "grpc-status":
			call.status = h.Value
		case "grpc-message":
			call.msg = h.Value
		}
	}
	if f.StreamEnded() {
		c.end(f.StreamID, nil)
	}
}

// data hands the complete gRPC messages in a DATA frame to the call's
// reader, keeping a partial one for the next frame.
func (c *h2Conn) data(f *http2.DataFrame) {
	if n := int64(f.Length); n > 0 {
		c.mu.Lock()
		c.unacked += n
		top := c.unacked >= h2WindowTopUp
		if top {
			c.unacked = 0
		}
		c.mu.Unlock()
		if top {
			c.write(func() error { return c.fr.WriteWindowUpdate(0, h2WindowTopUp) })
		}
	}
	call := c.call(f.StreamID)
	if call == nil {
		return
	}
	p := f.Data()
	if len(call.buf) > 0 {
		call.buf = append(call.buf, p...)
		p = call.buf
	}
	for call.err == nil && len(p) >= 5 {
		n := int(binary.BigEndian.Uint32(p[1:5]))
		if len(p) < 5+n {
			break
		}
		if p[0] != 0 {
			call.err = errors.New("compressed gRPC message")
			break
		}
		call.err = call.read(p[5 : 5+n])
		p = p[5+n:]
	}
	call.buf = append(call.buf[:0], p...) // the partial message, if any (copy may overlap: append handles it)
	if f.StreamEnded() {
		c.end(f.StreamID, nil)
	}
}

// runGrpcRecvH2 is runGrpcRecv on h2Conn.
func runGrpcRecvH2(o options) error {
	if o.tls {
		return errors.New("grpc-recv-h2 speaks plaintext HTTP/2 only")
	}
	conns := make([]*h2Conn, max(o.conns, 1))
	for i := range conns {
		c, err := dialH2(o.grpc)
		if err != nil {
			return err
		}
		defer c.conn.Close()
		conns[i] = c
	}
	b := newRecvBench(o)
	b.run(func(g int) {
		c := conns[g%len(conns)]
		md := []string{"x-mq-client-id", "mqbench-recv-" + strconv.Itoa(g), "x-mq-language", "GO",
			"x-mq-protocol", "v2", "x-mq-client-version", "mqbench"}
		req, ackHead := b.requests()
		var r receiveReply
		var resp statusReply
		recvCall := &h2Call{read: r.read, done: make(chan struct{}, 1)}
		ackCall := &h2Call{read: resp.read, done: make(chan struct{}, 1)}
		var ack []byte
		for time.Now().Before(b.deadline) {
			r.entries, r.ends = r.entries[:0], r.ends[:0]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.invoke(ctx, "/apache.rocketmq.v2.MessagingService/ReceiveMessage", md, req, recvCall)
			cancel()
			if err != nil {
				b.fail(err)
				if c.isDead() {
					return
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if len(r.ends) == 0 {
				return // drained
			}
			ack = b.ackAll(&r, ackHead, ack, &resp, func(req []byte) error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return c.invoke(ctx, "/apache.rocketmq.v2.MessagingService/AckMessage", md, req, ackCall)
			})
		}
	})
	b.report(fmt.Sprintf("mode=grpc-recv-h2 consumers=%d conns=%d", o.conc, len(conns)))
	return nil
}
