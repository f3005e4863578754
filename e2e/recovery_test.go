package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/wire"
)

// pullAll reads a queue from 0 to its max offset with the official client.
func pullAll(t *testing.T, c *cluster, group, topic string, queue int) []*primitive.MessageExt {
	t.Helper()
	pc := newPullConsumer(t, c.ns.addr, group, topic)
	var out []*primitive.MessageExt
	end := maxOffset(t, c.broker.addr, topic, queue)
	mq := &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: queue}
	for off := int64(0); off < end; {
		res, err := pc.PullFrom(context.Background(), mq, off, 32)
		if err != nil || res.Status != primitive.PullFound {
			t.Fatalf("pull %s/%d at %d: %v %+v", topic, queue, off, err, res)
		}
		out = append(out, res.GetMessageExts()...)
		off = res.NextBeginOffset
	}
	return out
}

func phyOffset(t *testing.T, r *primitive.SendResult) int64 {
	t.Helper()
	_, _, off, err := wire.ParseOffsetMsgID(r.OffsetMsgID)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

// TestTornTailRecovery damages the end of the commit log of a killed broker
// the two ways a crash or a bad disk does, and checks that the restarted
// broker cuts exactly the damaged record and serves everything before it.
// A crash can only tear what was not fsynced yet, so the broker runs with
// an hour-long flush interval: the damaged record is past the checkpoint's
// durable point, as a torn write always is (damage below it is
// TestCorruptMidLogRecovery's case).
func TestTornTailRecovery(t *testing.T) {
	const noFlush = "flushIntervalCommitLog=3600000"
	c := startCluster(t, noFlush)
	const topic = "Torn"
	createTopic(t, c, topic, 1)
	p := newProducer(t, c.ns.addr)
	sent := sendN(t, p, topic, "torn", 20)
	segment := filepath.Join(string(c.dir), "store", "commitlog", "00000000000000000000")

	// 1. The last record is cut short, as by a crash in the middle of a write.
	c.broker.kill()
	last := phyOffset(t, sent[19])
	if err := os.Truncate(segment, last+30); err != nil {
		t.Fatal(err)
	}
	c.broker = restartBroker(t, c, noFlush)
	got := pullAll(t, c, "CG_torn1", topic, 0)
	if len(got) != 19 {
		t.Fatalf("after a torn tail %d messages are readable, want the 19 before it", len(got))
	}
	for i, m := range got {
		if string(m.Body) != fmt.Sprintf("torn-%d", i) || m.QueueOffset != int64(i) {
			t.Fatalf("message %d after recovery: %q at %d", i, m.Body, m.QueueOffset)
		}
	}
	if !strings.Contains(readLog(t, c, "storeerror.log"), "[RECOVERY] cut commitlog") {
		t.Fatal("the cut was not logged with [RECOVERY]")
	}
	// New sends continue at the cut with the next queue offset.
	r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("after-cut")))
	if err != nil {
		t.Fatal(err)
	}
	if r.QueueOffset != 19 || phyOffset(t, r) != last {
		t.Fatalf("send after the cut landed at queue offset %d, phys %d; want 19 at %d", r.QueueOffset, phyOffset(t, r), last)
	}

	// 2. A byte of the last record's body flips: its CRC no longer matches.
	c.broker.kill()
	f, err := os.OpenFile(segment, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	const bodyAt = 88 // IPv4 born and store hosts (layout: wire/record.go)
	var b [1]byte
	if _, err := f.ReadAt(b[:], last+bodyAt); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xFF
	if _, err := f.WriteAt(b[:], last+bodyAt); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c.broker = restartBroker(t, c, noFlush)
	got = pullAll(t, c, "CG_torn2", topic, 0)
	if len(got) != 19 || string(got[18].Body) != "torn-18" {
		t.Fatalf("after a corrupt last record %d messages are readable, want 19", len(got))
	}
}

