package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// As shipped in RocketMQ 4.9.x distribution/conf/broker.conf (license header
// shortened).
const javaBrokerConf = `# Licensed to the Apache Software Foundation (ASF) under one or more
# contributor license agreements.

brokerClusterName = DefaultCluster
brokerName = broker-a
brokerId = 0
deleteWhen = 04
fileReservedTime = 48
brokerRole = ASYNC_MASTER
flushDiskType = ASYNC_FLUSH
`

// As shipped in distribution/conf/2m-2s-async/broker-a-s.properties.
const javaBrokerSlave = `brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=1
deleteWhen=04
fileReservedTime=48
brokerRole=SLAVE
flushDiskType=ASYNC_FLUSH
`

// A production-style file: the shipped keys plus ones operators commonly
// add, old spellings, Windows line ends and a continued line.
const javaBrokerFull = "brokerClusterName=ProdCluster\r\n" +
	"brokerName=broker-b\r\n" +
	"brokerId=0\r\n" +
	"namesrvAddr=10.0.0.1:9876;\\\r\n    10.0.0.2:9876\r\n" +
	"brokerIP1=10.0.0.10\r\n" +
	"listenPort=10911\r\n" +
	"storePathRootDir=/data/rocketmq/store\r\n" +
	"storePathCommitLog=/data/rocketmq/store/commitlog\r\n" +
	"mapedFileSizeCommitLog=1073741824\r\n" +
	"mapedFileSizeConsumeQueue=300000\r\n" +
	"deleteWhen=04;05\r\n" +
	"fileReservedTime=120\r\n" +
	"diskMaxUsedSpaceRatio=88\r\n" +
	"brokerRole=SYNC_MASTER\r\n" +
	"flushDiskType=SYNC_FLUSH\r\n" +
	"autoCreateTopicEnable=false\r\n" +
	"autoCreateSubscriptionGroup=TRUE\r\n" +
	"defaultTopicQueueNums=4\r\n" +
	"maxMessageSize=65536\r\n" +
	"sendMessageThreadPoolNums=128\r\n" +
	"pullMessageThreadPoolNums=128\r\n" +
	"flushCommitLogLeastPages=4\r\n" +
	"useReentrantLockWhenPutMessage=true\r\n" +
	"waitTimeMillsInSendQueue=1000\r\n" +
	"traceTopicEnable=true\r\n" +
	"aclEnable=false\r\n"

func setup(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("NAMESRV_ADDR", "")
	return home
}

func write(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, text string, overrides map[string]string) (*Broker, []string) {
	t.Helper()
	b, warnings, err := LoadBroker(write(t, "broker.conf", text), overrides)
	if err != nil {
		t.Fatalf("LoadBroker: %v", err)
	}
	return b, warnings
}

func TestDefaults(t *testing.T) {
	home := setup(t)
	b, warnings, err := LoadBroker("", nil)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("LoadBroker: %v %q", err, warnings)
	}
	if b.BrokerClusterName != "DefaultCluster" || b.BrokerName != "broker-a" || b.BrokerID != 0 ||
		b.ListenPort != 10911 || b.HAListenPort != 10912 || b.BrokerIP2 != b.BrokerIP1 ||
		b.MappedFileSizeCommitLog != 1<<30 || b.MappedFileSizeConsumeQueue != 6000000 ||
		b.FlushDiskType != "ASYNC_FLUSH" || b.BrokerRole != "ASYNC_MASTER" || b.BrokerPermission != 6 ||
		b.RegisterNameServerPeriod != 30000 || b.MsgTraceTopicName != "RMQ_SYS_TRACE_TOPIC" || !b.TraceOn {
		t.Errorf("defaults: %+v", b)
	}
	if b.StorePathRootDir != filepath.Join(home, "store") || b.StorePathCommitLog != filepath.Join(home, "store", "commitlog") ||
		b.LogDir != filepath.Join(home, "logs", "rocketmqlogs") {
		t.Errorf("paths: %q %q %q", b.StorePathRootDir, b.StorePathCommitLog, b.LogDir)
	}
	if err := ipv4(b.BrokerIP1); err != nil {
		t.Errorf("brokerIP1 %q: %v", b.BrokerIP1, err)
	}
	if got := b.DeleteWhenHours(); !slices.Equal(got, []int{4}) {
		t.Errorf("DeleteWhenHours = %v", got)
	}
	levels := b.DelayLevels()
	if len(levels) != 18 || levels[0] != time.Second || levels[17] != 2*time.Hour {
		t.Errorf("DelayLevels = %v", levels)
	}
}

