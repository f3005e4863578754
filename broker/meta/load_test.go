package meta

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// saveTwice leaves a table file and its .bak, as two admin changes do.
func saveTopicsTwice(t *testing.T, path string) {
	topics, err := LoadTopics(path, discard)
	must(t, err)
	for _, name := range []string{"Orders", "Payments"} {
		_, err := topics.Put(wire.TopicConfig{TopicName: name, ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6})
		must(t, err)
	}
}

// A torn topics.json used to stop the broker although a good .bak existed.
func TestTornTopicsFallBackToBackup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "topics.json")
	saveTopicsTwice(t, path)
	b, err := os.ReadFile(path)
	must(t, err)
	must(t, os.WriteFile(path, b[:len(b)/2], 0o644)) // torn
	var logs bytes.Buffer
	topics, err := LoadTopics(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("torn topics.json with a good backup: %v", err)
	}
	if topics.Lookup("Orders") == nil {
		t.Fatalf("the backup's topics are missing: %v", topics.Names())
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), path) || !strings.Contains(logs.String(), path+".bak") {
		t.Fatalf("the fallback must be logged as an error naming both files:\n%s", logs.String())
	}

	// Both torn: refuse to start, naming the file, rather than start empty.
	bak, err := os.ReadFile(path + ".bak")
	must(t, err)
	must(t, os.WriteFile(path+".bak", bak[:len(bak)/3], 0o644))
	if _, err := LoadTopics(path, discard); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("both files torn: err %v, want one naming %s", err, path)
	}
}

func TestTornGroupsAndOffsetsFallBackToBackup(t *testing.T) {
	dir := t.TempDir()
	gpath := filepath.Join(dir, "subscriptionGroup.json")
	groups, err := LoadGroups(gpath, discard)
	must(t, err)
	must(t, groups.Put(*wire.NewSubscriptionGroupConfig("G1")))
	must(t, groups.Put(*wire.NewSubscriptionGroupConfig("G2")))
	must(t, os.WriteFile(gpath, []byte(`{"subscriptionGroupTable":{"G1":{`), 0o644))
	g2, err := LoadGroups(gpath, discard)
	if err != nil || g2.Lookup("G1") == nil {
		t.Fatalf("torn subscriptionGroup.json: %v", err)
	}

	opath := filepath.Join(dir, "consumerOffset.json")
	o, err := LoadOffsets(opath, discard)
	must(t, err)
	o.Commit("G1", "T", 0, 5)
	must(t, o.Flush())
	o.Commit("G1", "T", 0, 6)
	must(t, o.Flush())
	must(t, os.WriteFile(opath, []byte(`{"offsetTable":{"T@G1":{"0":6`), 0o644))
	o2, err := LoadOffsets(opath, discard)
	if err != nil {
		t.Fatalf("torn consumerOffset.json: %v", err)
	}
	if v, ok := o2.Query("G1", "T", 0); !ok || v != 5 {
		t.Fatalf("offset from the backup = %d %v, want 5", v, ok)
	}
}

// writeQueueNums=-3 used to be loaded and served.
func TestImpossibleEntriesAreNotServed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "topics.json")
	saveTopicsTwice(t, path)
	b, err := os.ReadFile(path)
	must(t, err)
	bad := bytes.Replace(b, []byte(`"writeQueueNums":4`), []byte(`"writeQueueNums":-3`), 1)
	must(t, os.WriteFile(path, bad, 0o644))
	topics, err := LoadTopics(path, discard)
	must(t, err) // the backup is good
	for _, name := range topics.Names() {
		if tc := topics.Lookup(name); tc.WriteQueueNums < 0 {
			t.Fatalf("served %+v", tc)
		}
	}
	must(t, os.WriteFile(path+".bak", bad, 0o644))
	if _, err := LoadTopics(path, discard); err == nil || !strings.Contains(err.Error(), "writeQueueNums -3") {
		t.Fatalf("both files with writeQueueNums -3: %v", err)
	}

	gpath := filepath.Join(t.TempDir(), "subscriptionGroup.json")
	must(t, os.WriteFile(gpath, []byte(`{"subscriptionGroupTable":{"G":{"groupName":"G","retryQueueNums":-1}}}`), 0o644))
	if _, err := LoadGroups(gpath, discard); err == nil || !strings.Contains(err.Error(), "retryQueueNums -1") {
		t.Fatalf("retryQueueNums -1: %v", err)
	}

	opath := filepath.Join(t.TempDir(), "consumerOffset.json")
	must(t, os.WriteFile(opath, []byte(`{"offsetTable":{"T@G":{"0":-5,"1":7,"-2":3}}}`), 0o644))
	o, err := LoadOffsets(opath, discard)
	must(t, err)
	if _, ok := o.Query("G", "T", 0); ok {
		t.Fatal("a negative offset was loaded")
	}
	if _, ok := o.Query("G", "T", -2); ok {
		t.Fatal("a negative queue id was loaded")
	}
	if v, _ := o.Query("G", "T", 1); v != 7 {
		t.Fatalf("good offset lost: %d", v)
	}
}

// Names earlier builds let in keep loading (so they can be deleted).
func TestLegacyNamesStillLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "topics.json")
	must(t, os.WriteFile(path, []byte(`{"topicConfigTable":{"%RETRY%a/b":{"readQueueNums":1,"writeQueueNums":1,"perm":6},"%RETRY%my.group":{"readQueueNums":1,"writeQueueNums":1,"perm":6}}}`), 0o644))
	topics, err := LoadTopics(path, discard)
	must(t, err)
	if topics.Lookup("%RETRY%a/b") == nil || topics.Lookup("%RETRY%my.group") == nil {
		t.Fatalf("legacy topics: %v", topics.Names())
	}
	ok, err := topics.Delete("%RETRY%a/b")
	if !ok || err != nil {
		t.Fatalf("delete legacy topic: %v %v", ok, err)
	}
}

// Auto-created groups are written once per flush, not once each: the
// file is rewritten whole, so a write per group made n groups O(n²).
func TestEnsureCoalescesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subscriptionGroup.json")
	g, err := LoadGroups(path, discard)
	must(t, err)
	for i := 0; i < 100; i++ {
		_, created, err := g.Ensure(fmt.Sprintf("G%d", i))
		must(t, err)
		if !created {
			t.Fatal("not created")
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("auto-created groups were written one by one (stat: %v)", err)
	}
	must(t, g.Flush())
	g2, err := LoadGroups(path, discard)
	must(t, err)
	if n := len(g2.Names()); n != 100 {
		t.Fatalf("flushed %d groups, want 100", n)
	}
	fi, _ := os.Stat(path)
	must(t, g.Flush()) // nothing new: no write
	if fi2, _ := os.Stat(path); !fi2.ModTime().Equal(fi.ModTime()) {
		t.Fatal("a flush without changes rewrote the file")
	}
}

// BenchmarkAutoCreateGroups measures 2 000 auto-created groups, flushed
// every 100 ms as the broker does (reported, not asserted).
func BenchmarkAutoCreateGroups(b *testing.B) {
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "subscriptionGroup.json")
		g, err := LoadGroups(path, discard)
		if err != nil {
			b.Fatal(err)
		}
		last := time.Now()
		for n := 0; n < 2000; n++ {
			if _, _, err := g.Ensure(fmt.Sprintf("group_%d", n)); err != nil {
				b.Fatal(err)
			}
			if time.Since(last) >= 100*time.Millisecond {
				if err := g.Flush(); err != nil {
					b.Fatal(err)
				}
				last = time.Now()
			}
		}
		if err := g.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
