package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// startControllerNamesrvs runs n mqnamesrv processes with the embedded
// controller (enableControllerInNamesrv, the ha.md Appendix A namesrv.conf
// keys); it returns their name-server and controller addresses.
func startControllerNamesrvs(t *testing.T, n int) (ns, ctl []string) {
	t.Helper()
	ns, ctl, _ = startControllerNamesrvProcs(t, n)
	return ns, ctl
}

// startControllerNamesrvProcs is startControllerNamesrvs that also returns
// the processes (procs[i] runs ns[i] and ctl[i]), for tests that kill one;
// extra are key=value settings for every node.
func startControllerNamesrvProcs(t *testing.T, n int, extra ...string) (ns, ctl []string, procs []*proc) {
	t.Helper()
	ports := freePorts(t, 2*n)
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("n%d-127.0.0.1:%d", i, ports[n+i]))
		ns = append(ns, fmt.Sprintf("127.0.0.1:%d", ports[i]))
		ctl = append(ctl, fmt.Sprintf("127.0.0.1:%d", ports[n+i]))
	}
	for i := range n {
		dir := t.TempDir()
		conf := filepath.Join(dir, "namesrv.conf")
		text := fmt.Sprintf("listenPort=%d\nenableControllerInNamesrv=true\ncontrollerDLegerGroup=group1\n"+
			"controllerDLegerPeers=%s\ncontrollerDLegerSelfId=n%d\ncontrollerStorePath=%s\n"+
			"enableElectUncleanMaster=false\nnotifyBrokerRoleChanged=true\n",
			ports[i], strings.Join(peers, ";"), i, filepath.Join(dir, "ctl"))
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-c", conf, "-p", "kvConfigPath=" + filepath.Join(dir, "kvConfig.json"), "-p", "logDir=" + filepath.Join(dir, "logs")}
		for _, kv := range extra {
			args = append(args, "-p", kv)
		}
		procs = append(procs, start(t, controllerReady, "mqnamesrv", args...))
	}
	waitLeader(t, ctl)
	return ns, ctl, procs
}

// replicaInfo asks the controller for broker-a's master (GET_REPLICA_INFO)
// (from whichever node leads).
func replicaInfo(t *testing.T, ctl []string) (*wire.MasterInfoHeader, wire.SyncStateSet) {
	t.Helper()
	for _, a := range ctl {
		resp := ctlCall(a, wire.ControllerGetReplicaInfo, map[string]string{"brokerName": "broker-a"}, nil)
		if resp == nil || resp.Code != wire.Success {
			continue
		}
		h, _ := wire.ParseMasterInfoHeader(resp)
		var set wire.SyncStateSet
		_ = wire.UnmarshalLenient(resp.Body, &set)
		return h, set
	}
	return &wire.MasterInfoHeader{}, wire.SyncStateSet{}
}

// routeMaster is the address the name server lists as broker-a's id 0 for topic.
func routeMaster(t *testing.T, ns, topic string) string {
	t.Helper()
	cl := remoting.NewClient(nil, nil)
	defer cl.Close()
	resp, err := cl.Invoke(ns, wire.NewRequest(wire.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil), 3*time.Second)
	if err != nil || resp.Code != wire.Success {
		return ""
	}
	var rd wire.TopicRouteData
	if wire.UnmarshalLenient(resp.Body, &rd) != nil {
		return ""
	}
	for _, bd := range rd.BrokerDatas {
		if bd.BrokerName == "broker-a" {
			return bd.BrokerAddrs[0]
		}
	}
	return ""
}

