package e2e

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// startControllers runs a group of n mqcontroller processes on loopback
// (Raft and remoting share each node's controllerDLegerPeers port) and
// returns their addresses once one of them leads and all know it.
func startControllers(t *testing.T, n int) []string {
	t.Helper()
	return startControllersWith(t, n, admin.NewDirect(3*time.Second))
}

// startControllersWith is startControllers with extra controller.conf
// lines; a (closed here) reads the controllers' metadata.
func startControllersWith(t *testing.T, n int, a *admin.Admin, extra ...string) []string {
	t.Helper()
	var peers, addrs []string
	for i, port := range freePorts(t, n) {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
		peers = append(peers, fmt.Sprintf("n%d-%s", i, addrs[i]))
	}
	for i := range n {
		dir := t.TempDir()
		conf := filepath.Join(dir, "controller.conf")
		text := fmt.Sprintf("controllerDLegerGroup=group1\ncontrollerDLegerPeers=%s\ncontrollerDLegerSelfId=n%d\n"+
			"controllerStorePath=%s\nlogDir=%s\n", strings.Join(peers, ";"), i, filepath.Join(dir, "store"), filepath.Join(dir, "logs"))
		text += strings.Join(extra, "\n") + "\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		start(t, controllerReady, "mqcontroller", "-c", conf)
	}
	defer a.Close()
	waitFor(t, 30*time.Second, "a controller leader known to every controller", func() bool {
		ms, err := a.ControllersMetadata(addrs)
		leaders := 0
		for _, m := range ms {
			if m.IsLeader {
				leaders++
			}
			if m.LeaderAddress == "" {
				return false
			}
		}
		return err == nil && leaders == 1
	})
	return addrs
}

// replica plays one broker of a controller-mode set with the requests a
// RocketMQ 5 broker sends (ReplicasManager): ids, registration, heartbeats,
// election, SyncStateSet changes.
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

func (r *replica) must(code int32, fields map[string]string, body []byte) *wire.Command {
	r.t.Helper()
	for _, c := range r.ctrls {
		resp, err := r.cl.Invoke(c, wire.NewRequest(wire.ControllerGetMetadataInfo, nil, nil), 3*time.Second)
		if err != nil || !wire.ParseGetMetaDataResponseHeader(resp).IsLeader {
			continue
		}
		resp, err = r.cl.Invoke(c, wire.NewRequest(code, fields, body), 5*time.Second)
		if err != nil || resp.Code != wire.Success {
			r.t.Fatalf("request %d to %s: %v %+v", code, c, err, resp)
		}
		return resp
	}
	r.t.Fatalf("request %d: no controller leads", code)
	return nil
}

// register is GET_NEXT_BROKER_ID, APPLY_BROKER_ID, REGISTER_BROKER, then a
// heartbeat to every controller over connections that stay open (a
// closed one makes the replica dead at once).
func (r *replica) register() {
	r.t.Helper()
	set := wire.BrokerSetHeader{ClusterName: r.cluster, BrokerName: r.name}
	r.id, _ = strconv.ParseInt(r.must(wire.ControllerGetNextBrokerID, set.Fields(), nil).GetString("nextBrokerId"), 10, 64)
	apply := wire.ApplyBrokerIDHeader{ClusterName: r.cluster, BrokerName: r.name, AppliedBrokerID: r.id,
		RegisterCheckCode: r.addr + ";" + strconv.FormatInt(time.Now().UnixMilli(), 10)}
	r.must(wire.ControllerApplyBrokerID, apply.Fields(), nil)
	reg := wire.RegisterBrokerToControllerHeader{ClusterName: r.cluster, BrokerName: r.name, BrokerID: r.id, BrokerAddress: r.addr}
	r.must(wire.ControllerRegisterBroker, reg.Fields(), nil)
	hb := wire.BrokerHeartbeatHeader{ClusterName: r.cluster, BrokerAddr: r.addr, BrokerName: r.name, BrokerID: r.id, HasBrokerID: true,
		HeartbeatTimeoutMillis: 600_000, ElectionPriority: 1}
	for _, c := range r.ctrls {
		if err := r.cl.InvokeOneway(c, wire.NewRequest(wire.BrokerHeartbeat, hb.Fields(), nil)); err != nil {
			r.t.Fatalf("heartbeat to %s: %v", c, err)
		}
	}
}

