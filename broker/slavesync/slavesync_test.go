package slavesync

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/meta"
	"github.com/mqops/mqops/broker/schedule"
	"github.com/mqops/mqops/broker/store"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

var quiet = slog.New(slog.DiscardHandler)

// peerMaster is a remoting server on loopback answering the four sync
// codes with the given (code, body); what a master, or a broken one, says.
func peerMaster(t *testing.T, answers map[int32][2]string) string {
	t.Helper()
	srv, err := remoting.Listen("127.0.0.1:0", remoting.HandlerFunc(func(c *remoting.Conn, req *wire.Command) {
		a, ok := answers[req.Code]
		if !ok {
			c.ReplyCode(req, wire.RequestCodeNotSupported, "")
			return
		}
		resp := wire.ResponseTo(req, wire.Success, "")
		if a[0] != "" {
			resp = wire.ResponseTo(req, wire.SystemError, a[0])
		}
		resp.Body = []byte(a[1])
		c.Reply(req, &resp)
	}), quiet)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(func(*remoting.Conn) {}) }()
	t.Cleanup(func() { srv.Close() })
	return srv.Addr().String()
}

// tables opens a slave's four tables in a fresh directory.
func tables(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	topics, err := meta.LoadTopics(filepath.Join(dir, "topics.json"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := meta.LoadGroups(filepath.Join(dir, "subscriptionGroup.json"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	offsets, err := meta.LoadOffsets(filepath.Join(dir, "consumerOffset.json"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Config{RootDir: dir, SegmentSize: 1 << 20, StoreHost: make([]byte, 8), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	delay, err := schedule.OpenLevels(st, []time.Duration{time.Second, 5 * time.Second}, filepath.Join(dir, "delayOffset.json"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = delay.Close() })
	cl := remoting.NewClient(nil, quiet)
	t.Cleanup(cl.Close)
	return Options{Client: cl, Timeout: 5 * time.Second, Topics: topics, Groups: groups, Offsets: offsets, Delay: delay, Log: quiet}
}

// TestSyncAllJavaBodies: bodies as a Java 4.9.8 master writes them
// (fastjson: unquoted numeric keys) are adopted, and the registration is
// asked for once.
func TestSyncAllJavaBodies(t *testing.T) {
	addr := peerMaster(t, map[int32][2]string{
		wire.GetAllTopicConfig:    {"", `{"dataVersion":{"counter":3,"timestamp":1700000000000},"topicConfigTable":{"J":{"order":false,"perm":6,"readQueueNums":2,"topicFilterType":"SINGLE_TAG","topicName":"J","topicSysFlag":0,"writeQueueNums":2}}}`},
		wire.GetAllConsumerOffset: {"", `{"offsetTable":{"J@G":{0:5,1:6}}}`},
		wire.GetAllDelayOffset:    {"", `{"offsetTable":{1:4,2:0}}`},
		wire.GetAllSubGroupConfig: {"", `{"dataVersion":{"counter":1,"timestamp":1700000000000},"subscriptionGroupTable":{"G":{"groupName":"G","brokerId":1}}}`},
	})
	o := tables(t)
	o.Master = func() string { return addr }
	registered := 0
	o.TopicsChanged = func() { registered++ }
	s := New(o)
	for i := 0; i < 2; i++ {
		if _, err := s.SyncAll(); err != nil {
			t.Fatal(err)
		}
	}
	if registered != 1 {
		t.Errorf("registration asked for %d times, want once (same data version the second time)", registered)
	}
	if tc := o.Topics.Lookup("J"); tc == nil || tc.ReadQueueNums != 2 {
		t.Errorf("topic %+v", tc)
	}
	if off, ok := o.Offsets.Query("G", "J", 1); !ok || off != 6 {
		t.Errorf("offset %d %v", off, ok)
	}
	if p := o.Delay.Progress(); p[0][0] != 4 {
		t.Errorf("delay %v", p)
	}
	// A group a master writes with only some keys gets Java's defaults.
	if g := o.Groups.Lookup("G"); g == nil || g.BrokerID != 1 || g.RetryMaxTimes != 16 || !g.ConsumeEnable {
		t.Errorf("group %+v", g)
	}
}

// TestSyncAllBadMaster: a master that refuses or answers garbage changes
// nothing; every step is tried and named in the error; no master, or this
// broker itself, syncs nothing.
func TestSyncAllBadMaster(t *testing.T) {
	o := tables(t)
	if _, err := o.Topics.Put(wire.TopicConfig{TopicName: "Keep", ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}); err != nil {
		t.Fatal(err)
	}
	o.Offsets.Commit("G", "Keep", 0, 3)
	addr := peerMaster(t, map[int32][2]string{
		wire.GetAllTopicConfig:    {"", `{"dataVersion":{"counter":`},
		wire.GetAllConsumerOffset: {"", `{"offsetTable":{"Keep@G":{0:`},
		wire.GetAllDelayOffset:    {"No delay offset in this broker", ""},
		wire.GetAllSubGroupConfig: {"", `[]`},
	})
	master := ""
	o.Master = func() string { return master }
	s := New(o)
	if _, err := s.SyncAll(); !errors.Is(err, ErrNoMaster) {
		t.Errorf("no master: %v", err)
	}
	master, o.Self = "127.0.0.1:1", "127.0.0.1:1"
	s = New(o)
	if _, err := s.SyncAll(); err != nil {
		t.Errorf("syncing from itself: %v", err)
	}
	master, o.Self = addr, ""
	s = New(o)
	_, err := s.SyncAll()
	for _, want := range []string{"topics from", "consumer offsets from", "request 45", "No delay offset in this broker", "subscription groups from"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %q", err, want)
		}
	}
	if o.Topics.Lookup("Keep") == nil {
		t.Error("a torn topic table replaced the slave's")
	}
	if off, _ := o.Offsets.Query("G", "Keep", 0); off != 3 {
		t.Errorf("a torn offset table changed an offset: %d", off)
	}
}

// TestSyncTimerCheckpoint: the slave's timer service follows the master's
// checkpoint (GET_TIMER_CHECK_POINT) once its commit log holds what the
// checkpoint counts on; one it cannot apply yet waits a round, one fetched
// before the wheel was reset is dropped, and a bad body is an error that
// changes nothing.
func TestSyncTimerCheckpoint(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.Config{RootDir: dir, SegmentSize: 1 << 20, StoreHost: make([]byte, 8), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	timers, err := schedule.OpenTimers(st, filepath.Join(dir, "timerwheel"), time.Hour, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = timers.Close() })

	var answer atomic.Pointer[[]byte]
	srv, err := remoting.Listen("127.0.0.1:0", remoting.HandlerFunc(func(c *remoting.Conn, req *wire.Command) {
		resp := wire.ResponseTo(req, wire.Success, "")
		resp.Body = *answer.Load()
		c.Reply(req, &resp)
	}), quiet)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(func(*remoting.Conn) {}) }()
	t.Cleanup(func() { srv.Close() })
	cl := remoting.NewClient(nil, quiet)
	t.Cleanup(cl.Close)
	s := New(Options{Client: cl, Timeout: 5 * time.Second, Timers: timers, Log: quiet})
	master := srv.Addr().String()
	serve := func(ck wire.TimerCheckpoint) {
		b := ck.Encode()
		answer.Store(&b)
	}
	grow := func() int64 { // the slave receives more of the log
		m := store.Message{Topic: "T", Body: []byte("x"), BornTimestamp: 1}
		if r := st.Put(&m); r.Status != store.PutOK {
			t.Fatal(r.Status)
		}
		return st.MaxPhyOffset()
	}

	end := st.MaxPhyOffset()
	ck1 := wire.TimerCheckpoint{LastReadTimeMs: 1_700_000_000_000, CommitLogOffset: end + 1}
	serve(ck1)
	if err := s.syncTimer(master); err != nil || timers.Followed() != (wire.TimerCheckpoint{}) {
		t.Fatalf("a checkpoint beyond the slave's log: %v, followed %+v", err, timers.Followed())
	}
	end = grow()
	ck2 := wire.TimerCheckpoint{LastReadTimeMs: 1_700_000_010_000, CommitLogOffset: end + 1}
	serve(ck2)
	if err := s.syncTimer(master); err != nil || timers.Followed() != ck1 {
		t.Fatalf("the waiting checkpoint: %v, followed %+v, want %+v", err, timers.Followed(), ck1)
	}
	if err := timers.Reset(); err != nil {
		t.Fatal(err)
	}
	grow()
	ck3 := wire.TimerCheckpoint{LastReadTimeMs: 1_700_000_020_000, CommitLogOffset: st.MaxPhyOffset() + 1}
	serve(ck3)
	if err := s.syncTimer(master); err != nil || timers.Followed() != (wire.TimerCheckpoint{}) {
		t.Fatalf("a checkpoint fetched before a reset: %v, followed %+v", err, timers.Followed())
	}
	grow()
	ck4 := wire.TimerCheckpoint{LastReadTimeMs: 1_700_000_030_000, CommitLogOffset: st.MaxPhyOffset()}
	serve(ck4)
	if err := s.syncTimer(master); err != nil || timers.Followed() != ck4 {
		t.Fatalf("followed %+v (%v), want %+v", timers.Followed(), err, ck4)
	}
	bad := []byte("garbage")
	answer.Store(&bad)
	if err := s.syncTimer(master); err == nil || !strings.Contains(err.Error(), "timer checkpoint from") || timers.Followed() != ck4 {
		t.Fatalf("a bad body: %v, followed %+v", err, timers.Followed())
	}
}
