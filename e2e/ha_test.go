package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/wire"
)

// Classic master–slave replication between two real brokers.

const haSegment = 1 << 20 // small segments: the tests roll over several

// haGroup is a name server, a master and its slave (same brokerName).
type haGroup struct {
	ns                   *proc
	master, slave        *proc
	masterDir, slaveDir  brokerDir
	masterArgs, slaveArg []string
}

func startHAGroup(t *testing.T, masterRole string, extra ...string) *haGroup {
	t.Helper()
	g := &haGroup{ns: startNamesrv(t), masterDir: newBrokerDir(t), slaveDir: newBrokerDir(t)}
	common := append([]string{"mappedFileSizeCommitLog=" + strconv.Itoa(haSegment), "slaveTimeout=2000"}, extra...)
	g.masterArgs = append([]string{"brokerRole=" + masterRole}, common...)
	g.master = startBroker(t, g.masterDir, g.ns.addr, g.masterArgs...)
	// The slave learns the master's HA address from the name server's
	// answer to its registration (no haMasterAddress).
	g.slaveArg = append([]string{"brokerRole=SLAVE", "brokerId=1"}, common...)
	g.slave = startBroker(t, g.slaveDir, g.ns.addr, g.slaveArg...)
	return g
}

// commitLog concatenates a broker's commit-log segments from its first.
func commitLog(t *testing.T, dir brokerDir) (base int64, data []byte) {
	t.Helper()
	d := filepath.Join(string(dir), "store", "commitlog")
	ents, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if _, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && len(e.Name()) == 20 {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return 0, nil
	}
	base, _ = strconv.ParseInt(names[0], 10, 64)
	for i, n := range names {
		off, _ := strconv.ParseInt(n, 10, 64)
		if off != base+int64(i)*haSegment {
			t.Fatalf("%s: segment %s out of sequence", d, n)
		}
		b, err := os.ReadFile(filepath.Join(d, n))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	return base, data
}

// slaveHas reports whether the slave's commit log holds the record at
// phy with this body (read from its files: the page cache the slave
// writes into through its mapping).
func slaveHas(t *testing.T, dir brokerDir, phy int64, body []byte) bool {
	t.Helper()
	name := filepath.Join(string(dir), "store", "commitlog", fmt.Sprintf("%020d", phy-phy%haSegment))
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := f.ReadAt(buf, phy%haSegment)
	size, err := wire.CheckRecord(buf[:n])
	if err != nil {
		return false
	}
	v := wire.RecordView(buf[:size])
	return v.PhysicalOffset() == phy && bytes.Equal(v.Body(), body)
}

func offsetOf(t *testing.T, r *primitive.SendResult) int64 {
	t.Helper()
	_, _, off, err := wire.ParseOffsetMsgID(r.OffsetMsgID)
	if err != nil {
		t.Fatalf("offsetMsgId %q: %v", r.OffsetMsgID, err)
	}
	return off
}

// TestSyncMasterReplication: a SYNC_MASTER answers SEND_OK only once its
// slave holds the message (checked in the slave's files the moment
// SendSync returns, across segment roll-overs); with the slave frozen the
// answer is FLUSH_SLAVE_TIMEOUT, with it dead SLAVE_NOT_AVAILABLE (both
// with err == nil, as Java's broker answers v2.1.2), and WAIT=false skips
// the wait; the two commit logs are byte-identical.
func TestSyncMasterReplication(t *testing.T) {
	g := startHAGroup(t, "SYNC_MASTER")
	topic := "TopicSyncMaster"
	createTopic(t, &cluster{ns: g.ns, broker: g.master, dir: g.masterDir}, topic, 4)
	p := newProducer(t, g.ns.addr)
	ctx := context.Background()

	// Until the slave has connected a send may see SLAVE_NOT_AVAILABLE.
	waitFor(t, 60*time.Second, "the slave to replicate", func() bool {
		r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("warm-up")))
		return err == nil && r.Status == primitive.SendOK
	})
	body := bytes.Repeat([]byte("r"), 1000)
	for i := 0; i < 3000; i++ { // ~3.4 MiB: three roll-overs
		b := append(strconv.AppendInt(nil, int64(i), 10), body...)
		r, err := p.SendSync(ctx, primitive.NewMessage(topic, b))
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if r.Status != primitive.SendOK {
			t.Fatalf("send %d: status %d", i, r.Status)
		}
		if off := offsetOf(t, r); !slaveHas(t, g.slaveDir, off, b) {
			t.Fatalf("send %d: SEND_OK at %d, but the slave does not have it", i, off)
		}
	}

	// A frozen slave keeps its connection but acks nothing.
	if err := g.slave.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The signal takes effect asynchronously: wait for state T.
	waitFor(t, 10*time.Second, "the slave to stop", func() bool {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", g.slave.cmd.Process.Pid))
		if err != nil {
			return false
		}
		f := bytes.Fields(st[bytes.LastIndexByte(st, ')')+1:])
		return len(f) > 0 && string(f[0]) == "T"
	})
	r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("while frozen")))
	if err != nil || r.Status != primitive.SendFlushSlaveTimeout {
		t.Fatalf("slave frozen: %v %v, want SendFlushSlaveTimeout", r, err)
	}
	if err := g.slave.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	g.slave.kill()
	waitFor(t, 30*time.Second, "SLAVE_NOT_AVAILABLE", func() bool {
		r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("no slave")))
		if err != nil {
			t.Fatalf("send without a slave: %v", err)
		}
		return r.Status == primitive.SendSlaveNotAvailable
	})
	m := primitive.NewMessage(topic, []byte("do not wait"))
	m.WithProperty(wire.PropWait, "false")
	if r, err := p.SendSync(ctx, m); err != nil || r.Status != primitive.SendOK {
		t.Fatalf("WAIT=false without a slave: %v %v, want SendOK", r, err)
	}

	// The slave returns, catches up from its own offset, and the logs
	// are equal byte for byte.
	g.slave = startBroker(t, g.slaveDir, g.ns.addr, g.slaveArg...)
	waitFor(t, 60*time.Second, "the slave to replicate again", func() bool {
		r, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("after restart")))
		return err == nil && r.Status == primitive.SendOK
	})
	g.slave.stop()
	g.master.stop()
	mb, md := commitLog(t, g.masterDir)
	sb, sd := commitLog(t, g.slaveDir)
	if mb != 0 || sb != 0 {
		t.Fatalf("first segments at %d (master) and %d (slave), want 0", mb, sb)
	}
	if len(md) < 3*haSegment || !bytes.Equal(md, sd) {
		t.Fatalf("commit logs differ: master %d bytes, slave %d bytes", len(md), len(sd))
	}
}

