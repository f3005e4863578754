package remoting

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"testing"

	"github.com/mqops/mqops/wire"
)

// TestReadLoopOneByteWrites: frames arriving one byte per read are
// reassembled, in both header encodings.
func TestReadLoopOneByteWrites(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: echo})
	nc := dial(t, srv.addr())
	var stream []byte
	for i := int32(1); i <= 3; i++ {
		req := request(10, i, []byte("body-"+strconv.Itoa(int(i))))
		if i == 2 {
			req.SerializeType = wire.SerializeRocketMQ
		}
		stream = wire.AppendFrame(stream, req)
	}
	for i := range stream {
		if _, err := nc.Write(stream[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(nc)
	for i := int32(1); i <= 3; i++ {
		resp := mustRead(t, nc, r)
		if resp.Opaque != i || !resp.IsResponse() || string(resp.Body) != "body-"+strconv.Itoa(int(i)) || resp.GetString("k") != "v" {
			t.Fatalf("response %d: opaque %d flag %d body %q fields %v", i, resp.Opaque, resp.Flag, resp.Body, resp.Fields())
		}
		if want := map[bool]byte{true: wire.SerializeRocketMQ, false: wire.SerializeJSON}[i == 2]; resp.SerializeType != want {
			t.Fatalf("response %d in serialize type %d, want the request's %d", i, resp.SerializeType, want)
		}
	}
}

// TestReadLoopManyFramesOneWrite: a pipelined stream of frames written at
// once is answered completely and in order.
func TestReadLoopManyFramesOneWrite(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: echo})
	nc := dial(t, srv.addr())
	const n = 500
	var stream []byte
	for i := int32(1); i <= n; i++ {
		stream = wire.AppendFrame(stream, request(10, i, []byte(strconv.Itoa(int(i)))))
	}
	if _, err := nc.Write(stream); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	for i := int32(1); i <= n; i++ {
		resp := mustRead(t, nc, r)
		if resp.Opaque != i || string(resp.Body) != strconv.Itoa(int(i)) {
			t.Fatalf("answer %d: opaque %d body %q", i, resp.Opaque, resp.Body)
		}
	}
}

// lengthHandler answers with the body's length, so that a 16 MiB request
// gets a small answer.
var lengthHandler = HandlerFunc(func(c *Conn, req *wire.Command) {
	resp := wire.ResponseTo(req, wire.Success, "")
	resp.SetInt("len", int64(len(req.Body)))
	c.Reply(req, &resp)
})

// bigFrame is a request whose length prefix is exactly length, and the
// length of its body.
func bigFrame(length int) ([]byte, int) {
	req := request(10, 7, nil)
	head := wire.AppendFrame(nil, req)
	body := length - (len(head) - 4)
	req.Body = bytes.Repeat([]byte{'x'}, body)
	f := wire.AppendFrame(nil, req)
	if got := int(binary.BigEndian.Uint32(f)); got != length {
		panic(fmt.Sprintf("frame length %d, want %d", got, length))
	}
	return f, body
}

// TestReadLoopMaxFrame: a frame of exactly the 16 MiB limit is served; one
// byte more closes the connection with a clear error and nothing else.
func TestReadLoopMaxFrame(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: lengthHandler})

	nc := dial(t, srv.addr())
	f, body := bigFrame(wire.MaxFrameSize)
	go func() { _, _ = nc.Write(f) }()
	resp := mustRead(t, nc, bufio.NewReader(nc))
	if n, _ := resp.GetInt("len"); resp.Code != wire.Success || n != int64(body) {
		t.Fatalf("max-size frame answered code %d len %d, want 0 and %d", resp.Code, n, body)
	}

	over := dial(t, srv.addr())
	prefix := binary.BigEndian.AppendUint32(nil, wire.MaxFrameSize+1)
	if _, err := over.Write(append(prefix, 0, 0, 0, 2, '{', '}')); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, over)
	rec := srv.log.wait(t, "bad frame")
	if err := errAttr(t, rec); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("logged %v, want ErrFrameTooLarge", err)
	}
	if rec.attrs["remote"] != over.LocalAddr().String() {
		t.Fatalf("log names remote %v, want %s", rec.attrs["remote"], over.LocalAddr())
	}
	// The server still serves.
	ok := dial(t, srv.addr())
	if _, err := ok.Write(wire.AppendFrame(nil, request(10, 1, []byte("abc")))); err != nil {
		t.Fatal(err)
	}
	if resp := mustRead(t, ok, bufio.NewReader(ok)); resp.Code != wire.Success {
		t.Fatalf("after a bad peer: code %d", resp.Code)
	}
}

