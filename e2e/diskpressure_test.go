package e2e

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// TestDiskPressureKeepsUnreadMessages runs a real broker whose store is a
// 64 MiB tmpfs, at diskMaxUsedSpaceRatio=95, and sends until the disk is
// full without consuming: sends must be refused with a clear remark before
// retention deletes any acknowledged message, the refusals must not log a
// line each, and once a consumer group has committed everything the broker
// frees space and accepts sends again by itself.
func TestDiskPressureKeepsUnreadMessages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs: needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) }) // after the broker is killed
	ns := startNamesrv(t)
	c := &cluster{ns: ns, dir: newBrokerDir(t)}
	c.broker = startBroker(t, c.dir, ns.addr, "storePathRootDir="+filepath.Join(mnt, "store"),
		"mappedFileSizeCommitLog=1048576", "mappedFileSizeConsumeQueue=20000",
		"maxHashSlotNum=1000", "maxIndexNum=20000", "diskMaxUsedSpaceRatio=95")

	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	defer cl.Close()
	const queues = 4
	body := []byte(strings.Repeat("p", 4000))
	acked := make([]int64, queues)
	send := func(i int) *wire.Command {
		resp, err := cl.Invoke(c.broker.addr, wire.NewRequest(wire.SendMessage, sendFields("Pressure", strconv.Itoa(i%queues)), body), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code == wire.Success {
			acked[i%queues]++
		}
		return resp
	}
	// sendUntilRefused sends until n sends in a row were refused.
	i := 0
	sendUntilRefused := func(n int) string {
		refused, remark := 0, ""
		for ; refused < n; i++ {
			if i > 100000 {
				t.Fatal("sends never refused")
			}
			switch r := send(i); r.Code {
			case wire.Success:
				refused = 0
			case wire.ServiceNotAvailable:
				refused++
				remark = string(r.Remark)
			default:
				t.Fatalf("send %d: %d %s", i, r.Code, r.Remark)
			}
		}
		return remark
	}
	remark := sendUntilRefused(200)
	// Let the retention loop look at the full disk (it runs at once when
	// sends start being refused, and every 10 s).
	waitFor(t, 30*time.Second, "a retention run", func() bool {
		return strings.Contains(readLog(t, c, "store.log"), "[RETENTION]")
	})
	sendUntilRefused(200)

	var total int64
	for q := range queues {
		total += acked[q]
		qf := map[string]string{"topic": "Pressure", "queueId": strconv.Itoa(q)}
		min, _ := invoke(t, c.broker.addr, wire.GetMinOffset, qf, nil).GetInt("offset")
		max, _ := invoke(t, c.broker.addr, wire.GetMaxOffset, qf, nil).GetInt("offset")
		if min != 0 || max != acked[q] {
			t.Errorf("queue %d: offsets [%d, %d), %d sends acknowledged: %d acknowledged, unread messages deleted", q, min, max, acked[q], min)
		}
	}
	errLines := strings.Count(readLog(t, c, "storeerror.log"), "\n")
	t.Logf("%d sends acknowledged, %d refused; %d lines in storeerror.log; refusal remark: %s", total, i-int(total), errLines, remark)
	if !strings.Contains(remark, "disk full") {
		t.Errorf("refusal remark %q does not say the disk is full", remark)
	}
	if errLines > 10 {
		t.Errorf("%d lines in storeerror.log for %d refused sends", errLines, i-int(total))
	}
	var kv wire.KVTable
	if err := json.Unmarshal(invoke(t, c.broker.addr, wire.GetBrokerRuntimeInfo, nil, nil).Body, &kv); err != nil || kv.Table["storeState"] != "DISK_FULL" {
		t.Errorf("runtime info storeState %q (%v)", kv.Table["storeState"], err)
	}
	// What Zabbix sees meanwhile (mqops-zbx as the agent runs it): the
	// state, the refusals and the held-back retention in store.log, and a
	// cluster whose only master refuses sends is down.
	var st struct {
		StoreState     string
		StoreStateCode int
		StoreError     string
		Permission     int
		Writable       int
	}
	mqopsZbx(t, &st, "broker", "--addr", c.broker.addr, "--namesrv", ns.addr)
	if st.StoreState != "DISK_FULL" || st.StoreStateCode != 1 || !strings.HasPrefix(st.StoreError, "disk full") || st.Permission != 6 || st.Writable != 0 {
		t.Errorf("mqops-zbx broker on a full disk: %+v", st)
	}
	var logs struct {
		DiskFull         int64 `json:"diskFull"`
		RetentionBlocked int64 `json:"retentionBlocked"`
		UnreadDeleted    int64 `json:"unreadDeleted"`
		QueueBlocked     int64 `json:"cqBlocked"`
		FsyncFailed      int64 `json:"fsyncFailed"`
	}
	mqopsZbx(t, &logs, "logs", "--log-dir", filepath.Join(string(c.dir), "logs"), "--state-dir", t.TempDir())
	if logs.DiskFull < 1 || logs.RetentionBlocked < 1 || logs.UnreadDeleted != 0 || logs.QueueBlocked != 0 || logs.FsyncFailed != 0 {
		t.Errorf("mqops-zbx logs on a full disk: %+v", logs)
	}
	var cs struct {
		Status, MastersWritable int
		Reasons                 []string
	}
	mqopsZbx(t, &cs, "cluster", "--namesrv", ns.addr, "--cluster", "DefaultCluster")
	if cs.Status != 2 || cs.MastersWritable != 0 || !strings.Contains(strings.Join(cs.Reasons, "; "), "refuses sends: store DISK_FULL: disk full") {
		t.Errorf("mqops-zbx cluster with its only master refusing sends: %+v", cs)
	}
	if t.Failed() {
		t.FailNow()
	}

	// A consumer group reads everything: the broker reclaims and resumes.
	for q := range queues {
		resp := invoke(t, c.broker.addr, wire.UpdateConsumerOffset, map[string]string{
			"consumerGroup": "pressure_readers", "topic": "Pressure", "queueId": strconv.Itoa(q), "commitOffset": strconv.FormatInt(acked[q], 10)}, nil)
		if resp.Code != wire.Success {
			t.Fatalf("commit offset: %d %s", resp.Code, resp.Remark)
		}
	}
	waitFor(t, 30*time.Second, "sends accepted again", func() bool { return send(i).Code == wire.Success })
	mqopsZbx(t, &st, "broker", "--addr", c.broker.addr, "--namesrv", ns.addr)
	if st.StoreState != "OK" || st.StoreStateCode != 0 || st.StoreError != "" || st.Writable != 1 {
		t.Errorf("mqops-zbx broker after the disk recovered: %+v", st)
	}
}

// mqopsZbx runs the Zabbix helper and decodes its JSON into v.
func mqopsZbx(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "mqops-zbx"), args...).Output()
	if err != nil {
		t.Fatalf("mqops-zbx %s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("mqops-zbx %s: %v in %s", strings.Join(args, " "), err, out)
	}
}
