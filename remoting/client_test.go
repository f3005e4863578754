package remoting

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// held is a request a test server keeps to answer later.
type held struct {
	c   *Conn
	req *wire.Command
}

// holdingHandler hands every request of code holdCode to the test and
// echoes every other one.
func holdingHandler(holdCode int32, out chan<- held) Handler {
	return HandlerFunc(func(c *Conn, req *wire.Command) {
		if req.Code == holdCode {
			out <- held{c, req.Clone()}
			return
		}
		echo(c, req)
	})
}

func answer(h held, body string) {
	resp := wire.ResponseTo(h.req, wire.Success, "")
	resp.Body = []byte(body)
	_ = h.c.Send(&resp)
}

// TestInvokeMatchesOutOfOrderResponses: concurrent calls on one connection
// each get their own answer although the server answers in reverse order.
func TestInvokeMatchesOutOfOrderResponses(t *testing.T) {
	checkLeaks(t)
	const n = 50
	hold := make(chan held, n)
	srv := startServer(t, serverOpts{handler: holdingHandler(10, hold)})
	go func() { // a server goroutine answering last-in first-out
		var got []held
		for len(got) < n {
			got = append(got, <-hold)
		}
		for i := len(got) - 1; i >= 0; i-- {
			answer(got[i], "re:"+string(got[i].req.Body))
		}
	}()
	cl, _ := newClient(t, nil)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := "call-" + strconv.Itoa(i)
			resp, err := cl.Invoke(srv.addr(), wire.NewRequest(10, nil, []byte(body)), waitTimeout)
			switch {
			case err != nil:
				errs <- err
			case string(resp.Body) != "re:"+body:
				errs <- errors.New(body + " got the answer " + string(resp.Body))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c, err := cl.Conn(srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	if p := pendingCount(c); p != 0 {
		t.Fatalf("%d calls still pending after all were answered", p)
	}
}

// TestInvokeTimeout: a call the peer does not answer fails with a clear,
// matchable error and frees its slot; the answer arriving afterwards is
// dropped (and logged), and never reaches a later call.
func TestInvokeTimeout(t *testing.T) {
	checkLeaks(t)
	hold := make(chan held, 1)
	srv := startServer(t, serverOpts{handler: holdingHandler(10, hold)})
	cl, log := newClient(t, nil)

	_, err := cl.Invoke(srv.addr(), wire.NewRequest(10, nil, []byte("slow")), 50*time.Millisecond)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("unanswered call: %v, want ErrTimeout", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "code 10") || !strings.Contains(msg, srv.addr()) {
		t.Fatalf("timeout error %q does not name the request code and peer", msg)
	}
	c, err := cl.Conn(srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	if p := pendingCount(c); p != 0 {
		t.Fatalf("%d slots still pending after the timeout", p)
	}

	late := recv(t, "the slow request", hold)
	answer(late, "late")
	rec := log.wait(t, "unmatched response")
	if rec.attrs["opaque"] != int64(late.req.Opaque) {
		t.Fatalf("logged %s, want opaque %d", rec, late.req.Opaque)
	}
	resp, err := cl.Invoke(srv.addr(), wire.NewRequest(11, nil, []byte("next")), waitTimeout)
	if err != nil || string(resp.Body) != "next" {
		t.Fatalf("call after a late answer: %v %q", err, resp.Body)
	}
}

// rawPeer accepts one connection on a plain listener so the test writes
// whatever frames it wants.
func rawPeer(t *testing.T) (addr string, conns <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan net.Conn, 16)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- nc
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for {
			select {
			case nc := <-ch:
				_ = nc.Close()
			default:
				return
			}
		}
	})
	return ln.Addr().String(), ch
}