// TestReadLoopBadFrames: every malformed frame closes its connection
// without an answer, with a log line naming the cause.
func TestReadLoopBadFrames(t *testing.T) {
	jsonFrame := func(h string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(4+len(h)))
		b = binary.BigEndian.AppendUint32(b, uint32(len(h)))
		return append(b, h...)
	}
	cases := []struct {
		name  string
		bytes []byte
		msg   string
		err   error
	}{
		{"negative length", []byte{0xff, 0xff, 0xff, 0xf0}, "bad frame", wire.ErrBadFrame},
		{"length below header word", []byte{0, 0, 0, 3, 0, 0, 0}, "bad frame", wire.ErrBadFrame},
		{"over 16 MiB", []byte{0x7f, 0xff, 0xff, 0xff}, "bad frame", wire.ErrFrameTooLarge},
		{"header length beyond frame", []byte{0, 0, 0, 8, 0, 0, 0x10, 0, '{', '}', 0, 0}, "bad frame header", wire.ErrBadFrame},
		{"unknown serialize type", []byte{0, 0, 0, 6, 9, 0, 0, 2, '{', '}'}, "bad frame header", wire.ErrBadHeader},
		{"truncated json header", jsonFrame(`{"code":10,"extFields":{"topic":`), "bad frame header", wire.ErrBadHeader},
		{"http request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "bad frame", wire.ErrFrameTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			srv := startServer(t, serverOpts{handler: echo})
			nc := dial(t, srv.addr())
			if _, err := nc.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, nc)
			rec := srv.log.wait(t, tc.msg)
			if err := errAttr(t, rec); !errors.Is(err, tc.err) {
				t.Fatalf("logged %q err %v, want %v", rec.msg, err, tc.err)
			}
			if _, ok := srv.log.find("panic"); ok {
				t.Fatalf("panic logged:\n%s", srv.log)
			}
		})
	}
}

// TestReadLoopPeerClosesMidFrame: a frame cut short by the peer closing
// ends the connection with a "truncated frame" error; nothing is served
// and the connection's goroutines exit.
func TestReadLoopPeerClosesMidFrame(t *testing.T) {
	checkLeaks(t)
	served := make(chan struct{}, 1)
	srv := startServer(t, serverOpts{handler: HandlerFunc(func(*Conn, *wire.Command) { served <- struct{}{} })})
	nc := dial(t, srv.addr())
	f := wire.AppendFrame(nil, request(10, 1, bytes.Repeat([]byte{'x'}, 1000)))
	if _, err := nc.Write(f[:len(f)/2]); err != nil {
		t.Fatal(err)
	}
	c := recv(t, "accepted connection", srv.conns)
	_ = nc.Close()
	recv(t, "connection closed", c.Done())
	rec := srv.log.wait(t, "truncated frame")
	if err := errAttr(t, rec); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("logged %v, want unexpected EOF", err)
	}
	select {
	case <-served:
		t.Fatal("a truncated frame was served")
	default:
	}
}

// TestReadLoopAllocatesWhatArrives: a length prefix is a claim, not a
// fact. Peers announcing 16 MiB frames and then sending a few bytes must
// not make the server allocate 16 MiB each.
func TestReadLoopAllocatesWhatArrives(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: echo})
	const peers = 4
	f, _ := bigFrame(wire.MaxFrameSize)
	start := f[:100]
	f = nil
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < peers; i++ {
		nc := dial(t, srv.addr())
		if _, err := nc.Write(start); err != nil {
			t.Fatal(err)
		}
		c := recv(t, "accepted connection", srv.conns)
		_ = nc.Close()
		recv(t, "connection closed", c.Done())
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d peers announcing %d-byte frames: %d bytes allocated", peers, wire.MaxFrameSize, alloc)
	if alloc > wire.MaxFrameSize {
		t.Fatalf("%d peers that sent 100 bytes each made the server allocate %d bytes", peers, alloc)
	}
}

// TestReadLoopMixedFrameSizes: frames smaller and larger than the buffer
// the loop keeps, arriving in odd-sized pieces, are all read intact.
func TestReadLoopMixedFrameSizes(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: echo})
	nc := dial(t, srv.addr())
	sizes := []int{10, 100 << 10, 3 << 20, 7, keepFrameBuf + 1, 64 << 10, 0}
	var stream []byte
	for i, n := range sizes {
		body := make([]byte, n)
		for j := range body {
			body[j] = byte(i*31 + j)
		}
		stream = wire.AppendFrame(stream, request(10, int32(i), body))
	}
	go func() {
		for p := 0; p < len(stream); p += 7777 {
			if _, err := nc.Write(stream[p:min(p+7777, len(stream))]); err != nil {
				return
			}
		}
	}()
	r := bufio.NewReader(nc)
	for i, n := range sizes {
		resp := mustRead(t, nc, r)
		if resp.Opaque != int32(i) || len(resp.Body) != n {
			t.Fatalf("frame %d: opaque %d, %d body bytes, want %d", i, resp.Opaque, len(resp.Body), n)
		}
		for j, b := range resp.Body {
			if b != byte(i*31+j) {
				t.Fatalf("frame %d: byte %d is %d", i, j, b)
			}
		}
	}
}
