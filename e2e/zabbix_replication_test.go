package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/zabbix/probe"
)

// TestZabbixReplication asks a real zabbix_agentd for the replication
// keys of userparameter_mqops.conf against a real SYNC_MASTER and SLAVE
// pair and a real mqcontroller (one peer) that holds a controller-mode
// broker set: the slave's lag after catch-up, the in-sync count, the
// SyncStateSet and master epoch, the controller leader; then kills the
// slave (no in-sync slave) and the controller (no leader).
func TestZabbixReplication(t *testing.T) {
	agentd := agentBinary(t, "zabbix_agentd")
	g := startHAGroup(t, "SYNC_MASTER")
	ns := g.ns.addr
	ctrlProc, ctrls := startOneController(t)
	// A controller-mode set played with RocketMQ 5's broker requests (the
	// classic pair above does not talk to controllers): registered,
	// elected, SyncStateSet widened to both replicas.
	m := newReplica(t, ctrls, "DefaultCluster", "broker-c", "127.0.0.1:1")
	s := newReplica(t, ctrls, "DefaultCluster", "broker-c", "127.0.0.1:2")
	m.register()
	s.register()
	m.electSelf()
	// The controller widens the set only once s's oneway heartbeat arrived.
	waitFor(t, 15*time.Second, "broker-c's SyncStateSet widened", func() bool {
		h := wire.AlterSyncStateSetHeader{BrokerName: m.name, MasterBrokerID: m.id, MasterEpoch: m.masterEpoch}
		body := wire.Marshal(&wire.SyncStateSet{SyncStateSet: []int64{m.id, s.id}, SyncStateSetEpoch: 1})
		resp, err := m.cl.Invoke(ctrls[0], wire.NewRequest(wire.ControllerAlterSyncStateSet, h.Fields(), body), 3*time.Second)
		return err == nil && resp.Code == wire.Success
	})

	cli(t, ns, "topic", "create", "-t", "ZbxHA", "-b", g.master.addr, "--queues", "2")
	waitRoute(t, ns, "ZbxHA", 1)
	cli(t, ns, "message", "send", "-t", "ZbxHA", "--body", "replicated", "--count", "50")

	a := startAgent(t, agentd)
	key := `rocketmq.replication.get["` + ns + `","DefaultCluster","` + strings.Join(ctrls, ",") + `"]`
	var st probe.ReplicationStatus
	get := func() {
		st = probe.ReplicationStatus{}
		a.get(t, key, &st)
	}
	slave := func() *probe.Replica { return st.Replicas["broker-a/1"] }
	waitFor(t, 30*time.Second, "the slave caught up in rocketmq.replication.get", func() bool {
		get()
		r := slave()
		return st.Sets["broker-a"] != nil && st.Sets["broker-a"].InSync == 1 && r != nil && r.LagBytes != nil && *r.LagBytes == 0
	})
	set, r := st.Sets["broker-a"], slave()
	if st.Up != 1 || set.MasterUp != 1 || set.MasterAddr != g.master.addr || set.MasterRole != "SYNC_MASTER" || set.Slaves != 1 ||
		set.NoInSync != 0 || set.MaxLagBytes != 0 {
		t.Fatalf("set broker-a %+v", set)
	}
	if r.Addr != g.slave.addr || r.Up != 1 || r.Connected != 1 || r.InSync != 1 || r.LagSeconds == nil || *r.LagSeconds != 0 || r.Stalled != 0 {
		t.Fatalf("slave broker-a/1 %+v", r)
	}
	c := st.Controller
	if c == nil || c.Configured != 1 || c.Answered != 1 || c.Leaders != 1 || c.LeaderPresent != 1 || c.LeaderAddr != ctrls[0] || c.Error != "" {
		t.Fatalf("controller %+v", c)
	}
	bc := st.Sets["broker-c"]
	if bc != nil {
		t.Fatalf("broker-c is not registered with the name server, yet listed: %+v", bc)
	}

	// The controller's view of a set the name servers list: register
	// broker-c's master with the name server too.
	registerWithNamesrv(t, ns, "DefaultCluster", map[string]string{"broker-c": "127.0.0.1:1"})
	waitFor(t, 15*time.Second, "broker-c's SyncStateSet and epoch", func() bool {
		get()
		bc = st.Sets["broker-c"]
		return bc != nil && bc.SyncStateSetSize != nil && bc.MasterEpoch != nil
	})
	if *bc.SyncStateSetSize != 2 || *bc.MasterEpoch != int64(m.masterEpoch) || bc.MasterUp != 0 {
		t.Fatalf("broker-c %+v (epoch %d)", bc, m.masterEpoch)
	}
	// A failover: the slave is elected, the epoch the template's change()
	// trigger watches grows.
	ctl(t, "electMaster", "-a", ctrls[0], "-c", "DefaultCluster", "-bn", "broker-c", "-b", strconv.FormatInt(s.id, 10))
	waitFor(t, 15*time.Second, "broker-c's epoch after the election", func() bool {
		get()
		return *st.Sets["broker-c"].MasterEpoch > int64(m.masterEpoch)
	})

	// Discovery: one row per slave, one per broker set.
	var rows []map[string]string
	a.get(t, `rocketmq.cluster.replica.discovery["`+ns+`","DefaultCluster"]`, &rows)
	if got := lldSet(t, rows, "{#BROKER}", "{#BROKER.ID}", "{#BROKER.ADDR}"); strings.Join(got, ";") != "broker-a|1|"+g.slave.addr {
		t.Fatalf("replica discovery %v", got)
	}
	a.get(t, `rocketmq.cluster.brokerset.discovery["`+ns+`","DefaultCluster"]`, &rows)
	if got := lldSet(t, rows, "{#BROKER}"); strings.Join(got, ";") != "broker-a;broker-c" {
		t.Fatalf("broker set discovery %v", got)
	}

	// The slave frozen: a send reaches the master's commit log (not
	// SEND_OK on a SYNC_MASTER without the slave's ack), the master's
	// connection stays, its diff grows and nothing flows: lag in bytes,
	// stalled, no catch-up time. Thawed, the slave catches up to 0 again.
	before := *slave().LagBytes
	if err := g.slave.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = g.slave.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer thaw()
	runCLI(t, nil, "message", "send", "-t", "ZbxHA", "--body", "behind", "--count", "1", "-n", ns)
	waitFor(t, 30*time.Second, "the frozen slave stalled and behind", func() bool {
		get()
		r := slave()
		return r != nil && r.Connected == 1 && r.LagBytes != nil && *r.LagBytes > before && r.Stalled == 1 && r.LagSeconds == nil &&
			st.Sets["broker-a"].MaxLagBytes == *r.LagBytes
	})
	thaw()
	waitFor(t, 30*time.Second, "the thawed slave caught up", func() bool {
		get()
		r := slave()
		return r != nil && r.LagBytes != nil && *r.LagBytes == 0 && r.Stalled == 0 && r.LagSeconds != nil && *r.LagSeconds == 0
	})

	// The slave dies: the master has no in-sync slave left.
	g.slave.kill()
	waitFor(t, 30*time.Second, "no in-sync slave of broker-a", func() bool {
		get()
		set := st.Sets["broker-a"]
		return set != nil && set.InSync == 0 && set.NoInSync == 1
	})
	if r := slave(); r != nil && (r.Connected != 0 || r.Up != 0 || r.LagSeconds != nil) {
		t.Fatalf("dead slave %+v", r)
	}

	// The controller dies: no leader, and its error says why; the rest
	// still answers.
	ctrlProc.kill()
	start := time.Now()
	get()
	took := time.Since(start)
	c = st.Controller
	if c == nil || c.LeaderPresent != 0 || c.Answered != 0 || c.Configured != 1 || !strings.Contains(c.Error, ctrls[0]) || st.Up != 1 ||
		st.Sets["broker-a"] == nil || st.Sets["broker-c"] == nil || st.Sets["broker-c"].SyncStateSetSize != nil {
		t.Fatalf("after the controller died: %+v controller %+v", st, c)
	}
	t.Logf("replication with the controller down answered in %v", took)
}

