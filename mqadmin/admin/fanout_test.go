package admin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/namesrv"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// silentBrokers are listeners on 127.0.0.1 that accept connections and
// read requests but never answer, like a hung broker (stopped, stuck on a
// dead disk) whose kernel still completes handshakes. A request is held
// until release closes its connection. The counters are what the fan-out
// tests assert on: connections open and requests held at the same time.
type silentBrokers struct {
	lns   []net.Listener
	addrs []string

	mu       sync.Mutex
	conns    map[net.Conn]bool // open connections → a request is held on it
	open     int
	held     int
	maxOpen  int
	maxHeld  int
	released int
	// batch > 0 releases the held requests whenever batch of them (or all
	// that are left of total) are held at once, and shuts everything down
	// when more than batch connections are open.
	batch, total int
	down         bool
}

// startSilentBrokers starts k of them; see silentBrokers.batch.
func startSilentBrokers(t *testing.T, k, batch int) *silentBrokers {
	t.Helper()
	s := &silentBrokers{conns: map[net.Conn]bool{}, batch: batch, total: k}
	for range k {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.lns = append(s.lns, ln)
		s.addrs = append(s.addrs, ln.Addr().String())
		go s.accept(ln)
	}
	t.Cleanup(s.shutdown)
	return s
}

func (s *silentBrokers) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.down {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = false
		s.open++
		s.maxOpen = max(s.maxOpen, s.open)
		if s.batch > 0 && s.open > s.batch {
			s.shutdownLocked() // over the limit: fail now rather than hang
		}
		s.mu.Unlock()
		go s.serve(c)
	}
}

// serve reads one request frame, holds it, and waits for the close.
func (s *silentBrokers) serve(c net.Conn) {
	defer s.drop(c)
	prefix := make([]byte, 4)
	if _, err := io.ReadFull(c, prefix); err != nil {
		return
	}
	n, err := wire.FrameLength(prefix)
	if err != nil {
		return
	}
	if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
		return
	}
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		s.conns[c] = true
		s.held++
		s.maxHeld = max(s.maxHeld, s.held)
		// Every open connection holds a request: nothing else is on its way.
		if s.batch > 0 && s.held == min(s.batch, s.total-s.released) && s.open == s.held {
			s.releaseLocked()
		}
	}
	s.mu.Unlock()
	_, _ = io.Copy(io.Discard, c) // until closed
}

// drop forgets a connection closed by either side.
func (s *silentBrokers) drop(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked(c)
}

func (s *silentBrokers) closeLocked(c net.Conn) {
	held, ok := s.conns[c]
	if !ok {
		return
	}
	delete(s.conns, c)
	s.open--
	if held {
		s.held--
		s.released++
	}
	c.Close()
}

// releaseLocked closes every connection holding a request: the client sees
// the connection drop at once.
func (s *silentBrokers) releaseLocked() {
	for c, held := range s.conns {
		if held {
			s.closeLocked(c)
		}
	}
}

// shutdown stops listening and drops every connection, so whatever the
// client still asks fails at once.
func (s *silentBrokers) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdownLocked()
}

func (s *silentBrokers) shutdownLocked() {
	s.down = true
	for _, ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		s.closeLocked(c)
	}
}

func (s *silentBrokers) counts() (held, maxOpen, maxHeld int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held, s.maxOpen, s.maxHeld
}

