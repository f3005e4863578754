package admin

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/controller"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// freeAddrs reserves n loopback ports. Raft needs every peer's address
// before any node starts, so they cannot be ":0".
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// startControllers runs a real controller group on loopback TCP (Raft and
// remoting on one port each, BoltDB stores) inside the test process.
func startControllers(t *testing.T, n int) ([]*controller.Controller, []string) {
	t.Helper()
	addrs := freeAddrs(t, n)
	var peers []controller.Peer
	for i, a := range addrs {
		peers = append(peers, controller.Peer{ID: "n" + strconv.Itoa(i), Addr: a})
	}
	dir := t.TempDir()
	var nodes []*controller.Controller
	for i := range n {
		c, err := controller.New(controller.Options{Group: "group1", SelfID: peers[i].ID, Peers: peers,
			StorePath: filepath.Join(dir, peers[i].ID), NotifyBrokerRoleChanged: true})
		if err != nil {
			t.Fatal(err)
		}
		c.Serve()
		t.Cleanup(c.Close)
		nodes = append(nodes, c)
	}
	return nodes, addrs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !waitUntil(cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// replica plays one broker of a set towards the controllers, with the
// requests a RocketMQ 5 broker's ReplicasManager sends.
type replica struct {
	t           *testing.T
	cl          *remoting.Client
	ctrls       []string
	cluster     string
	name, addr  string
	id          int64
	masterEpoch int32
}

func newReplica(t *testing.T, ctrls []string, cluster, name, addr string) *replica {
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	t.Cleanup(cl.Close)
	return &replica{t: t, cl: cl, ctrls: ctrls, cluster: cluster, name: name, addr: addr}
}

// leader asks the group for its leader the way brokers do.
func (r *replica) leader() string {
	r.t.Helper()
	for _, c := range r.ctrls {
		resp, err := r.cl.Invoke(c, wire.NewRequest(wire.ControllerGetMetadataInfo, nil, nil), 3*time.Second)
		if err == nil {
			if l := wire.ParseGetMetaDataResponseHeader(resp).ControllerLeaderAddress; l != "" {
				return l
			}
		}
	}
	r.t.Fatal("no controller leader")
	return ""
}

func (r *replica) call(code int32, fields map[string]string, body []byte) *wire.Command {
	r.t.Helper()
	resp, err := r.cl.Invoke(r.leader(), wire.NewRequest(code, fields, body), 5*time.Second)
	if err != nil {
		r.t.Fatalf("request %d: %v", code, err)
	}
	return resp
}

func (r *replica) must(code int32, fields map[string]string, body []byte) *wire.Command {
	r.t.Helper()
	resp := r.call(code, fields, body)
	if resp.Code != wire.Success {
		r.t.Fatalf("request %d: %s %s", code, wire.ResponseName(resp.Code), resp.Remark)
	}
	return resp
}

// register gets an id (1012, 1013), registers (1003) and heartbeats
// (904, oneway, to every controller, over connections kept open: a closed
// one makes the replica dead at once).
func (r *replica) register() {
	r.t.Helper()
	set := wire.BrokerSetHeader{ClusterName: r.cluster, BrokerName: r.name}
	resp := r.must(wire.ControllerGetNextBrokerID, set.Fields(), nil)
	r.id, _ = strconv.ParseInt(resp.GetString("nextBrokerId"), 10, 64)
	apply := wire.ApplyBrokerIDHeader{ClusterName: r.cluster, BrokerName: r.name, AppliedBrokerID: r.id,
		RegisterCheckCode: r.addr + ";" + strconv.FormatInt(time.Now().UnixMilli(), 10)}
	r.must(wire.ControllerApplyBrokerID, apply.Fields(), nil)
	reg := wire.RegisterBrokerToControllerHeader{ClusterName: r.cluster, BrokerName: r.name, BrokerID: r.id, BrokerAddress: r.addr}
	r.must(wire.ControllerRegisterBroker, reg.Fields(), nil)
	r.heartbeat()
}

func (r *replica) heartbeat() {
	r.t.Helper()
	hb := wire.BrokerHeartbeatHeader{ClusterName: r.cluster, BrokerAddr: r.addr, BrokerName: r.name, BrokerID: r.id, HasBrokerID: true,
		Epoch: r.masterEpoch, HeartbeatTimeoutMillis: 600_000, ElectionPriority: 1}
	for _, c := range r.ctrls {
		if err := r.cl.InvokeOneway(c, wire.NewRequest(wire.BrokerHeartbeat, hb.Fields(), nil)); err != nil {
			r.t.Fatalf("heartbeat to %s: %v", c, err)
		}
	}
}

// electSelf is the ELECT_MASTER a replica sends when the set has no master.
func (r *replica) electSelf() {
	r.t.Helper()
	h := wire.ElectMasterHeader{ClusterName: r.cluster, BrokerName: r.name, BrokerID: r.id}
	resp := r.must(wire.ControllerElectMaster, h.Fields(), nil)
	mh, _ := wire.ParseMasterInfoHeader(resp)
	r.masterEpoch = mh.MasterEpoch
}

// widen is the master's ALTER_SYNC_STATE_SET adding members. The new
// members' heartbeats are oneway on connections of their own, so the
// leader may not have seen them yet: it answers BROKER_NOT_ALIVE until it
// has, and the master asks again as a broker would at its next check.
func (r *replica) widen(ssEpoch int32, set ...int64) {
	r.t.Helper()
	h := wire.AlterSyncStateSetHeader{BrokerName: r.name, MasterBrokerID: r.id, MasterEpoch: r.masterEpoch}
	body := wire.Marshal(&wire.SyncStateSet{SyncStateSet: set, SyncStateSetEpoch: ssEpoch})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp := r.call(wire.ControllerAlterSyncStateSet, h.Fields(), body)
		if resp.Code == wire.Success {
			return
		}
		if resp.Code != wire.ControllerBrokerNotAlive || time.Now().After(deadline) {
			r.t.Fatalf("alter sync state set: %s %s", wire.ResponseName(resp.Code), resp.Remark)
		}
	}
}

// brokerSet registers, on the controllers all, a two-replica set whose SyncStateSet is {1, 2} with
// 1 as master (master epoch 1, SyncStateSet epoch 2), and waits until
// the leader, found through ctrls, has seen both heartbeats.
func brokerSet(t *testing.T, a *Admin, all, ctrls []string, cluster, name string) (*replica, *replica) {
	r1 := newReplica(t, all, cluster, name, "127.0.0.1:30911")
	r2 := newReplica(t, all, cluster, name, "127.0.0.1:30921")
	r1.register()
	r2.register()
	r1.electSelf()
	r1.widen(1, 1, 2)
	waitFor(t, "both replicas alive on the leader", func() bool {
		info, err := a.SyncStateData(ctrls, []string{name})
		if err != nil || info.ReplicasInfoTable[name] == nil {
			return false
		}
		n := 0
		for _, r := range info.ReplicasInfoTable[name].InSyncReplicas {
			if r.Alive {
				n++
			}
		}
		return n == 2
	})
	return r1, r2
}

func TestControllerCalls(t *testing.T) {
	_, addrs := startControllers(t, 3)
	a := NewDirect(5 * time.Second)
	defer a.Close()
	dead := freeAddrs(t, 1)[0]

	var leader string
	waitFor(t, "a ready controller leader known to all", func() bool {
		l, err := a.ControllerLeader(addrs)
		leader = l
		ms, _ := a.ControllersMetadata(addrs)
		return err == nil && slices.Contains(addrs, l) && !slices.ContainsFunc(ms, func(m ControllerMeta) bool { return m.LeaderAddress != l || m.IsLeader != (m.Addr == l) })
	})
	ms, err := a.ControllersMetadata(append([]string{dead}, addrs...))
	if err == nil || !strings.Contains(err.Error(), "1 of 4 controllers did not answer") || ms[0].Error == "" {
		t.Fatalf("a dead controller must be reported on its row and in err: %v %+v", err, ms)
	}
	leaders := 0
	for _, m := range ms[1:] {
		if m.Group != "group1" || m.LeaderAddress == "" || len(m.Peers) != 3 || m.Peers[0].ID != "n0" || m.Peers[0].Addr != addrs[0] {
			t.Fatalf("metadata %+v", m)
		}
		if m.IsLeader {
			leaders++
			if m.Addr != m.LeaderAddress {
				t.Fatalf("leader %s names %s as leader", m.Addr, m.LeaderAddress)
			}
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders in %+v", leaders, ms)
	}

	// Only a follower is given: requests must still reach the leader,
	// which a follower refuses to stand in for.
	follower := addrs[(slices.Index(addrs, leader)+1)%3]
	resp, err := a.cl.Invoke(follower, wire.NewRequest(wire.ControllerGetSyncStateData, nil, []byte(`["broker-a"]`)), 5*time.Second)
	if err != nil || resp.Code != wire.ControllerNotLeader {
		t.Fatalf("a follower answers 1006 with %v %v, want CONTROLLER_NOT_LEADER", resp, err)
	}
	ctrls := []string{dead, follower}
	r1, _ := brokerSet(t, a, addrs, ctrls, "C1", "broker-a")

	info, err := a.SyncStateData(ctrls, []string{"broker-a", "no-such-set"})
	if err != nil {
		t.Fatal(err)
	}
	ri := info.ReplicasInfoTable["broker-a"]
	if len(info.ReplicasInfoTable) != 1 || ri == nil || ri.MasterBrokerID == nil || *ri.MasterBrokerID != r1.id || ri.MasterAddress != r1.addr ||
		ri.MasterEpoch != 1 || ri.SyncStateSetEpoch != 2 || len(ri.InSyncReplicas) != 2 || len(ri.NotInSyncReplicas) != 0 ||
		ri.InSyncReplicas[1].BrokerAddress != "127.0.0.1:30921" {
		t.Fatalf("sync state %+v", info.ReplicasInfoTable)
	}
	rep, err := a.ReplicaInfo(ctrls, "broker-a")
	if err != nil || rep.MasterBrokerID == nil || *rep.MasterBrokerID != 1 || rep.MasterEpoch != 1 ||
		!slices.Equal(rep.SyncStateSet, []int64{1, 2}) || rep.SyncStateSetEpoch != 2 {
		t.Fatalf("replica info %+v %v", rep, err)
	}
	if _, err := a.ReplicaInfo(ctrls, "no-such-set"); !IsCode(err, wire.ControllerBrokerMetadataNotExist) {
		t.Fatalf("replica info of an unknown set: %v", err)
	}

	// Designated elections: an id outside the set, the master itself, an
	// unknown set; then a real switch.
	_, err = a.ElectMaster(ctrls, "C1", "broker-a", 9)
	if !IsCode(err, wire.ControllerElectMasterFailed) || !strings.Contains(err.Error(), "CONTROLLER_ELECT_MASTER_FAILED") ||
		!strings.Contains(err.Error(), "elect broker 9 of broker-a") {
		t.Fatalf("elect 9: %v", err)
	}
	if _, err = a.ElectMaster(ctrls, "C1", "broker-a", 1); !IsCode(err, wire.ControllerMasterStillExist) {
		t.Fatalf("elect the master: %v", err)
	}
	if _, err = a.ElectMaster(ctrls, "C1", "broker-x", 1); !IsCode(err, wire.ControllerBrokerNeedToBeRegistered) {
		t.Fatalf("elect in an unknown set: %v", err)
	}
	e, err := a.ElectMaster(ctrls, "C1", "broker-a", 2)
	if err != nil {
		t.Fatal(err)
	}
	if e.MasterBrokerID != 2 || e.MasterAddress != "127.0.0.1:30921" || e.MasterEpoch != 2 || e.SyncStateSetEpoch != 3 ||
		!slices.Equal(e.SyncStateSet, []int64{2}) || e.BrokerAddrs[1] != "127.0.0.1:30911" || e.ClusterName != "C1" {
		t.Fatalf("elected %+v", e)
	}
	if rep, err = a.ReplicaInfo(addrs, "broker-a"); err != nil || *rep.MasterBrokerID != 2 || rep.MasterEpoch != 2 {
		t.Fatalf("after the election: %+v %v", rep, err)
	}

	if _, err := a.ControllerLeader([]string{dead}); err == nil || !strings.Contains(err.Error(), "no controller reachable") {
		t.Fatalf("leader of a dead list: %v", err)
	}
	if _, err := a.SyncStateData(nil, []string{"broker-a"}); err == nil || !strings.Contains(err.Error(), "-a/--controller") {
		t.Fatalf("no controllers: %v", err)
	}
}

// TestCallLeaderFollowsChange: a controller that stops leading between the
// metadata and the request answers CONTROLLER_NOT_LEADER; the call asks
// again and reaches the new leader. The race cannot be provoked reliably
// on a real group, so two remoting servers play its two sides.
func TestCallLeaderFollowsChange(t *testing.T) {
	var asked atomic.Int32
	newAddr := serve(t, func(c *remoting.Conn, req *wire.Command) {
		resp := wire.ResponseTo(req, wire.Success, "")
		resp.Body = []byte(`{"replicasInfoTable":{"b":{"masterBrokerId":2,"masterEpoch":5,"inSyncReplicas":[],"notInSyncReplicas":[]}}}`)
		c.Reply(req, &resp)
	})
	var oldAddr string
	oldAddr = serve(t, func(c *remoting.Conn, req *wire.Command) {
		switch req.Code {
		case wire.ControllerGetMetadataInfo:
			// The first answer still names this node, the next its successor.
			leader := newAddr
			if asked.Add(1) == 1 {
				leader = oldAddr
			}
			h := wire.GetMetaDataResponseHeader{Group: "g", ControllerLeaderAddress: leader}
			resp := wire.ResponseTo(req, wire.Success, "")
			for k, v := range h.Fields() {
				resp.Set(k, v)
			}
			c.Reply(req, &resp)
		default:
			resp := wire.ResponseTo(req, wire.ControllerNotLeader, "The controller is not in leader state")
			c.Reply(req, &resp)
		}
	})
	a := NewDirect(5 * time.Second)
	defer a.Close()
	info, err := a.SyncStateData([]string{oldAddr}, []string{"b"})
	if err != nil || *info.ReplicasInfoTable["b"].MasterBrokerID != 2 || asked.Load() != 2 {
		t.Fatalf("%+v %v (metadata asked %d times)", info, err, asked.Load())
	}
}

type handlerFunc func(*remoting.Conn, *wire.Command)

func (h handlerFunc) ServeRequest(c *remoting.Conn, req *wire.Command) { h(c, req) }

func serve(t *testing.T, h handlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := remoting.NewServer(ln, h, slog.New(slog.DiscardHandler))
	go func() { _ = s.Serve(nil) }()
	t.Cleanup(s.Close)
	return ln.Addr().String()
}

func TestSplitAddrs(t *testing.T) {
	got := SplitAddrs(" 127.0.0.1:9878 ;;127.0.0.1:9868;")
	if fmt.Sprint(got) != "[127.0.0.1:9878 127.0.0.1:9868]" {
		t.Fatalf("%q", got)
	}
}
