package main

import (
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// A signed lean request carries, after the sender signs it again in place,
// the signature wire.Sign gives the same fields: the overwritten bytes are
// the Signature value's, in a frame that still decodes.
func TestLeanRequestResign(t *testing.T) {
	o := options{topic: "BenchTopic"}
	req := sendRequest(o, 3, []byte("body"), false)
	s := wire.NewSigner("benchProducer", "benchSecret1", "")
	s.Sign(req)
	want := req.GetString(wire.ExtSignature)
	frame := leanRequest(req, 7)
	sig := frame[signatureAt(frame, req.Get(wire.ExtSignature)):][:wire.SignatureLen]
	for i := range sig {
		sig[i] = 'x'
	}
	s.Signature(req, sig)

	var got wire.Command
	if err := wire.DecodeFrame(frame[4:], &got); err != nil {
		t.Fatal(err)
	}
	fresh := sendRequest(o, 3, []byte("body"), false)
	fresh.Set("g", req.GetString("g")) // the same born timestamp
	wire.Sign(fresh, "benchProducer", "benchSecret1", "")
	if got.GetString(wire.ExtSignature) != want || want != fresh.GetString(wire.ExtSignature) || got.Opaque != 7 {
		t.Fatalf("signature %q (opaque %d), signed %q, fresh %q", got.Get(wire.ExtSignature), got.Opaque, want, fresh.Get(wire.ExtSignature))
	}
}

// A connection with one sender has no reader goroutine: the sender reads
// frames until its own answer, skipping others, and a lost connection
// fails the call instead of hanging it.
func TestLeanDirectCall(t *testing.T) {
	srv, err := remoting.Listen("127.0.0.1:0", remoting.HandlerFunc(func(c *remoting.Conn, req *wire.Command) {
		other := wire.ResponseTo(req, wire.SystemError, "not yours")
		other.Opaque = req.Opaque + 1
		_ = c.Send(&other)
		c.ReplyCode(req, wire.Success, "")
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(nil) }()
	defer srv.Close()
	lc, err := dialLean(srv.Addr().String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.nc.Close()
	if lc.direct == nil {
		t.Fatal("a one-sender connection has a reader goroutine")
	}
	frame := leanRequest(sendRequest(options{topic: "BenchTopic"}, 0, []byte("body"), false), 0)
	for i := range 3 {
		if code, err := lc.call(0, frame, 5*time.Second); err != nil || code != wire.Success {
			t.Fatalf("call %d: code %d, %v", i, code, err)
		}
	}
	srv.Close()
	if _, err := lc.call(0, frame, 5*time.Second); err == nil {
		t.Fatal("call on a closed connection succeeded")
	}
}