func TestNamesrvAddrFromEnvironment(t *testing.T) {
	setup(t)
	t.Setenv("NAMESRV_ADDR", "127.0.0.1:9876")
	b, _, err := LoadBroker("", nil)
	if err != nil || b.NamesrvAddr != "127.0.0.1:9876" {
		t.Fatalf("NamesrvAddr = %q, %v", b.NamesrvAddr, err)
	}
}

func TestLoadJavaBrokerConf(t *testing.T) {
	setup(t)
	b, warnings := mustLoad(t, javaBrokerConf, nil)
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if b.FileReservedTime != 48 || b.BrokerRole != "ASYNC_MASTER" || b.FlushDiskType != "ASYNC_FLUSH" ||
		b.DeleteWhen != "04" || b.BrokerName != "broker-a" {
		t.Errorf("loaded: %+v", b)
	}

	// A slave's settings load silently.
	s, warnings := mustLoad(t, javaBrokerSlave, nil)
	if len(warnings) != 0 || s.BrokerRole != "SLAVE" || s.BrokerID != 1 {
		t.Errorf("slave: %+v %q", s, warnings)
	}
}

func TestLoadProductionStyleConf(t *testing.T) {
	setup(t)
	b, warnings := mustLoad(t, javaBrokerFull, nil)
	if b.NamesrvAddr != "10.0.0.1:9876;10.0.0.2:9876" || b.BrokerIP1 != "10.0.0.10" || b.BrokerIP2 != "10.0.0.10" ||
		b.StorePathCommitLog != "/data/rocketmq/store/commitlog" || b.MappedFileSizeConsumeQueue != 300000 ||
		b.BrokerRole != "SYNC_MASTER" || b.FlushDiskType != "SYNC_FLUSH" || b.AutoCreateTopicEnable ||
		!b.AutoCreateSubscriptionGroup || b.DefaultTopicQueueNums != 4 ||
		b.DiskMaxUsedSpaceRatio != 88 || !b.TraceTopicEnable {
		t.Errorf("loaded: %+v", b)
	}
	if got := b.DeleteWhenHours(); !slices.Equal(got, []int{4, 5}) {
		t.Errorf("DeleteWhenHours = %v", got)
	}
	if b.SendMessageThreadPoolNums != 128 || b.WaitTimeMillsInSendQueue != 1000 {
		t.Errorf("send admission keys: sendMessageThreadPoolNums %d, waitTimeMillsInSendQueue %d", b.SendMessageThreadPoolNums, b.WaitTimeMillsInSendQueue)
	}
	for _, k := range []string{"pullMessageThreadPoolNums", "flushCommitLogLeastPages", "useReentrantLockWhenPutMessage"} {
		if !hasWarning(warnings, `key "`+k+`"`, "accepted for compatibility and has no effect yet") {
			t.Errorf("no compatibility note for %s in %q", k, warnings)
		}
	}
	if len(warnings) != 3 {
		t.Errorf("want 3 warnings, got %q", warnings)
	}
}

func TestUnknownKeyWarns(t *testing.T) {
	setup(t)
	_, warnings := mustLoad(t, javaBrokerConf+"fooBar=1\nbrokername=x\n", nil)
	if !hasWarning(warnings, `unknown key "fooBar" in `, "broker.conf: ignored") {
		t.Errorf("warnings: %q", warnings)
	}
	if !hasWarning(warnings, `unknown key "brokername"`, `did you mean "brokerName"?`) {
		t.Errorf("no case hint: %q", warnings)
	}
}

