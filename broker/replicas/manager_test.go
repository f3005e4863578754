package replicas

import (
	"bytes"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/controller"
	"github.com/mqops/mqops/broker/ha/autoswitch"
	"github.com/mqops/mqops/broker/ha/epoch"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// openStore opens (or reopens, after a "crash") a real broker store in
// dir, fenced as a controller-mode broker starts.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(store.Config{RootDir: dir, SegmentSize: 64 << 10, CQUnitsPerFile: 1000,
		FlushInterval: 20 * time.Millisecond, StoreHost: []byte{127, 0, 0, 1, 0, 0, 0x2A, 0x9F},
		Logger: slog.New(slog.DiscardHandler), ConfirmGate: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetRole(store.RoleSlave); err != nil {
		t.Fatal(err)
	}
	return st
}

// put is a producer's send; false when the store refuses it (a slave).
func put(st *store.Store, body []byte) bool {
	return st.Put(&store.Message{Topic: "T", Body: body}).Status == store.PutOK
}

func logBytes(t *testing.T, st *store.Store) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 64<<10)
	for off := st.MinPhyOffset(); off < st.MaxPhyOffset(); {
		n, err := st.ReadCommitLog(buf, off)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:n]...)
		off += int64(n)
	}
	return out
}

// replica is one broker of the group: a remoting port (for
// NOTIFY_BROKER_ROLE_CHANGED), an HA service and a manager.
type replica struct {
	dir  string
	log  *store.Store
	srv  *remoting.Server
	ha   *autoswitch.Service
	mgr  *Manager
	role atomic.Value // "master" / "slave"
}

var haOf sync.Map // remoting addr -> HA addr (what the name server would answer)

