package meta

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mqops/mqops/wire"
)

var discard = slog.New(slog.DiscardHandler)

// TestConcurrentPersist: many connections create topics and groups at once
// (heartbeats, auto-create); the files must stay valid and complete.
func TestConcurrentPersist(t *testing.T) {
	dir := t.TempDir()
	topics, err := LoadTopics(filepath.Join(dir, "topics.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := LoadGroups(filepath.Join(dir, "subscriptionGroup.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, _, err := topics.CreateIfAbsent(wire.TopicConfig{TopicName: fmt.Sprintf("T%d", i), ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}, i%2 == 0); err != nil {
				t.Error(err)
			}
			if _, _, err := groups.Ensure(fmt.Sprintf("G%d", i)); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if err := topics.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := groups.Flush(); err != nil {
		t.Fatal(err)
	}
	t2, err := LoadTopics(filepath.Join(dir, "topics.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := LoadGroups(filepath.Join(dir, "subscriptionGroup.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(t2.Names()); n != 32 {
		t.Fatalf("reloaded %d topics, want 32", n)
	}
	if n := len(g2.Names()); n != 32 {
		t.Fatalf("reloaded %d groups, want 32", n)
	}
}

func TestOffsetsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consumerOffset.json")
	o, err := LoadOffsets(path, discard)
	if err != nil {
		t.Fatal(err)
	}
	o.Commit("g1", "T", 0, 5)
	Commit(o, []byte("g1"), "T", 1, 7)
	o.Commit("g2", "%RETRY%g2", 0, 1)
	if err := o.Flush(); err != nil {
		t.Fatal(err)
	}
	o2, err := LoadOffsets(path, discard)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := o2.Query("g1", "T", 1); !ok || v != 7 {
		t.Fatalf("g1/T/1 = %d %v", v, ok)
	}
	if string(o2.Encode()) != `{"offsetTable":{"%RETRY%g2@g2":{"0":1},"T@g1":{"0":5,"1":7}}}` {
		t.Fatalf("file shape: %s", o2.Encode())
	}
	name := []byte("g1")
	if n := testing.AllocsPerRun(100, func() { Commit(o, name, "T", 0, 9) }); n != 0 {
		t.Fatalf("commit allocates %v times", n)
	}
}

func TestOffsetsMinCommitted(t *testing.T) {
	o, err := LoadOffsets(filepath.Join(t.TempDir(), "consumerOffset.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.MinCommitted("T", 0); ok {
		t.Fatal("offset for a topic no group consumes")
	}
	o.Commit("g1", "T", 0, 40)
	o.Commit("g1", "T", 1, 7)
	o.Commit("g2", "T", 0, 25)
	o.Commit("g3", "Other", 0, 1)
	for _, c := range []struct {
		q    int32
		want int64
	}{{0, 25}, {1, 0}, {2, 0}} { // g2 has read nothing of queue 1 and 2
		if got, ok := o.MinCommitted("T", c.q); !ok || got != c.want {
			t.Errorf("queue %d: %d, %v; want %d", c.q, got, ok, c.want)
		}
	}
}