// electSelf is the ELECT_MASTER a replica sends when its set has no master.
func (r *replica) electSelf() {
	r.t.Helper()
	h := wire.ElectMasterHeader{ClusterName: r.cluster, BrokerName: r.name, BrokerID: r.id}
	mh, _ := wire.ParseMasterInfoHeader(r.must(wire.ControllerElectMaster, h.Fields(), nil))
	r.masterEpoch = mh.MasterEpoch
}

// alterSyncStateSet is the master's ALTER_SYNC_STATE_SET.
func (r *replica) alterSyncStateSet(ssEpoch int32, set ...int64) {
	r.t.Helper()
	h := wire.AlterSyncStateSetHeader{BrokerName: r.name, MasterBrokerID: r.id, MasterEpoch: r.masterEpoch}
	r.must(wire.ControllerAlterSyncStateSet, h.Fields(), wire.Marshal(&wire.SyncStateSet{SyncStateSet: set, SyncStateSetEpoch: ssEpoch}))
}

// ctl runs mqadmin without a name server (controller commands need none)
// and fails the test unless it succeeds.
func ctl(t *testing.T, args ...string) string {
	t.Helper()
	r := runCLI(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("mqadmin %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// TestMqadminControllerCommands drives ha sync-state, ha elect and
// controller metadata, and Java's getSyncStateSet, electMaster and
// getControllerMetaData, against three mqcontroller processes holding one
// broker set registered as brokers do.
func TestMqadminControllerCommands(t *testing.T) {
	ctrls := startControllers(t, 3)
	a := admin.NewDirect(3 * time.Second)
	defer a.Close()
	leader, err := a.ControllerLeader(ctrls)
	if err != nil {
		t.Fatal(err)
	}
	var follower string
	for _, c := range ctrls {
		if c != leader {
			follower = c
		}
	}
	r1 := newReplica(t, ctrls, "C1", "broker-a", "127.0.0.1:30911")
	r2 := newReplica(t, ctrls, "C1", "broker-a", "127.0.0.1:30921")
	r1.register()
	r2.register()
	r1.electSelf()
	r1.alterSyncStateSet(1, 1, 2)

	// A follower alone is given: mqadmin must find the leader through it.
	only := follower
	var info wire.BrokerReplicasInfo
	waitFor(t, 30*time.Second, "both replicas alive on the leader", func() bool {
		out := ctl(t, "ha", "sync-state", "-a", only, "-b", "broker-a", "-o", "json")
		if err := wire.UnmarshalLenient([]byte(out), &info); err != nil {
			t.Fatalf("sync-state json: %v\n%s", err, out)
		}
		ri := info.ReplicasInfoTable["broker-a"]
		return ri != nil && len(ri.InSyncReplicas) == 2 && ri.InSyncReplicas[0].Alive && ri.InSyncReplicas[1].Alive
	})
	ri := info.ReplicasInfoTable["broker-a"]
	if *ri.MasterBrokerID != 1 || ri.MasterAddress != "127.0.0.1:30911" || ri.MasterEpoch != 1 || ri.SyncStateSetEpoch != 2 ||
		len(ri.NotInSyncReplicas) != 0 || ri.InSyncReplicas[1].BrokerID != 2 || ri.InSyncReplicas[1].BrokerAddress != "127.0.0.1:30921" {
		t.Fatalf("sync state %+v", ri)
	}

	all := strings.Join(ctrls, ";")
	tb := tableOf(t, ctl(t, "getSyncStateSet", "-a", all, "-b", "broker-a"))
	tb.wantHeader(t, "brokerName", "MasterBrokerId", "MasterAddr", "MasterEpoch", "SyncStateSetEpoch", "SyncStateSetNums",
		"BrokerId", "BrokerAddr", "InSync", "Alive")
	if len(tb.rows) != 2 {
		t.Fatalf("getSyncStateSet rows %v", tb.rows)
	}
	for _, r := range tb.rows {
		if r["brokerName"] != "broker-a" || r["MasterBrokerId"] != "1" || r["MasterEpoch"] != "1" || r["SyncStateSetNums"] != "2" ||
			r["InSync"] != "true" || r["Alive"] != "true" {
			t.Fatalf("getSyncStateSet row %v", r)
		}
	}
	// A set the controller does not know: the known ones are printed, the
	// command fails naming the other.
	r := runCLI(t, nil, "ha", "sync-state", "-a", all, "-b", "broker-zz")
	if r.code == 0 || !strings.Contains(r.stderr, "broker set broker-zz not known to the controller") {
		t.Fatalf("unknown set: exit %d, %s", r.code, r.stderr)
	}

	var metas []admin.ControllerMeta
	if err := wire.UnmarshalLenient([]byte(ctl(t, "controller", "metadata", "-a", all, "-o", "json")), &metas); err != nil || len(metas) != 3 {
		t.Fatalf("controller metadata json: %v %+v", err, metas)
	}
	leaders := 0
	for i, m := range metas {
		if m.Addr != ctrls[i] || m.Group != "group1" || m.LeaderAddress != leader || len(m.Peers) != 3 {
			t.Fatalf("metadata %+v", m)
		}
		if m.IsLeader {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders in %+v", leaders, metas)
	}
	md := tableOf(t, ctl(t, "getControllerMetaData", "-a", all))
	md.wantHeader(t, "Controller", "ControllerGroup", "ControllerLeaderId", "ControllerLeaderAddress", "IsLeader", "Peers", "Error")
	if row := md.one(t, "IsLeader", "true"); row["Controller"] != leader || row["ControllerLeaderAddress"] != leader ||
		strings.Count(row["Peers"], ";") != 2 {
		t.Fatalf("getControllerMetaData %v", md.rows)
	}

	// Unreachable controllers and invalid elections: one line, exit ≠ 0,
	// the controller's code by its Java name.
	dead := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	if msg := cliFail(t, "", "ha", "sync-state", "-a", dead, "-b", "broker-a"); !strings.Contains(msg, "no controller reachable") ||
		!strings.Contains(msg, dead) {
		t.Fatalf("dead controller: %s", msg)
	}
	if msg := cliFail(t, "", "ha", "elect", "-a", all, "-b", "broker-a", "--id", "9"); !strings.Contains(msg, "CONTROLLER_ELECT_MASTER_FAILED") ||
		!strings.Contains(msg, "elect broker 9 of broker-a") {
		t.Fatalf("elect 9: %s", msg)
	}
	if msg := cliFail(t, "", "electMaster", "-a", all, "-c", "C1", "-bn", "broker-a", "-b", "1"); !strings.Contains(msg, "CONTROLLER_MASTER_STILL_EXIST") {
		t.Fatalf("elect the master: %s", msg)
	}
	if msg := cliFail(t, "", "ha", "elect", "-a", all, "-b", "broker-x", "--id", "1"); !strings.Contains(msg, "CONTROLLER_BROKER_NEED_TO_BE_REGISTERED") {
		t.Fatalf("elect in an unknown set: %s", msg)
	}
	if msg := cliFail(t, "", "electMaster", "-a", all, "-bn", "broker-a", "-b", "2"); !strings.Contains(msg, `"clusterName" not set`) {
		t.Fatalf("electMaster without -c: %s", msg)
	}

	el := tableOf(t, ctl(t, "electMaster", "-a", only, "-c", "C1", "-bn", "broker-a", "-b", "2"))
	el.wantHeader(t, "ClusterName", "BrokerName", "MasterBrokerId", "BrokerMasterAddr", "MasterEpoch", "SyncStateSetEpoch", "SyncStateSet")
	if e := el.rows[0]; e["ClusterName"] != "C1" || e["MasterBrokerId"] != "2" || e["BrokerMasterAddr"] != "127.0.0.1:30921" ||
		e["MasterEpoch"] != "2" || e["SyncStateSetEpoch"] != "3" || e["SyncStateSet"] != "2" {
		t.Fatalf("electMaster %v", e)
	}
	members := parseTable(t, sections(ctl(t, "ha", "sync-state", "-a", all, "-b", "broker-a"))[0])
	if in, out := members.one(t, "BrokerId", "2"), members.one(t, "BrokerId", "1"); in["InSync"] != "true" || out["InSync"] != "false" ||
		in["MasterBrokerId"] != "2" || in["MasterEpoch"] != "2" || out["Alive"] != "true" {
		t.Fatalf("after the election %v", members.rows)
	}
	// 1 left the SyncStateSet at that election: it cannot be chosen until
	// the new master takes it back.
	if msg := cliFail(t, "", "ha", "elect", "-a", all, "-b", "broker-a", "--id", "1"); !strings.Contains(msg, "CONTROLLER_ELECT_MASTER_FAILED") {
		t.Fatalf("elect a replica outside the SyncStateSet: %s", msg)
	}
	r2.masterEpoch = 2
	r2.alterSyncStateSet(3, 1, 2)
	var elected admin.Elected
	if err := wire.UnmarshalLenient([]byte(ctl(t, "ha", "elect", "-a", all, "-b", "broker-a", "--id", "1", "-o", "json")), &elected); err != nil {
		t.Fatal(err)
	}
	if elected.MasterBrokerID != 1 || elected.MasterEpoch != 3 || elected.SyncStateSetEpoch != 5 || len(elected.SyncStateSet) != 1 ||
		elected.BrokerAddrs[2] != "127.0.0.1:30921" || elected.ClusterName != "C1" {
		t.Fatalf("ha elect json %+v", elected)
	}
}

// TestMqadminClusterListReplicas: cluster list shows a master and its slave
// with their brokerRole, and the slave's lag behind the master in bytes.
func TestMqadminClusterListReplicas(t *testing.T) {
	c := startCluster(t, "brokerRole=SYNC_MASTER")
	ns := c.ns.addr
	slave := startBroker(t, newBrokerDir(t), ns, "brokerRole=SLAVE", "brokerId=1")
	cli(t, ns, "topic", "create", "-t", "HA1", "-b", c.broker.addr, "--queues", "2")
	waitRoute(t, ns, "HA1", 1)
	cli(t, ns, "message", "send", "-t", "HA1", "--body", "replicate me", "--count", "5")

	var brs []admin.BrokerRuntime
	waitFor(t, 30*time.Second, "the slave in cluster list", func() bool {
		r := runCLI(t, nil, "cluster", "list", "-o", "json", "-n", ns)
		brs = nil
		return r.code == 0 && wire.UnmarshalLenient([]byte(r.stdout), &brs) == nil && len(brs) == 2
	})
	m, s := brs[0], brs[1]
	if m.ID != 0 || m.BrokerRole != "SYNC_MASTER" || s.ID != 1 || s.Addr != slave.addr || s.BrokerRole != "SLAVE" || m.LagBytes != nil || s.LagBytes == nil {
		t.Fatalf("replicas %+v", brs)
	}
	if m.CommitLogMaxOffset <= 0 || strconv.FormatInt(m.CommitLogMaxOffset, 10) != m.Runtime["commitLogMaxOffset"] ||
		*s.LagBytes != max(0, m.CommitLogMaxOffset-s.CommitLogMaxOffset) {
		t.Fatalf("lag %d from master %d, slave %d", *s.LagBytes, m.CommitLogMaxOffset, s.CommitLogMaxOffset)
	}
	// Once replication runs the lag moves until the slave catches up: the
	// table must agree with a JSON listing taken right before it.
	var tb table
	waitFor(t, 30*time.Second, "the table's lag to match the JSON's", func() bool {
		var now []admin.BrokerRuntime
		cliJSON(t, ns, &now, "cluster", "list")
		tb = tableOf(t, cli(t, ns, "clusterList"))
		r := tb.one(t, "BID", "1")
		if r["Role"] != "SLAVE" || r["MasterEpoch"] != "-" {
			t.Fatalf("slave row %v", r)
		}
		return len(now) == 2 && now[1].LagBytes != nil && r["Lag(bytes)"] == strconv.FormatInt(*now[1].LagBytes, 10)
	})
	if r := tb.one(t, "BID", "0"); r["Role"] != "SYNC_MASTER" || r["Lag(bytes)"] != "-" {
		t.Fatalf("master row %v", r)
	}
}

// registerWithNamesrv registers broker sets' masters with a name server as
// a broker's REGISTER_BROKER does, over a connection kept for the test.
func registerWithNamesrv(t *testing.T, ns, cluster string, brokers map[string]string) {
	t.Helper()
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	t.Cleanup(cl.Close)
	body := wire.Marshal(wire.RegisterBrokerBody{FilterServerList: []string{}, TopicConfigSerializeWrapper: wire.TopicConfigSerializeWrapper{
		DataVersion: wire.DataVersion{Counter: 1, Timestamp: time.Now().UnixMilli()}, TopicConfigTable: map[string]*wire.TopicConfig{},
	}})
	for name, addr := range brokers {
		f := map[string]string{"brokerName": name, "brokerAddr": addr, "clusterName": cluster, "haServerAddr": addr,
			"brokerId": "0", "compressed": "false", "bodyCrc32": "0"}
		resp, err := cl.Invoke(ns, wire.NewRequest(wire.RegisterBroker, f, body), 10*time.Second)
		if err != nil || resp.Code != wire.Success {
			t.Fatalf("register %s: %v %+v", name, err, resp)
		}
	}
}

// TestMqadminSyncStateOfCluster: with -c, the broker sets come from the
// name server, here one that embeds a one-node controller group; a set
// the controller does not know is printed nowhere and fails the command.
func TestMqadminSyncStateOfCluster(t *testing.T) {
	port := freePorts(t, 1)[0]
	ctl := fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	nsProc := startNamesrv(t, "enableControllerInNamesrv=true", "controllerDLegerGroup=solo",
		"controllerDLegerPeers=n0-"+ctl, "controllerDLegerSelfId=n0", "controllerStorePath="+filepath.Join(dir, "ctl"))
	ns := nsProc.addr
	r1 := newReplica(t, []string{ctl}, "C1", "broker-a", "127.0.0.1:30911")
	waitFor(t, 30*time.Second, "the embedded controller to lead", func() bool {
		var ms []admin.ControllerMeta
		r := runCLI(t, nil, "controller", "metadata", "-a", ctl, "-o", "json")
		return r.code == 0 && wire.UnmarshalLenient([]byte(r.stdout), &ms) == nil && len(ms) == 1 && ms[0].IsLeader
	})
	r1.register()
	r1.electSelf()
	registerWithNamesrv(t, ns, "C1", map[string]string{"broker-a": "127.0.0.1:30911", "broker-b": "127.0.0.1:30912"})

	r := runCLI(t, nil, "getSyncStateSet", "-a", ctl, "-c", "C1", "-n", ns)
	if r.code == 0 || !strings.Contains(r.stderr, "broker set broker-b not known to the controller") {
		t.Fatalf("broker-b is not in controller mode: exit %d, %s", r.code, r.stderr)
	}
	tb := tableOf(t, r.stdout)
	if row := tb.one(t, "brokerName", "broker-a"); row["MasterBrokerId"] != "1" || row["BrokerId"] != "1" || row["InSync"] != "true" ||
		len(tb.where("brokerName", "broker-b")) != 0 {
		t.Fatalf("getSyncStateSet -c %v", tb.rows)
	}
	if msg := cliFail(t, "", "ha", "sync-state", "-a", ctl, "-c", "C1"); !strings.Contains(msg, "no name server") {
		t.Fatalf("-c without a name server: %s", msg)
	}
}

type handlerFunc func(*remoting.Conn, *wire.Command)

func (h handlerFunc) ServeRequest(c *remoting.Conn, req *wire.Command) { h(c, req) }

// javaBroker answers requests with fixed bodies, as a Java broker would
// (fastjson, fields in alphabetical order); other codes are not supported.
func javaBroker(t *testing.T, bodies map[int32]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := remoting.NewServer(ln, handlerFunc(func(c *remoting.Conn, req *wire.Command) {
		body, ok := bodies[req.Code]
		if !ok {
			c.ReplyCode(req, wire.RequestCodeNotSupported, fmt.Sprintf(" request type %d not supported", req.Code))
			return
		}
		resp := wire.ResponseTo(req, wire.Success, "")
		resp.Body = []byte(body)
		c.Reply(req, &resp)
	}), slog.New(slog.DiscardHandler))
	go func() { _ = s.Serve(nil) }()
	t.Cleanup(s.Close)
	return ln.Addr().String()
}

// TestMqadminHAStatusJavaBodies: ha status, haStatus and ha epochs read a
// RocketMQ 5 broker's HARuntimeInfo and EpochEntryCache answers (no name
// server is needed with a broker address).
func TestMqadminHAStatusJavaBodies(t *testing.T) {
	master := javaBroker(t, map[int32]string{
		wire.GetBrokerHAStatus: `{"haClientRuntimeInfo":{"lastReadTimestamp":0,"lastWriteTimestamp":0,"masterFlushOffset":0,"maxOffset":0,"transferredByteInSecond":0},` +
			`"haConnectionInfo":[{"addr":"127.0.0.1:52314","diff":0,"inSync":true,"slaveAckOffset":4096,"transferFromWhere":4096,"transferredByteInSecond":2048},` +
			`{"addr":"127.0.0.1:52315","diff":300000000,"inSync":false,"slaveAckOffset":0,"transferFromWhere":32768,"transferredByteInSecond":0}],` +
			`"inSyncSlaveNums":1,"master":true,"masterCommitLogMaxOffset":4096}`,
		wire.GetBrokerEpochCache: `{"brokerId":0,"brokerName":"broker-a","clusterName":"C1","epochList":[{"endOffset":4096,"epoch":1,"startOffset":0},` +
			`{"endOffset":9223372036854775807,"epoch":2,"startOffset":4096}],"maxOffset":8192}`,
	})
	slave := javaBroker(t, map[int32]string{
		wire.GetBrokerHAStatus: `{"haClientRuntimeInfo":{"lastReadTimestamp":1733480000000,"lastWriteTimestamp":1733480000500,"masterAddr":"127.0.0.1:10912",` +
			`"masterFlushOffset":4096,"maxOffset":4000,"transferredByteInSecond":1024},"haConnectionInfo":[],"inSyncSlaveNums":0,"master":false,"masterCommitLogMaxOffset":0}`,
	})

	st := tableOf(t, ctl(t, "haStatus", "-b", master))
	st.wantHeader(t, "Broker Name", "BID", "MasterAddr", "MasterCommitLogMaxOffset", "SlaveNum", "InSyncSlaveNum", "SlaveAddr",
		"SlaveAckOffset", "Diff", "TransferSpeed(KB/s)", "Status", "TransferFromWhere", "Error")
	if ok, behind := st.one(t, "SlaveAddr", "127.0.0.1:52314"), st.one(t, "SlaveAddr", "127.0.0.1:52315"); ok["MasterAddr"] != master ||
		ok["SlaveNum"] != "2" || ok["InSyncSlaveNum"] != "1" || ok["SlaveAckOffset"] != "4096" || ok["Status"] != "OK" ||
		ok["TransferSpeed(KB/s)"] != "2.00" || behind["Status"] != "Fall Behind" || behind["Diff"] != "300000000" {
		t.Fatalf("master status %v", st.rows)
	}
	sl := tableOf(t, ctl(t, "ha", "status", "-b", slave))
	sl.wantHeader(t, "Broker Name", "BID", "SlaveAddr", "MasterAddr", "CommitLogMaxOffset", "TransferSpeed(KB/s)", "LastReadTime",
		"LastWriteTime", "MasterFlushOffset", "Error")
	if r := sl.rows[0]; r["SlaveAddr"] != slave || r["MasterAddr"] != "127.0.0.1:10912" || r["CommitLogMaxOffset"] != "4000" ||
		r["TransferSpeed(KB/s)"] != "1.00" || r["MasterFlushOffset"] != "4096" || !strings.HasPrefix(r["LastReadTime"], "2024-12-0") {
		t.Fatalf("slave status %v", r)
	}
	var js []admin.BrokerHA
	if err := wire.UnmarshalLenient([]byte(ctl(t, "getBrokerHAStatus", "-b", master, "-o", "json")), &js); err != nil || len(js) != 1 ||
		js[0].Status == nil || len(js[0].Status.HAConnectionInfo) != 2 || js[0].Status.InSyncSlaveNums != 1 {
		t.Fatalf("haStatus json: %v %+v", err, js)
	}
	// The epoch of the open last entry ends at the broker's max offset.
	ep := tableOf(t, ctl(t, "ha", "epochs", "-b", master))
	if r := ep.one(t, "Epoch", "2"); r["StartOffset"] != "4096" || r["EndOffset"] != "8192" || r["clusterName"] != "C1" {
		t.Fatalf("epochs %v", ep.rows)
	}
	// A broker without 907: one line, exit 1, the code by its Java name.
	noHA := javaBroker(t, nil)
	if msg := cliFail(t, "", "ha", "status", "-b", noHA); !strings.Contains(msg, "REQUEST_CODE_NOT_SUPPORTED") {
		t.Fatalf("no 907: %s", msg)
	}
	r := runCLI(t, nil, "ha", "epochs", "-b", noHA)
	if r.code == 0 || r.stdout != "" {
		t.Fatalf("epochs of a broker without 1007: exit %d\n%s", r.code, r.stdout)
	}
	if msg := cliFail(t, "", "controller", "metadata", "-a", noHA); !strings.Contains(msg, "REQUEST_CODE_NOT_SUPPORTED") {
		t.Fatalf("metadata of a non-controller: %s", msg)
	}
}

// TestMqadminHAStatusReplicating: a SYNC_MASTER and its slave replicating
// for real. ha status shows the master's slave connection caught up and in
// sync and the slave's link to it; cluster list shows the slave 0 bytes
// behind and the master's replication keys.
func TestMqadminHAStatusReplicating(t *testing.T) {
	g := startHAGroup(t, "SYNC_MASTER")
	ns := g.ns.addr
	cli(t, ns, "topic", "create", "-t", "HA2", "-b", g.master.addr, "--queues", "2")
	waitRoute(t, ns, "HA2", 1)
	cli(t, ns, "message", "send", "-t", "HA2", "--body", "replicated", "--count", "10")

	var st []admin.BrokerHA
	waitFor(t, 30*time.Second, "the slave caught up in ha status", func() bool {
		st = nil
		cliJSON(t, ns, &st, "ha", "status", "-b", "broker-a")
		if len(st) != 2 || st[0].Status == nil || st[1].Status == nil {
			t.Fatalf("ha status %+v", st)
		}
		m := st[0].Status
		return m.Master && len(m.HAConnectionInfo) == 1 && m.HAConnectionInfo[0].SlaveAckOffset == m.MasterCommitLogMaxOffset &&
			st[1].Status.HAClientRuntimeInfo.MaxOffset == m.MasterCommitLogMaxOffset
	})
	m, s := st[0].Status, st[1].Status
	if st[0].Addr != g.master.addr || st[1].Addr != g.slave.addr || m.InSyncSlaveNums != 1 || !m.HAConnectionInfo[0].InSync ||
		m.HAConnectionInfo[0].Diff != 0 || m.MasterCommitLogMaxOffset <= 0 || s.Master || s.HAClientRuntimeInfo.MasterAddr == "" ||
		s.HAClientRuntimeInfo.LastReadTimestamp <= 0 {
		t.Fatalf("ha status master %+v slave %+v", m, s)
	}
	// Java's haStatus -c asks the masters only.
	tb := tableOf(t, cli(t, ns, "haStatus", "-c", "DefaultCluster"))
	if len(tb.rows) != 1 {
		t.Fatalf("haStatus -c rows %v", tb.rows)
	}
	if r := tb.rows[0]; r["MasterAddr"] != g.master.addr || r["SlaveNum"] != "1" || r["InSyncSlaveNum"] != "1" || r["Status"] != "OK" ||
		r["Diff"] != "0" || r["SlaveAckOffset"] != strconv.FormatInt(m.MasterCommitLogMaxOffset, 10) {
		t.Fatalf("haStatus -c %v", r)
	}

	var brs []admin.BrokerRuntime
	cliJSON(t, ns, &brs, "cluster", "list")
	if len(brs) != 2 || brs[1].LagBytes == nil || *brs[1].LagBytes != 0 || brs[1].BrokerRole != "SLAVE" || brs[0].BrokerRole != "SYNC_MASTER" ||
		brs[0].Runtime["haSlaveNum"] != "1" || brs[0].Runtime["haInSyncSlaveNum"] != "1" || brs[0].Runtime["haMaxSlaveDiff"] != "0" ||
		brs[1].Runtime["haMasterAddr"] != s.HAClientRuntimeInfo.MasterAddr {
		t.Fatalf("cluster list %+v", brs)
	}
}

// TestMqadminHAInterval: -i N repeats the command every N seconds until
// interrupted, as Java's -i does, one table per round.
func TestMqadminHAInterval(t *testing.T) {
	master := javaBroker(t, map[int32]string{
		wire.GetBrokerHAStatus: `{"haConnectionInfo":[],"inSyncSlaveNums":0,"master":true,"masterCommitLogMaxOffset":4096}`,
	})
	cmd := exec.Command(filepath.Join(binDir, "mqadmin"), "haStatus", "-b", master, "-i", "1")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	out := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, 30*time.Second, "three rounds", func() bool { return strings.Count(out.String(), "#MasterAddr") >= 3 })
	if secs := sections(out.String()); len(secs) < 3 || !strings.Contains(secs[1], "4096") {
		t.Fatalf("rounds:\n%s", out.String())
	}
}