func writeCmd(t testing.TB, nc net.Conn, cmd *wire.Command) {
	t.Helper()
	if _, err := nc.Write(wire.AppendFrame(nil, cmd)); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownOpaqueDropped: a response nobody waits for is dropped with a
// log line, and the real answer that follows is delivered.
func TestUnknownOpaqueDropped(t *testing.T) {
	checkLeaks(t)
	addr, conns := rawPeer(t)
	cl, log := newClient(t, nil)
	type result struct {
		resp *wire.Command
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := cl.Invoke(addr, wire.NewRequest(10, nil, nil), waitTimeout)
		done <- result{resp, err}
	}()
	nc := recv(t, "client connection", conns)
	req := mustRead(t, nc, bufio.NewReader(nc))
	stray := wire.ResponseTo(req, wire.Success, "")
	stray.Opaque = req.Opaque + 1_000_000
	stray.Body = []byte("stray")
	writeCmd(t, nc, &stray)
	real := wire.ResponseTo(req, wire.Success, "")
	real.Body = []byte("real")
	writeCmd(t, nc, &real)
	r := recv(t, "the call", done)
	if r.err != nil || string(r.resp.Body) != "real" {
		t.Fatalf("call got %v %q, want the real answer", r.err, r.resp.Body)
	}
	rec := log.wait(t, "unmatched response")
	if rec.attrs["opaque"] != int64(stray.Opaque) || rec.level != slog.LevelWarn {
		t.Fatalf("logged %s, want a warning for opaque %d", rec, stray.Opaque)
	}
}

// TestVanishingPeerFailsPendingCalls: when the peer goes away, every
// pending call fails at once with ErrClosed (not after its timeout), and
// the very next call gets a fresh connection, never the one that failed.
// The cycle repeats: handing out the dead connection was a narrow race.
func TestVanishingPeerFailsPendingCalls(t *testing.T) {
	for _, mode := range []string{"server closed", "connection reset"} {
		t.Run(mode, func(t *testing.T) {
			checkLeaks(t)
			addr, conns := rawPeer(t)
			cl, _ := newClient(t, nil)
			for round := 0; round < 50; round++ {
				c, err := cl.Conn(addr) // one dial, before the calls race
				if err != nil {
					t.Fatal(err)
				}
				select {
				case <-c.Done():
					t.Fatalf("round %d: the client handed out the connection that just failed", round)
				default:
				}
				const n = 8
				errs := make(chan error, n)
				for i := 0; i < n; i++ {
					go func() {
						// An hour: only the connection's end can fail these in time.
						_, err := cl.Invoke(addr, wire.NewRequest(10, nil, nil), time.Hour)
						errs <- err
					}()
				}
				var nc net.Conn
				select {
				case nc = <-conns:
				case err := <-errs: // the calls went to the connection that had failed
					t.Fatalf("round %d: call failed before reaching the peer: %v", round, err)
				case <-time.After(waitTimeout):
					t.Fatalf("round %d: no connection", round)
				}
				r := bufio.NewReader(nc)
				for i := 0; i < n; i++ {
					mustRead(t, nc, r)
				}
				if mode == "connection reset" {
					_ = nc.(*net.TCPConn).SetLinger(0)
				}
				_ = nc.Close()
				for i := 0; i < n; i++ {
					err := recv(t, "pending call to fail", errs)
					if !errors.Is(err, ErrClosed) {
						t.Fatalf("pending call: %v, want ErrClosed", err)
					}
					if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "code 10") {
						t.Fatalf("error %q does not name the request and the peer", err)
					}
				}
			}
		})
	}
}