func TestBadValues(t *testing.T) {
	setup(t)
	for _, c := range []struct{ key, value, why string }{
		{"flushDiskType", "SOMETIMES", "want ASYNC_FLUSH or SYNC_FLUSH"},
		{"brokerRole", "async_master", "want ASYNC_MASTER, SYNC_MASTER or SLAVE"},
		{"listenPort", "abc", "not an integer"},
		{"listenPort", "-1", "want a port 1..65535"},
		{"listenPort", "70000", "want a port 1..65535"},
		{"haListenPort", "-1", "want a port 1..65535"},
		{"mappedFileSizeCommitLog", "0", "must be > 0"},
		{"mappedFileSizeCommitLog", "4294967296", "out of range"},
		{"mappedFileSizeConsumeQueue", "1001", "multiple of 20"},
		{"maxMessageSize", "-5", "must be > 0"},
		{"brokerPermission", "8", "want bits"},
		{"deleteWhen", "24", "want hours 0..23"},
		{"deleteWhen", "04;x", "want hours 0..23"},
		{"deleteWhen", "", "want hours 0..23"},
		{"diskMaxUsedSpaceRatio", "0", "want 1..100"},
		{"diskMaxUsedSpaceRatio", "101", "want 1..100"},
		{"autoCreateTopicEnable", "yes", "want true or false"},
		{"messageDelayLevel", "1s 5x", `level "5x"`},
		{"messageDelayLevel", "1s s", `level "s"`},
		{"brokerIP1", "broker.example", "want an IPv4 address"},
		{"namesrvAddr", "127.0.0.1", "want host:port"},
		{"namesrvAddr", "127.0.0.1:9876;:9876", "want host:port"},
		{"namesrvAddr", "127.0.0.1:98760", "want host:port"},
		{"brokerId", "-2", "must be >= -1"},
		{"brokerName", "", "must not be empty"},
		{"syncFlushTimeout", "1.5", "not an integer"},
		{"enableLmq", "on", "want true or false"},
		{"enableMultiDispatch", "1", "want true or false"},
		{"maxLmqConsumeQueueNum", "0", "must be > 0"},
		{"maxLmqConsumeQueueNum", "20k", "not an integer"},
	} {
		text := javaBrokerConf + c.key + "=" + c.value + "\n"
		_, _, err := LoadBroker(write(t, "broker.conf", text), nil)
		want := c.key + ` = "` + c.value + `": `
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.why) ||
			!strings.Contains(err.Error(), "broker.conf: ") {
			t.Errorf("%s=%s: got %v, want ...%s%s", c.key, c.value, err, want, c.why)
		}
	}
}