// startOneController runs a one-peer mqcontroller group (the small setup
// the controller supports) and returns it once it leads.
func startOneController(t *testing.T) (*proc, []string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	dir := t.TempDir()
	conf := filepath.Join(dir, "controller.conf")
	text := fmt.Sprintf("controllerDLegerGroup=group1\ncontrollerDLegerPeers=n0-%s\ncontrollerDLegerSelfId=n0\n"+
		"controllerStorePath=%s\nlogDir=%s\n", addr, filepath.Join(dir, "store"), filepath.Join(dir, "logs"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, controllerReady, "mqcontroller", "-c", conf)
	waitLeader(t, []string{addr})
	return p, []string{addr}
}

// TestZabbixReplicationControllerMode: a real controller-mode broker set
// (two brokers, one name server with the embedded controller) through a
// real zabbix_agentd: SyncStateSet of 2, one in-sync slave with no lag,
// the master epoch; killing the master elects the slave, and the epoch the
// failover trigger watches grows. (Whether the name servers already list
// the promoted broker as id 0 is the broker's business, not checked here.)
func TestZabbixReplicationControllerMode(t *testing.T) {
	agentd := agentBinary(t, "zabbix_agentd")
	nss, ctl := startControllerNamesrvs(t, 1)
	keys := []string{"brokerClusterName=DefaultCluster", "brokerName=broker-a", "brokerId=-1", "brokerRole=SLAVE",
		"enableControllerMode=true", "controllerAddr=" + ctl[0], "allAckInSyncStateSet=true",
		"syncBrokerMetadataPeriod=1000", "checkSyncStateSetPeriod=1000", "brokerHeartbeatInterval=500",
		"controllerHeartBeatTimeoutMills=3000", "flushDiskType=ASYNC_FLUSH"}
	procs := []*proc{startBroker(t, newBrokerDir(t), nss[0], keys...), startBroker(t, newBrokerDir(t), nss[0], keys...)}
	a := startAgent(t, agentd)
	key := `rocketmq.replication.get["` + nss[0] + `","DefaultCluster","` + ctl[0] + `"]`
	var st probe.ReplicationStatus
	var set *probe.ReplicaSet
	var rep *probe.Replica
	get := func() {
		st = probe.ReplicationStatus{}
		a.get(t, key, &st)
		set, rep = st.Sets["broker-a"], nil
		for _, r := range st.Replicas {
			rep = r
		}
	}
	waitFor(t, 60*time.Second, "a master with its slave in the SyncStateSet, caught up", func() bool {
		get()
		return set != nil && set.SyncStateSetSize != nil && *set.SyncStateSetSize == 2 && set.InSync == 1 && set.MasterEpoch != nil &&
			len(st.Replicas) == 1 && rep.LagBytes != nil && *rep.LagBytes == 0 && rep.Connected == 1
	})
	if set.NoInSync != 0 || set.MasterUp != 1 || st.Controller == nil || st.Controller.LeaderPresent != 1 || rep.InSync != 1 {
		t.Fatalf("controller-mode set %+v controller %+v slave %+v", set, st.Controller, rep)
	}
	epoch, masterAddr := *set.MasterEpoch, set.MasterAddr
	for _, p := range procs {
		if p.addr == masterAddr {
			p.kill()
		}
	}
	waitFor(t, 60*time.Second, "the slave elected, with a new epoch and no in-sync slave", func() bool {
		get()
		return set != nil && set.MasterEpoch != nil && *set.MasterEpoch > epoch &&
			set.InSync == 0 && set.NoInSync == 1 && set.SyncStateSetSize != nil && *set.SyncStateSetSize == 1
	})
}
