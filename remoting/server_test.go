package remoting

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// TestHandlerPanic: a handler panic answers SYSTEM_ERROR, is logged with
// its stack, and the connection goes on serving.
func TestHandlerPanic(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: HandlerFunc(func(c *Conn, req *wire.Command) {
		if req.Code == 66 {
			panic("boom")
		}
		echo(c, req)
	})})
	nc := dial(t, srv.addr())
	r := bufio.NewReader(nc)
	writeCmd(t, nc, request(66, 1, nil))
	writeCmd(t, nc, request(10, 2, []byte("after")))
	resp := mustRead(t, nc, r)
	if resp.Opaque != 1 || resp.Code != wire.SystemError || !strings.Contains(string(resp.Remark), "boom") {
		t.Fatalf("panic answered opaque %d code %d remark %q", resp.Opaque, resp.Code, resp.Remark)
	}
	if resp := mustRead(t, nc, r); resp.Opaque != 2 || string(resp.Body) != "after" {
		t.Fatalf("request after the panic: opaque %d body %q", resp.Opaque, resp.Body)
	}
	rec := srv.log.wait(t, "handler panic")
	if !strings.Contains(rec.attrs["stack"].(string), "TestHandlerPanic") {
		t.Fatalf("panic logged without the handler's stack: %s", rec)
	}
}

// TestNilHandler: a server without a handler answers every request
// REQUEST_CODE_NOT_SUPPORTED, as RocketMQ peers expect.
func TestNilHandler(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{})
	nc := dial(t, srv.addr())
	writeCmd(t, nc, request(1234, 5, nil))
	resp := mustRead(t, nc, bufio.NewReader(nc))
	if resp.Code != wire.RequestCodeNotSupported || resp.Opaque != 5 || string(resp.Remark) != " request type 1234 not supported" {
		t.Fatalf("code %d opaque %d remark %q", resp.Code, resp.Opaque, resp.Remark)
	}
}

// TestIdleConnectionClosed: a server-side connection on which the peer
// sends nothing for the idle time is closed, logged with the deadline error.
func TestIdleConnectionClosed(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: echo, setup: func(c *Conn) { c.idle = 300 * time.Millisecond }})
	silent := dial(t, srv.addr())
	c := recv(t, "accepted connection", srv.conns)
	expectClosed(t, silent)
	recv(t, "idle connection closed", c.Done())
	rec := srv.log.wait(t, "read failed")
	if err := errAttr(t, rec); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle close logged %v, want a deadline error", err)
	}
}

// gatedListener hands each accepted connection to Serve only when the
// test releases it, to widen the window between Accept and registration.
type gatedListener struct {
	net.Listener
	accepted chan struct{}
	release  chan struct{}
}

func (l *gatedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted <- struct{}{}
	<-l.release
	return nc, nil
}

// TestCloseDuringAccept: a connection accepted while Close runs is closed
// too, and no loop of it outlives Close (the broker closes its store
// right after: a read loop left running would serve requests on it).
func TestCloseDuringAccept(t *testing.T) {
	checkLeaks(t)
	gl := &gatedListener{accepted: make(chan struct{}, 1), release: make(chan struct{})}
	srv := startServer(t, serverOpts{handler: echo, ln: func(ln net.Listener) net.Listener { gl.Listener = ln; return gl }})
	nc := dial(t, srv.addr())
	recv(t, "accept", gl.accepted)
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	recv(t, "Close", closed)
	close(gl.release) // Serve registers the connection after Close returned
	recv(t, "Serve to return", srv.done)
	srv.done <- nil // for the cleanup

	writeCmd(t, nc, request(10, 1, []byte("after close")))
	_ = nc.SetReadDeadline(time.Now().Add(waitTimeout))
	if resp, err := wire.ReadCommand(nc); err == nil {
		t.Fatalf("a request was served after Close returned: opaque %d body %q", resp.Opaque, resp.Body)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection accepted during Close was left open")
	}
}

// TestCloseEndsEveryConnection: Close closes every connection (peers see
// the end at once) and waits for their loops.
func TestCloseEndsEveryConnection(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: echo})
	var peers []net.Conn
	for i := 0; i < 10; i++ {
		nc := dial(t, srv.addr())
		writeCmd(t, nc, request(10, 1, nil))
		mustRead(t, nc, bufio.NewReader(nc))
		peers = append(peers, nc)
	}
	srv.Close()
	if g := connGoroutines(); g != "" {
		t.Fatalf("Close returned with connection loops running:\n%s", g)
	}
	for _, nc := range peers {
		expectClosed(t, nc)
	}
}