// TestInvokeOneway: a oneway request carries the flag, waits for nothing,
// registers nothing, and the server does not answer it.
func TestInvokeOneway(t *testing.T) {
	checkLeaks(t)
	seen := make(chan *wire.Command, 1)
	srv := startServer(t, serverOpts{handler: HandlerFunc(func(c *Conn, req *wire.Command) {
		if req.Code == 40 {
			seen <- req.Clone()
		}
		echo(c, req) // Reply drops the answer to a oneway request
	})})
	cl, log := newClient(t, nil)
	if err := cl.InvokeOneway(srv.addr(), wire.NewRequest(40, map[string]string{"consumerGroup": "g"}, nil)); err != nil {
		t.Fatal(err)
	}
	req := recv(t, "oneway request", seen)
	if !req.IsOneway() || req.IsResponse() || req.GetString("consumerGroup") != "g" {
		t.Fatalf("oneway request arrived with flag %d fields %v", req.Flag, req.Fields())
	}
	// A call made after it is answered, and no answer to the oneway
	// request arrives in between (it would be logged as unmatched).
	if _, err := cl.Invoke(srv.addr(), wire.NewRequest(10, nil, nil), waitTimeout); err != nil {
		t.Fatal(err)
	}
	if rec, ok := log.find("unmatched"); ok {
		t.Fatalf("the oneway request was answered: %s", rec)
	}
	c, _ := cl.Conn(srv.addr())
	if p := pendingCount(c); p != 0 {
		t.Fatalf("%d pending slots", p)
	}

	// On the wire: oneway, then a normal request; the first answer is the
	// normal request's.
	nc := dial(t, srv.addr())
	ow := request(40, 1, nil)
	ow.Flag = wire.FlagOneway
	writeCmd(t, nc, ow)
	writeCmd(t, nc, request(10, 2, nil))
	if resp := mustRead(t, nc, bufio.NewReader(nc)); resp.Opaque != 2 {
		t.Fatalf("first answer has opaque %d: the oneway request was answered", resp.Opaque)
	}
}

// TestServerInitiatedRequests: the server calls the client over the
// connection the client opened, as the broker calls consumers and
// producers, and the client's handler answers.
func TestServerInitiatedRequests(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: HandlerFunc(func(c *Conn, req *wire.Command) {
		req = req.Clone()
		go func() { // never call the peer from the read loop: its answer would wait behind us
			info, err := c.Invoke(wire.NewRequest(wire.GetConsumerRunningInfo, map[string]string{"consumerGroup": "g", "clientId": "c1"}, nil), waitTimeout)
			resp := wire.ResponseTo(req, wire.Success, "")
			if err != nil {
				resp.Code, resp.Remark = wire.SystemError, []byte(err.Error())
			} else {
				resp.Body = info.Body
			}
			_ = c.InvokeOneway(wire.NewRequest(wire.NotifyConsumerIDsChanged, map[string]string{"consumerGroup": "g"}, nil))
			_ = c.InvokeOneway(wire.NewRequest(wire.CheckTransactionState, map[string]string{"msgId": "m1"}, []byte("record")))
			c.Reply(req, &resp)
		}()
	})})
	got := make(chan *wire.Command, 3)
	cl, _ := newClient(t, HandlerFunc(func(c *Conn, req *wire.Command) {
		got <- req.Clone()
		if req.Code == wire.GetConsumerRunningInfo {
			resp := wire.ResponseTo(req, wire.Success, "")
			resp.Body = []byte("running info of " + req.GetString("clientId"))
			c.Reply(req, &resp)
		}
	}))
	resp, err := cl.Invoke(srv.addr(), wire.NewRequest(wire.HeartBeat, nil, nil), waitTimeout)
	if err != nil || resp.Code != wire.Success || string(resp.Body) != "running info of c1" {
		t.Fatalf("server-initiated call: %v code %d body %q remark %q", err, resp.Code, resp.Body, resp.Remark)
	}
	want := []struct {
		code   int32
		oneway bool
	}{{wire.GetConsumerRunningInfo, false}, {wire.NotifyConsumerIDsChanged, true}, {wire.CheckTransactionState, true}}
	for _, w := range want {
		req := recv(t, "server request", got)
		if req.Code != w.code || req.IsOneway() != w.oneway {
			t.Fatalf("client got code %d oneway %v, want %d oneway %v", req.Code, req.IsOneway(), w.code, w.oneway)
		}
	}
}

