package e2e

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

var controllerReady = regexp.MustCompile(`The Controller boot success\. group \S+, self \S+, address (\S+)`)

// ctlCall sends one controller request and returns the answer, or nil if
// the node does not answer (killed).
func ctlCall(addr string, code int32, fields map[string]string, body []byte) *wire.Command {
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	defer cl.Close()
	resp, err := cl.Invoke(addr, wire.NewRequest(code, fields, body), 5*time.Second)
	if err != nil {
		return nil
	}
	return resp
}

func ctlExpect(t *testing.T, addr string, code int32, fields map[string]string, body []byte, want int32) *wire.Command {
	t.Helper()
	resp := ctlCall(addr, code, fields, body)
	if resp == nil {
		t.Fatalf("request %d to %s: no answer", code, addr)
	}
	if resp.Code != want {
		t.Fatalf("request %d to %s: code %d (%s) %q, want %d (%s)", code, addr, resp.Code, wire.ResponseName(resp.Code), resp.Remark, want, wire.ResponseName(want))
	}
	return resp
}

// waitLeader polls GET_METADATA_INFO until a node reports itself leader and
// returns its address.
func waitLeader(t *testing.T, addrs []string) string {
	t.Helper()
	var leader string
	waitFor(t, 20*time.Second, "a controller leader", func() bool {
		for _, a := range addrs {
			if r := ctlCall(a, wire.ControllerGetMetadataInfo, nil, nil); r != nil && r.Code == wire.Success && r.GetBool("isLeader") {
				leader = a
				return true
			}
		}
		return false
	})
	return leader
}

// fakeReplica is a broker as the controller sees it: one remoting client
// whose connections carry its heartbeats (904, oneway, to every controller)
// and receive NOTIFY_BROKER_ROLE_CHANGED (1008).
type fakeReplica struct {
	id       int64
	addr     string
	cl       *remoting.Client
	notified atomic.Int32 // masterEpoch of the last 1008 received
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startReplica(t *testing.T, id int64, controllers []string) *fakeReplica {
	r := &fakeReplica{id: id, addr: "127.0.0.1:" + strconv.Itoa(30901+int(id)*10), stop: make(chan struct{})}
	r.cl = remoting.NewClient(remoting.HandlerFunc(func(c *remoting.Conn, req *wire.Command) {
		if req.Code == wire.NotifyBrokerRoleChanged {
			if e, ok := req.GetInt32("masterEpoch"); ok {
				r.notified.Store(e)
			}
			c.ReplyCode(req, wire.Success, "")
		}
	}), slog.New(slog.DiscardHandler))
	h := wire.BrokerHeartbeatHeader{ClusterName: "DefaultCluster", BrokerAddr: r.addr, BrokerName: "broker-a", BrokerID: id, HasBrokerID: true,
		Epoch: 1, MaxOffset: 4096, ConfirmOffset: 4096, HeartbeatTimeoutMillis: 10000, ElectionPriority: 0}
	beat := func() {
		for _, a := range controllers {
			_ = r.cl.InvokeOneway(a, wire.NewRequest(wire.BrokerHeartbeat, h.Fields(), nil))
		}
	}
	beat()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
				beat()
			}
		}
	}()
	t.Cleanup(r.close)
	return r
}

// close stops the heartbeats and closes the connections, as a killed
// broker's sockets close.
func (r *fakeReplica) close() {
	select {
	case <-r.stop:
		return
	default:
	}
	close(r.stop)
	r.wg.Wait()
	r.cl.Close()
}

// registerReplica runs the broker-id protocol: GET_NEXT_BROKER_ID,
// APPLY_BROKER_ID, REGISTER_BROKER.
func registerReplica(t *testing.T, leader string, id int64) {
	t.Helper()
	set := map[string]string{"clusterName": "DefaultCluster", "brokerName": "broker-a"}
	r := ctlExpect(t, leader, wire.ControllerGetNextBrokerID, set, nil, wire.Success)
	if r.GetString("nextBrokerId") != strconv.FormatInt(id, 10) {
		t.Fatalf("nextBrokerId %q, want %d", r.GetString("nextBrokerId"), id)
	}
	addr := "127.0.0.1:" + strconv.Itoa(30901+int(id)*10)
	ap := wire.ApplyBrokerIDHeader{ClusterName: "DefaultCluster", BrokerName: "broker-a", AppliedBrokerID: id, RegisterCheckCode: addr + ";1733480000000"}
	ctlExpect(t, leader, wire.ControllerApplyBrokerID, ap.Fields(), nil, wire.Success)
	rb := wire.RegisterBrokerToControllerHeader{ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerID: id, BrokerAddress: addr}
	ctlExpect(t, leader, wire.ControllerRegisterBroker, rb.Fields(), nil, wire.Success)
}