// TestAsyncMasterReplication: an ASYNC_MASTER acknowledges at once and its
// slave, which found it through the name server, catches up to a
// byte-identical log; a slave started empty after the master rolled over
// starts at the master's last segment.
func TestAsyncMasterReplication(t *testing.T) {
	ns := startNamesrv(t)
	mdir := newBrokerDir(t)
	common := []string{"mappedFileSizeCommitLog=" + strconv.Itoa(haSegment)}
	master := startBroker(t, mdir, ns.addr, append([]string{"brokerRole=ASYNC_MASTER"}, common...)...)
	topic := "TopicAsyncMaster"
	createTopic(t, &cluster{ns: ns, broker: master, dir: mdir}, topic, 4)
	p := newProducer(t, ns.addr)
	body := bytes.Repeat([]byte("a"), 1000)
	for i := 0; i < 2500; i++ {
		if r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, body)); err != nil || r.Status != primitive.SendOK {
			t.Fatalf("send %d: %v %v", i, r, err)
		}
	}
	sdir := newBrokerDir(t)
	slave := startBroker(t, sdir, ns.addr, append([]string{"brokerRole=SLAVE", "brokerId=1"}, common...)...)
	_, m := commitLog(t, mdir)
	last := int64(len(m) - haSegment)
	if last < 2*haSegment {
		t.Fatalf("master has %d bytes of segments, want 3 or more", len(m))
	}
	waitFor(t, 60*time.Second, "the slave to catch up", func() bool {
		base, d := commitLog(t, sdir)
		return base == last && bytes.Equal(d, m[last:])
	})
	slave.stop()
	master.stop()
}
