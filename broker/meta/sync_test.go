package meta

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqops/mqops/wire"
)

// TestOffsetsMerge: a master's table (in Java's spelling, unquoted queue
// ids) replaces each topic@group it names and keeps the others; the result
// is on disk when Merge returns; a body that does not parse changes
// nothing.
func TestOffsetsMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consumerOffset.json")
	o, err := LoadOffsets(path, discard)
	if err != nil {
		t.Fatal(err)
	}
	o.Commit("G", "T", 0, 1)
	o.Commit("G", "T", 5, 50) // not in the master's entry: gone with it
	o.Commit("Local", "T", 0, 9)
	if err := o.Merge([]byte(`{"offsetTable":{"T@G":{0:10,1:11},"U@H":{3:30,-1:4}}}`)); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadOffsets(path, discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		group, topic string
		q            int32
		want         int64
		ok           bool
	}{{"G", "T", 0, 10, true}, {"G", "T", 1, 11, true}, {"G", "T", 5, 0, false}, {"H", "U", 3, 30, true}, {"H", "U", -1, 0, false}, {"Local", "T", 0, 9, true}} {
		for name, tbl := range map[string]*Offsets{"memory": o, "file": loaded} {
			if got, ok := tbl.Query(c.group, c.topic, c.q); ok != c.ok || got != c.want {
				t.Errorf("%s: %s %s %d = %d %v, want %d %v", name, c.group, c.topic, c.q, got, ok, c.want, c.ok)
			}
		}
	}
	if err := o.Merge([]byte(`{"offsetTable":{"T@G":{0:`)); err == nil || !strings.Contains(err.Error(), "consumer offsets") {
		t.Errorf("torn body: %v", err)
	}
	if got, _ := o.Query("G", "T", 0); got != 10 {
		t.Errorf("a bad body changed an offset: %d", got)
	}
}

// TestTopicsGroupsReplace: a table is adopted only when its data version
// differs, replaces everything (entries only the slave had go), is
// persisted with the master's version, and entries the broker cannot
// serve are left out and named.
func TestTopicsGroupsReplace(t *testing.T) {
	dir := t.TempDir()
	topics, err := LoadTopics(filepath.Join(dir, "topics.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topics.Put(wire.TopicConfig{TopicName: "OnlyHere", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}); err != nil {
		t.Fatal(err)
	}
	v := wire.DataVersion{Counter: 42, Timestamp: 1700000000000}
	w := wire.TopicConfigSerializeWrapper{DataVersion: v, TopicConfigTable: map[string]*wire.TopicConfig{
		"A":   {TopicName: "A", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6},
		"Bad": {TopicName: "Bad", ReadQueueNums: 5000, WriteQueueNums: 1, Perm: 6},
	}}
	changed, skipped, err := topics.Replace(w)
	if err != nil || !changed || len(skipped) != 1 || !strings.Contains(skipped[0].Error(), `"Bad"`) {
		t.Fatalf("Replace: %v %v %v", changed, skipped, err)
	}
	if changed, _, _ := topics.Replace(w); changed {
		t.Error("the same version adopted twice")
	}
	reloaded, err := LoadTopics(filepath.Join(dir, "topics.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	for name, tbl := range map[string]*Topics{"memory": topics, "file": reloaded} {
		snap := tbl.Snapshot()
		if snap.DataVersion != v || len(snap.TopicConfigTable) != 1 || snap.TopicConfigTable["A"].ReadQueueNums != 4 || snap.TopicConfigTable["A"].TopicFilterType != "SINGLE_TAG" {
			t.Errorf("%s: %+v", name, snap)
		}
	}

	groups, err := LoadGroups(filepath.Join(dir, "subscriptionGroup.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := groups.Ensure("OnlyHere"); err != nil {
		t.Fatal(err)
	}
	g := wire.NewSubscriptionGroupConfig("G")
	g.BrokerID = 1
	bad := wire.NewSubscriptionGroupConfig("Neg")
	bad.RetryMaxTimes = -1
	gw := wire.SubscriptionGroupWrapper{DataVersion: v, SubscriptionGroupTable: map[string]*wire.SubscriptionGroupConfig{"G": g, "Neg": bad}}
	changed, skipped, err = groups.Replace(gw)
	if err != nil || !changed || len(skipped) != 1 {
		t.Fatalf("groups Replace: %v %v %v", changed, skipped, err)
	}
	rg, err := LoadGroups(filepath.Join(dir, "subscriptionGroup.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	for name, tbl := range map[string]*Groups{"memory": groups, "file": rg} {
		snap := tbl.Snapshot()
		if snap.DataVersion != v || len(snap.SubscriptionGroupTable) != 1 || snap.SubscriptionGroupTable["G"].BrokerID != 1 {
			t.Errorf("groups %s: %+v", name, snap)
		}
	}
}

// TestSyncKeepsRocketMQ5Settings: a slave adopting its master's topic and
// group tables (Java 5 JSON) keeps message.type, consumeMessageOrderly and
// groupRetryPolicy, in memory and on disk.
func TestSyncKeepsRocketMQ5Settings(t *testing.T) {
	dir := t.TempDir()
	topics, err := LoadTopics(filepath.Join(dir, "topics.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	var tw wire.TopicConfigSerializeWrapper
	if err := wire.UnmarshalLenient([]byte(`{"dataVersion":{"counter":3,"timestamp":1},"topicConfigTable":{"F":{"topicName":"F","readQueueNums":4,"writeQueueNums":4,"perm":6,"attributes":{"message.type":"FIFO"}}}}`), &tw); err != nil {
		t.Fatal(err)
	}
	if _, skipped, err := topics.Replace(tw); err != nil || len(skipped) != 0 {
		t.Fatal(err, skipped)
	}
	groups, err := LoadGroups(filepath.Join(dir, "subscriptionGroup.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	var gw wire.SubscriptionGroupWrapper
	if err := wire.UnmarshalLenient([]byte(`{"dataVersion":{"counter":2,"timestamp":1},"subscriptionGroupTable":{"G":{"groupName":"G","consumeMessageOrderly":true,"groupRetryPolicy":{"type":"CUSTOMIZED","customizedRetryPolicy":{"next":[1000,2000]}}}}}`), &gw); err != nil {
		t.Fatal(err)
	}
	if _, skipped, err := groups.Replace(gw); err != nil || len(skipped) != 0 {
		t.Fatal(err, skipped)
	}
	topics2, err := LoadTopics(filepath.Join(dir, "topics.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	groups2, err := LoadGroups(filepath.Join(dir, "subscriptionGroup.json"), discard)
	if err != nil {
		t.Fatal(err)
	}
	for name, tp := range map[string]*Topics{"memory": topics, "file": topics2} {
		if got := tp.Lookup("F").MessageType(); got != "FIFO" {
			t.Errorf("%s: message.type %q", name, got)
		}
	}
	for name, gs := range map[string]*Groups{"memory": groups, "file": groups2} {
		g := gs.Lookup("G")
		if g == nil || !g.ConsumeMessageOrderly || g.GroupRetryPolicy == nil || len(g.GroupRetryPolicy.CustomizedRetryPolicy.Next) != 2 {
			t.Errorf("%s: group %+v", name, g)
		}
	}
}