type replicaView struct {
	master  string
	epoch   string
	set     wire.SyncStateSet
	address string
}

func getReplicaInfo(t *testing.T, leader string) replicaView {
	t.Helper()
	r := ctlExpect(t, leader, wire.ControllerGetReplicaInfo, map[string]string{"brokerName": "broker-a"}, nil, wire.Success)
	v := replicaView{master: r.GetString("masterBrokerId"), epoch: r.GetString("masterEpoch"), address: r.GetString("masterAddress")}
	if err := json.Unmarshal(r.Body, &v.set); err != nil {
		t.Fatalf("replica info body %q: %v", r.Body, err)
	}
	return v
}

// Three name servers with embedded controllers, configured as Appendix A of
// the HA design (a Java 5 controller-mode name server's file), on random
// ports: brokers register, heartbeat, elect and alter the SyncStateSet over
// raw remoting; the controller leader is killed and the new one serves the
// same state; then the master's connections close and the controller fails
// over to the in-sync replica and notifies it.
func TestControllerGroupInNamesrv(t *testing.T) {
	ports := freePorts(t, 3)
	var peers []string
	var addrs []string
	for i, p := range ports {
		peers = append(peers, fmt.Sprintf("n%d-127.0.0.1:%d", i, p))
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	nodes := make([]*proc, 3)
	for i := range nodes {
		dir := t.TempDir()
		conf := filepath.Join(dir, "namesrv.conf")
		text := fmt.Sprintf("listenPort=9876\nenableControllerInNamesrv=true\ncontrollerDLegerGroup=group1\n"+
			"controllerDLegerPeers=%s\ncontrollerDLegerSelfId=n%d\ncontrollerStorePath=%s\n"+
			"enableElectUncleanMaster=false\nnotifyBrokerRoleChanged=true\n",
			strings.Join(peers, ";"), i, filepath.Join(dir, "ctl"))
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		nodes[i] = start(t, controllerReady, "mqnamesrv", "-c", conf, "-p", "listenPort=0",
			"-p", "kvConfigPath="+filepath.Join(dir, "kvConfig.json"), "-p", "logDir="+filepath.Join(dir, "logs"))
	}
	leader := waitLeader(t, addrs)
	md := ctlExpect(t, addrs[0], wire.ControllerGetMetadataInfo, nil, nil, wire.Success)
	if md.GetString("group") != "group1" || md.GetString("controllerLeaderAddress") != leader ||
		md.GetString("peers") != fmt.Sprintf("n0:%s;n1:%s;n2:%s;", addrs[0], addrs[1], addrs[2]) {
		t.Fatalf("metadata %v", md.Fields())
	}

	registerReplica(t, leader, 1)
	registerReplica(t, leader, 2)
	r1 := startReplica(t, 1, addrs)
	r2 := startReplica(t, 2, addrs)
	el := wire.ElectMasterHeader{ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerID: 1}
	resp := ctlExpect(t, leader, wire.ControllerElectMaster, el.Fields(), nil, wire.Success)
	if resp.GetString("masterBrokerId") != "1" || resp.GetString("masterEpoch") != "1" {
		t.Fatalf("first election %v", resp.Fields())
	}
	// The slave caught up: the master adds it; later a request carrying
	// an older master epoch is fenced with 2000.
	alter := func(epoch int32, ssEpoch int32, set ...int64) *wire.Command {
		h := wire.AlterSyncStateSetHeader{BrokerName: "broker-a", MasterBrokerID: 1, MasterEpoch: epoch}
		return ctlCall(leader, wire.ControllerAlterSyncStateSet, h.Fields(), wire.Marshal(&wire.SyncStateSet{SyncStateSet: set, SyncStateSetEpoch: ssEpoch}))
	}
	// Heartbeats are oneway: wait until the leader has seen replica 2.
	waitFor(t, 10*time.Second, "replica 2 alive on the leader", func() bool {
		r := alter(1, 1, 1, 2)
		return r != nil && r.Code == wire.Success
	})
	if r := alter(0, 2, 1); r == nil || r.Code != wire.ControllerFencedMasterEpoch {
		t.Fatalf("stale master epoch answered %+v", r)
	}
	before := getReplicaInfo(t, leader)
	if before.master != "1" || before.epoch != "1" || before.set.SyncStateSetEpoch != 2 || len(before.set.SyncStateSet) != 2 {
		t.Fatalf("replica info %+v", before)
	}
	data := ctlExpect(t, leader, wire.ControllerGetSyncStateData, nil, []byte(`["broker-a"]`), wire.Success)
	var info wire.BrokerReplicasInfo
	if err := json.Unmarshal(data.Body, &info); err != nil || len(info.ReplicasInfoTable["broker-a"].InSyncReplicas) != 2 {
		t.Fatalf("sync state data %s %v", data.Body, err)
	}
	for _, a := range addrs {
		if a != leader {
			ctlExpect(t, a, wire.ControllerGetReplicaInfo, map[string]string{"brokerName": "broker-a"}, nil, wire.ControllerNotLeader)
		}
	}

	// Kill -9 the controller leader: another node takes over with the same
	// state.
	var rest []string
	killed := time.Now()
	for i, a := range addrs {
		if a == leader {
			nodes[i].kill()
		} else {
			rest = append(rest, a)
		}
	}
	newLeader := waitLeader(t, rest)
	t.Logf("controller leader killed -> new leader serving: %v", time.Since(killed))
	after := getReplicaInfo(t, newLeader)
	if after.master != before.master || after.epoch != before.epoch || after.set.SyncStateSetEpoch != before.set.SyncStateSetEpoch ||
		len(after.set.SyncStateSet) != 2 {
		t.Fatalf("after leader change %+v, before %+v", after, before)
	}

	// The master dies (its sockets close): the new leader elects the
	// in-sync replica at once, despite its post-election grace period, and
	// tells it.
	closed := time.Now()
	r1.close()
	waitFor(t, 15*time.Second, "replica 2 elected", func() bool {
		v := getReplicaInfo(t, newLeader)
		return v.master == "2" && v.epoch == "2"
	})
	t.Logf("master connection closed -> new master in GET_REPLICA_INFO: %v", time.Since(closed))
	waitFor(t, 10*time.Second, "NOTIFY_BROKER_ROLE_CHANGED on replica 2", func() bool { return r2.notified.Load() == 2 })
	v := getReplicaInfo(t, newLeader)
	if v.address != r2.addr || len(v.set.SyncStateSet) != 1 || v.set.SyncStateSet[0] != 2 {
		t.Fatalf("after failover %+v", v)
	}
}

// One controller alone (a one-peer controllerDLegerPeers) is a working
// group, and its state survives a restart (BoltDB log).
func TestSinglePeerController(t *testing.T) {
	port := freePorts(t, 1)[0]
	dir := t.TempDir()
	conf := filepath.Join(dir, "controller.conf")
	text := fmt.Sprintf("controllerDLegerGroup=solo\ncontrollerDLegerPeers=n0-127.0.0.1:%d\ncontrollerDLegerSelfId=n0\n"+
		"controllerStorePath=%s\ncontrollerType=DLedger\ncontrollerThreadPoolNums=16\nlogDir=%s\n",
		port, filepath.Join(dir, "store"), filepath.Join(dir, "logs"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, controllerReady, "mqcontroller", "-c", conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitLeader(t, []string{addr})
	// Garbage on the shared port, whether it looks like a Raft stream
	// (marker 0xA5) or a remoting frame, costs that connection only.
	for _, junk := range [][]byte{{0xA5, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x02}, {0x00, 0x00, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'}, []byte("GET / HTTP/1.0\r\n\r\n")} {
		c := rawConn(t, addr)
		if _, err := c.Write(junk); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 64)); err == nil {
			t.Fatalf("junk %q answered", junk)
		}
	}
	ctlExpect(t, addr, wire.ControllerGetMetadataInfo, nil, nil, wire.Success)
	registerReplica(t, addr, 1)
	startReplica(t, 1, []string{addr})
	el := wire.ElectMasterHeader{ClusterName: "DefaultCluster", BrokerName: "broker-a", BrokerID: 1}
	ctlExpect(t, addr, wire.ControllerElectMaster, el.Fields(), nil, wire.Success)
	// A second node on the same store is refused (file lock), not hung.
	other := freePorts(t, 1)[0]
	out, err := exec.Command(filepath.Join(binDir, "mqcontroller"), "-c", conf, "-p", fmt.Sprintf("controllerDLegerPeers=n0-127.0.0.1:%d", other)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "controller raft log") {
		t.Fatalf("second node on the same store: %v %s", err, out)
	}
	p.stop()

	start(t, controllerReady, "mqcontroller", "-c", conf)
	waitLeader(t, []string{addr})
	v := getReplicaInfo(t, addr)
	if v.master != "1" || v.epoch != "1" || v.set.SyncStateSetEpoch != 1 {
		t.Fatalf("after restart %+v", v)
	}
	// jRaft is refused with a clear message.
	out, err = exec.Command(filepath.Join(binDir, "mqcontroller"), "-c", conf, "-p", "controllerType=jRaft").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "jRaft controller is not supported") {
		t.Fatalf("jRaft: %v %s", err, out)
	}
}
