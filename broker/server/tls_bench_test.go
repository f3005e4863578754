package server

import (
	"crypto/tls"
	"net"
	"testing"
)

// BenchmarkSendTLSModes is BenchmarkSendPipelined per remoting TLS mode:
// what the permissive sniff costs a plaintext client, and what TLS costs.
func BenchmarkSendTLSModes(b *testing.B) {
	for _, c := range []struct {
		name, mode string
		tls        bool
	}{{"disabled", "disabled", false}, {"permissive-plain", "permissive", false}, {"permissive-tls", "permissive", true}, {"enforcing-tls", "enforcing", true}} {
		b.Run(c.name, func(b *testing.B) {
			br := startBroker(b, map[string]string{"tlsServerMode": c.mode})
			var conn net.Conn
			var err error
			if c.tls {
				conn, err = tls.Dial("tcp", br.srv.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			} else {
				conn, err = net.Dial("tcp", br.srv.Addr().String())
			}
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			frame := sendFrame("BenchSend", make([]byte, 1024))
			roundTrip(b, conn, frame)
			pipeline(b, conn, frame, 1024)
		})
	}
}