// startNamesrv runs a real name server in this process.
func startNamesrv(t *testing.T) string {
	t.Helper()
	s, err := namesrv.New(namesrv.Options{
		ListenAddr: "127.0.0.1:0", KVConfigPath: filepath.Join(t.TempDir(), "kvConfig.json"),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.Addr().String()
}

// registerMasters registers each address as the master of broker-<i> in
// cluster C with topics T and %RETRY%G (group G's retry topic), as a
// broker's REGISTER_BROKER does. The registrations live as long as the
// test: the name server drops a broker whose connection closes.
func registerMasters(t *testing.T, ns string, addrs []string) {
	t.Helper()
	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	t.Cleanup(cl.Close)
	topics := map[string]*wire.TopicConfig{}
	for _, name := range []string{"T", RetryPrefix + "G"} {
		tc := NewTopicConfig(name)
		topics[name] = &tc
	}
	body := wire.Marshal(wire.RegisterBrokerBody{FilterServerList: []string{}, TopicConfigSerializeWrapper: wire.TopicConfigSerializeWrapper{
		DataVersion: wire.DataVersion{Counter: 1, Timestamp: time.Now().UnixMilli()}, TopicConfigTable: topics,
	}})
	for i, addr := range addrs {
		f := map[string]string{
			"brokerName": fmt.Sprintf("broker-%d", i), "brokerAddr": addr, "clusterName": "C", "haServerAddr": addr,
			"brokerId": "0", "compressed": "false", "bodyCrc32": "0",
		}
		resp, err := cl.Invoke(ns, wire.NewRequest(wire.RegisterBroker, f, body), 10*time.Second)
		if err != nil || resp.Code != wire.Success {
			t.Fatalf("register %s: %v %+v", addr, err, resp)
		}
	}
}

// waitUntil polls cond for up to 20 s.
func waitUntil(cond func() bool) bool {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

type runtimeResult struct {
	rows []BrokerRuntime
	err  error
}

func clusterRuntimeAsync(a *Admin) chan runtimeResult {
	done := make(chan runtimeResult, 1)
	go func() {
		rows, err := a.ClusterRuntime("C")
		done <- runtimeResult{rows, err}
	}()
	return done
}

// TestFanOutAsksDeadMastersAtOnce: every read that goes to several
// masters (or name servers) asks k that accept and never answer before any
// answer or timeout could end a request: the timeout is a minute and the
// listeners hold every request until all k are in. Then they drop their
// connections, and the error names the first of them in broker order, as
// a loop would have.
func TestFanOutAsksDeadMastersAtOnce(t *testing.T) {
	const k = 4
	now := time.Now().UnixMilli()
	for _, c := range []struct {
		name string
		// namesrv: the silent listeners are the name servers, not brokers.
		namesrv bool
		run     func(a *Admin) error
	}{
		{name: "cluster runtime", run: func(a *Admin) error {
			rows, err := a.ClusterRuntime("C")
			if len(rows) != k {
				return fmt.Errorf("%d rows: %w", len(rows), err)
			}
			for i, r := range rows {
				if r.Name != fmt.Sprintf("broker-%d", i) || r.Error == "" {
					return fmt.Errorf("row %d %+v: %w", i, r, err)
				}
			}
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d of %d brokers did not answer", k, k)) {
				return fmt.Errorf("not every broker reported: %w", err)
			}
			return err
		}},
		{name: "backlog", run: func(a *Admin) error { _, err := a.Backlog(Target{}, false); return err }},
		{name: "groups", run: func(a *Admin) error { _, err := a.Groups(Target{}); return err }},
		{name: "stats today", run: func(a *Admin) error { _, err := a.StatsToday(Target{}, 0); return err }},
		{name: "stats series", run: func(a *Admin) error { _, err := a.StatsSeries("T", "", "1m", 0, now); return err }},
		{name: "stats all", run: func(a *Admin) error { _, err := a.StatsAll("T", false, nil); return err }},
		{name: "topic status", run: func(a *Admin) error { _, err := a.TopicStatus("T"); return err }},
		{name: "topic consumers", run: func(a *Admin) error { _, err := a.TopicConsumersAll("T"); return err }},
		{name: "query by key", run: func(a *Admin) error { _, err := a.QueryMessages("T", "k", 0, now, 32); return err }},
		{name: "group progress", run: func(a *Admin) error { _, err := a.GroupProgress("G", ""); return err }},
		{name: "consumer connections", run: func(a *Admin) error { _, err := a.ConsumerConnection("G"); return err }},
		{name: "producer connections", run: func(a *Admin) error { _, err := a.ProducerConnection("P", "T"); return err }},
		{name: "name server config", namesrv: true, run: func(a *Admin) error { _, err := a.NamesrvConfig(); return err }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startSilentBrokers(t, k, 0)
			ns := strings.Join(s.addrs, ";")
			if !c.namesrv {
				ns = startNamesrv(t)
				registerMasters(t, ns, s.addrs)
			}
			a, err := New(ns, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			done := make(chan error, 1)
			go func() { done <- c.run(a) }()
			if !waitUntil(func() bool { held, _, _ := s.counts(); return held == k }) {
				_, _, maxHeld := s.counts()
				t.Errorf("at most %d of %d silent peers were asked at once", maxHeld, k)
			}
			s.shutdown()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatal("no answer after the peers dropped their connections")
			}
			if err == nil || !strings.Contains(err.Error(), s.addrs[0]+":") {
				t.Fatalf("error %v, want one naming the first peer %s", err, s.addrs[0])
			}
		})
	}
}

// TestClusterRuntimeBoundsParallelism: with more silent masters than the
// limit, the listeners release the requests only once limit of them are
// held at the same time and no other connection is open; no more than
// limit connections are ever open.
func TestClusterRuntimeBoundsParallelism(t *testing.T) {
	const k, limit = 10, 3
	s := startSilentBrokers(t, k, limit)
	ns := startNamesrv(t)
	registerMasters(t, ns, s.addrs)
	a, err := New(ns, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetParallel(limit)
	var r runtimeResult
	select {
	case r = <-clusterRuntimeAsync(a):
	case <-time.After(20 * time.Second):
		_, maxOpen, maxHeld := s.counts()
		s.shutdown()
		t.Fatalf("stuck: requests are released only in batches of %d (at most %d open, %d held at once)", limit, maxOpen, maxHeld)
	}
	if _, maxOpen, maxHeld := s.counts(); maxOpen > limit || maxHeld != limit {
		t.Fatalf("limit %d: %d connections open and %d requests held at most at once", limit, maxOpen, maxHeld)
	}
	if len(r.rows) != k || r.err == nil {
		t.Fatalf("%d rows, error %v", len(r.rows), r.err)
	}
	for i, row := range r.rows {
		if row.Addr != s.addrs[i] || !strings.Contains(row.Error, s.addrs[i]) {
			t.Errorf("row %d: %+v", i, row)
		}
	}
}

func TestFanOut(t *testing.T) {
	if err := FanOut(0, 0, func(int) error { panic("called") }); err != nil {
		t.Fatal(err)
	}
	out := make([]int, 50)
	if err := FanOut(len(out), 4, func(i int) error { out[i] = i * i; return nil }); err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v != i*i {
			t.Fatalf("out[%d] = %d", i, v)
		}
	}
	// Indices 3 and 5 fail; 5 fails first, yet 3's error is the one a loop
	// would have stopped at. With a limit of 1 nothing after the first
	// failure starts.
	release3 := make(chan struct{})
	err := FanOut(8, 8, func(i int) error {
		switch i {
		case 3:
			<-release3
			return errors.New("three")
		case 5:
			close(release3)
			return errors.New("five")
		}
		return nil
	})
	if err == nil || err.Error() != "three" {
		t.Fatalf("error %v, want three", err)
	}
	var calls atomic.Int32
	err = FanOut(8, 1, func(i int) error {
		calls.Add(1)
		if i == 2 {
			return errors.New("two")
		}
		return nil
	})
	if err == nil || err.Error() != "two" || calls.Load() != 3 {
		t.Fatalf("error %v after %d calls, want two after 3", err, calls.Load())
	}
}
