package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/e2e/e2ed"
	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/zabbix/templates"
	"github.com/mqops/mqops/zabbix/zbxd"
)

// zabbixAgent is a real zabbix_agentd or zabbix_agent2 serving the
// user parameters of zabbix/agent with the freshly built mqops-zbx.
type zabbixAgent struct {
	addr string
	log  string
}

// agentBinary finds a Debian agent binary; make test-zabbix installs
// them, so there MQOPS_REQUIRE_ZABBIX=1 turns a missing one into a failure.
func agentBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("MQOPS_REQUIRE_ZABBIX") == "1" {
		t.Fatalf("%s not installed: %v", name, err)
	}
	t.Skipf("%s not installed (apt install zabbix-agent zabbix-agent2; make test-zabbix does)", name)
	return ""
}

// agentPort finds a free port in the range the agents accept for
// ListenPort (1024-32767), below the kernel's ephemeral ports.
func agentPort(t *testing.T) int {
	t.Helper()
	for i := range 200 {
		port := 20000 + (os.Getpid()*7+i*131)%12000
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port for the agent")
	return 0
}

// startAgent runs the agent binary in the foreground with a private
// configuration; agent2 needs its control socket, agentd its root waiver.
// env (KEY=value) is added to the agent's environment, which the helper
// inherits (MQADMIN_ACCESS_KEY / MQADMIN_SECRET_KEY for brokers with ACL).
func startAgent(t *testing.T, bin string, env ...string) *zabbixAgent {
	t.Helper()
	dir := t.TempDir()
	up, err := os.ReadFile("../zabbix/agent/userparameter_mqops.conf")
	if err != nil {
		t.Fatal(err)
	}
	up = []byte(strings.ReplaceAll(string(up), "/opt/mqops/bin/mqops-zbx", filepath.Join(binDir, "mqops-zbx")))
	if err := os.WriteFile(filepath.Join(dir, "userparameter_mqops.conf"), up, 0o644); err != nil {
		t.Fatal(err)
	}
	port := agentPort(t)
	a := &zabbixAgent{addr: fmt.Sprintf("127.0.0.1:%d", port), log: filepath.Join(dir, "agent.log")}
	conf := []string{
		"LogType=file", "LogFile=" + a.log, "PidFile=" + filepath.Join(dir, "agent.pid"),
		"ListenIP=127.0.0.1", fmt.Sprintf("ListenPort=%d", port), "Server=127.0.0.1", "ServerActive=",
		"Hostname=mqops-e2e", "Timeout=15", "Include=" + filepath.Join(dir, "userparameter_mqops.conf"),
	}
	args := []string{"-c", filepath.Join(dir, "agent.conf")}
	if filepath.Base(bin) == "zabbix_agent2" {
		conf = append(conf, "ControlSocket="+filepath.Join(dir, "agent2.sock"))
	} else {
		conf = append(conf, "AllowRoot=1", "StartAgents=3")
		args = append(args, "-f")
	}
	if err := os.WriteFile(filepath.Join(dir, "agent.conf"), []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "MQOPS_ZBX_STATE_DIR="+filepath.Join(dir, "state")), env...)
	// agentd forks its collector and listeners: stop the whole group, or
	// they outlive the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := e2ed.StartCmd(cmd); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // children that outlived the main process
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, err := a.query("agent.ping"); err == nil && v == "1" {
			return a
		}
		select {
		case <-done:
			log, _ := os.ReadFile(a.log)
			t.Fatalf("%s exited:\n%s\n%s", bin, out.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(a.log)
			t.Fatalf("%s does not answer agent.ping:\n%s\n%s", bin, out.String(), log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// query asks the agent for one key as the Zabbix server does.
func (a *zabbixAgent) query(key string) (string, error) {
	return zbxd.Get(a.addr, key, 30*time.Second)
}

// get queries key and decodes its JSON into v.
func (a *zabbixAgent) get(t *testing.T, key string, v any) {
	t.Helper()
	s, err := a.query(key)
	if err != nil {
		t.Fatalf("query %s: %v", key, err)
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("query %s: %v in %q", key, err, s)
	}
}

// lldSet applies the templates' default filters to discovery rows, as the
// Zabbix server does, and returns what passes (macro values joined by "|").
func lldSet(t *testing.T, rows []map[string]string, macros ...string) []string {
	t.Helper()
	topicNot := regexp.MustCompile(templates.TopicNotMatches)
	groupNot := regexp.MustCompile(templates.GroupNotMatches)
	typeOK := regexp.MustCompile(templates.TypeMatches)
	var out []string
	for _, r := range rows {
		if tp, ok := r["{#TOPIC}"]; ok && (topicNot.MatchString(tp) || !typeOK.MatchString(r["{#TOPIC.TYPE}"])) {
			continue
		}
		if g, ok := r["{#GROUP}"]; ok && (groupNot.MatchString(g) || !typeOK.MatchString(r["{#GROUP.TYPE}"])) {
			continue
		}
		var vals []string
		for _, m := range macros {
			vals = append(vals, r[m])
		}
		out = append(out, strings.Join(vals, "|"))
	}
	slices.Sort(out)
	return out
}

type figures struct {
	Today      int64 `json:"today"`
	Minute     int64 `json:"minute"`
	FiveMin    int64 `json:"fiveMin"`
	TodayBytes int64 `json:"todayBytes"`
}

// storeFigures are the store's health figures of rocketmq.broker.get,
// under the JSON paths the broker template reads.
type storeFigures struct {
	State   string `json:"storeState"`
	Code    int    `json:"storeStateCode"`
	Error   string `json:"storeError"`
	Ranges  int64  `json:"commitLogCorruptRanges"`
	Bytes   int64  `json:"commitLogCorruptBytes"`
	Skipped int64  `json:"corruptMessagesSkipped"`
}

// storeEvents are the store events of rocketmq.logs.get the broker
// template alerts on.
type storeEvents struct {
	DiskFull         int64 `json:"diskFull"`
	FsyncFailed      int64 `json:"fsyncFailed"`
	Corruption       int64 `json:"corruption"`
	QueueRebuilt     int64 `json:"cqRebuilt"`
	QueueBlocked     int64 `json:"cqBlocked"`
	UnreadDeleted    int64 `json:"unreadDeleted"`
	RetentionBlocked int64 `json:"retentionBlocked"`
	Files            map[string]struct{ Tags map[string]int64 }
}

// TestZabbixAgent produces and consumes known counts, then asks a real
// zabbix_agentd (and zabbix_agent2) for every key of
// userparameter_mqops.conf and checks the values against those counts.
// Before its broker restart it damages a stored message, as a bad disk
// would, and checks that the agent reports what the restarted broker finds.
func TestZabbixAgent(t *testing.T) {
	agentd := agentBinary(t, "zabbix_agentd")
	agent2 := agentBinary(t, "zabbix_agent2")
	// 1 MiB segments: a little traffic before the restart fills the first,
	// so that the damaged message lies in a segment recovery does not
	// check and is found when read.
	const segments = "mappedFileSizeCommitLog=1048576"
	c := startCluster(t, segments)
	ns, broker := c.ns.addr, c.broker.addr
	logDir := filepath.Join(string(c.dir), "logs")
	createTopic(t, c, "ZbxOrders", 4)
	createTopic(t, c, "ZbxPayments", 2)
	orders, pays := newCollector(), newCollector()
	fromFirst := consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)
	newPushConsumer(t, ns, "ZbxOrderConsumer", "ZbxOrders", consumer.MessageSelector{}, orders, fromFirst)
	payConsumer := newPushConsumer(t, ns, "ZbxPayConsumer", "ZbxPayments", consumer.MessageSelector{}, pays, fromFirst)
	p := newProducer(t, ns)
	ordersSent := sendN(t, p, "ZbxOrders", "order", 137)
	sendN(t, p, "ZbxPayments", "pay", 58)
	waitFor(t, 60*time.Second, "both groups to consume everything", func() bool { return orders.count() == 137 && pays.count() == 58 })
	if err := payConsumer.Shutdown(); err != nil { // commits its offsets
		t.Fatal(err)
	}
	// The broker counts what it delivers: a pull still held for the stopped
	// consumer would take a late message and count it as consumed. Wait
	// until the group has left and the broker has seen its connections
	// close (held pulls of closed connections are dropped).
	adm, err := admin.New(ns, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	waitFor(t, 15*time.Second, "ZbxPayConsumer to go offline", func() bool {
		_, err := adm.ConsumerConnection("ZbxPayConsumer")
		return admin.IsCode(err, wire.ConsumerNotOnline)
	})
	time.Sleep(2 * time.Second)
	sendN(t, p, "ZbxPayments", "late", 21) // ZbxPayConsumer's backlog

	a := startAgent(t, agentd)
	q := func(key string, args ...string) string {
		return key + "[" + strings.Join(args, ",") + "]"
	}

	t.Run("broker", func(t *testing.T) {
		var st struct {
			Up, Permission, Writable, Registered, NamesrvCount int
			Version, Role, BrokerName                          string
			PutToday                                           int64
		}
		a.get(t, q("rocketmq.broker.get", broker, ns), &st)
		if st.Up != 1 || st.Permission != 6 || st.Writable != 1 || st.Registered != 1 || st.NamesrvCount != 1 ||
			st.Version != "V4_9_8" || st.Role != "ASYNC_MASTER" || st.BrokerName != "broker-a" || st.PutToday != 137+58+21 {
			t.Fatalf("broker: %+v", st)
		}
		// A send the store refuses (properties over 32767 bytes) counts.
		big := primitive.NewMessage("ZbxOrders", []byte("too many properties"))
		big.WithProperty("filler", strings.Repeat("x", 33000))
		if _, err := p.SendSync(context.Background(), big); err == nil {
			t.Fatal("a message with 33000 bytes of properties was accepted")
		}
		var failed struct{ PutFailed int64 }
		a.get(t, q("rocketmq.broker.get", broker, ns), &failed)
		if failed.PutFailed != 1 {
			t.Fatalf("putFailed = %d after one refused send", failed.PutFailed)
		}
		// Without name servers the broker's own namesrvAddr is used.
		a.get(t, q("rocketmq.broker.get", broker, ""), &st)
		if st.Registered != 1 || st.NamesrvCount != 1 {
			t.Fatalf("broker with its own name servers: %+v", st)
		}
		var sf storeFigures
		a.get(t, q("rocketmq.broker.get", broker, ns), &sf)
		if sf != (storeFigures{State: "OK"}) {
			t.Fatalf("store of a healthy broker: %+v", sf)
		}
	})

	t.Run("namesrv and cluster", func(t *testing.T) {
		var n struct{ Up, Brokers, Masters, BrokerGroups int }
		a.get(t, q("rocketmq.namesrv.get", ns), &n)
		if n.Up != 1 || n.Brokers != 1 || n.Masters != 1 || n.BrokerGroups != 1 {
			t.Fatalf("namesrv: %+v", n)
		}
		var cl struct {
			Status, NamesrvUp, MastersWritable int
			Reasons                            []string
		}
		a.get(t, q("rocketmq.cluster.get", `"`+ns+`"`, "DefaultCluster"), &cl)
		if cl.Status != 0 || cl.NamesrvUp != 1 || cl.MastersWritable != 1 {
			t.Fatalf("cluster: %+v", cl)
		}
		// A name server that is not there: degraded, and said why.
		a.get(t, q("rocketmq.cluster.get", `"`+ns+","+closedAddr(t)+`"`, "DefaultCluster"), &cl)
		if cl.Status != 1 || cl.NamesrvUp != 1 || len(cl.Reasons) == 0 {
			t.Fatalf("cluster with a dead name server: %+v", cl)
		}
	})

	t.Run("business and backlog", func(t *testing.T) {
		var b struct{ Topics, Pairs map[string]figures }
		a.get(t, q("rocketmq.business.get", ns, "DefaultCluster"), &b)
		if b.Topics["ZbxOrders"].Today != 137 || b.Topics["ZbxPayments"].Today != 79 ||
			b.Pairs["ZbxOrders@ZbxOrderConsumer"].Today != 137 || b.Pairs["ZbxPayments@ZbxPayConsumer"].Today != 58 {
			t.Fatalf("business: %+v", b)
		}
		type group struct {
			Backlog, LagSeconds int64
			Clients             int
		}
		var bl struct {
			Total  int64
			Groups map[string]group
			Pairs  map[string]struct{ Backlog int64 }
		}
		waitFor(t, 30*time.Second, "backlog of ZbxPayConsumer", func() bool {
			a.get(t, q("rocketmq.backlog.get", ns, "DefaultCluster"), &bl)
			// The client commits offsets every 5 s.
			return bl.Groups["ZbxPayConsumer"].Backlog == 21 && bl.Groups["ZbxOrderConsumer"].Backlog == 0 &&
				bl.Groups["ZbxOrderConsumer"].Clients == 1
		})
		if bl.Total != 21 || bl.Groups["ZbxOrderConsumer"].Backlog != 0 || bl.Groups["ZbxPayConsumer"].Clients != 0 ||
			bl.Pairs["ZbxPayments@ZbxPayConsumer"].Backlog != 21 {
			t.Fatalf("backlog: %+v", bl)
		}
	})

	t.Run("canary", func(t *testing.T) {
		var cn struct {
			OK, Failed int
			MaxRttMs   float64
			Brokers    map[string]struct{ OK int }
		}
		a.get(t, q("rocketmq.canary", ns, "DefaultCluster", "MQOPS_CANARY", "MQOPS_CANARY_GROUP"), &cn)
		if cn.OK != 1 || cn.Failed != 0 || cn.MaxRttMs <= 0 || cn.Brokers["broker-a"].OK != 1 {
			t.Fatalf("canary: %+v", cn)
		}
	})

	t.Run("discovery", func(t *testing.T) {
		for _, key := range []string{q("rocketmq.cluster.topic.discovery", ns, "DefaultCluster"), q("rocketmq.topic.discovery", broker)} {
			var rows []map[string]string
			a.get(t, key, &rows)
			if got := lldSet(t, rows, "{#TOPIC}"); !slices.Equal(got, []string{"ZbxOrders", "ZbxPayments"}) {
				t.Errorf("%s after the filters: %v (all: %v)", key, got, rows)
			}
		}
		var rows []map[string]string
		a.get(t, q("rocketmq.cluster.group.discovery", ns, "DefaultCluster"), &rows)
		if got := lldSet(t, rows, "{#GROUP}"); !slices.Equal(got, []string{"ZbxOrderConsumer", "ZbxPayConsumer"}) {
			t.Errorf("groups after the filters: %v (all: %v)", got, rows)
		}
		for _, key := range []string{q("rocketmq.cluster.pair.discovery", ns, "DefaultCluster"), q("rocketmq.pair.discovery", broker)} {
			var rows []map[string]string
			a.get(t, key, &rows)
			if got := lldSet(t, rows, "{#TOPIC}", "{#GROUP}"); !slices.Equal(got, []string{"ZbxOrders|ZbxOrderConsumer", "ZbxPayments|ZbxPayConsumer"}) {
				t.Errorf("%s after the filters: %v (all: %v)", key, got, rows)
			}
		}
		// No ACL, so no account with a produce quota: an empty list.
		if s, err := a.query(q("rocketmq.account.discovery", broker)); err != nil || s != "[]" {
			t.Errorf("account discovery without ACL: %q, %v", s, err)
		}
		var brokers []map[string]string
		a.get(t, q("rocketmq.cluster.broker.discovery", ns, "DefaultCluster"), &brokers)
		if len(brokers) != 1 || brokers[0]["{#BROKER}"] != "broker-a" || brokers[0]["{#BROKER.ID}"] != "0" {
			t.Errorf("broker discovery: %v", brokers)
		}
	})

	t.Run("logs", func(t *testing.T) {
		type counts struct {
			RegisterFailed, DiskFull, StoreErrors, Panics int64
			Files                                         map[string]struct {
				Present bool
				Tags    map[string]int64
			}
		}
		var before, after counts
		key := q("rocketmq.logs.get", logDir)
		a.get(t, key, &before)
		if !before.Files["broker"].Present || !before.Files["store"].Present || before.RegisterFailed != 0 || before.DiskFull != 0 || before.Panics != 0 {
			t.Fatalf("log counts of a healthy broker: %+v", before)
		}
		var ev storeEvents
		a.get(t, key, &ev)
		if ev.DiskFull+ev.FsyncFailed+ev.Corruption+ev.QueueRebuilt+ev.QueueBlocked+ev.UnreadDeleted+ev.RetentionBlocked != 0 {
			t.Fatalf("store events of a healthy broker: %+v", ev)
		}
		cli(t, ns, "broker", "write-disable", "-b", broker)
		var st struct{ Permission, Writable int }
		a.get(t, q("rocketmq.broker.get", broker, ns), &st)
		if st.Permission != 4 || st.Writable != 0 {
			t.Fatalf("after write-disable: %+v", st)
		}
		cli(t, ns, "broker", "write-enable", "-b", broker)
		a.get(t, key, &after)
		if d := after.Files["broker"].Tags["PERMISSION_CHANGED"] - before.Files["broker"].Tags["PERMISSION_CHANGED"]; d != 2 {
			t.Fatalf("PERMISSION_CHANGED counted %d times for two changes: %+v", d, after)
		}
		a.get(t, key, &before) // asking again counts nothing twice
		if before.Files["broker"].Tags["PERMISSION_CHANGED"] != after.Files["broker"].Tags["PERMISSION_CHANGED"] {
			t.Fatalf("a second ask changed the counts: %+v then %+v", after, before)
		}
	})

	// stats.log has the counts once the minute they fall in has ended.
	type stats struct {
		Topics, Pairs, Groups map[string]figures
		Age                   int64
	}
	statsKey := q("rocketmq.stats.get", logDir)
	var s stats
	waitFor(t, 150*time.Second, "stats.log minute lines with every message", func() bool {
		a.get(t, statsKey, &s)
		return s.Topics["ZbxOrders"].Today == 137 && s.Topics["ZbxPayments"].Today == 79 &&
			s.Pairs["ZbxOrders@ZbxOrderConsumer"].Today == 137 && s.Pairs["ZbxPayments@ZbxPayConsumer"].Today == 58
	})
	if s.Groups["ZbxPayConsumer"].Today != 58 || s.Topics["ZbxOrders"].FiveMin != 137 || s.Topics["ZbxOrders"].TodayBytes <= 0 || s.Age > 120 {
		t.Fatalf("stats: %+v", s)
	}

	// Agent 2 serves the same file.
	a2 := startAgent(t, agent2)
	var s2 stats
	a2.get(t, statsKey, &s2)
	if s2.Topics["ZbxOrders"].Today != 137 || s2.Pairs["ZbxPayments@ZbxPayConsumer"].Today != 58 {
		t.Fatalf("agent 2 stats: %+v", s2)
	}

	// A broker restart loses nothing: the stopping broker writes its
	// partial minute, the restarted one the rest.
	sendN(t, p, "ZbxOrders", "before-restart", 10)
	// Fill the first segment, so that the restarted broker's recovery
	// starts in the next one.
	createTopic(t, c, "ZbxBulk", 1)
	bulk := make([]byte, 200<<10)
	for range 6 {
		if _, err := rand.Read(bulk); err != nil { // incompressible: the client compresses large bodies
			t.Fatal(err)
		}
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("ZbxBulk", bulk)); err != nil {
			t.Fatal(err)
		}
	}
	c.broker.stop()
	// A flipped bit in the body of an order, as TestCorruptMidLogRecovery
	// does (not the first record: runtime info reads that one).
	damaged := ordersSent[68]
	f, err := os.OpenFile(filepath.Join(string(c.dir), "store", "commitlog", "00000000000000000000"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var flip [1]byte
	at := phyOffset(t, damaged) + 88 + 2 // IPv4 born and store hosts: the body starts at 88
	if _, err := f.ReadAt(flip[:], at); err != nil {
		t.Fatal(err)
	}
	flip[0] ^= 0x10
	if _, err := f.WriteAt(flip[:], at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := os.Stat(filepath.Join(string(c.dir), "store", "commitlog", "00000000000001048576")); err != nil {
		t.Fatalf("the commit log did not reach a second segment: %v", err)
	}
	var evBefore storeEvents
	a.get(t, q("rocketmq.logs.get", logDir), &evBefore)
	c.broker = restartBroker(t, c, segments)

	// The restarted broker has not read the damaged record yet; a reader
	// of its queue gets every other message, and the agent sees the broker
	// find the damage: the counters, the store log's [CORRUPT] record.
	var sf storeFigures
	a.get(t, q("rocketmq.broker.get", broker, ns), &sf)
	if sf != (storeFigures{State: "OK"}) {
		t.Fatalf("store after the restart, before the damaged record is read: %+v", sf)
	}
	qid := damaged.MessageQueue.QueueId
	got := pullAll(t, c, "ZbxDamageReader", "ZbxOrders", qid)
	if end := maxOffset(t, c.broker.addr, "ZbxOrders", qid); int64(len(got)) != end-1 {
		t.Fatalf("queue %d of ZbxOrders: %d of %d messages readable, want all but the damaged one", qid, len(got), end)
	}
	for _, m := range got {
		if m.QueueOffset == damaged.QueueOffset {
			t.Fatalf("the damaged message was served: %q", m.Body)
		}
	}
	a.get(t, q("rocketmq.broker.get", broker, ns), &sf)
	if sf.State != "OK" || sf.Code != 0 || sf.Ranges != 1 || sf.Bytes <= 0 || sf.Skipped < 1 {
		t.Fatalf("store after reading the damaged record: %+v", sf)
	}
	// The background scrub may have logged the range again by now.
	var ev storeEvents
	a.get(t, q("rocketmq.logs.get", logDir), &ev)
	if d := ev.Corruption - evBefore.Corruption; d < 1 || d > 2 ||
		ev.Files["store"].Tags["CORRUPT"]-evBefore.Files["store"].Tags["CORRUPT"] != d {
		t.Fatalf("damaged record counted %d times (CORRUPT records %d): %+v", d,
			ev.Files["store"].Tags["CORRUPT"]-evBefore.Files["store"].Tags["CORRUPT"], ev)
	}
	if ev.DiskFull+ev.FsyncFailed+ev.QueueRebuilt+ev.QueueBlocked+ev.UnreadDeleted+ev.RetentionBlocked != 0 {
		t.Fatalf("other store events after the restart: %+v", ev)
	}
	sent := 0
	waitFor(t, 30*time.Second, "5 sends after the restart", func() bool {
		m := primitive.NewMessage("ZbxOrders", []byte(fmt.Sprint("after-restart-", sent)))
		if _, err := p.SendSync(context.Background(), m); err == nil {
			sent++
		}
		return sent == 5
	})
	waitFor(t, 150*time.Second, "stats.log to count the messages around the restart", func() bool {
		a.get(t, statsKey, &s)
		return s.Topics["ZbxOrders"].Today >= 152
	})
	if s.Topics["ZbxOrders"].Today != 152 {
		t.Fatalf("produced today after a restart: %d, want 152", s.Topics["ZbxOrders"].Today)
	}
}