// TestOpaqueSpacesAreSeparate: a request from the peer that reuses the
// opaque of one of our pending calls is served as a request; it neither
// completes nor cancels our call.
func TestOpaqueSpacesAreSeparate(t *testing.T) {
	checkLeaks(t)
	addr, conns := rawPeer(t)
	served := make(chan *wire.Command, 1)
	cl, _ := newClient(t, HandlerFunc(func(c *Conn, req *wire.Command) {
		served <- req.Clone()
		resp := wire.ResponseTo(req, wire.Success, "")
		resp.Body = []byte("client answer")
		c.Reply(req, &resp)
	}))
	done := make(chan *wire.Command, 1)
	go func() {
		resp, err := cl.Invoke(addr, wire.NewRequest(10, nil, nil), waitTimeout)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	nc := recv(t, "client connection", conns)
	r := bufio.NewReader(nc)
	ours := mustRead(t, nc, r)
	writeCmd(t, nc, request(wire.GetConsumerRunningInfo, ours.Opaque, nil)) // same opaque, but a request
	if req := recv(t, "request served by the client", served); req.Opaque != ours.Opaque || req.IsResponse() {
		t.Fatalf("client served opaque %d flag %d", req.Opaque, req.Flag)
	}
	if a := mustRead(t, nc, r); a.Opaque != ours.Opaque || !a.IsResponse() || string(a.Body) != "client answer" {
		t.Fatalf("client answered opaque %d flag %d body %q", a.Opaque, a.Flag, a.Body)
	}
	select {
	case <-done:
		t.Fatal("the peer's request completed our call")
	default:
	}
	resp := wire.ResponseTo(ours, wire.Success, "")
	resp.Body = []byte("server answer")
	writeCmd(t, nc, &resp)
	if got := recv(t, "our call", done); got == nil || string(got.Body) != "server answer" {
		t.Fatalf("our call got %v", got)
	}
}

// TestClosedClientAndConn: calls on a closed client or connection fail
// with ErrClosed instead of blocking.
func TestClosedClientAndConn(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, serverOpts{handler: echo})
	cl, _ := newClient(t, nil)
	c, err := cl.Conn(srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.Invoke(wire.NewRequest(10, nil, nil), waitTimeout); !errors.Is(err, ErrClosed) {
		t.Fatalf("Invoke on a closed connection: %v", err)
	}
	if err := c.InvokeOneway(wire.NewRequest(10, nil, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("InvokeOneway on a closed connection: %v", err)
	}
	cl.Close()
	if _, err := cl.Invoke(srv.addr(), wire.NewRequest(10, nil, nil), waitTimeout); !errors.Is(err, ErrClosed) {
		t.Fatalf("Invoke on a closed client: %v", err)
	}
}

// TestClientSignsConcurrentRequests: with credentials, requests invoked
// from many goroutines at once over one client each arrive signed for
// their own fields and body (the client's one Signer is shared safely:
// the race detector watches it); credentials cleared, they go unsigned.
func TestClientSignsConcurrentRequests(t *testing.T) {
	checkLeaks(t)
	key := wire.NewSigningKey([]byte("secretA1"))
	srv := startServer(t, serverOpts{handler: HandlerFunc(func(c *Conn, req *wire.Command) {
		st := wire.NewSignState()
		code, remark := wire.Success, ""
		switch {
		case req.GetString(wire.ExtAccessKey) == "" && req.Get(wire.ExtSignature) == nil:
			remark = "unsigned"
		case req.GetString(wire.ExtAccessKey) != "producerA" || st.Sort(req) || !st.Verify(&key, req, 0, req.Get(wire.ExtSignature)):
			code, remark = wire.NoPermission, "bad signature"
		}
		c.ReplyCode(req, code, remark)
	})})
	cl, _ := newClient(t, nil)
	cl.SetCredentials(wire.Credentials{AccessKey: "producerA", SecretKey: "secretA1"})
	const n = 64
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req := wire.NewRequest(10, map[string]string{"topic": "T" + strconv.Itoa(i), "queueId": strconv.Itoa(i % 4)}, []byte(strings.Repeat("x", i*37)))
			resp, err := cl.Invoke(srv.addr(), req, waitTimeout)
			if err == nil && (resp.Code != wire.Success || len(resp.Remark) != 0) {
				err = errors.New("request " + strconv.Itoa(i) + ": code " + strconv.Itoa(int(resp.Code)) + " " + string(resp.Remark))
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cl.SetCredentials(wire.Credentials{})
	resp, err := cl.Invoke(srv.addr(), wire.NewRequest(10, nil, nil), waitTimeout)
	if err != nil || string(resp.Remark) != "unsigned" {
		t.Fatalf("without credentials: %v %+v", err, resp)
	}
}
