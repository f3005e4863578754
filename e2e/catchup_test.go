package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// catchupSegment is the commit-log segment size of the catch-up test: the
// copy crosses many roll-overs.
const catchupSegment = 64 << 20

// commitLogMaxOffset is a broker's commitLogMaxOffset
// (GET_BROKER_RUNTIME_INFO), or -1 while it does not answer.
func commitLogMaxOffset(addr string) int64 {
	resp := ctlCall(addr, wire.GetBrokerRuntimeInfo, nil, nil)
	if resp == nil || resp.Code != wire.Success {
		return -1
	}
	var kv wire.KVTable
	if wire.UnmarshalLenient(resp.Body, &kv) != nil {
		return -1
	}
	n, err := strconv.ParseInt(kv.Table["commitLogMaxOffset"], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// sameRange compares the commit logs in dirs a and b (segments of segSize
// bytes named by their start offset) over [from, to), reading both in
// 1 MiB chunks; it returns "" when they are byte-equal, else the first
// differing offset.
func sameRange(a, b string, segSize, from, to int64) string {
	bufA, bufB := make([]byte, 1<<20), make([]byte, 1<<20)
	read := func(dir string, off int64, buf []byte) error {
		f, err := os.Open(filepath.Join(dir, fmt.Sprintf("%020d", off-off%segSize)))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.ReadFull(io.NewSectionReader(f, off%segSize, int64(len(buf))), buf)
		return err
	}
	for off := from; off < to; {
		// A chunk never crosses a segment's end.
		n := min(int64(len(bufA)), to-off, segSize-off%segSize)
		if err := read(a, off, bufA[:n]); err != nil {
			return err.Error()
		}
		if err := read(b, off, bufB[:n]); err != nil {
			return err.Error()
		}
		if !bytes.Equal(bufA[:n], bufB[:n]) {
			i := 0
			for bufA[i] == bufB[i] {
				i++
			}
			return fmt.Sprintf("first difference at offset %d", off+int64(i))
		}
		off += n
	}
	return ""
}

// Catch-up (issue 12): in a controller-mode group, one slave is stopped
// while the master takes MQOPS_HA_CATCHUP_MIB MiB (default 64; make
// test-ha-catchup writes 2048), then a new, empty slave is added. Each
// catches up with the master (its commitLogMaxOffset reaches the
// master's) and joins the SyncStateSet, and every replica's commit log is
// byte-equal to the master's over their common range, compared here
// segment by segment. The catch-up times and rates are logged.
func TestControllerSlaveCatchUp(t *testing.T) {
	mib := 64
	if s := os.Getenv("MQOPS_HA_CATCHUP_MIB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MQOPS_HA_CATCHUP_MIB=%q: want a positive number", s)
		}
		mib = n
	}
	nss, ctl := startControllerNamesrvs(t, 1)
	ns := nss[0]
	// The master acks without waiting for a slave: the writes go on while
	// the stopped slave is out of the set.
	keys := append(ctlKeys(ctl), "allAckInSyncStateSet=false", "flushDiskType=ASYNC_FLUSH",
		"controllerHeartBeatTimeoutMills=3000", "mappedFileSizeCommitLog="+strconv.Itoa(catchupSegment))
	g := startCtlReplicas(t, ctl, ns, 2, keys)
	master := g.waitInSync(90*time.Second, 2)
	stopped := 1 - master
	topic := fmt.Sprintf("CatchUp%d", time.Now().UnixNano())
	createRoutedTopic(t, ns, g.procs[master].addr, topic)
	// The writes: raw SEND_MESSAGE frames of 256 KiB from 8 connections.
	write := func(total int64) {
		t.Helper()
		const body = 256 << 10
		var written atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := remoting.NewClient(nil, nil)
				defer cl.Close()
				b := bytes.Repeat([]byte{byte('a' + w)}, body)
				for i := 0; written.Add(body) <= total; i++ {
					copy(b, fmt.Sprintf("w%d-%d-%d ", w, i, time.Now().UnixNano())) // no two records alike
					resp, err := cl.Invoke(g.procs[master].addr, wire.NewRequest(wire.SendMessage, sendFields(topic, strconv.Itoa(w%4)), b), 30*time.Second)
					if err == nil && resp.Code != wire.Success {
						err = fmt.Errorf("code %d (%s) %s", resp.Code, wire.ResponseName(resp.Code), resp.Remark)
					}
					if err != nil {
						errs <- fmt.Errorf("send %d of writer %d: %w", i, w, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// Some data both replicas hold before one of them stops.
	write(16 << 20)
	waitFor(t, 60*time.Second, "the slave to hold the first writes", func() bool {
		return commitLogMaxOffset(g.procs[stopped].addr) == commitLogMaxOffset(g.procs[master].addr)
	})
	g.procs[stopped].stop()
	from := commitLogMaxOffset(g.procs[master].addr)
	began := time.Now()
	write(int64(mib) << 20)
	end := commitLogMaxOffset(g.procs[master].addr)
	t.Logf("catchup: master took %d MiB in %v while a slave was stopped", (end-from)>>20, time.Since(began).Round(time.Millisecond))

	// Each slave is timed from its ready line to the master's end.
	catchUp := func(p *proc, from int64, what string) {
		t.Helper()
		start := time.Now()
		waitFor(t, 30*time.Minute, what+" to reach the master's end", func() bool { return commitLogMaxOffset(p.addr) >= end })
		el := time.Since(start)
		t.Logf("catchup: %s: %d MiB (offset %d to %d) in %v = %.0f MiB/s", what, (end-from)>>20, from, end,
			el.Round(time.Millisecond), float64(end-from)/(1<<20)/el.Seconds())
	}
	catchUp(g.restart(stopped), from, "the stopped slave")
	empty := newBrokerDir(t)
	g.dirs = append(g.dirs, empty)
	g.procs = append(g.procs, startBroker(t, empty, ns, keys...))
	catchUp(g.procs[2], 0, "an empty slave")
	if m := g.waitInSync(120*time.Second, 3); m != master {
		t.Fatalf("master moved from %d to %d", master, m)
	}
	if now := commitLogMaxOffset(g.procs[master].addr); now != end {
		t.Fatalf("the master's log moved from %d to %d without writes", end, now)
	}
	for i := range g.procs {
		if i == master {
			continue
		}
		lo := max(firstSegment(t, g.commitLog(i)), firstSegment(t, g.commitLog(master)))
		if lo != 0 {
			t.Errorf("replica %d's log starts at %d, not 0", i, lo)
		}
		if diff := sameRange(g.commitLog(master), g.commitLog(i), catchupSegment, lo, end); diff != "" {
			t.Errorf("replica %d differs from the master over [%d, %d): %s", i, lo, end, diff)
		}
	}
	t.Logf("catchup: %d replicas byte-equal over [0, %d)", len(g.procs), end)
}

// firstSegment is the start offset of the first commit-log segment in dir.
func firstSegment(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents { // sorted by name: zero-padded offsets
		if n, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && len(e.Name()) == 20 {
			return n
		}
	}
	t.Fatalf("no commit-log segment in %s", dir)
	return 0
}

// sameRange finds a one-byte difference at its offset, across segments.
func TestSameRange(t *testing.T) {
	const seg = 3 << 20
	a, b := t.TempDir(), t.TempDir()
	for _, start := range []int64{0, seg} {
		data := bytes.Repeat([]byte("01234567"), seg/8)
		for _, dir := range []string{a, b} {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d", start)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if diff := sameRange(a, b, seg, 0, 2*seg); diff != "" {
		t.Fatalf("equal logs: %s", diff)
	}
	f, err := os.OpenFile(filepath.Join(b, fmt.Sprintf("%020d", seg)), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{'x'}, 1<<20+7); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if diff, want := sameRange(a, b, seg, 0, 2*seg), fmt.Sprintf("first difference at offset %d", seg+1<<20+7); diff != want {
		t.Fatalf("got %q, want %q", diff, want)
	}
	if diff := sameRange(a, b, seg, 0, seg+1<<20+7); diff != "" {
		t.Fatalf("range before the difference: %s", diff)
	}
	if diff := sameRange(a, b, seg, 0, 3*seg); diff == "" {
		t.Fatal("a range beyond the segments compared equal")
	}
}
