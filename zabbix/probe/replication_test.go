package probe

import (
	"testing"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// TestFillSetMatchesConnections: a master's slave connections carry the
// slaves' ephemeral HA client addresses, so two slaves on one host are
// told apart by their acked offsets; lag seconds are the diff over the
// transfer rate, 0 when caught up, and absent (stalled) when bytes are
// outstanding but none flow.
func TestFillSetMatchesConnections(t *testing.T) {
	rts := []admin.BrokerRuntime{
		{Broker: admin.Broker{Name: "b", ID: 0, Addr: "10.0.0.1:10911"}, CommitLogMaxOffset: 5000},
		{Broker: admin.Broker{Name: "b", ID: 1, Addr: "10.0.0.2:10911"}, CommitLogMaxOffset: 5000},
		{Broker: admin.Broker{Name: "b", ID: 2, Addr: "10.0.0.2:10921"}, CommitLogMaxOffset: 1000},
		{Broker: admin.Broker{Name: "b", ID: 3, Addr: "10.0.0.3:10911"}, CommitLogMaxOffset: 200},
		{Broker: admin.Broker{Name: "b", ID: 4, Addr: "10.0.0.4:10911"}, Error: "connection refused"},
	}
	st := &ReplicationStatus{Sets: map[string]*ReplicaSet{"b": {}}, Replicas: map[string]*Replica{
		"b/1": {Broker: "b", ID: 1}, "b/2": {Broker: "b", ID: 2}, "b/3": {Broker: "b", ID: 3}, "b/4": {Broker: "b", ID: 4},
	}}
	ha := &wire.HARuntimeInfo{Master: true, MasterCommitLogMaxOffset: 5000, InSyncSlaveNums: 1, HAConnectionInfo: []wire.HAConnectionRuntimeInfo{
		// Listed first, but its ack is slave 2's.
		{Addr: "10.0.0.2:40001", SlaveAckOffset: 1000, Diff: 4000, TransferredByteInSecond: 800},
		{Addr: "10.0.0.2:40002", SlaveAckOffset: 5000, Diff: 0, InSync: true, TransferredByteInSecond: 0},
		{Addr: "10.0.0.3:40003", SlaveAckOffset: 200, Diff: 4800, TransferredByteInSecond: 0},
	}}
	st.fillSet("b", st.Sets["b"], ha, rts)
	set := st.Sets["b"]
	if set.Slaves != 3 || set.InSync != 1 || set.MaxLagBytes != 4800 {
		t.Fatalf("set %+v", set)
	}
	check := func(key string, lag int64, secs float64, stalled, inSync int) {
		t.Helper()
		r := st.Replicas[key]
		if r.Connected != 1 || r.LagBytes == nil || *r.LagBytes != lag || r.Stalled != stalled || r.InSync != inSync {
			t.Fatalf("%s: %+v", key, r)
		}
		if stalled == 1 {
			if r.LagSeconds != nil {
				t.Fatalf("%s: stalled but lag seconds %v", key, *r.LagSeconds)
			}
		} else if r.LagSeconds == nil || *r.LagSeconds != secs {
			t.Fatalf("%s: lag seconds %v, want %v", key, r.LagSeconds, secs)
		}
	}
	check("b/1", 0, 0, 0, 1)
	check("b/2", 4000, 5, 0, 0)
	check("b/3", 4800, 0, 1, 0)
	if r := st.Replicas["b/4"]; r.Connected != 0 || r.LagBytes != nil || r.LagSeconds != nil {
		t.Fatalf("b/4 has no connection: %+v", r)
	}
}
