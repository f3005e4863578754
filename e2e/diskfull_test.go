package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/mqops/mqops/fileutil"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size on a new directory, unmounted after
// the test's processes are gone.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs: needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	return mnt
}

// ballast is a file that holds a file system at a chosen use.
type ballast struct {
	t    *testing.T
	path string
}

// usedPercent is the use of the file system holding dir as the broker
// computes it (df's Use%).
func usedPercent(t *testing.T, dir string) float64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	used := (st.Blocks - st.Bfree) * uint64(st.Bsize)
	return float64(used) / float64(used+st.Bavail*uint64(st.Bsize)) * 100
}

// fill grows or shrinks the ballast until the file system is at pct %
// (100: no free block left but leave bytes).
func (b *ballast) fill(pct float64, leave int64) {
	b.t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(b.path), &st); err != nil {
		b.t.Fatal(err)
	}
	bs := int64(st.Bsize)
	used := int64(st.Blocks-st.Bfree) * bs
	total := used + int64(st.Bavail)*bs
	want := int64(pct/100*float64(total)) - leave
	f, err := os.OpenFile(b.path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		b.t.Fatal(err)
	}
	size := fi.Size() + want - used
	if size < 0 {
		size = 0
	}
	if size < fi.Size() {
		err = f.Truncate(size) // tmpfs frees the pages at once
	} else if size > fi.Size() {
		err = fileutil.Preallocate(f, fi.Size(), size-fi.Size())
	}
	if err != nil {
		b.t.Fatal(err)
	}
}

