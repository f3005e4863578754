package server

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// TestSyncMasterSendStatuses drives an in-process SYNC_MASTER (with
// SYNC_FLUSH, so both waits run together) through its answers: no slave →
// SLAVE_NOT_AVAILABLE at once; WAIT=false → SUCCESS without a slave; a
// real slave broker following haMasterAddress → SUCCESS only once the
// slave's store has the message; a connected slave that stops acking →
// FLUSH_SLAVE_TIMEOUT after slaveTimeout. Every one of them carries the
// stored message's fields: the message is stored in all cases.
func TestSyncMasterSendStatuses(t *testing.T) {
	m := startBroker(t, map[string]string{"brokerRole": "SYNC_MASTER", "flushDiskType": "SYNC_FLUSH", "slaveTimeout": "300"})
	conn, err := net.Dial("tcp", m.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	expect := func(frame []byte, code int32) wire.Command {
		t.Helper()
		r := call(t, conn, frame)
		if r.Code != code || r.GetString("msgId") == "" || r.GetString("queueOffset") == "" {
			t.Fatalf("answer %s %q %v, want %s with the message's fields", wire.ResponseName(r.Code), r.Remark, r.Fields(), wire.ResponseName(code))
		}
		return r
	}
	expect(sendFrame("HATopic", []byte("no slave")), wire.SlaveNotAvailable)
	noWait := wire.NewRequest(wire.SendMessageV2, map[string]string{
		"a": "PG", "b": "HATopic", "c": "TBW102", "d": "4", "e": "0", "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": "WAIT\x01false\x02", "j": "0", "k": "false",
	}, []byte("do not wait"))
	noWait.Opaque = 2
	expect(wire.AppendFrame(nil, noWait), wire.Success)

	s := openBroker(t, t.TempDir(), map[string]string{"brokerRole": "SLAVE", "brokerId": "1", "haMasterAddress": m.haAddr})
	s.Start()
	closeSlave := sync.OnceValue(s.Close)
	t.Cleanup(func() { _ = closeSlave() })
	deadline := time.Now().Add(20 * time.Second)
	for !m.haServer.SlaveOK(m.store.MaxPhyOffset()) {
		if time.Now().After(deadline) {
			t.Fatal("the slave never reported")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		r := expect(sendFrame("HATopic", []byte("replicated "+strconv.Itoa(i))), wire.Success)
		_, _, off, err := wire.ParseOffsetMsgID(r.GetString("msgId"))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.store.MaxPhyOffset(); got <= off {
			t.Fatalf("SUCCESS for the record at %d while the slave has %d bytes", off, got)
		}
	}
	if st := m.HAStatus(); len(st.Slaves) != 1 || st.Slaves[0].AckOffset != m.store.MaxPhyOffset() {
		t.Fatalf("HA status %+v", st)
	}
	if st := s.HAStatus(); st.Follower == nil || !st.Follower.Connected || st.Follower.MaxOffset != m.store.MaxPhyOffset() {
		t.Fatalf("slave HA status %+v", st)
	}

	// Replace the slave by one that reports once and then stays silent.
	if err := closeSlave(); err != nil {
		t.Fatal(err)
	}
	for len(m.haServer.Status()) != 0 {
		time.Sleep(5 * time.Millisecond)
	}
	silent, err := net.Dial("tcp", m.haAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if _, err := silent.Write(wire.AppendHAReport(nil, m.store.MaxPhyOffset())); err != nil {
		t.Fatal(err)
	}
	for !m.haServer.SlaveOK(m.store.MaxPhyOffset()) {
		time.Sleep(5 * time.Millisecond)
	}
	expect(sendFrame("HATopic", []byte("no ack")), wire.FlushSlaveTimeout)
}