// createTopicOn creates topic (4 queues) on the broker at brokerAddr with
// UPDATE_AND_CREATE_TOPIC, asking again for up to 60 s while the broker
// refuses as a slave: the controller names a master before that broker
// takes the role (on its next heartbeat or the role notification), which
// under load took long enough for a test to ask in between. The Go admin
// client's CreateTopic checks no answer code, so such a refusal went
// unseen and a wait for the topic's route could only time out.
func createTopicOn(t *testing.T, brokerAddr, topic string) {
	t.Helper()
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	defer cl.Close()
	fields := map[string]string{"topic": topic, "defaultTopic": "TBW102", "readQueueNums": "4", "writeQueueNums": "4",
		"perm": "6", "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var last string
		resp, err := cl.Invoke(brokerAddr, wire.NewRequest(wire.UpdateAndCreateTopic, fields, nil), 5*time.Second)
		switch {
		case err != nil:
			last = err.Error()
		case resp.Code == wire.Success:
			return
		case strings.Contains(string(resp.Remark), "from slave broker"):
			last = string(resp.Remark)
		default:
			t.Fatalf("create topic %s on %s: %s %s", topic, brokerAddr, wire.ResponseName(resp.Code), resp.Remark)
		}
		if time.Now().After(deadline) {
			t.Fatalf("create topic %s on %s: still failing after 60 s: %s", topic, brokerAddr, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sameCommitLog compares two brokers' commit-log segment files byte for
// byte; it returns "" when equal, else where they differ.
func sameCommitLog(a, b string) string {
	names := func(dir string) []string {
		es, _ := os.ReadDir(dir)
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	na, nb := names(a), names(b)
	if len(na) == 0 {
		return "no commit-log segment in " + a
	}
	if !slices.Equal(na, nb) {
		return fmt.Sprintf("segments %v vs %v", na, nb)
	}
	for _, n := range na {
		x, err1 := os.ReadFile(filepath.Join(a, n))
		y, err2 := os.ReadFile(filepath.Join(b, n))
		if err1 != nil || err2 != nil {
			return fmt.Sprint(err1, err2)
		}
		if !bytes.Equal(x, y) {
			i := 0
			for i < min(len(x), len(y)) && x[i] == y[i] {
				i++
			}
			return fmt.Sprintf("segment %s differs at byte %d (sizes %d, %d)", n, i, len(x), len(y))
		}
	}
	return ""
}

// Controller mode with three name servers embedding the controller and
// the ha.md Appendix A broker.conf keys: three replicas elect a master,
// SendSync works, kill -9 of the master makes another one master
// (controller and name-server route agree) and the third follows it, sends
// work again, the old master comes back as a slave, all three commit logs
// are equal, and every SEND_OK message is consumed.
func TestControllerModeFailover(t *testing.T) {
	nss, ctl := startControllerNamesrvs(t, 3)
	ns := nss[0] // what clients use
	// The brokers register with all three.
	g := startCtlReplicas(t, ctl, strings.Join(nss, ";"), 3, append(ctlKeys(ctl), "brokerClusterName=DefaultCluster",
		"controllerHeartBeatTimeoutMills=3000", "flushDiskType=ASYNC_FLUSH"))
	procs := g.procs

	master := g.waitInSync(60*time.Second, 3)
	topic := fmt.Sprintf("Failover%d", time.Now().UnixNano())
	createRoutedTopic(t, ns, procs[master].addr, topic)

	var mu sync.Mutex
	sent := map[string]bool{}
	send := func(n int, prefix string) int {
		p := newProducer(t, ns)
		ok := 0
		for i := range n {
			key := fmt.Sprintf("%s-%d", prefix, i)
			m := primitive.NewMessage(topic, []byte(key))
			m.WithKeys([]string{key})
			r, err := p.SendSync(context.Background(), m)
			if err == nil && r.Status == primitive.SendOK {
				mu.Lock()
				sent[key] = true
				mu.Unlock()
				ok++
			}
		}
		return ok
	}
	if got := send(200, "before"); got != 200 {
		t.Fatalf("%d of 200 sends SEND_OK with both replicas in sync", got)
	}

	// GET_BROKER_HA_STATUS: the master sees two replicas in its set.
	var hs wire.HARuntimeInfo
	if resp := ctlCall(procs[master].addr, wire.GetBrokerHAStatus, nil, nil); resp == nil || wire.UnmarshalLenient(resp.Body, &hs) != nil ||
		!hs.Master || hs.InSyncSlaveNums != 2 || len(hs.HAConnectionInfo) != 2 {
		t.Fatalf("master HA status %+v", hs)
	}
	for i, p := range procs {
		if i == master {
			continue
		}
		var ss wire.HARuntimeInfo
		waitFor(t, 10*time.Second, "a slave's HA status", func() bool {
			resp := ctlCall(p.addr, wire.GetBrokerHAStatus, nil, nil)
			return resp != nil && wire.UnmarshalLenient(resp.Body, &ss) == nil && !ss.Master &&
				ss.HAClientRuntimeInfo.MasterAddr != "" && ss.HAClientRuntimeInfo.LastReadTimestamp > 0
		})
	}
	killed := time.Now()
	procs[master].kill()
	slave := -1 // the new master
	waitFor(t, 60*time.Second, "a slave elected master", func() bool {
		h, _ := replicaInfo(t, ctl)
		slave = g.index(h.MasterAddress)
		return slave >= 0 && slave != master
	})
	waitFor(t, 60*time.Second, "the route to list the new master as id 0", func() bool {
		return routeMaster(t, ns, topic) == procs[slave].addr
	})
	t.Logf("failover: new master in the route %v after kill -9", time.Since(killed).Round(time.Millisecond))
	// The topic config is not replicated yet (slave metadata sync is
	// another part); an operator would create it as well.
	createTopicOn(t, procs[slave].addr, topic)
	if got := send(100, "after"); got != 100 {
		t.Fatalf("%d of 100 sends SEND_OK on the new master", got)
	}
	t.Logf("failover: first SEND_OK %v after kill -9", time.Since(killed).Round(time.Millisecond))

	// The old master returns on its address and follows the new one.
	g.restart(master)
	waitFor(t, 60*time.Second, "the old master back in the SyncStateSet", func() bool {
		h, set := replicaInfo(t, ctl)
		return h.MasterAddress == procs[slave].addr && len(set.SyncStateSet) == 3
	})
	if got := send(50, "rejoined"); got != 50 {
		t.Fatalf("%d of 50 sends SEND_OK after the old master rejoined", got)
	}
	for i := range procs {
		if i == slave {
			continue
		}
		if diff := waitSameCommitLog(g.commitLog(i), g.commitLog(slave), 30*time.Second); diff != "" {
			t.Fatalf("replica %s's commit log differs from the new master's: %s", procs[i].addr, diff)
		}
	}
	consumeAll(t, ns, topic, sent)
	t.Logf("%d SEND_OK messages, all consumed", len(sent))
}

// A master that wrote records its slave never received (the slave died,
// the set could not shrink in time) answers them FLUSH_SLAVE_TIMEOUT, not
// SEND_OK; when it dies too and the slave is elected, the old master comes
// back as a slave and cuts that divergent tail (truncation to the
// consistent point of the epoch lists), and no SEND_OK message is lost.
func TestControllerModeRejoinTruncates(t *testing.T) {
	nss, ctl := startControllerNamesrvs(t, 1) // a single controller works too
	ns := nss[0]
	g := startCtlReplicas(t, ctl, ns, 2, append(ctlKeys(ctl), "brokerClusterName=DefaultCluster", "controllerHeartBeatTimeoutMills=3000",
		// The master keeps a dead slave in its SyncStateSet for the whole test.
		"checkSyncStateSetPeriod=600000"))
	procs := g.procs
	master := g.waitInSync(60*time.Second, 2)
	slave := 1 - master
	topic := fmt.Sprintf("Truncate%d", time.Now().UnixNano())
	createRoutedTopic(t, ns, procs[master].addr, topic)
	p := newProducer(t, ns)
	sent := map[string]bool{}
	for i := range 100 {
		key := fmt.Sprintf("acked-%d", i)
		r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(key)))
		if err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, r, err)
		}
		sent[key] = true
	}

	procs[slave].kill()
	for i := range 3 {
		r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(fmt.Sprintf("unacked-%d", i))))
		if err == nil && r.Status == primitive.SendOK {
			t.Fatalf("send %d was SEND_OK with a dead SyncStateSet member", i)
		}
	}
	procs[master].kill()
	logOld, logNew := g.commitLog(master), g.commitLog(slave)
	if sameCommitLog(logOld, logNew) == "" {
		t.Fatal("the old master holds nothing the slave lacks: no divergent tail to test")
	}

	g.restart(slave)
	g.waitMaster(60*time.Second, slave, "the slave elected master")
	g.restart(master)
	waitFor(t, 60*time.Second, "the old master to rejoin the SyncStateSet", func() bool {
		_, set := replicaInfo(t, ctl)
		return len(set.SyncStateSet) == 2
	})
	if diff := waitSameCommitLog(logOld, logNew, 30*time.Second); diff != "" {
		t.Fatalf("the old master did not cut its divergent tail: %s", diff)
	}
	if !strings.Contains(procs[master].out.String(), "truncating the commit log to the consistent point") {
		t.Fatalf("no truncation logged by the old master:\n%s", procs[master].out.String())
	}
	// Both epoch files agree (GET_BROKER_EPOCH_CACHE): epoch 1 from 0, epoch
	// 2 from where the new master's log ended when it was elected.
	caches := make([]wire.EpochEntryCache, 2)
	epochsAgree := func() bool {
		for i, p := range procs {
			resp := ctlCall(p.addr, wire.GetBrokerEpochCache, nil, nil)
			if resp == nil || resp.Code != wire.Success || wire.UnmarshalLenient(resp.Body, &caches[i]) != nil {
				t.Fatalf("GET_BROKER_EPOCH_CACHE from %s: %v", p.addr, resp)
			}
		}
		return slices.Equal(caches[0].EpochList, caches[1].EpochList)
	}
	waitFor(t, 10*time.Second, "both epoch files to agree", epochsAgree)
	if len(caches[0].EpochList) != 2 || caches[master].MaxOffset != caches[slave].MaxOffset || caches[slave].BrokerID != 0 {
		t.Fatalf("epoch caches: %+v vs %+v", caches[0], caches[1])
	}

	createTopicOn(t, procs[slave].addr, topic)
	consumeAll(t, ns, topic, sent)
}