// fillUp grows the ballast page by page until the file system has no free
// block left.
func (b *ballast) fillUp() {
	b.t.Helper()
	f, err := os.OpenFile(b.path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	// Then byte by byte: the size need not be page-aligned.
	for _, step := range []int64{4096, 1} {
		for {
			fi, err := f.Stat()
			if err != nil {
				b.t.Fatal(err)
			}
			if err := unix.Fallocate(int(f.Fd()), 0, fi.Size(), step); err != nil {
				break
			}
		}
	}
	if u := usedPercent(b.t, filepath.Dir(b.path)); u < 100 {
		b.t.Fatalf("disk at %.3f%% after filling it up", u)
	}
}

// TestDiskFullOfficialClient: a broker whose store is a 96 MiB tmpfs, with
// the check every 200 ms (cleanResourceInterval). A ballast file pushes the
// disk to 92 %: the official v2.1.2 client's SendSync fails with CODE: 14
// and Java's remark with the disk ratios, the HTTP gateway answers the
// same refusal, reads go on, store.log has Java's "mark disk full" line.
// Shrunk to 87 % (between the levels) sends stay refused; at 80 % they are
// accepted again by themselves, without a restart, and the "mark disk ok"
// line appears once. Zabbix's helper reports the state meanwhile.
func TestDiskFullOfficialClient(t *testing.T) {
	mnt := mountTmpfs(t, "96m")
	ns := startNamesrv(t)
	c := &cluster{ns: ns, dir: newBrokerDir(t)}
	c.broker = startBroker(t, c.dir, ns.addr, "storePathRootDir="+filepath.Join(mnt, "store"),
		"mappedFileSizeCommitLog=1048576", "mappedFileSizeConsumeQueue=20000",
		"maxHashSlotNum=1000", "maxIndexNum=20000", "diskMaxUsedSpaceRatio=95",
		"cleanResourceInterval=200", "enableHttpGateway=true")
	gw := gatewayOf(t, c.broker)
	const topic = "DiskFull"
	createTopic(t, c, topic, 4)
	p := newProducer(t, ns.addr)
	ctx := context.Background()
	sent := map[string]bool{}
	for i := range 200 {
		body := fmt.Sprintf("before-%d-%s", i, strings.Repeat("x", 1000))
		if _, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body))); err != nil {
			t.Fatalf("send %d on an empty disk: %v", i, err)
		}
		sent[body] = true
	}
	b := &ballast{t: t, path: filepath.Join(mnt, "ballast")}
	b.fill(92, 0)
	t.Logf("disk at %.1f%%", usedPercent(t, mnt))

	var sendErr error
	waitFor(t, 30*time.Second, "a SendSync refused on the full disk", func() bool {
		_, sendErr = p.SendSync(ctx, primitive.NewMessage(topic, []byte("refused")))
		return sendErr != nil
	})
	msg := sendErr.Error()
	if !strings.Contains(msg, "CODE: 14") || !strings.Contains(msg, "the broker's disk is full [CL: ") ||
		!strings.Contains(msg, "(disk full: ") || !strings.Contains(msg, "90% (diskSpaceWarningLevelRatio)") {
		t.Fatalf("SendSync on a full disk: %v", sendErr)
	}
	// The CL ratio in the remark is the real one.
	m := regexp.MustCompile(`CL:\s+([0-9.]+) CQ:\s+([0-9.]+) INDEX:\s+([0-9.]+)`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no disk ratios in %q", msg)
	}
	if cl, _ := strconv.ParseFloat(m[1], 64); cl < 0.9 || cl > 1 {
		t.Errorf("CL ratio %s in the remark, the disk is at %.1f%%", m[1], usedPercent(t, mnt))
	}
	t.Logf("SendSync: %v", sendErr)

	// The HTTP gateway's send answers the same refusal (gRPC and HTTP map
	// 14 to INTERNAL_SERVER_ERROR as Java's proxy does, remark kept).
	e := gw.wantErr("/v1/topics/"+topic+"/messages", []byte(`{"body":"refused"}`), http.StatusInternalServerError, "INTERNAL_SERVER_ERROR")
	if !strings.Contains(e.Message, "the broker's disk is full [CL: ") {
		t.Errorf("HTTP send on a full disk: %+v", e)
	}

	// Reads go on: everything acknowledged before is consumed.
	consumeAll(t, ns.addr, topic, sent)
	store := readLog(t, c, "store.log")
	if !regexp.MustCompile(`ERROR \[store\] \[DISK_FULL\] physic disk maybe full soon 0\.9\d, so mark disk full, storePathPhysic=`).MatchString(store) {
		t.Errorf("store.log lacks Java's mark-disk-full line:\n%s", store)
	}
	var st struct {
		StoreState     string
		StoreStateCode int
	}
	mqopsZbx(t, &st, "broker", "--addr", c.broker.addr, "--namesrv", ns.addr)
	if st.StoreState != "DISK_FULL" || st.StoreStateCode != 1 {
		t.Errorf("mqops-zbx broker on a full disk: %+v", st)
	}

	// Between the levels: still refused, however many checks pass.
	b.fill(87, 0)
	t.Logf("disk at %.1f%%", usedPercent(t, mnt))
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		if _, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("between"))); err == nil {
			t.Fatalf("a send was accepted at %.1f%% after the disk was marked full", usedPercent(t, mnt))
		}
	}
	if strings.Contains(readLog(t, c, "store.log"), "so mark disk ok") {
		t.Fatal("disk marked OK between the levels")
	}

	// Below the clean level: accepted again, by themselves.
	b.fill(80, 0)
	t.Logf("disk at %.1f%%", usedPercent(t, mnt))
	waitFor(t, 10*time.Second, "sends accepted again below 85%", func() bool {
		_, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("after")))
		return err == nil
	})
	ok := regexp.MustCompile(`INFO  \[store\] \[DISK_FULL\] physic disk space OK (0\.\d+), so mark disk ok`).FindAllStringSubmatch(readLog(t, c, "store.log"), -1)
	if len(ok) != 1 {
		t.Fatalf("%d mark-disk-ok lines, want 1", len(ok))
	}
	if r, _ := strconv.ParseFloat(ok[0][1], 64); r > 0.85 {
		t.Errorf("marked OK at %s, above diskSpaceCleanForciblyRatio", ok[0][1])
	}
	mqopsZbx(t, &st, "broker", "--addr", c.broker.addr, "--namesrv", ns.addr)
	if st.StoreState != "OK" || st.StoreStateCode != 0 {
		t.Errorf("mqops-zbx broker after the disk recovered: %+v", st)
	}
	var logs struct {
		DiskFull int64 `json:"diskFull"`
	}
	mqopsZbx(t, &logs, "logs", "--log-dir", filepath.Join(string(c.dir), "logs"), "--state-dir", t.TempDir())
	if logs.DiskFull < 2 { // the mark and the first refused send
		t.Errorf("mqops-zbx logs counted %d disk-full events", logs.DiskFull)
	}
}

