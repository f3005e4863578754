package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mqops/mqops/broker/namesrv"
	"github.com/mqops/mqops/broker/slavesync"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// slaveOverrides make a broker the slave of broker-a.
var slaveOverrides = map[string]string{"brokerRole": "SLAVE", "brokerId": "1"}

func merged(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// reopenAsSlave fills a store as a master (n messages in queue 0 of topic,
// group committed nowhere), closes it and starts a slave on the same
// directory: a slave's store with data, as replication will give it.
func reopenAsSlave(t *testing.T, topic string, n int, overrides map[string]string) (*Broker, *peer) {
	t.Helper()
	dir := t.TempDir()
	m := openBroker(t, dir, nil)
	m.Start()
	mp := newPeer(t, m, nil)
	mp.createTopic(topic, 1)
	for i := 0; i < n; i++ {
		mp.send(topic, 0, "", "m"+strconv.Itoa(i))
	}
	waitFor(t, func() bool { return m.store.MaxOffset(topic, 0) == int64(n) })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	s := openBroker(t, dir, merged(slaveOverrides, overrides))
	s.Start()
	t.Cleanup(func() { _ = s.Close() })
	return s, newPeer(t, s, nil)
}

// TestSlaveRefusesWrites: every write request gets the answer a Java 4.9.8
// slave gives, and none of them touches the store or the tables; a
// consumer offset is accepted.
func TestSlaveRefusesWrites(t *testing.T) {
	s, p := reopenAsSlave(t, "SlaveT", 1, nil)
	phy := s.store.MaxPhyOffset()
	const sendRemark = "service not available now. It may be caused by one of the following reasons: the broker's disk is full [CL: "
	for _, code := range []int32{wire.SendMessage, wire.SendMessageV2, wire.SendBatchMessage} {
		fields := sendFields("SlaveT", 0, "")
		if code == wire.SendMessage {
			fields = map[string]string{"producerGroup": "PG", "topic": "SlaveT", "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
				"queueId": "0", "sysFlag": "0", "bornTimestamp": "1", "flag": "0"}
		}
		resp := p.expect(wire.ServiceNotAvailable, sendRemark, code, fields, []byte("x"))
		if !strings.Contains(string(resp.Remark), "], messages are put to the slave, message store has been shut down, etc.") {
			t.Errorf("send %d remark %q", code, resp.Remark)
		}
	}
	// Sends to an unknown topic are refused too, without creating it.
	p.expect(wire.ServiceNotAvailable, sendRemark, wire.SendMessageV2, sendFields("NewOnSlave", 0, ""), []byte("x"))
	if s.topics.Lookup("NewOnSlave") != nil {
		t.Error("a refused send created its topic")
	}
	p.expect(wire.SystemError, "SERVICE_NOT_AVAILABLE", wire.ConsumerSendMsgBack,
		map[string]string{"group": "CG", "offset": "0", "delayLevel": "0", "originMsgId": "x", "originTopic": "SlaveT"}, nil)
	resp := p.call(wire.EndTransaction, map[string]string{"producerGroup": "PG", "tranStateTableOffset": "0", "commitLogOffset": "0", "commitOrRollback": "8"}, nil)
	if resp.Code != wire.SlaveNotAvailable {
		t.Errorf("END_TRANSACTION: %s %q, want SLAVE_NOT_AVAILABLE", wire.ResponseName(resp.Code), resp.Remark)
	}
	const adminRemark = "Can't modify topic or subscription group from slave broker, please execute it from master broker."
	p.expect(wire.SystemError, adminRemark, wire.UpdateAndCreateTopic, map[string]string{"topic": "X", "readQueueNums": "1", "writeQueueNums": "1", "perm": "6"}, nil)
	p.expect(wire.SystemError, adminRemark, wire.DeleteTopicInBroker, map[string]string{"topic": "SlaveT"}, nil)
	p.expect(wire.SystemError, adminRemark, wire.UpdateAndCreateSubGroup, nil, wire.Marshal(wire.NewSubscriptionGroupConfig("G1")))
	p.expect(wire.SystemError, adminRemark, wire.DeleteSubGroup, map[string]string{"groupName": "CG"}, nil)
	if s.topics.Lookup("X") != nil || s.topics.Lookup("SlaveT") == nil || s.groups.Lookup("G1") != nil {
		t.Error("a refused admin request changed the tables")
	}
	if got := s.store.MaxPhyOffset(); got != phy {
		t.Errorf("commit log grew from %d to %d on a slave", phy, got)
	}
	// The store itself refuses messages; that is no failure to report.
	if s.store.Role() != store.RoleSlave {
		t.Error("the slave's store is not a slave store")
	}
	var rt wire.KVTable
	if err := json.Unmarshal(p.expect(wire.Success, "", wire.GetBrokerRuntimeInfo, nil, nil).Body, &rt); err != nil || rt.Table["storeState"] != "OK" {
		t.Errorf("runtime storeState %q (%s) %v", rt.Table["storeState"], rt.Table["storeError"], err)
	}
	p.expect(wire.Success, "", wire.UpdateConsumerOffset, map[string]string{"consumerGroup": "CG", "topic": "SlaveT", "queueId": "0", "commitOffset": "1"}, nil)
	if off, ok := s.offsets.Query("CG", "SlaveT", 0); !ok || off != 1 {
		t.Errorf("offset committed on the slave: %d %v", off, ok)
	}
}

// TestSlaveDoesNotRunWritingServices: the delay, timer and transaction
// loops run on a master and not on a slave; the metadata sync the other
// way round.
func TestSlaveDoesNotRunWritingServices(t *testing.T) {
	loops := []string{"schedule.(*Levels).loop", "schedule.(*Timers).loop", "transaction.(*Service).loop"}
	m := openBroker(t, t.TempDir(), nil)
	m.Start()
	waitFor(t, func() bool {
		g := projectGoroutines()
		for _, l := range loops {
			if !strings.Contains(g, l) {
				return false
			}
		}
		return !strings.Contains(g, "slavesync.(*Syncer).Run")
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	s := startBroker(t, slaveOverrides)
	waitFor(t, func() bool { return strings.Contains(projectGoroutines(), "slavesync.(*Syncer).Run") })
	g := projectGoroutines()
	for _, l := range loops {
		if strings.Contains(g, l) {
			t.Errorf("%s runs on a slave", l)
		}
	}
	_ = s
}

// pullAt pulls queue 0 of topic at offset with sysFlag, no suspension.
func pullAt(p *peer, group, topic string, offset, commit int64, sysFlag int) *wire.Command {
	p.t.Helper()
	return p.call(wire.PullMessage, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": "0", "queueOffset": strconv.FormatInt(offset, 10),
		"maxMsgNums": "32", "sysFlag": strconv.Itoa(sysFlag), "commitOffset": strconv.FormatInt(commit, 10),
		"suspendTimeoutMillis": "0", "subVersion": "0", "subscription": "*", "expressionType": "TAG",
	}, nil)
}

func suggestion(t *testing.T, resp *wire.Command) int64 {
	t.Helper()
	n, ok := resp.GetInt("suggestWhichBrokerId")
	if !ok {
		t.Fatalf("pull answer without suggestWhichBrokerId: %v", resp.Fields())
	}
	return n
}

// TestSlavePull: a slave serves pulls (slaveReadEnable off too), never
// stores their commitOffset, keeps the consumer at an offset it cannot
// serve and sends it to the group's broker, unless offsetCheckInSlave.
func TestSlavePull(t *testing.T) {
	s, p := reopenAsSlave(t, "SlaveP", 3, nil)
	resp := pullAt(p, "CG", "SlaveP", 0, 2, pullCommitOffset|pullSubscription)
	if resp.Code != wire.Success || len(records(t, resp.Body)) != 3 || suggestion(t, resp) != 0 {
		t.Fatalf("pull on a slave: %s %q suggest %v", wire.ResponseName(resp.Code), resp.Remark, resp.Fields())
	}
	if off, ok := s.offsets.Query("CG", "SlaveP", 0); ok {
		t.Errorf("a slave stored the pull's commitOffset: %d", off)
	}
	// Beyond the slave's queue (a master further ahead): retry, stay.
	resp = pullAt(p, "CG", "SlaveP", 10, 0, pullSubscription)
	next, _ := resp.GetInt("nextBeginOffset")
	if resp.Code != wire.PullRetryImmediately || next != 10 || suggestion(t, resp) != 0 {
		t.Errorf("offset beyond a slave's queue: %s next %d suggest %d, want PULL_RETRY_IMMEDIATELY next 10 suggest 0", wire.ResponseName(resp.Code), next, suggestion(t, resp))
	}
	// The group's brokerId is the suggestion (the sync brings it).
	gc := *wire.NewSubscriptionGroupConfig("CG")
	gc.BrokerID = 2
	if err := s.groups.Put(gc); err != nil {
		t.Fatal(err)
	}
	resp = pullAt(p, "CG", "SlaveP", 10, 0, pullSubscription)
	if suggestion(t, resp) != 2 {
		t.Errorf("suggestion %d, want the group's brokerId 2", suggestion(t, resp))
	}
	// offsetCheckInSlave: corrected as on a master, at run time.
	p.expect(wire.Success, "", wire.UpdateBrokerConfig, nil, []byte("offsetCheckInSlave=true\n"))
	resp = pullAt(p, "CG", "SlaveP", 10, 0, pullSubscription)
	next, _ = resp.GetInt("nextBeginOffset")
	if resp.Code != wire.PullOffsetMoved || next != 3 {
		t.Errorf("offsetCheckInSlave: %s next %d, want PULL_OFFSET_MOVED next 3", wire.ResponseName(resp.Code), next)
	}
}

// TestSuggestWhichBrokerId: with slaveReadEnable a master sends a consumer
// reading further behind than accessMessageInMemoryMaxRatio of RAM to the
// group's whichBrokerWhenConsumeSlowly, else to its brokerId; without it,
// always to 0. Ratio 0 makes every read "from disk", 100 none.
func TestSuggestWhichBrokerId(t *testing.T) {
	b := startBroker(t, map[string]string{"accessMessageInMemoryMaxRatio": "0"})
	p := newPeer(t, b, nil)
	p.createTopic("SugT", 1)
	p.send("SugT", 0, "", "a")
	p.send("SugT", 0, "", "b")
	waitFor(t, func() bool { return b.store.MaxOffset("SugT", 0) == 2 })
	gc := *wire.NewSubscriptionGroupConfig("SugG")
	gc.WhichBrokerWhenConsumeSlowly, gc.BrokerID = 3, 5
	p.expect(wire.Success, "", wire.UpdateAndCreateSubGroup, nil, wire.Marshal(gc))

	if s := suggestion(t, pullAt(p, "SugG", "SugT", 0, 0, pullSubscription)); s != 0 {
		t.Errorf("slaveReadEnable off: suggestion %d, want 0", s)
	}
	p.expect(wire.Success, "", wire.UpdateBrokerConfig, nil, []byte("slaveReadEnable=true\n"))
	resp := pullAt(p, "SugG", "SugT", 0, 0, pullSubscription)
	if resp.Code != wire.Success || suggestion(t, resp) != 3 {
		t.Errorf("reading behind the memory ratio: %s suggestion %d, want whichBrokerWhenConsumeSlowly 3", wire.ResponseName(resp.Code), suggestion(t, resp))
	}
	p.expect(wire.Success, "", wire.UpdateBrokerConfig, nil, []byte("accessMessageInMemoryMaxRatio=100\n"))
	if s := suggestion(t, pullAt(p, "SugG", "SugT", 0, 0, pullSubscription)); s != 5 {
		t.Errorf("reading in memory: suggestion %d, want the group's brokerId 5", s)
	}
	// Nothing found: the group's broker.
	if s := suggestion(t, pullAt(p, "SugG", "SugT", 2, 0, pullSubscription)); s != 5 {
		t.Errorf("nothing to read: suggestion %d, want 5", s)
	}
}

// TestLastPhysicalOffset: the last record of a body, whatever its length.
func TestLastPhysicalOffset(t *testing.T) {
	b := startBroker(t, nil)
	p := newPeer(t, b, nil)
	p.createTopic("PhyT", 1)
	for i := 0; i < 3; i++ {
		p.send("PhyT", 0, "", strings.Repeat("x", 10*i+1))
	}
	waitFor(t, func() bool { return b.store.MaxOffset("PhyT", 0) == 3 })
	resp := pullAt(p, "PhyG", "PhyT", 0, 0, pullSubscription)
	recs := records(t, resp.Body)
	if got, want := lastPhysicalOffset(resp.Body), recs[2].PhysicalOffset(); got != want {
		t.Errorf("lastPhysicalOffset = %d, want %d", got, want)
	}
	if lastPhysicalOffset(nil) != 0 {
		t.Error("empty body")
	}
}

// startNamesrv runs a name server in this process on a random port.
func startNamesrv(t *testing.T) string {
	t.Helper()
	ns, err := namesrv.New(namesrv.Options{ListenAddr: "127.0.0.1:0", KVConfigPath: filepath.Join(t.TempDir(), "kv.json"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns.Addr().String()
}

// TestSlaveSyncsMetadata: a slave learns its master from the name server's
// registration answer and adopts the master's topics, groups, consumer
// offsets and delay progress (GET_ALL_* 21, 201, 43, 45), keeps offsets
// only it has, registers the adopted topic table, and has it all after a
// restart.
func TestSlaveSyncsMetadata(t *testing.T) {
	ns := startNamesrv(t)
	m := startBroker(t, map[string]string{"namesrvAddr": ns})
	mp := newPeer(t, m, nil)
	mp.createTopic("SyncT", 4)
	gc := *wire.NewSubscriptionGroupConfig("SyncG")
	gc.RetryMaxTimes, gc.BrokerID = 3, 1
	mp.expect(wire.Success, "", wire.UpdateAndCreateSubGroup, nil, wire.Marshal(gc))
	mp.expect(wire.Success, "", wire.UpdateConsumerOffset, map[string]string{"consumerGroup": "SyncG", "topic": "SyncT", "queueId": "2", "commitOffset": "7"}, nil)
	mp.send("SyncT", 0, "DELAY\x011\x02", "later") // level 1: delivered after 1 s
	waitFor(t, func() bool { return m.delay.Progress()[0][0] == 1 })

	dir := t.TempDir()
	s := openBroker(t, dir, merged(slaveOverrides, map[string]string{"namesrvAddr": ns}))
	if _, err := s.sync.SyncAll(); !errors.Is(err, slavesync.ErrNoMaster) {
		t.Errorf("sync before any registration: %v", err)
	}
	s.Start()
	waitFor(t, func() bool { s.registerAll(); return s.masterAddr() == m.Addr() })
	if _, err := s.sync.SyncAll(); err != nil {
		t.Fatal(err)
	}
	check := func(s *Broker, what string, delay bool) {
		t.Helper()
		if tc := s.topics.Lookup("SyncT"); tc == nil || tc.ReadQueueNums != 4 {
			t.Errorf("%s: topic %+v", what, tc)
		}
		if s.topics.Snapshot().DataVersion != m.topics.Snapshot().DataVersion {
			t.Errorf("%s: topic data version %+v, master's %+v", what, s.topics.Snapshot().DataVersion, m.topics.Snapshot().DataVersion)
		}
		if g := s.groups.Lookup("SyncG"); g == nil || g.RetryMaxTimes != 3 || g.BrokerID != 1 {
			t.Errorf("%s: group %+v", what, g)
		}
		if off, ok := s.offsets.Query("SyncG", "SyncT", 2); !ok || off != 7 {
			t.Errorf("%s: offset %d %v, want 7", what, off, ok)
		}
		if p := s.delay.Progress(); delay && p[0][0] != 1 {
			t.Errorf("%s: delay progress %v, want level 1 at 1", what, p)
		}
	}
	check(s, "after a sync", true)

	// The slave registers the adopted table: the name server holds the
	// master's data version for the slave's address.
	waitFor(t, func() bool {
		body, _ := json.Marshal(m.topics.Snapshot().DataVersion)
		resp := newPeerAt(t, ns).call(wire.QueryDataVersion, map[string]string{"brokerName": "broker-a", "brokerAddr": s.Addr(), "clusterName": "DefaultCluster", "brokerId": "1"}, body)
		return resp.Code == wire.Success && resp.GetString("changed") == "false"
	})

	// A merge keeps what only the slave has and takes the master's values.
	sp := newPeer(t, s, nil)
	sp.expect(wire.Success, "", wire.UpdateConsumerOffset, map[string]string{"consumerGroup": "OnlySlave", "topic": "SyncT", "queueId": "1", "commitOffset": "4"}, nil)
	sp.expect(wire.Success, "", wire.UpdateConsumerOffset, map[string]string{"consumerGroup": "SyncG", "topic": "SyncT", "queueId": "2", "commitOffset": "99"}, nil)
	if _, err := s.sync.SyncAll(); err != nil {
		t.Fatal(err)
	}
	check(s, "after a second sync", true)
	if off, ok := s.offsets.Query("OnlySlave", "SyncT", 1); !ok || off != 4 {
		t.Errorf("an offset only the slave had: %d %v", off, ok)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The delay progress is saved; at start a broker clamps it to its own
	// schedule queue (empty here, without replication) and the next sync
	// brings it back.
	if saved, err := os.ReadFile(filepath.Join(dir, "config", "delayOffset.json")); err != nil || !strings.Contains(string(saved), `"1":1`) {
		t.Errorf("delayOffset.json after the sync: %s %v", saved, err)
	}
	s2 := openBroker(t, dir, merged(slaveOverrides, map[string]string{"namesrvAddr": ""}))
	t.Cleanup(func() { _ = s2.Close() })
	check(s2, "after a restart", false)
}

// newPeerAt is a peer for any address (a name server).
func newPeerAt(t *testing.T, addr string) *peer {
	t.Helper()
	p := &peer{t: t, addr: addr, calls: make(chan *wire.Command, 1)}
	p.cl = remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	t.Cleanup(p.cl.Close)
	return p
}

// TestSlaveLongPollWokenByReplication: a pull held on a slave is answered
// as soon as replicated bytes (AppendAt, what the HA client does) are
// dispatched, not at its suspend timeout.
func TestSlaveLongPollWokenByReplication(t *testing.T) {
	m := startBroker(t, nil)
	mp := newPeer(t, m, nil)
	mp.createTopic("RepT", 1)
	s := startBroker(t, slaveOverrides)
	sp := newPeer(t, s, nil)
	if _, err := s.topics.Put(wire.TopicConfig{TopicName: "RepT", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}); err != nil {
		t.Fatal(err) // what the metadata sync does
	}
	fields := map[string]string{
		"consumerGroup": "RepG", "topic": "RepT", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32",
		"sysFlag": strconv.Itoa(pullSuspend | pullSubscription), "commitOffset": "0", "suspendTimeoutMillis": "25000",
		"subVersion": "0", "subscription": "*", "expressionType": "TAG",
	}
	ch := sp.asyncPull(fields, waitTimeout)
	waitFor(t, func() bool { return heldPulls(s) == 1 })
	mp.send("RepT", 0, "", "replicated")
	buf := make([]byte, 64<<10)
	n, err := m.store.ReadCommitLog(buf, 0)
	if err != nil || n == 0 {
		t.Fatalf("read the master's log: %d %v", n, err)
	}
	if err := s.store.AppendAt(0, buf[:n]); err != nil {
		t.Fatal(err)
	}
	resp := waitPull(t, ch)
	recs := records(t, resp.Body)
	if resp.Code != wire.Success || len(recs) != 1 || string(recs[0].Body()) != "replicated" {
		t.Fatalf("held pull on the slave: %s %q, %d records", wire.ResponseName(resp.Code), resp.Remark, len(recs))
	}
}
