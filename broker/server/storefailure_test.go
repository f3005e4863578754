package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/wire"
)

// call sends one request frame and returns the response.
func call(t *testing.T, conn net.Conn, frame []byte) wire.Command {
	t.Helper()
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for {
		cmd, err := wire.ReadCommand(r)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.IsResponse() {
			return *cmd
		}
	}
}

// TestSendAfterFsyncFailure: a SYNC_FLUSH broker whose commit-log fsync
// fails answers the waiting send and every later one with
// SERVICE_NOT_AVAILABLE and the reason (clients retry that elsewhere and
// then report it), shows it in the runtime info, and after a restart
// serves what was written and accepts sends again.
func TestSendAfterFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	clog := commitLogDir(dir)
	var armed atomic.Bool
	open := func(opts ...func(*Options)) (*Broker, net.Conn, func() error) {
		b := openBroker(t, dir, map[string]string{"mappedFileSizeCommitLog": strconv.Itoa(4 << 20), "flushDiskType": "SYNC_FLUSH"}, opts...)
		b.Start()
		closeOnce := sync.OnceValue(b.Close)
		t.Cleanup(func() { _ = closeOnce() })
		conn, _ := rawConn(t, b)
		return b, conn, closeOnce
	}
	b, conn, closeB := open(failCommitLogFsync(dir, &armed))
	if r := call(t, conn, sendFrame("FsyncTopic", []byte("one"))); r.Code != wire.Success {
		t.Fatalf("first send: %d %s", r.Code, r.Remark)
	}

	armed.Store(true)
	r2 := call(t, conn, sendFrame("FsyncTopic", []byte("two")))
	// Later fsyncs would succeed; sends are still refused, at once.
	r3 := call(t, conn, sendFrame("FsyncTopic", []byte("three")))
	prefix := "service not available now: store failed: fsync of " + clog
	for i, r := range []wire.Command{r2, r3} {
		if r.Code != wire.ServiceNotAvailable || !strings.HasPrefix(string(r.Remark), prefix) {
			t.Errorf("send %d after the fsync failure: %d %q, want %d %q...", i+2, r.Code, r.Remark, wire.ServiceNotAvailable, prefix)
		}
	}
	f := b.store.Failure()
	if f == nil {
		t.Fatal("no store failure")
	}
	want := "service not available now: " + f.Error()
	if !strings.HasPrefix(string(r2.Remark), want+" (this message was written but is not known to be durable)") ||
		string(r3.Remark) != want || !strings.HasSuffix(want, "restart the broker to recover") {
		t.Fatalf("remarks %q and %q, want %q", r2.Remark, r3.Remark, want)
	}
	info := call(t, conn, wire.AppendFrame(nil, wire.NewRequest(wire.GetBrokerRuntimeInfo, nil, nil)))
	var kv wire.KVTable
	if err := json.Unmarshal(info.Body, &kv); err != nil {
		t.Fatal(err)
	}
	if kv.Table["storeState"] != "FAILED" || kv.Table["storeError"] != f.Error() || kv.Table["putMessageFailedTimes"] != "1" {
		t.Fatalf("runtime info: storeState %q storeError %q putMessageFailedTimes %q",
			kv.Table["storeState"], kv.Table["storeError"], kv.Table["putMessageFailedTimes"])
	}

	if err := closeB(); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "abort")); err != nil {
		t.Fatalf("abort marker: %v", err)
	}
	b2, conn2, _ := open()
	if r := call(t, conn2, sendFrame("FsyncTopic", []byte("four"))); r.Code != wire.Success {
		t.Fatalf("send after restart: %d %s", r.Code, r.Remark)
	}
	// The send is answered before the dispatcher writes its unit.
	waitFor(t, func() bool { return b2.store.MaxOffset("FsyncTopic", 0) == 3 })
	res := b2.store.GetMessages("FsyncTopic", 0, 0, 32, 1<<20, nil, nil, nil)
	var bodies []string
	for p := 0; p < len(res.Body); {
		v := wire.RecordView(res.Body[p:])
		bodies = append(bodies, string(v.Body()))
		p += int(v.TotalSize())
	}
	// "two" was written before its fsync failed and survives in the page
	// cache; its sender was told it may not be durable.
	if strings.Join(bodies, ",") != "one,two,four" {
		t.Fatalf("after restart the queue holds %q", bodies)
	}
	if info := call(t, conn2, wire.AppendFrame(nil, wire.NewRequest(wire.GetBrokerRuntimeInfo, nil, nil))); !strings.Contains(string(info.Body), `"storeState":"OK"`) {
		t.Fatalf("runtime info after restart: %s", info.Body)
	}
}

// TestConsumedOffsetHook: what the broker tells store retention about
// consumption.
func TestConsumedOffsetHook(t *testing.T) {
	b := startBroker(t, map[string]string{"traceTopicEnable": "true"})
	b.offsets.Commit("g1", "Orders", 0, 40)
	b.offsets.Commit("g2", "Orders", 0, 25)
	for _, c := range []struct {
		topic   string
		q       int32
		off     int64
		tracked bool
	}{
		{"Orders", 0, 25, true},             // lowest over the consuming groups
		{"Orders", 1, 0, true},              // not read yet by them
		{"NobodyReads", 3, 0, true},         // no group yet: unread
		{"SCHEDULE_TOPIC_XXXX", 2, 0, true}, // delay level 3's next delivery
		{"RMQ_SYS_TRANS_HALF_TOPIC", 0, 0, false},
		{"RMQ_SYS_TRACE_TOPIC", 0, 0, false},
		{"%DLQ%g1", 0, 0, false},
		{"TBW102", 0, 0, false},
	} {
		if off, tracked := b.consumedOffset(c.topic, c.q); off != c.off || tracked != c.tracked {
			t.Errorf("%s/%d: %d, %v; want %d, %v", c.topic, c.q, off, tracked, c.off, c.tracked)
		}
	}
}
