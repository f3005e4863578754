package main

import (
	"testing"

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