// TestCorruptMidLogRecovery flips one byte in the body of a message in the
// middle of the commit log of a cleanly stopped broker (so below its
// checkpoint's durable point). The restarted broker quarantines that one
// record and serves every later message to the official client; before
// issue 11 it cut the log there and lost the 99 intact messages after it.
func TestCorruptMidLogRecovery(t *testing.T) {
	c := startCluster(t)
	const topic = "MidLog"
	createTopic(t, c, topic, 1)
	p := newProducer(t, c.ns.addr)
	sent := sendN(t, p, topic, "mid", 200)
	c.broker.stop()

	bad := phyOffset(t, sent[100])
	segment := filepath.Join(string(c.dir), "store", "commitlog", "00000000000000000000")
	f, err := os.OpenFile(segment, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	const bodyAt = 88 // IPv4 born and store hosts (store.md §1)
	var b [1]byte
	if _, err := f.ReadAt(b[:], bad+bodyAt+2); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b[:], bad+bodyAt+2); err != nil {
		t.Fatal(err)
	}
	f.Close()

	c.broker = restartBroker(t, c)
	got := pullAll(t, c, "CG_mid", topic, 0)
	if len(got) != 199 {
		t.Fatalf("after a flipped byte in message 100 of 200, %d messages are readable, want 199", len(got))
	}
	for i, m := range got {
		want := i
		if i >= 100 {
			want = i + 1
		}
		if string(m.Body) != fmt.Sprintf("mid-%d", want) || m.QueueOffset != int64(want) {
			t.Fatalf("message %d after recovery: %q at queue offset %d, want mid-%d at %d", i, m.Body, m.QueueOffset, want, want)
		}
	}
	logText := readLog(t, c, "storeerror.log")
	if !strings.Contains(logText, "[RECOVERY] corrupt commitlog range") || !strings.Contains(logText, fmt.Sprintf("offset=%d ", bad)) {
		t.Fatalf("storeerror.log does not name the damaged range at %d:\n%s", bad, logText)
	}
	copies, err := filepath.Glob(filepath.Join(string(c.dir), "store", "corrupt", fmt.Sprintf("commitlog-%020d-*", bad)))
	if err != nil || len(copies) != 1 {
		t.Fatalf("copy of the damaged range: %v %v", copies, err)
	}
	status := cli(t, c.ns.addr, "broker", "status", "-b", c.broker.addr)
	if !regexp.MustCompile(`commitLogCorruptRanges\s+1\n`).MatchString(status) {
		t.Fatalf("broker status does not show the damage:\n%s", status)
	}
}

// TestEmptyCommitLogDirRefused restarts a broker whose storePathCommitLog
// points at an empty directory: its checkpoint vouches for data that is not
// there, so it refuses to start and names the directory (before issue 11
// it started and dropped every consume queue); --accept-data-loss starts it.
func TestEmptyCommitLogDirRefused(t *testing.T) {
	c := startCluster(t)
	createTopic(t, c, "Gone", 1)
	sendN(t, newProducer(t, c.ns.addr), "Gone", "gone", 10)
	c.broker.stop()

	empty := filepath.Join(t.TempDir(), "commitlog")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	args := brokerArgs(c.dir, c.ns.addr, "storePathCommitLog="+empty)
	// A broker that starts anyway is stopped by the timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "mqbroker"), args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to start") || !strings.Contains(string(out), empty) {
		t.Fatalf("mqbroker with an empty commit-log dir: %v\n%s", err, out)
	}

	c.broker = start(t, brokerReady, "mqbroker", append(args, "--accept-data-loss")...)
	if log := readLog(t, c, "storeerror.log"); !strings.Contains(log, "[RECOVERY] accepting data loss") {
		t.Fatalf("discarded data not logged at WARN:\n%s", log)
	}
}

func readLog(t *testing.T, c *cluster, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(string(c.dir), "logs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestJavaBrokerConf starts the broker with the broker.conf shipped in
// RocketMQ 4.9's distribution (conf/2m-2s-async/broker-a.properties plus the
// storage keys of conf/broker.conf), paths pointed at a temp dir.
func TestJavaBrokerConf(t *testing.T) {
	ns := startNamesrv(t)
	dir := newBrokerDir(t)
	conf := filepath.Join(string(dir), "broker.conf")
	javaConf := `#  Licensed to the Apache Software Foundation (ASF) ...
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
deleteWhen=04
fileReservedTime=48
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
storePathRootDir=` + filepath.Join(string(dir), "store") + `
storePathCommitLog=` + filepath.Join(string(dir), "store", "commitlog") + `
mapedFileSizeCommitLog=16777216
mapedFileSizeConsumeQueue=300000
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
sendMessageThreadPoolNums=128
pullMessageThreadPoolNums=128
waitTimeMillsInSendQueue=200
transientStorePoolEnable=false
slaveReadEnable=false
brokerIP1=127.0.0.1
listenPort=0
`
	if err := os.WriteFile(conf, []byte(javaConf), 0o644); err != nil {
		t.Fatal(err)
	}
	br := start(t, brokerReady, "mqbroker", "-c", conf, "-n", ns.addr, "-p", "logDir="+filepath.Join(string(dir), "logs"))
	c := &cluster{ns: ns, broker: br, dir: dir}
	createTopic(t, c, "FromJavaConf", 1)
	p := newProducer(t, ns.addr)
	sendN(t, p, "FromJavaConf", "j", 3)
	col := newCollector()
	newPushConsumer(t, ns.addr, "CG_javaconf", "FromJavaConf", consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	waitFor(t, 30*time.Second, "3 messages", func() bool { return col.count() == 3 })
	if strings.Contains(br.out.String(), "unknown key") {
		t.Fatalf("a Java broker.conf produced unknown-key warnings:\n%s", br.out.String())
	}
}
