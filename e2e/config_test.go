package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// Configuration keys the daemons used to accept without acting on them, the
// keys UPDATE_BROKER_CONFIG must refuse, and the bind address.

// confBroker writes a broker.conf into dir, as an operator (or the Ansible
// role) would, and starts a broker with it. Unlike startBroker the store
// and log paths come from the file, not from -p flags that would mask what
// the file and runtime.properties decide.
func confBroker(t *testing.T, dir brokerDir, namesrv string, lines ...string) *proc {
	t.Helper()
	conf := filepath.Join(string(dir), "broker.conf")
	text := strings.Join(append([]string{
		"namesrvAddr=" + namesrv,
		"listenPort=0",
		"brokerIP1=127.0.0.1",
		"storePathRootDir=" + filepath.Join(string(dir), "store"),
		"logDir=" + filepath.Join(string(dir), "logs"),
		fmt.Sprintf("mappedFileSizeCommitLog=%d", 16<<20),
		"maxHashSlotNum=10000",
		"maxIndexNum=40000",
	}, lines...), "\n") + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return start(t, brokerReady, "mqbroker", "-c", conf)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendRawMessages stores n messages in queue 0 of topic.
func sendRawMessages(t *testing.T, broker, topic string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if resp := invoke(t, broker, wire.SendMessage, sendFields(topic, "0"), []byte(fmt.Sprint("m", i))); resp.Code != wire.Success {
			t.Fatalf("send: %s %s", wire.ResponseName(resp.Code), resp.Remark)
		}
	}
	waitFor(t, 10*time.Second, "messages dispatched", func() bool { return maxOffset(t, broker, topic, 0) == int64(n) })
}

// TestUpdateBrokerConfigRefusesFixedKeys: keys the running broker cannot
// honour (store paths, log directory, ports, identity, file sizes) are
// refused with NO_PERMISSION and a remark naming the key and why; unknown
// keys and bad values are refused too; in every case nothing is saved or
// applied, and the restarted broker serves the same log.
func TestUpdateBrokerConfigRefusesFixedKeys(t *testing.T) {
	ns := startNamesrv(t)
	dir := newBrokerDir(t)
	broker := confBroker(t, dir, ns.addr)
	const topic = "Kept"
	sendRawMessages(t, broker.addr, topic, 3)

	setBrokerConfig(t, broker.addr, "fileReservedTime=48")
	saved := filepath.Join(string(dir), "store", "config", "runtime.properties")
	before := readFile(t, saved)
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")

	for _, c := range []struct{ body, key string }{
		{"storePathRootDir=" + elsewhere, "storePathRootDir"},
		{"storePathCommitLog=" + elsewhere, "storePathCommitLog"},
		{"logDir=" + elsewhere, "logDir"},
		{"listenPort=10999", "listenPort"},
		{"bindAddress=127.0.0.2", "bindAddress"},
		{"brokerName=broker-z", "brokerName"},
		{"brokerId=3", "brokerId"},
		{"mapedFileSizeCommitLog=4096", "mapedFileSizeCommitLog"},
		{"configBlackList=", "configBlackList"},
		// One refused key refuses the whole request.
		{"fileReservedTime=24\nstorePathRootDir=" + elsewhere, "storePathRootDir"},
	} {
		resp := invoke(t, broker.addr, wire.UpdateBrokerConfig, nil, []byte(c.body))
		remark := string(resp.Remark)
		if resp.Code != wire.NoPermission || !strings.HasPrefix(remark, "Can not update config in black list: "+c.key+" (") ||
			!strings.Contains(remark, "Nothing was changed") {
			t.Errorf("%q answered %s %q, want NO_PERMISSION naming %s", c.body, wire.ResponseName(resp.Code), remark, c.key)
		}
	}
	for _, c := range []struct{ body, want string }{
		{"fileReservedTime=24\nnoSuchKey=1", "unknown broker config key noSuchKey"},
		{"fileReservedTime=24\nBrokerPermission=4", "unknown broker config key BrokerPermission"},
		{"fileReservedTime=24\nflushDiskType=SOMETIMES", `flushDiskType = "SOMETIMES": want ASYNC_FLUSH or SYNC_FLUSH`},
	} {
		resp := invoke(t, broker.addr, wire.UpdateBrokerConfig, nil, []byte(c.body))
		if resp.Code != wire.SystemError || !strings.Contains(string(resp.Remark), c.want) || !strings.Contains(string(resp.Remark), "Nothing was changed") {
			t.Errorf("%q answered %s %q, want SYSTEM_ERROR with %q", c.body, wire.ResponseName(resp.Code), resp.Remark, c.want)
		}
	}
	if after := readFile(t, saved); !bytes.Equal(after, before) {
		t.Errorf("runtime.properties changed by refused updates:\nbefore %q\nafter  %q", before, after)
	}
	if got := brokerConfig(t, broker.addr)["fileReservedTime"]; got != "48" {
		t.Errorf("fileReservedTime = %s after refused updates, want 48", got)
	}
	broker.stop()
	broker = confBroker(t, dir, ns.addr)
	if got := maxOffset(t, broker.addr, topic, 0); got != 3 {
		t.Errorf("restarted broker serves %d messages of %s, want 3", got, topic)
	}
	if _, err := os.Stat(elsewhere); !os.IsNotExist(err) {
		t.Errorf("%s was created: %v", elsewhere, err)
	}
	// mqadmin shows the broker's reason and fails.
	out := cliFail(t, ns.addr, "broker", "config", "set", "-b", broker.addr, "storePathCommitLog="+elsewhere)
	if !strings.Contains(out, "NO_PERMISSION") || !strings.Contains(out, "storePathCommitLog (the commit log is opened at start-up") {
		t.Errorf("mqadmin: %q", out)
	}
}