func TestBadValueExactMessage(t *testing.T) {
	setup(t)
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("broker.conf", []byte("flushDiskType=SOMETIMES\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadBroker("broker.conf", nil)
	if want := `broker.conf: flushDiskType = "SOMETIMES": want ASYNC_FLUSH or SYNC_FLUSH`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestAllBadValuesReported(t *testing.T) {
	setup(t)
	_, _, err := LoadBroker(write(t, "broker.conf", "listenPort=x\nbrokerRole=BOSS\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "listenPort") || !strings.Contains(err.Error(), "brokerRole") {
		t.Errorf("got %v", err)
	}
}

func TestMalformedFile(t *testing.T) {
	setup(t)
	_, _, err := LoadBroker(write(t, "broker.conf", "brokerName=a\nbrokerIP1=\\u00zz\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "broker.conf") {
		t.Errorf("got %v", err)
	}
	if _, _, err := LoadBroker(filepath.Join(t.TempDir(), "missing.conf"), nil); err == nil {
		t.Error("missing file: no error")
	}
}

// ha.md Appendix A: a Java 5 controller-mode broker.conf starts unchanged;
// the controller, not brokerId=-1 and brokerRole=SLAVE, decides.
func TestControllerModeConf(t *testing.T) {
	setup(t)
	conf := "brokerClusterName=DefaultCluster\nbrokerName=broker-a\nbrokerId=-1\nbrokerRole=SLAVE\n" +
		"enableControllerMode=true\ncontrollerAddr=127.0.0.1:9878;127.0.0.1:9868;127.0.0.1:9858\n" +
		"namesrvAddr=127.0.0.1:9876;127.0.0.1:9886;127.0.0.1:9896\nallAckInSyncStateSet=true\n" +
		"listenPort=30911\nhaListenPort=30912\nstorePathRootDir=/tmp/n0\nstorePathCommitLog=/tmp/n0/commitlog\n" +
		"mappedFileSizeCommitLog=67108864\nflushDiskType=ASYNC_FLUSH\n"
	b, warnings := mustLoad(t, conf, nil)
	if !b.EnableControllerMode || b.BrokerID != -1 || !b.AllAckInSyncStateSet || len(warnings) != 0 ||
		b.StorePathEpochFile != "/tmp/n0/epochFileCheckpoint" || b.StorePathBrokerIdentity != "/tmp/n0/brokerIdentity" ||
		b.BrokerHeartbeatInterval != 1000 || b.HAMaxTimeSlaveNotCatchup != 15000 || b.MinInSyncReplicas != 1 {
		t.Fatalf("controller-mode conf: %+v, warnings %q", b, warnings)
	}
	for text, want := range map[string]string{
		"brokerId=-1\n":                "only controller mode",
		"enableControllerMode=true\n":  "needs controllerAddr",
		"enableDLegerCommitLog=true\n": "DLedger commit log is not supported",
		"enableControllerMode=true\ncontrollerAddr=127.0.0.1:9878\nfetchControllerAddrByDnsLookup=true\n": "not supported",
	} {
		if _, _, err := LoadBroker(write(t, "broker.conf", text), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", text, err, want)
		}
	}
}

func TestCrossKeyRules(t *testing.T) {
	setup(t)
	_, _, err := LoadBroker(write(t, "broker.conf", "brokerRole=SLAVE\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "brokerId") {
		t.Errorf("slave with brokerId 0: %v", err)
	}
	b, warnings := mustLoad(t, "brokerId=3\n", nil)
	if b.BrokerID != 0 || !hasWarning(warnings, "brokerId = 3", "using 0") {
		t.Errorf("master brokerId = %d, warnings %q", b.BrokerID, warnings)
	}
	_, _, err = LoadBroker(write(t, "broker.conf", "listenPort=10911\nhaListenPort=10911\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "haListenPort = 10911: same as listenPort") {
		t.Errorf("same ports: %v", err)
	}
	b, _ = mustLoad(t, "listenPort=0\n", nil) // tests bind free ports
	if b.ListenPort != 0 || b.HAListenPort != 0 {
		t.Errorf("listenPort 0: got %d and HA %d", b.ListenPort, b.HAListenPort)
	}
	_, _, err = LoadBroker(write(t, "broker.conf", "listenPort=65535\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `haListenPort = "65536"`) {
		t.Errorf("derived HA port out of range: %v", err)
	}
	// The HTTP gateway's port must differ from the others when it is on.
	for _, conf := range []string{"enableHttpGateway=true\nhttpGatewayPort=10911\n", "enableHttpGateway=true\nenableProxy=true\ntlsTestModeEnable=true\nhttpGatewayPort=8081\n"} {
		_, _, err = LoadBroker(write(t, "broker.conf", conf), nil)
		if err == nil || !strings.Contains(err.Error(), "httpGatewayPort = ") {
			t.Errorf("%q: %v", conf, err)
		}
	}
	b, _ = mustLoad(t, "httpGatewayPort=10911\n", nil) // off: not checked
	if b.EnableHTTPGateway || b.HTTPGatewayPort != 10911 {
		t.Errorf("gateway off: %v %d", b.EnableHTTPGateway, b.HTTPGatewayPort)
	}
}

// TestBindAddress: bindAddress defaults to every interface; a single IPv4
// address also becomes the registered brokerIP1 (and brokerIP2) unless
// those are set, since clients could reach no other.
func TestBindAddress(t *testing.T) {
	setup(t)
	b, _ := mustLoad(t, "", nil)
	host := b.BrokerIP1
	if b.BindAddress != "0.0.0.0" {
		t.Errorf("default bindAddress %q", b.BindAddress)
	}
	b, _ = mustLoad(t, "bindAddress=127.0.0.2\n", nil)
	if b.BindAddress != "127.0.0.2" || b.BrokerIP1 != "127.0.0.2" || b.BrokerIP2 != "127.0.0.2" {
		t.Errorf("bound to 127.0.0.2: brokerIP1 %q brokerIP2 %q", b.BrokerIP1, b.BrokerIP2)
	}
	b, _ = mustLoad(t, "bindAddress=127.0.0.2\nbrokerIP1=10.0.0.9\n", nil) // behind NAT
	if b.BrokerIP1 != "10.0.0.9" {
		t.Errorf("explicit brokerIP1 replaced: %q", b.BrokerIP1)
	}
	for _, addr := range []string{"::1", "broker1.example.com", "0.0.0.0"} {
		b, _ = mustLoad(t, "bindAddress="+addr+"\n", nil)
		if b.BindAddress != addr || b.BrokerIP1 != host {
			t.Errorf("bindAddress %s: got %q, brokerIP1 %q", addr, b.BindAddress, b.BrokerIP1)
		}
	}
	for _, bad := range []string{"a b", "10.0.0.1:9876", "x_y"} {
		if _, _, err := LoadBroker(write(t, "broker.conf", "bindAddress="+bad+"\n"), nil); err == nil ||
			!strings.Contains(err.Error(), "want an IP address or a host name") {
			t.Errorf("bindAddress %q: %v", bad, err)
		}
	}
	n, _, err := LoadNamesrv("", map[string]string{"bindAddress": "127.0.0.2"})
	if err != nil || n.BindAddress != "127.0.0.2" {
		t.Errorf("namesrv bindAddress: %v %+v", err, n)
	}
}

func TestNotImplemented(t *testing.T) {
	for _, k := range []string{"pullThreadPoolQueueCapacity", "transferMsgByHeap", "waitTimeMillsInHeartbeatQueue", "waitTimeMillsInPullQueue"} {
		if !NotImplemented(k) {
			t.Errorf("%s: implemented?", k)
		}
	}
	for _, k := range []string{"brokerName", "configBlackList", "mapedFileSizeCommitLog", "slaveReadEnable", "accessMessageInMemoryMaxRatio", "offsetCheckInSlave", "sendMessageThreadPoolNums", "osPageCacheBusyTimeOutMills", "waitTimeMillsInTransactionQueue", "enableLmq", "enableMultiDispatch", "maxLmqConsumeQueueNum", "noSuchKey"} {
		if NotImplemented(k) {
			t.Errorf("%s: reported as accepted but not implemented", k)
		}
	}
}

func TestOverridesBeatFile(t *testing.T) {
	setup(t)
	b, _ := mustLoad(t, javaBrokerConf+"namesrvAddr=10.0.0.1:9876\nlistenPort=abc\n", map[string]string{
		"namesrvAddr": "127.0.0.1:9876",
		"listenPort":  "20911", // replaces the file's bad value, so no error
	})
	if b.NamesrvAddr != "127.0.0.1:9876" || b.ListenPort != 20911 || b.HAListenPort != 20912 {
		t.Errorf("got namesrvAddr %q listenPort %d haListenPort %d", b.NamesrvAddr, b.ListenPort, b.HAListenPort)
	}
	_, _, err := LoadBroker("", map[string]string{"listenPort": "x"})
	if err == nil || !strings.Contains(err.Error(), `overrides: listenPort = "x"`) {
		t.Errorf("bad override: %v", err)
	}
}

func TestAliases(t *testing.T) {
	setup(t)
	b, warnings := mustLoad(t, "mapedFileSizeCommitLog=2048\n", nil)
	if b.MappedFileSizeCommitLog != 2048 || len(warnings) != 0 {
		t.Errorf("alias: %d %q", b.MappedFileSizeCommitLog, warnings)
	}
	b, warnings = mustLoad(t, "mapedFileSizeCommitLog=2048\nmappedFileSizeCommitLog=4096\n", nil)
	if b.MappedFileSizeCommitLog != 4096 || !hasWarning(warnings, `"mapedFileSizeCommitLog"`, "also set: ignored") {
		t.Errorf("both spellings: %d %q", b.MappedFileSizeCommitLog, warnings)
	}
	if err := b.Set("mapedFileSizeConsumeQueue", "2000"); err != nil || b.MappedFileSizeConsumeQueue != 2000 {
		t.Errorf("Set alias: %v %d", err, b.MappedFileSizeConsumeQueue)
	}
}

// TestDiskSpaceRatios: RocketMQ 5's percent keys, 4.9's system-property
// names with fractions, the clean level capped at the warning level, and
// bad values refused with the key named.
func TestDiskSpaceRatios(t *testing.T) {
	setup(t)
	b, warnings := mustLoad(t, "", nil)
	if b.DiskSpaceWarningLevelRatio != 90 || b.DiskSpaceCleanForciblyRatio != 85 || !b.CleanFileForciblyEnable || len(warnings) != 0 {
		t.Errorf("defaults: %d %d %v %q", b.DiskSpaceWarningLevelRatio, b.DiskSpaceCleanForciblyRatio, b.CleanFileForciblyEnable, warnings)
	}
	b, warnings = mustLoad(t, "diskSpaceWarningLevelRatio=95\ndiskSpaceCleanForciblyRatio=80\ncleanFileForciblyEnable=false\n", nil)
	if b.DiskSpaceWarningLevelRatio != 95 || b.DiskSpaceCleanForciblyRatio != 80 || b.CleanFileForciblyEnable || len(warnings) != 0 {
		t.Errorf("5.x keys: %d %d %v %q", b.DiskSpaceWarningLevelRatio, b.DiskSpaceCleanForciblyRatio, b.CleanFileForciblyEnable, warnings)
	}
	b, warnings = mustLoad(t, "rocketmq.broker.diskSpaceWarningLevelRatio=0.93\nrocketmq.broker.diskSpaceCleanForciblyRatio=0.8\n", nil)
	if b.DiskSpaceWarningLevelRatio != 93 || b.DiskSpaceCleanForciblyRatio != 80 || len(warnings) != 0 {
		t.Errorf("4.9 names and fractions: %d %d %q", b.DiskSpaceWarningLevelRatio, b.DiskSpaceCleanForciblyRatio, warnings)
	}
	b, warnings = mustLoad(t, "diskSpaceWarningLevelRatio=80\n", nil)
	if b.DiskSpaceCleanForciblyRatio != 80 || !hasWarning(warnings, "diskSpaceCleanForciblyRatio = 85", "using 80") {
		t.Errorf("clean level above the warning level: %d %q", b.DiskSpaceCleanForciblyRatio, warnings)
	}
	for _, bad := range []string{"0", "101", "1.5", "x", "0.0"} {
		if _, _, err := LoadBroker("", map[string]string{"diskSpaceWarningLevelRatio": bad}); err == nil || !strings.Contains(err.Error(), "diskSpaceWarningLevelRatio") {
			t.Errorf("diskSpaceWarningLevelRatio=%s: %v", bad, err)
		}
	}
}

func TestRegisterNameServerPeriodClamped(t *testing.T) {
	setup(t)
	for value, want := range map[string]int{"5000": 10000, "90000": 60000, "-1": 10000, "20000": 20000} {
		b, warnings := mustLoad(t, "registerNameServerPeriod="+value+"\n", nil)
		if b.RegisterNameServerPeriod != want {
			t.Errorf("%s: got %d, want %d", value, b.RegisterNameServerPeriod, want)
		}
		if clamped := want != 20000; clamped != hasWarning(warnings, "registerNameServerPeriod = "+value, "outside 10000..60000") {
			t.Errorf("%s: warnings %q", value, warnings)
		}
	}
	b, _ := mustLoad(t, "diskMaxUsedSpaceRatio=99\n", nil)
	if b.DiskMaxUsedSpaceRatio != 95 {
		t.Errorf("diskMaxUsedSpaceRatio = %d, want 95", b.DiskMaxUsedSpaceRatio)
	}
}

func TestSetPropertiesSaveRoundTrip(t *testing.T) {
	setup(t)
	b, _ := mustLoad(t, javaBrokerConf+"transferMsgByHeap=true\n", nil)
	for k, v := range map[string]string{
		"namesrvAddr":      "127.0.0.1:9876",
		"brokerName":       "broker a=b:c #1", // needs escaping in a properties file
		"storePathRootDir": "/data/store",
		"deleteWhen":       "04;05",
		"highSpeedMode":    "true",
	} {
		if err := b.Set(k, v); err != nil {
			t.Fatalf("Set(%s): %v", k, err)
		}
	}
	if b.StorePathCommitLog != "/data/store/commitlog" {
		t.Errorf("commit log did not follow the root: %q", b.StorePathCommitLog)
	}
	props := b.Properties()
	if !slices.IsSortedFunc(props, func(a, b wire.JavaProperty) int { return strings.Compare(a.Key, b.Key) }) {
		t.Error("Properties not sorted")
	}
	got := map[string]string{}
	for _, kv := range props {
		got[kv.Key] = kv.Value
	}
	for k, v := range map[string]string{
		"brokerName": "broker a=b:c #1", "fileReservedTime": "48", "haListenPort": "10912",
		"transferMsgByHeap": "true", "highSpeedMode": "true", "autoCreateTopicEnable": "true", "deleteWhen": "04;05",
	} {
		if got[k] != v {
			t.Errorf("Properties[%s] = %q, want %q", k, got[k], v)
		}
	}
	if len(props) != len(b.keys())+2 {
		t.Errorf("Properties has %d keys, want %d", len(props), len(b.keys())+2)
	}

	path := filepath.Join(t.TempDir(), "broker.properties")
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(saved), "haListenPort=") || strings.Contains(string(saved), "storePathCommitLog=") {
		t.Errorf("derived keys saved:\n%s", saved)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
	again, warnings, err := LoadBroker(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Properties(), props) {
		t.Errorf("round trip differs:\n%v\n%v", again.Properties(), props)
	}
	if len(warnings) != 2 { // the two accepted keys, nothing unknown
		t.Errorf("warnings: %q", warnings)
	}
	// Derived keys still follow their source after the reload.
	if err := again.Set("listenPort", "20911"); err != nil || again.HAListenPort != 20912 {
		t.Errorf("haListenPort = %d after Set: %v", again.HAListenPort, err)
	}
}

func TestSetRejects(t *testing.T) {
	setup(t)
	b, _ := mustLoad(t, javaBrokerConf, nil)
	before := b.Properties()
	for _, c := range []struct{ key, value, want string }{
		{"flushDiskType", "SOMETIMES", `flushDiskType = "SOMETIMES": want ASYNC_FLUSH or SYNC_FLUSH`},
		{"listenPort", "abc", `listenPort = "abc": not an integer`},
		{"brokerRole", "SLAVE", `brokerRole = "SLAVE": brokerRole SLAVE needs brokerId > 0`},
		{"listenPort", "65535", `listenPort = "65535": haListenPort = "65536"`},
	} {
		if err := b.Set(c.key, c.value); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Set(%s, %s) = %v, want %s", c.key, c.value, err, c.want)
		}
	}
	if err := b.Set("fooBar", "1"); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"fooBar"`) {
		t.Errorf("unknown key: %v", err)
	}
	if !reflect.DeepEqual(b.Properties(), before) {
		t.Error("failed Set changed the config")
	}
}

func TestEveryFieldHasAKey(t *testing.T) {
	// Fields of a nested settings struct (ControllerSettings) count one by one.
	var count func(typ reflect.Type) int
	count = func(typ reflect.Type) int {
		n := 0
		for i := 0; i < typ.NumField(); i++ {
			switch f := typ.Field(i); {
			case !f.IsExported():
			case f.Type.Kind() == reflect.Struct:
				n += count(f.Type)
			default:
				n++
			}
		}
		return n
	}
	check := func(name string, v any, keys []key, sc schema) {
		fields := count(reflect.TypeOf(v).Elem())
		if fields != len(keys) {
			t.Errorf("%s: %d exported fields, %d keys", name, fields, len(keys))
		}
		for _, k := range keys {
			if sc.accepted[k.name] {
				t.Errorf("%s: %s is implemented and also listed as accepted", name, k.name)
			}
		}
	}
	b := defaultBroker()
	check("Broker", b, b.keys(), brokerSchema)
	n := &Namesrv{}
	check("Namesrv", n, n.keys(), namesrvSchema)
	c := &Controller{}
	check("Controller", c, c.keys(), controllerSchema)
}

func TestNamesrv(t *testing.T) {
	home := setup(t)
	n, warnings, err := LoadNamesrv("", nil)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("LoadNamesrv: %v %q", err, warnings)
	}
	if n.ListenPort != 9876 || n.KVConfigPath != filepath.Join(home, "namesrv", "kvConfig.json") ||
		n.ScanNotActiveBrokerInterval != 10000 || n.BrokerChannelExpiredTime != 120000 || n.OrderMessageEnable {
		t.Errorf("defaults: %+v", n)
	}
	path := write(t, "namesrv.conf", "listenPort=9877\nbrokerChannelExpiredTime=500\nscanNotActiveBrokerInterval=100\n"+
		"serverWorkerThreads=8\nconfigStorePath=/tmp/ns.properties\nfooBar=1\n")
	n, warnings, err = LoadNamesrv(path, map[string]string{"orderMessageEnable": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if n.ListenPort != 9877 || n.BrokerChannelExpiredTime != 500 || n.ScanNotActiveBrokerInterval != 100 ||
		!n.OrderMessageEnable {
		t.Errorf("loaded: %+v", n)
	}
	if !hasWarning(warnings, `"serverWorkerThreads"`, "no effect yet") || !hasWarning(warnings, `"configStorePath"`, "no effect yet") ||
		!hasWarning(warnings, `unknown key "fooBar"`, "ignored") {
		t.Errorf("warnings: %q", warnings)
	}
	if err := n.Set("listenPort", "65536"); err == nil || !strings.Contains(err.Error(), `listenPort = "65536"`) {
		t.Errorf("Set: %v", err)
	}
	if err := n.Set("kvConfigPath", "/tmp/kv.json"); err != nil || n.KVConfigPath != "/tmp/kv.json" {
		t.Errorf("Set: %v", err)
	}
	if _, _, err := LoadNamesrv("", map[string]string{"brokerChannelExpiredTime": "0"}); err == nil {
		t.Error("brokerChannelExpiredTime 0: no error")
	}
	saved := filepath.Join(t.TempDir(), "namesrv.properties")
	if err := n.Save(saved); err != nil {
		t.Fatal(err)
	}
	again, _, err := LoadNamesrv(saved, nil)
	if err != nil || !reflect.DeepEqual(again.Properties(), n.Properties()) {
		t.Errorf("round trip: %v\n%v\n%v", err, again.Properties(), n.Properties())
	}
}

func hasWarning(warnings []string, parts ...string) bool {
	for _, w := range warnings {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(w, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestACLKeys(t *testing.T) {
	b, warnings, err := LoadBroker("", map[string]string{
		"aclEnable": "true", "aclFile": "/etc/mq/acl.yml",
		"innerClientAuthenticationCredentials": `{"accessKey":"brokerInner","secretKey":"s3cret-key"}`,
	})
	if err != nil || len(warnings) != 0 {
		t.Fatal(err, warnings)
	}
	cr, err := ParseCredentials(b.InnerClientAuthenticationCredentials)
	if !b.AclEnable || b.AclFile != "/etc/mq/acl.yml" || err != nil || cr.AccessKey != "brokerInner" || cr.SecretKey != "s3cret-key" {
		t.Fatalf("%+v %v %+v", b, err, cr)
	}
	for _, p := range b.Properties() {
		if strings.Contains(p.Value, "s3cret-key") {
			t.Fatalf("secret shown: %s=%s", p.Key, p.Value)
		}
	}
	_, _, err = LoadBroker("", map[string]string{"innerClientAuthenticationCredentials": `{"accessKey":"brokerInner","secretKey":"s3cret-key","x":1}`})
	if err == nil || strings.Contains(err.Error(), "s3cret-key") {
		t.Fatalf("bad credentials: %v", err)
	}
	n, warnings, err := LoadNamesrv("", map[string]string{"aclEnable": "true", "aclFile": "/x.yml"})
	if err != nil || len(warnings) != 0 || !n.AclEnable || n.AclFile != "/x.yml" {
		t.Fatal(err, warnings)
	}
}

// TestSendAdmissionKeys: the send-admission keys (broker/flow) load with
// their defaults, take values, and refuse out-of-range ones with the
// key's name.
func TestSendAdmissionKeys(t *testing.T) {
	setup(t)
	b, _ := mustLoad(t, "", nil)
	if b.SendMessageThreadPoolNums != min(runtime.NumCPU(), 4) || b.SendThreadPoolQueueCapacity != 10000 ||
		b.SendInflightMaxBytes != 256<<20 || b.SendInflightPerConnection != 1024 || b.WaitTimeMillsInSendQueue != 200 ||
		b.OSPageCacheBusyTimeOutMills != 1000 || !b.BrokerFastFailureEnable || b.TopicQuotaMaxDelayMills != 500 {
		t.Errorf("defaults: %+v", b)
	}
	b, _ = mustLoad(t, "sendMessageThreadPoolNums=3\nsendThreadPoolQueueCapacity=7\nsendInflightMaxBytes=8589934592\n"+
		"sendInflightPerConnection=5\nwaitTimeMillsInSendQueue=9\nosPageCacheBusyTimeOutMills=11\n"+
		"brokerFastFailureEnable=false\ntopicQuotaMaxDelayMills=0\n", nil)
	if b.SendMessageThreadPoolNums != 3 || b.SendThreadPoolQueueCapacity != 7 || b.SendInflightMaxBytes != 8<<30 ||
		b.SendInflightPerConnection != 5 || b.WaitTimeMillsInSendQueue != 9 || b.OSPageCacheBusyTimeOutMills != 11 ||
		b.BrokerFastFailureEnable || b.TopicQuotaMaxDelayMills != 0 {
		t.Errorf("loaded: %+v", b)
	}
	for _, c := range []struct{ key, value, why string }{
		{"sendMessageThreadPoolNums", "0", "must be > 0"},
		{"sendThreadPoolQueueCapacity", "0", "must be > 0"},
		{"sendThreadPoolQueueCapacity", "4294967296", "out of range"},
		{"sendInflightMaxBytes", "-1", "must be > 0"},
		{"sendInflightPerConnection", "0", "must be > 0"},
		{"waitTimeMillsInSendQueue", "0", "must be > 0"},
		{"osPageCacheBusyTimeOutMills", "-5", "must be > 0"},
		{"brokerFastFailureEnable", "off", "want true or false"},
		{"topicQuotaMaxDelayMills", "-1", "must be >= 0"},
	} {
		_, _, err := LoadBroker("", map[string]string{c.key: c.value})
		if want := c.key + ` = "` + c.value + `": ` + c.why; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%s: got %v, want ...%s", c.key, c.value, err, want)
		}
	}
}

// TestLightQueueKeys: RocketMQ's names and defaults; multi-dispatch needs
// both switches, and one alone is a warning saying so.
func TestLightQueueKeys(t *testing.T) {
	setup(t)
	b, warns, err := LoadBroker(write(t, "broker.conf", javaBrokerConf), nil)
	if err != nil || b.EnableLmq || b.EnableMultiDispatch || b.MaxLmqConsumeQueueNum != 20000 || len(warns) != 0 {
		t.Fatalf("defaults: %+v %v %v", b, warns, err)
	}
	b, warns, err = LoadBroker(write(t, "broker.conf", javaBrokerConf+"enableLmq=true\nenableMultiDispatch=true\nmaxLmqConsumeQueueNum=500\n"), nil)
	if err != nil || !b.EnableLmq || !b.EnableMultiDispatch || b.MaxLmqConsumeQueueNum != 500 || len(warns) != 0 {
		t.Fatalf("both on: %v %v, max %d, %v %v", b.EnableLmq, b.EnableMultiDispatch, b.MaxLmqConsumeQueueNum, warns, err)
	}
	b, warns, err = LoadBroker(write(t, "broker.conf", javaBrokerConf+"enableLmq=true\n"), nil)
	if err != nil || !b.EnableLmq || b.EnableMultiDispatch || !slices.ContainsFunc(warns, func(w string) bool {
		return strings.Contains(w, "enableMultiDispatch = false") && strings.Contains(w, "need both")
	}) {
		t.Fatalf("enableLmq alone: warnings %q, %v", warns, err)
	}
}
