package controller

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mqops/mqops/tlsconf"
	"github.com/mqops/mqops/wire"
)

// tcpGroup starts n nodes on real TCP ports of 127.0.0.1, each with its
// own self-signed certificate (tlsTestModeEnable) and tlsServerMode mode,
// stores under a temporary directory. A port taken between choosing it
// and binding it (other tests run on this machine) starts over.
func tcpGroup(t *testing.T, n int, mode string) (*cluster, []*tls.Config) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		cl, certs, err := tryTCPGroup(t, n, mode)
		if err == nil {
			t.Cleanup(func() {
				for _, c := range cl.nodes {
					c.Close()
				}
			})
			return cl, certs
		}
		if !errors.Is(err, unix.EADDRINUSE) || attempt == 5 {
			t.Fatal(err)
		}
	}
}

func tryTCPGroup(t *testing.T, n int, mode string) (*cluster, []*tls.Config, error) {
	var peers []Peer
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		peers = append(peers, Peer{ID: "n" + strconv.Itoa(i), Addr: l.Addr().String()})
		l.Close()
	}
	cl := &cluster{t: t}
	var certs []*tls.Config
	for i := range n {
		cfg, err := tlsconf.Server("", "", true, []string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, cfg)
		c, err := New(Options{Group: "group1", SelfID: peers[i].ID, Peers: peers, StorePath: t.TempDir(),
			ScanNotActiveBroker: time.Hour, ScanInactiveMaster: time.Hour,
			Security: Security{TLSMode: mode, TLS: cfg}})
		if err != nil {
			for _, c := range cl.nodes {
				c.Close()
			}
			return nil, nil, err
		}
		c.Serve()
		cl.nodes = append(cl.nodes, c)
	}
	return cl, certs, nil
}

// TestRaftOverTLS: three nodes with tlsServerMode=enforcing elect a
// leader and replicate a registration to every node, their Raft streams
// TLS; a plaintext Raft stream to such a node is closed unanswered, and a
// TLS one gets the node's own certificate.
func TestRaftOverTLS(t *testing.T) {
	cl, certs := tcpGroup(t, 3, tlsconf.Enforcing)
	all := append([]*Controller(nil), cl.nodes...) // certs[i] is all[i]'s
	l := cl.leader()
	cl.register(l, 1)
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range cl.nodes {
		for c.fsm.get(bn) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s has not applied the registration", c.opts.SelfID)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if b := c.fsm.get(bn); b.Replicas[1].Addr != addr(1) {
			t.Fatalf("%s holds %+v", c.opts.SelfID, b.Replicas)
		}
	}

	// The leader stops: the other two elect one of them over TLS, and its
	// writes reach the survivor over the streams it dials.
	l.Close()
	var rest []*Controller
	for _, c := range cl.nodes {
		if c != l {
			rest = append(rest, c)
		}
	}
	cl.nodes = rest
	nl := cl.leader()
	ap := wire.ApplyBrokerIDHeader{ClusterName: "DefaultCluster", BrokerName: bn, AppliedBrokerID: 2, RegisterCheckCode: addr(2) + ";1733480000000"}
	cl.expect(call(nl, wire.ControllerApplyBrokerID, ap.Fields(), nil), wire.Success)
	for _, c := range rest {
		for c.fsm.get(bn).NextBrokerID != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("%s has not applied the new leader's write: next broker id %d", c.opts.SelfID, c.fsm.get(bn).NextBrokerID)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cl.nodes = append(cl.nodes, l) // closed again by the clean-up, a no-op

	node := rest[0].Addr()
	plain, err := net.Dial("tcp", node)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Write([]byte{raftMarker}); err != nil {
		t.Fatal(err)
	}
	_ = plain.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := plain.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("plaintext Raft stream to an enforcing node: read %d bytes, %v; want it closed", n, err)
	}

	raw, err := net.Dial("tcp", node)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Write([]byte{raftTLSMarker}); err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS Raft stream: %v", err)
	}
	var cert *tls.Config
	for i, c := range all {
		if c == rest[0] {
			cert = certs[i]
		}
	}
	if got := tc.ConnectionState().PeerCertificates[0].Raw; !bytes.Equal(got, cert.Certificates[0].Certificate[0]) {
		t.Fatal("the Raft stream's TLS peer is not the node's certificate")
	}
}

// TestRaftTLSModes: permissive dials TLS and accepts both, disabled
// dials plaintext and accepts plaintext only.
func TestRaftTLSModes(t *testing.T) {
	cert, err := tlsconf.Server("", "", true, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode                   string
		dialTLS, acceptTLS, ok bool
	}{
		{tlsconf.Enforcing, true, true, false},
		{tlsconf.Permissive, true, true, true},
		{tlsconf.Disabled, false, false, true},
	} {
		rt := newRaftTLS(c.mode, cert)
		if (rt.client != nil) != c.dialTLS || (rt.server != nil) != c.acceptTLS || rt.plainRaft != c.ok {
			t.Errorf("%s: dial TLS %v, accept TLS %v, accept plaintext %v", c.mode, rt.client != nil, rt.server != nil, rt.plainRaft)
		}
	}
}