func startReplica(t *testing.T, dir string, ctl string) *replica {
	t.Helper()
	log := openStore(t, dir)
	r := &replica{dir: dir, log: log}
	eps, err := epoch.Open(filepath.Join(dir, "epochFileCheckpoint"))
	if err != nil {
		t.Fatal(err)
	}
	var mgr atomic.Pointer[Manager]
	r.ha, err = autoswitch.Listen("127.0.0.1:0", log, eps, autoswitch.Config{HeartbeatInterval: 200 * time.Millisecond,
		AllAckInSyncStateSet: true, OnExpand: func(set []int64) { mgr.Load().AlterSyncStateSet(set) }})
	if err != nil {
		t.Fatal(err)
	}
	r.srv, err = remoting.Listen("127.0.0.1:0", remoting.HandlerFunc(func(c *remoting.Conn, req *wire.Command) {
		if req.Code == wire.NotifyBrokerRoleChanged {
			if err := mgr.Load().HandleNotify(req); err != nil {
				t.Error(err)
			}
		}
		c.ReplyCode(req, wire.Success, "")
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.srv.Serve(nil) }()
	addr := r.srv.Addr().String()
	haOf.Store(addr, r.ha.Addr().String())
	r.ha.Start()
	r.mgr = New(Config{Cluster: "DefaultCluster", Name: "broker-a", Addr: addr, Controllers: []string{ctl},
		IdentityPath: filepath.Join(dir, "brokerIdentity"), SyncBrokerMetadataPeriod: 300 * time.Millisecond,
		CheckSyncStateSetPeriod: 300 * time.Millisecond, SyncControllerMetadataPeriod: time.Second,
		HeartbeatInterval: 200 * time.Millisecond, HeartbeatTimeout: 3 * time.Second, ElectionPriority: 1}, r.ha, Hooks{
		ToMaster: func(int32) error {
			if err := log.SetRole(store.RoleMaster); err != nil {
				return err
			}
			r.role.Store("master")
			return nil
		},
		ToSlave: func(string, int64, int32) error {
			if err := log.SetRole(store.RoleSlave); err != nil {
				return err
			}
			r.role.Store("slave")
			return nil
		},
		MasterHA: func(a string) string {
			v, _ := haOf.Load(a)
			s, _ := v.(string)
			return s
		},
		MaxPhyOffset: log.MaxPhyOffset, ConfirmOffset: log.ConfirmOffset,
	})
	mgr.Store(r.mgr)
	r.mgr.Start()
	return r
}

// kill stops everything at once, as kill -9 would: connections close.
// The store stays open for the test to write what the dying master wrote
// alone; crash closes it.
func (r *replica) kill() {
	r.mgr.Close()
	r.ha.Close()
	r.srv.Close()
}

func (r *replica) crash() { r.log.Close() }

func (r *replica) isRole(role string) bool { v, _ := r.role.Load().(string); return v == role }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startController(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := controller.New(controller.Options{Group: "g", SelfID: "n0", Peers: []controller.Peer{{ID: "n0", Addr: addr}},
		StorePath: t.TempDir(), NotifyBrokerRoleChanged: true, ScanNotActiveBroker: 500 * time.Millisecond,
		ScanInactiveMaster: 500 * time.Millisecond, LeaderGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.Serve()
	t.Cleanup(c.Close)
	waitFor(t, "a controller leader", c.IsLeader)
	return addr
}

func replicaInfo(t *testing.T, ctl string) (*wire.MasterInfoHeader, wire.SyncStateSet) {
	t.Helper()
	cl := remoting.NewClient(nil, nil)
	defer cl.Close()
	resp, err := cl.Invoke(ctl, wire.NewRequest(wire.ControllerGetReplicaInfo, map[string]string{"brokerName": "broker-a"}, nil), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := wire.ParseMasterInfoHeader(resp)
	var set wire.SyncStateSet
	_ = wire.UnmarshalLenient(resp.Body, &set)
	return h, set
}

// A group of two against a real controller: the first replica is elected,
// the second follows and joins the SyncStateSet; the master dies, the
// slave is elected with epoch 2; the old master comes back with a tail it
// wrote alone, becomes a slave, cuts that tail and copies the new master.
func TestFailoverAndRejoin(t *testing.T) {
	ctl := startController(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startReplica(t, dirA, ctl)
	waitFor(t, "A elected master", func() bool { return a.isRole("master") })
	b := startReplica(t, dirB, ctl)
	t.Cleanup(func() { b.kill(); b.crash() })
	waitFor(t, "B slave", func() bool { return b.isRole("slave") })
	if st := b.mgr.State(); st.BrokerID != 2 || st.MasterID != 1 || st.MasterEpoch != 1 {
		t.Fatalf("B state %+v", st)
	}
	for i := range 500 { // several 64 KiB segments
		if !put(a.log, bytes.Repeat([]byte{byte(i)}, 300)) {
			t.Fatal("master refused a write")
		}
	}
	if put(b.log, []byte("x")) {
		t.Fatal("slave accepted a write")
	}
	waitFor(t, "B to replicate", func() bool { return b.log.MaxPhyOffset() == a.log.MaxPhyOffset() })
	if !bytes.Equal(logBytes(t, a.log), logBytes(t, b.log)) {
		t.Fatal("B's commit log differs from A's")
	}
	waitFor(t, "B in the SyncStateSet", func() bool {
		_, set := replicaInfo(t, ctl)
		return slices.Equal(set.SyncStateSet, []int64{1, 2})
	})
	// With B in the set, an acked send is on B.
	put(a.log, bytes.Repeat([]byte{'k'}, 100))
	acked := make(chan bool, 1)
	a.ha.WaitAck(a.log.MaxPhyOffset(), func(ok bool) { acked <- ok })
	if !<-acked || b.log.MaxPhyOffset() < a.log.MaxPhyOffset() {
		t.Fatal("a send acked with the whole SyncStateSet is not on the slave")
	}
	common := a.log.MaxPhyOffset()

	a.kill()
	for range 20 { // written alone before dying: never acked
		put(a.log, bytes.Repeat([]byte{'z'}, 333))
	}
	a.crash()
	waitFor(t, "B elected master", func() bool { return b.isRole("master") })
	if h, _ := replicaInfo(t, ctl); h.MasterBrokerID != 2 || h.MasterEpoch != 2 {
		t.Fatalf("controller after failover: %+v", h)
	}
	if got := b.ha.Epochs().Entries(); !slices.Equal(got, []epoch.Entry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: common}}) {
		t.Fatalf("B epochs %v", got)
	}
	for range 10 {
		if !put(b.log, bytes.Repeat([]byte{'n'}, 200)) {
			t.Fatal("the new master refused a write")
		}
	}

	a2 := startReplica(t, dirA, ctl) // restarted on its data directory
	t.Cleanup(func() { a2.kill(); a2.crash() })
	waitFor(t, "A back as slave", func() bool { return a2.isRole("slave") })
	waitFor(t, "A to cut its tail and copy B", func() bool { return a2.log.MaxPhyOffset() == b.log.MaxPhyOffset() })
	if !bytes.Equal(logBytes(t, a2.log), logBytes(t, b.log)) {
		t.Fatal("A's commit log differs from B's after the rejoin")
	}
	waitFor(t, "A's consume queue to match B's", func() bool { return a2.log.MaxOffset("T", 0) == b.log.MaxOffset("T", 0) })
	if got := a2.ha.Epochs().Entries(); !slices.Equal(got, b.ha.Epochs().Entries()) {
		t.Fatalf("A epochs %v, B's %v", got, b.ha.Epochs().Entries())
	}
	if st := a2.mgr.State(); st.BrokerID != 1 || st.MasterID != 2 || st.MasterEpoch != 2 {
		t.Fatalf("A state after rejoin %+v (its id must survive the restart)", st)
	}
}
