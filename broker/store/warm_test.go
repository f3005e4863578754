package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// The warmer writes zeros ahead of a SyncFlush master's appends while
// several writers append records of random sizes across segment rolls
// (run with -race): every record reads back intact, the log is kept
// written ahead of the append position, and a reopened store recovers to
// the same end (the zeros ahead read as the end of the log).
func TestWarmAheadNeverTouchesAppends(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.FlushMode = SyncFlush
	cfg.WarmSegments = true
	cfg.SegmentSize = 8 << 20
	s := openStore(t, cfg)

	const writers, perWriter = 4, 150
	var wg sync.WaitGroup
	sawAhead := make(chan bool, 1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range perWriter {
				body := bytes.Repeat([]byte{byte('a' + w)}, 100+r.IntN(120<<10))
				copy(body, fmt.Sprintf("w%d-%d|", w, i))
				mustPut(t, s, msg("WarmTopic", int32(w), string(body)))
				s.mu.Lock()
				ahead := s.warm.to > s.writePos
				s.mu.Unlock()
				if ahead {
					select {
					case sawAhead <- true:
					default:
					}
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-sawAhead:
	default:
		t.Fatal("the warmer never ran ahead of the appends")
	}
	waitDispatch(t, s)
	check := func(s *Store) {
		t.Helper()
		for w := range writers {
			recs := readAll(t, s, "WarmTopic", int32(w))
			if len(recs) != perWriter {
				t.Fatalf("queue %d: %d records, want %d", w, len(recs), perWriter)
			}
			for i, rv := range recs {
				b := rv.Body()
				prefix := fmt.Sprintf("w%d-%d|", w, i)
				if !bytes.HasPrefix(b, []byte(prefix)) || bytes.IndexFunc(b[len(prefix):], func(c rune) bool { return c != rune('a'+w) }) >= 0 {
					t.Fatalf("queue %d record %d damaged (%d bytes)", w, i, len(b))
				}
			}
		}
	}
	check(s)
	end := s.MaxPhyOffset()
	if s.Close() != nil {
		t.Fatal("close")
	}
	s2 := openStore(t, cfg)
	if got := s2.MaxPhyOffset(); got != end {
		t.Fatalf("recovered to %d, want %d", got, end)
	}
	waitDispatch(t, s2)
	check(s2)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s2.mu.Lock()
		ahead := s2.warm.to > s2.writePos
		s2.mu.Unlock()
		if ahead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reopened store's warmer did not run ahead")
		}
		mustPut(t, s2, msg("WarmTopic", 9, "after reopen"))
		time.Sleep(10 * time.Millisecond)
	}
}
