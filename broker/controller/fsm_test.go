package controller

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mqops/mqops/wire"
)

// cluster is three controller nodes on hashicorp's in-memory transport and
// stores, with a shared fake clock for heartbeat liveness.
type cluster struct {
	t     *testing.T
	nodes []*Controller
	trans []*raft.InmemTransport
	clock atomic.Int64
}

func newCluster(t *testing.T, n int, tweak func(*Options)) *cluster {
	t.Helper()
	cl := &cluster{t: t}
	cl.clock.Store(time.Unix(1_700_000_000, 0).UnixNano())
	var peers []Peer
	for i := range n {
		peers = append(peers, Peer{ID: "n" + strconv.Itoa(i), Addr: "inmem-" + strconv.Itoa(i)})
	}
	for i := range n {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(peers[i].Addr))
		cl.trans = append(cl.trans, tr)
	}
	for i := range n {
		for j := range n {
			if i != j {
				cl.trans[i].Connect(raft.ServerAddress(peers[j].Addr), cl.trans[j])
			}
		}
	}
	for i := range n {
		store := raft.NewInmemStore()
		opts := Options{Group: "group1", SelfID: peers[i].ID, Peers: peers, Transport: cl.trans[i],
			LogStore: store, Stable: store, Snapshots: raft.NewInmemSnapshotStore(), NotifyBrokerRoleChanged: true,
			// Scans are driven by the tests, not by tickers.
			ScanNotActiveBroker: time.Hour, ScanInactiveMaster: time.Hour,
			Clock: func() time.Time { return time.Unix(0, cl.clock.Load()) }}
		if tweak != nil {
			tweak(&opts)
		}
		c, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		cl.nodes = append(cl.nodes, c)
	}
	t.Cleanup(func() {
		for _, c := range cl.nodes {
			c.Close()
		}
	})
	return cl
}

func (cl *cluster) advance(d time.Duration) { cl.clock.Add(int64(d)) }

