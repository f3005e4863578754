package store

import (
	"testing"
	"time"
)

// TestPrefaultRunsAhead: pages ahead of the write position get mapped in
// the background, and mapping them changes no data.
func TestPrefaultRunsAhead(t *testing.T) {
	s := benchStore(t, AsyncFlush)
	m := benchMessage(0)
	for i := 0; i < 5000; i++ {
		mustPut(t, s, m)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.prefaulted.Load() < s.maxPhy.Load()+prefaultAhead/2 {
		if time.Now().After(deadline) {
			t.Fatalf("prefaulted %d, write position %d", s.prefaulted.Load(), s.maxPhy.Load())
		}
		time.Sleep(time.Millisecond)
	}
	waitDispatch(t, s)
	res := s.GetMessages("BenchTopic", 0, 0, 32, 1<<20, nil, nil, nil)
	if res.Status != Found || res.MsgCount != 32 {
		t.Fatalf("read after prefault: %v, %d messages", res.Status, res.MsgCount)
	}
}