// TestRuntimeConfigFileFixedKeysIgnored: a runtime.properties that holds a
// fixed key (saved by a broker before they were refused) does not move the
// store at start-up: the key is dropped with a warning, the others apply.
func TestRuntimeConfigFileFixedKeysIgnored(t *testing.T) {
	ns := startNamesrv(t)
	dir := newBrokerDir(t)
	broker := confBroker(t, dir, ns.addr)
	const topic = "Kept"
	sendRawMessages(t, broker.addr, topic, 3)
	broker.stop()

	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	saved := filepath.Join(string(dir), "store", "config", "runtime.properties")
	if err := os.WriteFile(saved, []byte("fileReservedTime=48\nstorePathRootDir="+elsewhere+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broker = confBroker(t, dir, ns.addr)
	if got := maxOffset(t, broker.addr, topic, 0); got != 3 {
		t.Errorf("broker serves %d messages of %s, want 3", got, topic)
	}
	if got := brokerConfig(t, broker.addr)["fileReservedTime"]; got != "48" {
		t.Errorf("fileReservedTime = %s, want 48 from runtime.properties", got)
	}
	want := "storePathRootDir = " + fmt.Sprintf("%q", elsewhere) + " ignored: storePathRootDir cannot change at run time"
	if !strings.Contains(broker.out.String(), want) {
		t.Errorf("no warning %q in:\n%s", want, broker.out.String())
	}
}

// TestClusterAndBrokerTopicEnable: as in Java, the topics named after the
// cluster and the broker are inheritable (perm 1) and readable and writable
// only with clusterTopicEnable / brokerTopicEnable (both true by default);
// turning one off takes effect on a broker that already saved the topic.
func TestClusterAndBrokerTopicEnable(t *testing.T) {
	c := startCluster(t)
	perms := func() (int, int) {
		cl, code1 := route(t, c.ns.addr, "DefaultCluster")
		br, code2 := route(t, c.ns.addr, "broker-a")
		if code1 != wire.Success || code2 != wire.Success || len(cl.QueueDatas) != 1 || len(br.QueueDatas) != 1 {
			t.Fatalf("routes: %d %v, %d %v", code1, cl.QueueDatas, code2, br.QueueDatas)
		}
		return cl.QueueDatas[0].Perm, br.QueueDatas[0].Perm
	}
	if cl, br := perms(); cl != 7 || br != 7 {
		t.Fatalf("by default: cluster topic perm %d, broker topic perm %d, want 7 and 7", cl, br)
	}
	c.broker.stop()
	c.broker = restartBroker(t, c, "clusterTopicEnable=false", "brokerTopicEnable=false")
	if cl, br := perms(); cl != wire.PermInherit || br != wire.PermInherit {
		t.Fatalf("disabled: cluster topic perm %d, broker topic perm %d, want 1 and 1", cl, br)
	}
	for _, topic := range []string{"DefaultCluster", "broker-a"} {
		if resp := invoke(t, c.broker.addr, wire.SendMessage, sendFields(topic, "0"), []byte("x")); resp.Code != wire.NoPermission {
			t.Errorf("send to %s answered %s, want NO_PERMISSION", topic, wire.ResponseName(resp.Code))
		}
	}
}

// TestNotifyConsumerIdsChangedEnable: with the key false the broker sends
// no NOTIFY_CONSUMER_IDS_CHANGED when a group's members change (clients then
// rebalance on their own timer); by default it does. Raw connections: a
// notification to A is queued before the answer to A's next request, so
// once that answer is in, every notification A will get has arrived.
func TestNotifyConsumerIdsChangedEnable(t *testing.T) {
	ns := startNamesrv(t)
	for _, enabled := range []bool{true, false} {
		dir := newBrokerDir(t)
		broker := startBroker(t, dir, ns.addr, fmt.Sprintf("notifyConsumerIdsChangedEnable=%v", enabled), fmt.Sprintf("brokerName=b-%v", enabled))
		var notified atomic.Int32
		a := remoting.NewClient(remoting.HandlerFunc(func(c *remoting.Conn, req *wire.Command) {
			if req.Code == wire.NotifyConsumerIDsChanged {
				notified.Add(1)
			}
		}), slog.New(slog.DiscardHandler))
		defer a.Close()
		b := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
		defer b.Close()
		heartbeat := func(cl *remoting.Client, id string) {
			hb := wire.NewRequest(wire.HeartBeat, nil, wire.Marshal(wire.HeartbeatData{
				ClientID: id,
				ConsumerDataSet: []wire.ConsumerData{{GroupName: "CG_notify", ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING",
					ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET", SubscriptionDataSet: []wire.SubscriptionData{{Topic: "T", SubString: "*", ExpressionType: "TAG"}}}},
			}))
			if resp, err := cl.Invoke(broker.addr, hb, 5*time.Second); err != nil || resp.Code != wire.Success {
				t.Fatalf("heartbeat %s: %v %v", id, err, resp)
			}
		}
		heartbeat(a, "client-a")
		heartbeat(b, "client-b")
		list := wire.NewRequest(wire.GetConsumerListByGroup, map[string]string{"consumerGroup": "CG_notify"}, nil)
		resp, err := a.Invoke(broker.addr, list, 5*time.Second)
		if err != nil || resp.Code != wire.Success || !bytes.Contains(resp.Body, []byte("client-b")) {
			t.Fatalf("consumer list: %v %v", err, resp)
		}
		// A saw its own join and B's.
		if got := notified.Load(); enabled && got != 2 || !enabled && got != 0 {
			t.Errorf("notifyConsumerIdsChangedEnable=%v: client A got %d notifications", enabled, got)
		}
	}
}

// TestBindAddress: bindAddress (RocketMQ 5's NettyServerConfig key) makes
// both daemons listen on that address only; the broker registers it as
// brokerIP1 when brokerIP1 is not set. 127.0.0.2 is a loopback alias Linux
// answers without set-up.
func TestBindAddress(t *testing.T) {
	dir := t.TempDir()
	ns := start(t, namesrvReady, "mqnamesrv", "-p", "bindAddress=127.0.0.2", "-p", "listenPort=0",
		"-p", "kvConfigPath="+filepath.Join(dir, "kvConfig.json"), "-p", "logDir="+filepath.Join(dir, "logs"))
	checkBoundTo(t, "name server", ns.addr, wire.GetNamesrvConfig)

	bdir := newBrokerDir(t)
	broker := start(t, brokerReady, "mqbroker", "-n", ns.addr, "-p", "bindAddress=127.0.0.2", "-p", "listenPort=0",
		"-p", "storePathRootDir="+filepath.Join(string(bdir), "store"), "-p", "logDir="+filepath.Join(string(bdir), "logs"),
		"-p", fmt.Sprintf("mappedFileSizeCommitLog=%d", 16<<20), "-p", "maxHashSlotNum=10000", "-p", "maxIndexNum=40000")
	checkBoundTo(t, "broker", broker.addr, wire.GetBrokerConfig)
	if cfg := brokerConfig(t, broker.addr); cfg["bindAddress"] != "127.0.0.2" || cfg["brokerIP1"] != "127.0.0.2" {
		t.Errorf("broker config: bindAddress=%s brokerIP1=%s", cfg["bindAddress"], cfg["brokerIP1"])
	}
	rd, code := route(t, ns.addr, "TBW102")
	if code != wire.Success || len(rd.BrokerDatas) != 1 || rd.BrokerDatas[0].BrokerAddrs[0] != broker.addr {
		t.Errorf("registered: %d %+v, want %s", code, rd.BrokerDatas, broker.addr)
	}

	// An address the host does not have: no start, and the error names it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "mqnamesrv"), "-p", "bindAddress=192.0.2.1", "-p", "listenPort=0",
		"-p", "kvConfigPath="+filepath.Join(dir, "kv2.json"), "-p", "logDir="+filepath.Join(dir, "logs2")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "192.0.2.1") {
		t.Errorf("bindAddress=192.0.2.1: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, filepath.Join(binDir, "mqnamesrv"), "-p", "bindAddress=not an address").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `bindAddress = "not an address": want an IP address or a host name`) {
		t.Errorf("bindAddress=not an address: %v\n%s", err, out)
	}
}

// checkBoundTo: addr (as the daemon printed it) is on 127.0.0.2, answers
// there and refuses connections on 127.0.0.1 at the same port.
func checkBoundTo(t *testing.T, what, addr string, code int32) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.2" {
		t.Fatalf("%s listens on %q, want 127.0.0.2:<port>", what, addr)
	}
	if resp := invoke(t, addr, code, nil, nil); resp.Code != wire.Success {
		t.Errorf("%s on %s answered %s", what, addr, wire.ResponseName(resp.Code))
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 3*time.Second); err == nil {
		c.Close()
		t.Errorf("%s bound to 127.0.0.2 accepted a connection on 127.0.0.1:%s", what, port)
	}
}