// leader waits for a ready leader among the live nodes.
func (cl *cluster) leader() *Controller {
	cl.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range cl.nodes {
			if c.IsLeader() {
				return c
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	cl.t.Fatal("no controller leader within 20s")
	return nil
}

type answer struct {
	code   int32
	remark string
	fields map[string]string
	body   []byte
}

func call(c *Controller, code int32, fields map[string]string, body []byte) answer {
	req := wire.NewRequest(code, fields, body)
	a := answer{}
	a.code, a.remark, a.fields, a.body = c.Handle(req)
	return a
}

func (cl *cluster) expect(a answer, code int32) answer {
	cl.t.Helper()
	if a.code != code {
		cl.t.Fatalf("code %d (%s) %q, want %d (%s)", a.code, wire.ResponseName(a.code), a.remark, code, wire.ResponseName(code))
	}
	return a
}

const bn = "broker-a"

func addr(id int64) string { return "127.0.0.1:309" + strconv.FormatInt(id, 10) + "1" }

// register runs the broker-id protocol (1012, 1013, 1003) for ids 1..n.
func (cl *cluster) register(c *Controller, n int64) {
	cl.t.Helper()
	for id := int64(1); id <= n; id++ {
		a := cl.expect(call(c, wire.ControllerGetNextBrokerID, map[string]string{"clusterName": "DefaultCluster", "brokerName": bn}, nil), wire.Success)
		if a.fields["nextBrokerId"] != strconv.FormatInt(id, 10) {
			cl.t.Fatalf("nextBrokerId %s, want %d", a.fields["nextBrokerId"], id)
		}
		ap := wire.ApplyBrokerIDHeader{ClusterName: "DefaultCluster", BrokerName: bn, AppliedBrokerID: id, RegisterCheckCode: addr(id) + ";1733480000000"}
		cl.expect(call(c, wire.ControllerApplyBrokerID, ap.Fields(), nil), wire.Success)
		rb := wire.RegisterBrokerToControllerHeader{ClusterName: "DefaultCluster", BrokerName: bn, BrokerID: id, BrokerAddress: addr(id)}
		cl.expect(call(c, wire.ControllerRegisterBroker, rb.Fields(), nil), wire.Success)
	}
}

// beat sends a heartbeat for id to every node, as brokers do.
func (cl *cluster) beat(id int64, epoch int32, maxOff int64, priority int32) {
	h := wire.BrokerHeartbeatHeader{ClusterName: "DefaultCluster", BrokerAddr: addr(id), BrokerName: bn, BrokerID: id, HasBrokerID: true,
		Epoch: epoch, MaxOffset: maxOff, ConfirmOffset: maxOff, HeartbeatTimeoutMillis: 10_000, ElectionPriority: priority}
	for _, c := range cl.nodes {
		cl.expect(call(c, wire.BrokerHeartbeat, h.Fields(), nil), wire.Success)
	}
}

func electReq(c *Controller, id int64, designate bool) answer {
	h := wire.ElectMasterHeader{ClusterName: "DefaultCluster", BrokerName: bn, BrokerID: id, DesignateElect: designate}
	return call(c, wire.ControllerElectMaster, h.Fields(), nil)
}

func alter(c *Controller, master int64, epoch, ssEpoch int32, set ...int64) answer {
	h := wire.AlterSyncStateSetHeader{BrokerName: bn, MasterBrokerID: master, MasterEpoch: epoch}
	return call(c, wire.ControllerAlterSyncStateSet, h.Fields(), wire.Marshal(&wire.SyncStateSet{SyncStateSet: set, SyncStateSetEpoch: ssEpoch}))
}

func replicaInfo(cl *cluster, c *Controller) (map[string]string, wire.SyncStateSet) {
	cl.t.Helper()
	a := cl.expect(call(c, wire.ControllerGetReplicaInfo, map[string]string{"brokerName": bn}, nil), wire.Success)
	var s wire.SyncStateSet
	if err := json.Unmarshal(a.body, &s); err != nil {
		cl.t.Fatal(err)
	}
	return a.fields, s
}

func TestRegisterAndBrokerIDs(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	// A new set must start at id 1.
	ap := wire.ApplyBrokerIDHeader{ClusterName: "DefaultCluster", BrokerName: bn, AppliedBrokerID: 2, RegisterCheckCode: "x:1;1"}
	cl.expect(call(l, wire.ControllerApplyBrokerID, ap.Fields(), nil), wire.ControllerBrokerIDInvalid)
	rb := wire.RegisterBrokerToControllerHeader{ClusterName: "DefaultCluster", BrokerName: bn, BrokerID: 1, BrokerAddress: addr(1)}
	cl.expect(call(l, wire.ControllerRegisterBroker, rb.Fields(), nil), wire.ControllerBrokerNeedToBeRegistered)
	cl.register(l, 2)
	// Re-applying an id with its own check code is idempotent (a broker
	// restarting between its temp file and its identity file); another
	// broker's code is refused.
	ap = wire.ApplyBrokerIDHeader{ClusterName: "DefaultCluster", BrokerName: bn, AppliedBrokerID: 2, RegisterCheckCode: addr(2) + ";1733480000000"}
	cl.expect(call(l, wire.ControllerApplyBrokerID, ap.Fields(), nil), wire.Success)
	ap.RegisterCheckCode = "10.0.0.9:30911;1733480000001"
	cl.expect(call(l, wire.ControllerApplyBrokerID, ap.Fields(), nil), wire.ControllerBrokerIDInvalid)
	// An unknown id of a known set must register first.
	rb.BrokerID = 7
	cl.expect(call(l, wire.ControllerRegisterBroker, rb.Fields(), nil), wire.ControllerBrokerNeedToBeRegistered)
	// A changed address is recorded.
	rb = wire.RegisterBrokerToControllerHeader{ClusterName: "DefaultCluster", BrokerName: bn, BrokerID: 2, BrokerAddress: "127.0.0.1:40000"}
	a := cl.expect(call(l, wire.ControllerRegisterBroker, rb.Fields(), nil), wire.Success)
	if _, ok := a.fields["masterBrokerId"]; ok {
		t.Fatalf("no master yet, got %v", a.fields)
	}
	if string(a.body) != `{"syncStateSet":[],"syncStateSetEpoch":0}` {
		t.Fatalf("register body %s", a.body)
	}
	if b := l.fsm.get(bn); b.Replicas[2].Addr != "127.0.0.1:40000" || b.NextBrokerID != 3 {
		t.Fatalf("state %+v", b)
	}
	// Followers refuse writes and reads with 2007 and name the leader in 1005.
	for _, c := range cl.nodes {
		if c == l {
			continue
		}
		cl.expect(call(c, wire.ControllerRegisterBroker, rb.Fields(), nil), wire.ControllerNotLeader)
		cl.expect(call(c, wire.ControllerGetReplicaInfo, map[string]string{"brokerName": bn}, nil), wire.ControllerNotLeader)
		md := cl.expect(call(c, wire.ControllerGetMetadataInfo, nil, nil), wire.Success)
		if md.fields["controllerLeaderId"] != l.opts.SelfID || md.fields["isLeader"] != "false" || md.fields["group"] != "group1" ||
			md.fields["peers"] != "n0:inmem-0;n1:inmem-1;n2:inmem-2;" {
			t.Fatalf("follower metadata %v", md.fields)
		}
	}
	if md := call(l, wire.ControllerGetMetadataInfo, nil, nil); md.fields["isLeader"] != "true" {
		t.Fatalf("leader metadata %v", md.fields)
	}
}

func TestElectFirstMasterAndAlterSyncStateSet(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	cl.expect(electReq(l, 1, false), wire.ControllerBrokerNeedToBeRegistered)
	cl.register(l, 3)
	cl.beat(1, 0, 0, 0)
	cl.beat(2, 0, 0, 0)

	// The first broker to ask becomes the first master.
	a := cl.expect(electReq(l, 1, false), wire.Success)
	if a.fields["masterBrokerId"] != "1" || a.fields["masterEpoch"] != "1" || a.fields["syncStateSetEpoch"] != "1" || a.fields["masterAddress"] != addr(1) {
		t.Fatalf("elect fields %v", a.fields)
	}
	var body wire.ElectMasterResponseBody
	if err := wire.UnmarshalLenient(a.body, &body); err != nil || len(body.SyncStateSet) != 1 || body.SyncStateSet[0] != 1 ||
		body.BrokerMemberGroup.BrokerAddrs[3] != addr(3) || body.BrokerMemberGroup.Cluster != "DefaultCluster" {
		t.Fatalf("elect body %s %v", a.body, err)
	}
	// The second asks while the master lives: 2011 with the current master.
	a = cl.expect(electReq(l, 2, false), wire.ControllerMasterStillExist)
	if a.fields["masterBrokerId"] != "1" || a.fields["masterEpoch"] != "1" {
		t.Fatalf("still-exist fields %v", a.fields)
	}

	// Every fencing code of ALTER_SYNC_STATE_SET, in Java's order.
	cl.expect(alter(l, 1, 1, 1, 1), wire.ControllerAlterSyncStateSetFailed)    // same set
	cl.expect(alter(l, 2, 1, 1, 1, 2), wire.ControllerInvalidMaster)           // not the master
	cl.expect(alter(l, 1, 0, 1, 1, 2), wire.ControllerFencedMasterEpoch)       // stale master epoch
	cl.expect(alter(l, 1, 1, 0, 1, 2), wire.ControllerFencedSyncStateSetEpoch) // stale set epoch
	cl.expect(alter(l, 1, 1, 1, 1, 9), wire.ControllerInvalidReplicas)         // unregistered member
	cl.expect(alter(l, 1, 1, 1, 1, 3), wire.ControllerBrokerNotAlive)          // 3 never heartbeat
	cl.expect(alter(l, 1, 1, 1, 2), wire.ControllerAlterSyncStateSetFailed)    // drops the master
	h := wire.AlterSyncStateSetHeader{BrokerName: "nope", MasterBrokerID: 1, MasterEpoch: 1}
	cl.expect(call(l, wire.ControllerAlterSyncStateSet, h.Fields(), []byte(`{"syncStateSet":[1],"syncStateSetEpoch":1}`)), wire.ControllerAlterSyncStateSetFailed)

	a = cl.expect(alter(l, 1, 1, 1, 2, 1), wire.Success)
	if a.fields["newSyncStateSetEpoch"] != "2" || string(a.body) != `{"syncStateSet":[1,2],"syncStateSetEpoch":2}` {
		t.Fatalf("alter answer %v %s", a.fields, a.body)
	}
	fields, set := replicaInfo(cl, l)
	if fields["masterBrokerId"] != "1" || fields["masterEpoch"] != "1" || set.SyncStateSetEpoch != 2 || len(set.SyncStateSet) != 2 {
		t.Fatalf("replica info %v %+v", fields, set)
	}
	// Malformed input is refused with a clear error.
	bad := call(l, wire.ControllerAlterSyncStateSet, map[string]string{"brokerName": bn, "masterBrokerId": "one", "masterEpoch": "1"}, nil)
	if bad.code != wire.SystemError || bad.remark == "" {
		t.Fatalf("bad header answered %d %q", bad.code, bad.remark)
	}
	bad = call(l, wire.ControllerAlterSyncStateSet, h.Fields(), []byte(`{"syncStateSet":`))
	if bad.code != wire.SystemError {
		t.Fatalf("bad body answered %d %q", bad.code, bad.remark)
	}
	hb := call(l, wire.BrokerHeartbeat, map[string]string{"clusterName": "c", "brokerAddr": "a", "brokerName": bn}, nil)
	cl.expect(hb, wire.ControllerInvalidRequest)
}

// setup gives broker-a ids 1..3, master 1, SyncStateSet {1,2} (3 out).
func setupGroup(cl *cluster, l *Controller) {
	cl.register(l, 3)
	cl.beat(1, 1, 100, 0)
	cl.beat(2, 1, 100, 0)
	cl.beat(3, 1, 100, 0)
	cl.expect(electReq(l, 1, false), wire.Success)
	cl.expect(alter(l, 1, 1, 1, 1, 2), wire.Success)
}

func TestElectionFromSyncStateSet(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	setupGroup(cl, l)
	// The master (1) goes silent; 2 and 3 keep beating. 3 has more data but
	// is not in the SyncStateSet, so 2 is the only clean choice.
	cl.advance(11 * time.Second)
	cl.beat(2, 1, 100, 0)
	cl.beat(3, 1, 999, 0)
	a := cl.expect(electReq(l, -1, false), wire.Success)
	if a.fields["masterBrokerId"] != "2" || a.fields["masterEpoch"] != "2" || a.fields["syncStateSetEpoch"] != "3" {
		t.Fatalf("elected %v", a.fields)
	}
	// The old master comes back and reports its stale epoch: fenced.
	cl.beat(1, 1, 200, 0)
	cl.expect(alter(l, 1, 1, 2, 1), wire.ControllerInvalidMaster)
	cl.expect(alter(l, 2, 1, 3, 2, 1), wire.ControllerFencedMasterEpoch)
	cl.expect(alter(l, 2, 2, 3, 2, 1), wire.Success)
}

func TestElectPolicyOrder(t *testing.T) {
	live := []liveInfo{
		{ID: 1, Epoch: 3, MaxOff: 500, Priority: 5},
		{ID: 2, Epoch: 4, MaxOff: 100, Priority: 9},
		{ID: 3, Epoch: 4, MaxOff: 100, Priority: 1},
		{ID: 4, Epoch: 4, MaxOff: 90, Priority: 0},
	}
	if got := elect([]int64{1, 2, 3, 4}, live, nil, nil); *got != 3 {
		t.Fatalf("epoch desc, offset desc, priority asc: got %d, want 3", *got)
	}
	if got := elect([]int64{1, 2, 4}, live, nil, nil); *got != 2 {
		t.Fatalf("got %d, want 2", *got)
	}
	old := int64(4)
	if got := elect([]int64{1, 2, 3, 4}, live, &old, nil); *got != 4 {
		t.Fatalf("alive old master must stay, got %d", *got)
	}
	dead := int64(9)
	if got := elect([]int64{1, 2, 3, 4}, live, nil, &dead); got != nil {
		t.Fatalf("a dead designated id elects nobody, got %d", *got)
	}
	if got := elect([]int64{7}, live, nil, nil); got != nil {
		t.Fatalf("no live candidate, got %d", *got)
	}
}

func TestUncleanElection(t *testing.T) {
	for _, unclean := range []bool{false, true} {
		t.Run("unclean="+strconv.FormatBool(unclean), func(t *testing.T) {
			cl := newCluster(t, 3, func(o *Options) { o.EnableElectUncleanMaster = unclean })
			l := cl.leader()
			cl.register(l, 2)
			cl.beat(1, 1, 100, 0)
			cl.beat(2, 1, 50, 0)
			cl.expect(electReq(l, 1, false), wire.Success) // SyncStateSet {1}
			cl.advance(11 * time.Second)
			cl.beat(2, 1, 50, 0)
			if !unclean {
				// A broker asking gets 2012 and nothing changes.
				cl.expect(electReq(l, 2, false), wire.ControllerElectMasterFailed)
				if f, _ := replicaInfo(cl, l); f["masterEpoch"] != "1" {
					t.Fatalf("failed broker election changed state: %v", f)
				}
				// The controller asking records "no master" with a new epoch.
				cl.expect(electReq(l, -1, false), wire.ControllerMasterNotAvailable)
				f, set := replicaInfo(cl, l)
				if _, ok := f["masterBrokerId"]; ok || f["masterEpoch"] != "2" || len(set.SyncStateSet) != 1 || set.SyncStateSet[0] != 1 {
					t.Fatalf("after failed election %v %+v", f, set)
				}
				return
			}
			a := cl.expect(electReq(l, -1, false), wire.Success)
			if a.fields["masterBrokerId"] != "2" {
				t.Fatalf("unclean election chose %v", a.fields)
			}
		})
	}
}

func TestDesignatedElect(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	setupGroup(cl, l)
	// 3 is alive but outside the SyncStateSet: not eligible.
	cl.expect(electReq(l, 3, true), wire.ControllerElectMasterFailed)
	// 2 is in the set: the live master hands over.
	a := cl.expect(electReq(l, 2, true), wire.Success)
	if a.fields["masterBrokerId"] != "2" || a.fields["masterEpoch"] != "2" {
		t.Fatalf("designated %v", a.fields)
	}
	// Designating the current master changes nothing.
	cl.expect(electReq(l, 2, true), wire.ControllerMasterStillExist)
}

func TestSyncStateDataAndClean(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	setupGroup(cl, l)
	a := cl.expect(call(l, wire.ControllerGetSyncStateData, nil, []byte(`["broker-a","unknown"]`)), wire.Success)
	var info wire.BrokerReplicasInfo
	if err := json.Unmarshal(a.body, &info); err != nil {
		t.Fatal(err)
	}
	ri := info.ReplicasInfoTable[bn]
	if len(info.ReplicasInfoTable) != 1 || ri == nil || *ri.MasterBrokerID != 1 || len(ri.InSyncReplicas) != 2 || len(ri.NotInSyncReplicas) != 1 ||
		ri.NotInSyncReplicas[0].BrokerID != 3 || !ri.NotInSyncReplicas[0].Alive {
		t.Fatalf("sync state data %s", a.body)
	}
	// A living replica is not cleaned unless asked to.
	clean := wire.CleanBrokerDataHeader{ClusterName: "DefaultCluster", BrokerName: bn, IDsToClean: "3"}
	cl.expect(call(l, wire.CleanBrokerData, clean.Fields(), nil), wire.ControllerInvalidCleanBrokerMetadata)
	clean.CleanLivingBroker = true
	cl.expect(call(l, wire.CleanBrokerData, clean.Fields(), nil), wire.Success)
	if b := l.fsm.get(bn); len(b.Replicas) != 2 {
		t.Fatalf("after clean %+v", b)
	}
}

type memSink struct {
	bytes.Buffer
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	setupGroup(cl, l)
	snap, err := l.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	f := newFSM()
	if err := f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(l.fsm.all())
	got, _ := json.Marshal(f.all())
	if !bytes.Equal(want, got) || !bytes.Contains(got, []byte(`"masterEpoch":1`)) {
		t.Fatalf("restored\n%s\nwant\n%s", got, want)
	}
	if err := f.Restore(io.NopCloser(bytes.NewReader([]byte("{garbage")))); err == nil {
		t.Fatal("garbage snapshot restored")
	}
	// Raft's own snapshot path works on the live node too.
	if err := l.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
}

func TestLeaderChangeKeepsState(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	setupGroup(cl, l)
	before, set := replicaInfo(cl, l)
	l.Close()
	var rest []*Controller
	for _, c := range cl.nodes {
		if c != l {
			rest = append(rest, c)
		}
	}
	cl.nodes = rest
	nl := cl.leader()
	if nl == l {
		t.Fatal("closed node still leads")
	}
	after, set2 := replicaInfo(cl, nl)
	if before["masterBrokerId"] != after["masterBrokerId"] || before["masterEpoch"] != after["masterEpoch"] ||
		set.SyncStateSetEpoch != set2.SyncStateSetEpoch || len(set2.SyncStateSet) != 2 {
		t.Fatalf("before %v %+v after %v %+v", before, set, after, set2)
	}
	// The new leader keeps writing: a stale-epoch request is still fenced.
	cl.expect(alter(nl, 1, 0, 2, 1), wire.ControllerFencedMasterEpoch)
	cl.expect(alter(nl, 1, 1, 2, 1), wire.Success)
	l.Close() // idempotent for Cleanup
	cl.nodes = append(cl.nodes, l)
}

// Two masters' worth of concurrent ALTER_SYNC_STATE_SET with the same
// set epoch: validation happens in log order inside Apply, so exactly one
// wins and the other is fenced by the epoch the first one moved.
func TestConcurrentAlterIsSerialisedByTheLog(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	setupGroup(cl, l) // set {1,2}, set epoch 2
	codes := make(chan int32, 2)
	for _, set := range [][]int64{{1}, {1, 3}} {
		go func() { codes <- alter(l, 1, 1, 2, set...).code }()
	}
	a, b := <-codes, <-codes
	if min(a, b) != wire.Success || max(a, b) != wire.ControllerFencedSyncStateSetEpoch {
		t.Fatalf("codes %d and %d, want one 0 and one 2001", a, b)
	}
	if _, set := replicaInfo(cl, l); set.SyncStateSetEpoch != 3 {
		t.Fatalf("set %+v", set)
	}
}

// GET/UPDATE_CONTROLLER_CONFIG: node-local, black-listed paths refused,
// enableElectUncleanMaster switchable at run time.
func TestControllerConfigAtRunTime(t *testing.T) {
	cl := newCluster(t, 3, nil)
	l := cl.leader()
	got := string(cl.expect(call(l, wire.GetControllerConfig, nil, nil), wire.Success).body)
	for _, want := range []string{"controllerDLegerGroup=group1\n", "controllerDLegerPeers=n0-inmem-0;n1-inmem-1;n2-inmem-2\n", "enableElectUncleanMaster=false\n"} {
		if !strings.Contains(got, want) {
			t.Fatalf("config lacks %q:\n%s", want, got)
		}
	}
	cl.expect(call(l, wire.UpdateControllerConfig, nil, []byte("controllerStorePath=/tmp/x\n")), wire.NoPermission)
	cl.expect(call(l, wire.UpdateControllerConfig, nil, []byte("enableElectUncleanMaster=maybe\n")), wire.SystemError)

	cl.register(l, 2)
	cl.beat(1, 1, 100, 0)
	cl.beat(2, 1, 50, 0)
	cl.expect(electReq(l, 1, false), wire.Success)
	cl.advance(11 * time.Second)
	cl.beat(2, 1, 50, 0)
	cl.expect(electReq(l, 2, false), wire.ControllerElectMasterFailed)
	cl.expect(call(l, wire.UpdateControllerConfig, nil, []byte("enableElectUncleanMaster=true\nfooBar=1\n")), wire.Success)
	if a := cl.expect(electReq(l, 2, false), wire.Success); a.fields["masterBrokerId"] != "2" {
		t.Fatalf("unclean election after update: %v", a.fields)
	}
}

// GET_BROKER_RUNTIME_INFO on a controller: its identity and role, and no
// ACL counters without aclEnable (e2e TestZabbixControllerACL counts them
// on a real mqcontroller with ACL on).
func TestRuntimeInfo(t *testing.T) {
	cl := newCluster(t, 1, nil)
	l := cl.leader()
	var kv wire.KVTable
	if err := json.Unmarshal(cl.expect(call(l, wire.GetBrokerRuntimeInfo, nil, nil), wire.Success).body, &kv); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"controllerGroup": "group1", "controllerSelfId": "n0", "isLeader": "true", "aclEnable": "false"} {
		if kv.Table[k] != v {
			t.Errorf("%s = %q, want %q", k, kv.Table[k], v)
		}
	}
	if _, ok := kv.Table["acl_denied_total"]; ok {
		t.Errorf("ACL counters without aclEnable: %v", kv.Table)
	}
}
