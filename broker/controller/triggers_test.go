package controller

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// waitMaster polls the leader until broker-a's master is id with epoch.
func (cl *cluster) waitMaster(l *Controller, id, epoch string) {
	cl.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, _ := replicaInfo(cl, l)
		if f["masterBrokerId"] == id && f["masterEpoch"] == epoch {
			return
		}
		if time.Now().After(deadline) {
			cl.t.Fatalf("master %v, want id %s epoch %s", f, id, epoch)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noElection checks that no election ran or is running for broker-a.
func (cl *cluster) noElection(l *Controller) {
	cl.t.Helper()
	if _, busy := l.electing.Load(bn); busy {
		cl.t.Fatal("an election was triggered")
	}
	if f, _ := replicaInfo(cl, l); f["masterBrokerId"] != "1" || f["masterEpoch"] != "1" {
		cl.t.Fatalf("master changed: %v", f)
	}
}

// A master whose heartbeats stop is replaced once the expiry scan sees it,
// by the in-sync replica even though another has more data.
func TestExpiredMasterIsReplaced(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	setupGroup(cl, l)
	cl.advance(11 * time.Second) // past the 10 s heartbeat timeout and the leader's grace
	cl.beat(2, 1, 100, 0)
	cl.beat(3, 1, 900, 0)
	l.expireScan()
	cl.waitMaster(l, "2", "2")
}

// The leader's periodic scan re-elects a group whose master is not alive
// while another replica is.
func TestInactiveMasterScan(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	setupGroup(cl, l)
	cl.advance(11 * time.Second)
	cl.beat(2, 1, 100, 0)
	l.inactiveMasterScan()
	cl.waitMaster(l, "2", "2")
}

// Right after a leader change, silence is not proof (the new leader's
// heartbeat table may be incomplete), but a closed connection is.
func TestLeaderGrace(t *testing.T) {
	cl := newCluster(t, 3, func(o *Options) { o.LeaderGrace = time.Hour })
	l := cl.leader()
	setupGroup(cl, l)
	cl.advance(11 * time.Second)
	cl.beat(2, 1, 100, 0)
	l.expireScan()
	l.inactiveMasterScan()
	cl.noElection(l)

	// Replica 1 heartbeats over a real connection, then its socket closes.
	srv, err := remoting.Listen("127.0.0.1:0", l, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(func(c *remoting.Conn) { c.OnClose(l.onConnClose) }) }()
	defer srv.Close()
	client := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	h := wire.BrokerHeartbeatHeader{ClusterName: "DefaultCluster", BrokerAddr: addr(1), BrokerName: bn, BrokerID: 1, HasBrokerID: true,
		Epoch: 1, MaxOffset: 100, HeartbeatTimeoutMillis: 10_000}
	if resp, err := client.Invoke(srv.Addr().String(), wire.NewRequest(wire.BrokerHeartbeat, h.Fields(), nil), 3*time.Second); err != nil || resp.Code != wire.Success {
		t.Fatalf("heartbeat: %v %+v", err, resp)
	}
	cl.noElection(l)
	client.Close()
	cl.waitMaster(l, "2", "2")
}

func TestRaftLogLevels(t *testing.T) {
	var buf strings.Builder
	w := &slogWriter{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if _, err := w.Write([]byte("[WARN]  raft: heartbeat timeout reached\n[INFO]  raft: election won\n")); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `level=WARN msg="[RAFT] raft: heartbeat timeout reached"`) || !strings.Contains(out, `level=INFO msg="[RAFT] raft: election won"`) {
		t.Fatalf("log:\n%s", out)
	}
}