// minInSyncReplicas=2: a master alone in its SyncStateSet refuses sends
// with SYSTEM_ERROR "in-sync replicas not enough" (nothing stored); once a
// replica has joined, sends succeed.
func TestControllerModeMinInSyncReplicas(t *testing.T) {
	nss, ctl := startControllerNamesrvs(t, 1)
	ns := nss[0]
	g := startCtlReplicas(t, ctl, ns, 1, append(ctlKeys(ctl), "minInSyncReplicas=2"))
	first := g.procs[0]
	g.waitMaster(60*time.Second, 0, "the first broker elected")
	topic := fmt.Sprintf("MinInSync%d", time.Now().UnixNano())
	createRoutedTopic(t, ns, first.addr, topic)
	p := newProducer(t, ns)
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("alone"))); err == nil ||
		!strings.Contains(err.Error(), "in-sync replicas not enough") {
		t.Fatalf("send to a master alone with minInSyncReplicas=2: err %v", err)
	}
	startBroker(t, newBrokerDir(t), ns, g.keys...)
	waitFor(t, 60*time.Second, "two replicas in the SyncStateSet", func() bool {
		_, set := replicaInfo(t, ctl)
		return len(set.SyncStateSet) == 2
	})
	r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("two")))
	if err != nil || r.Status != primitive.SendOK {
		t.Fatalf("send with two in-sync replicas: %v %v", r, err)
	}
}