// TestDiskFullENOSPCKill9: the check runs once an hour, so the disk goes
// from room to no free block at all between two checks. Sends go on into
// the preallocated segment, then are refused with 14 (never 1, never a
// crash) while the consume queues, which need new files, meet real ENOSPC.
// After kill -9, with the space back, the restarted broker holds every
// acknowledged message, at the offsets it acknowledged, and nothing else.
// cleanFileForciblyEnable=false: with the default, a disk something else
// keeps full loses its oldest unread segments (README, Durability).
func TestDiskFullENOSPCKill9(t *testing.T) {
	mnt := mountTmpfs(t, "64m")
	ns := startNamesrv(t)
	c := &cluster{ns: ns, dir: newBrokerDir(t)}
	args := []string{"storePathRootDir=" + filepath.Join(mnt, "store"),
		"mappedFileSizeCommitLog=1048576", "mappedFileSizeConsumeQueue=20000",
		"maxHashSlotNum=1000", "maxIndexNum=20000", "cleanResourceInterval=3600000",
		"cleanFileForciblyEnable=false", "flushIntervalCommitLog=50"}
	c.broker = startBroker(t, c.dir, ns.addr, args...)
	const topic, queues = "Enospc", 4
	createTopic(t, c, topic, queues)
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	defer cl.Close()
	body := []byte(strings.Repeat("e", 1000))
	var acked [queues][]int64 // queue offsets acknowledged, per queue
	codes := map[int32]int{}
	i := 0
	send := func() int32 {
		q := i % queues
		fields := sendFields(topic, strconv.Itoa(q))
		fields["properties"] = "KEYS\x01k" + strconv.Itoa(i) + "\x02"
		resp, err := cl.Invoke(c.broker.addr, wire.NewRequest(wire.SendMessage, fields, append([]byte(strconv.Itoa(i)+":"), body...)), 5*time.Second)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		codes[resp.Code]++
		if resp.Code == wire.Success {
			off, _ := resp.GetInt("queueOffset")
			acked[q] = append(acked[q], off)
		}
		i++
		return resp.Code
	}
	// Each queue's consume-queue file (1000 units) is a few messages short
	// of full, so the next ones need new files on the full disk.
	for range 4*1000 - 8 {
		if code := send(); code != wire.Success {
			t.Fatalf("send on an empty disk: %d", code)
		}
	}
	b := &ballast{t: t, path: filepath.Join(mnt, "ballast")}
	b.fill(100, 16<<10)
	t.Logf("disk at %.2f%%", usedPercent(t, mnt))
	refused := 0
	for refused < 50 {
		if i > 100000 {
			t.Fatal("sends never refused")
		}
		switch code := send(); code {
		case wire.Success:
		case wire.ServiceNotAvailable:
			refused++
		default:
			t.Fatalf("send %d on a full disk answered %d, want 0 or 14", i, code)
		}
	}
	t.Logf("answers: %v", codes)
	waitFor(t, 10*time.Second, "the dispatcher to meet ENOSPC", func() bool {
		return strings.Contains(readLog(t, c, "store.log"), "no space left on device")
	})
	if !strings.Contains(readLog(t, c, "store.log"), "consume queue blocked") {
		t.Errorf("ENOSPC met elsewhere than in the consume queues:\n%s", readLog(t, c, "store.log"))
	}
	// A send that auto-creates a topic on the full disk is refused the
	// same way, whether topics.json or the store met the full disk.
	b.fillUp()
	fields := sendFields("EnospcNew", "0")
	resp, err := cl.Invoke(c.broker.addr, wire.NewRequest(wire.SendMessage, fields, body), 5*time.Second)
	if err != nil || resp.Code != wire.ServiceNotAvailable || !strings.Contains(string(resp.Remark), "the broker's disk is full [CL: ") {
		t.Fatalf("send to a new topic on a full disk: %v %+v", err, resp)
	}
	t.Logf("new topic on a full disk: %d %s", resp.Code, resp.Remark)
	c.broker.kill()

	b.fill(0, 0)
	c.broker = restartBroker(t, c, args...)
	var total int
	for q := range queues {
		total += len(acked[q])
		qf := map[string]string{"topic": topic, "queueId": strconv.Itoa(q)}
		max, _ := invoke(t, c.broker.addr, wire.GetMaxOffset, qf, nil).GetInt("offset")
		if max != int64(len(acked[q])) {
			t.Errorf("queue %d: max offset %d after the restart, %d sends acknowledged", q, max, len(acked[q]))
		}
		for j, off := range acked[q] {
			if off != int64(j) {
				t.Fatalf("queue %d: acknowledged offset %d at position %d", q, off, j)
			}
		}
		// Every acknowledged message reads back whole, nothing past them.
		got := pullAll(t, c, "EnospcReader", topic, q)
		if len(got) != len(acked[q]) {
			t.Errorf("queue %d: %d messages read back, %d acknowledged", q, len(got), len(acked[q]))
		}
		for j, m := range got {
			if b := m.Body; len(b) < len(body) || string(b[len(b)-len(body):]) != string(body) || m.QueueOffset != int64(j) {
				t.Fatalf("queue %d offset %d: torn or foreign record", q, m.QueueOffset)
			}
		}
	}
	t.Logf("%d sends acknowledged before kill -9, all read back", total)
	if code := send(); code != wire.Success {
		t.Fatalf("send after the restart with space: %d", code)
	}
}