// allThreadsStopped reports whether every thread of process pid is in
// state T (stopped by a signal), from /proc/PID/task/TID/stat.
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// The state follows the command name, which is in parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) || stat[i+2] != 'T' {
			return false
		}
	}
	return true
}

// SIGSTOP of the master for 20 s (a partition, not a crash): the
// controller elects the slave once the heartbeats stop. Sends in flight on
// the stopped master are not SEND_OK: the Go client's (no retry) time out,
// and the frames queued on its sockets are answered when it resumes with a
// failure code (FLUSH_SLAVE_TIMEOUT: the slave it waits for no longer
// follows it) or not at all. The resumed old master is fenced (the name
// server keeps the new master, whose stateVersion is higher), turns slave,
// cuts what it wrote alone and copies the new master; no SEND_OK message is
// lost and no in-flight one is ever consumed.
func TestControllerModeStoppedMaster(t *testing.T) {
	nss, ctl := startControllerNamesrvs(t, 1)
	ns := nss[0]
	g := startCtlReplicas(t, ctl, ns, 2, append(ctlKeys(ctl), "controllerHeartBeatTimeoutMills=3000"))
	procs := g.procs
	master := g.waitInSync(60*time.Second, 2)
	slave := 1 - master
	topic := fmt.Sprintf("Stopped%d", time.Now().UnixNano())
	createRoutedTopic(t, ns, procs[master].addr, topic)

	var mu sync.Mutex
	sent := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a producer running through the whole partition
		defer wg.Done()
		p := newProducer(t, ns)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := fmt.Sprintf("live-%d", i)
			r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(key)))
			if err == nil && r.Status == primitive.SendOK {
				mu.Lock()
				sent[key] = true
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitFor(t, 30*time.Second, "some SEND_OK", func() bool { mu.Lock(); defer mu.Unlock(); return len(sent) >= 20 })
	// A producer without retries, its route on the master: its sends go to
	// the master and nowhere else.
	once := newProducer(t, ns, producer.WithRetry(0))
	if r, err := once.SendSync(context.Background(), primitive.NewMessage(topic, []byte("warm-up"))); err != nil || r.Status != primitive.SendOK {
		t.Fatalf("warm-up send: %v %v", r, err)
	}
	mu.Lock()
	sent["warm-up"] = true
	mu.Unlock()

	stopped := time.Now()
	_ = procs[master].cmd.Process.Signal(syscall.SIGSTOP)
	// The stop takes effect asynchronously: a send written before every
	// thread has stopped could still be stored and replicated (answered
	// FLUSH_SLAVE_TIMEOUT, yet legitimately consumable).
	waitFor(t, 10*time.Second, "every thread of the master stopped", func() bool { return allThreadsStopped(procs[master].cmd.Process.Pid) })
	const inflight = 4
	type outcome struct {
		key    string
		status primitive.SendStatus
		err    error // Go client: its error; raw: no answer
		code   int32 // raw: the answer's code
	}
	results := make(chan outcome, 2*inflight)
	for i := range inflight {
		go func() {
			key := fmt.Sprintf("inflight-go-%d", i)
			r, err := once.SendSync(context.Background(), primitive.NewMessage(topic, []byte(key)))
			o := outcome{key: key, err: err}
			if err == nil {
				o.status = r.Status
			}
			results <- o
		}()
		go func() {
			key := fmt.Sprintf("inflight-raw-%d", i)
			cl := remoting.NewClient(nil, nil)
			defer cl.Close()
			f := sendFields(topic, fmt.Sprint(i%4))
			f["producerGroup"] = "PG_inflight"
			resp, err := cl.Invoke(procs[master].addr, wire.NewRequest(wire.SendMessage, f, []byte(key)), 90*time.Second)
			o := outcome{key: key, err: err}
			if err == nil {
				o.code = resp.Code
			}
			results <- o
		}()
	}
	g.waitMaster(60*time.Second, slave, "the slave elected while the master is stopped")
	waitFor(t, 30*time.Second, "the route to the new master", func() bool { return routeMaster(t, ns, topic) == procs[slave].addr })
	time.Sleep(time.Until(stopped.Add(20 * time.Second))) // the stop the issue prescribes
	_ = procs[master].cmd.Process.Signal(syscall.SIGCONT)
	inflightKeys := map[string]bool{}
	for range 2 * inflight {
		o := <-results
		inflightKeys[o.key] = true
		switch {
		case strings.HasPrefix(o.key, "inflight-go") && o.err == nil && o.status == primitive.SendOK,
			strings.HasPrefix(o.key, "inflight-raw") && o.err == nil && o.code == wire.Success:
			t.Errorf("%s, in flight on the stopped master, was SEND_OK", o.key)
		case o.err != nil:
			t.Logf("%s: no answer: %v", o.key, o.err)
		case strings.HasPrefix(o.key, "inflight-go"):
			t.Logf("%s: status %d", o.key, o.status)
		default:
			t.Logf("%s: code %d (%s)", o.key, o.code, wire.ResponseName(o.code))
		}
	}
	waitFor(t, 60*time.Second, "the old master back in the SyncStateSet as a slave", func() bool {
		h, set := replicaInfo(t, ctl)
		return h.MasterAddress == procs[slave].addr && len(set.SyncStateSet) == 2
	})
	if got := routeMaster(t, ns, topic); got != procs[slave].addr {
		t.Fatalf("the resumed old master took the route back: id 0 is %s", got)
	}
	close(stop)
	wg.Wait()
	if diff := waitSameCommitLog(g.commitLog(master), g.commitLog(slave), 30*time.Second); diff != "" {
		t.Fatalf("the old master's commit log differs from the new master's: %s", diff)
	}
	createTopicOn(t, procs[slave].addr, topic)
	col := consumeAll(t, ns, topic, sent)
	col.mu.Lock()
	for k := range inflightKeys {
		if col.msgs[k] != nil {
			t.Errorf("%s, never SEND_OK, was consumed", k)
		}
	}
	col.mu.Unlock()
	t.Logf("%d SEND_OK messages through a 'partition' of the master, all consumed", len(sent))
}
