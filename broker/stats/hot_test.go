package stats

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHotPathDoesNotAllocate(t *testing.T) {
	h := newHarness(t, t.TempDir(), date(cst, 2026, 11, 20, 8, 0, 0))
	topic, group := []byte("OrderTopic"), []byte("order_consumer")
	h.TopicPut(topic, 1, 1)
	h.GroupGet(topic, group, 1, 1)
	h.SendBack(topic, group)
	for name, f := range map[string]func(){
		"TopicPut": func() { h.TopicPut(topic, 1, 100) },
		"GroupGet": func() { h.GroupGet(topic, group, 4, 400) },
		"SendBack": func() { h.SendBack(topic, group) },
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}

// TestEviction: a key idle for more than a day stops printing and leaves
// memory; its series stay, and new traffic brings it back.
func TestEviction(t *testing.T) {
	start := date(cst, 2026, 11, 20, 0, 0, 0)
	h := newHarness(t, t.TempDir(), start)
	h.TopicPut([]byte("Old"), 1, 0)
	h.GroupGet([]byte("Old"), []byte("g"), 1, 0)
	h.SendBack([]byte("%RETRY%g"), []byte("g"))
	// Busy has traffic every hour; Old's last change is sampled at 01:00.
	for i := 1; i <= 26; i++ {
		h.TopicPut([]byte("Busy"), 1, 0)
		h.to(start.Add(time.Duration(i) * time.Hour))
		if out := h.out.take(); i == 25 && !strings.Contains(out, "[Old]") {
			t.Fatal("Old evicted after exactly 24 hours")
		}
	}
	h.out.take()
	h.to(start.Add(26*time.Hour + time.Minute))
	out := h.out.take()
	if strings.Contains(out, "Old") || !strings.Contains(out, "[Busy]") || !strings.Contains(out, "[BROKER_GET_NUMS]") {
		t.Fatalf("lines after eviction:\n%s", out)
	}
	for _, q := range [][2]string{{TopicPutNums, "Old"}, {GroupGetNums, "Old@g"}, {SendBackNums, "%RETRY%g@g"}} {
		if _, ok := h.View(q[0], q[1]); ok {
			t.Errorf("%s %s still viewable", q[0], q[1])
		}
	}
	h.mu.RLock()
	n := len(h.topics) + len(h.groups)
	h.mu.RUnlock()
	if n != 1 {
		t.Errorf("%d entries left, want Busy only", n)
	}
	if pts := getSeries(t, h, KindPut, "Old", 24*time.Hour, start, h.clk.Now()); pts[0].Value != 1 {
		t.Errorf("series of the evicted key: %v", pts)
	}
	h.TopicPut([]byte("Old"), 2, 0)
	h.to(start.Add(26*time.Hour + 2*time.Minute))
	if v, ok := h.View(TopicPutNums, "Old"); !ok || v.Minute.Sum != 2 {
		t.Errorf("Old back: %+v %v", v, ok)
	}
}

// TestConcurrentCounting counts from many goroutines while the clock runs
// for days, so keys are evicted and come back meanwhile, and readers
// query; no count may be lost or counted twice.
func TestConcurrentCounting(t *testing.T) {
	start := date(cst, 2026, 11, 20, 0, 0, 0)
	h := newHarness(t, t.TempDir(), start)
	var topics, groups [20][]byte
	for i := range topics {
		topics[i] = fmt.Appendf(nil, "T%d", i)
		groups[i] = fmt.Appendf(nil, "g%d", i%3)
	}
	var wg, bg sync.WaitGroup
	var done atomic.Bool
	var sentPut, sentGet atomic.Int64
	minEntries := len(topics)
	for w := range 8 {
		wg.Go(func() {
			var put, get int64
			for i := 0; !done.Load(); i++ {
				// All keys at first, then T0 and T1, and T2…T19 only in
				// the clock hours ≡ 2…19 mod 40: idle long enough to go.
				k := (w + i) % len(topics)
				if i >= 5000 {
					k = i % 2
					if r := int(h.clk.Now().Sub(start)/time.Hour) % 40; i%50 == 0 && r >= 2 && r < len(topics) {
						k = r
					}
				}
				h.TopicPut(topics[k], 2, 10)
				h.GroupGet(topics[k], groups[k], 1, 10)
				if i%100 == 0 {
					h.SendBack(topics[k], groups[k])
				}
				put, get = put+2, get+1
			}
			sentPut.Add(put)
			sentGet.Add(get)
		})
	}
	bg.Go(func() {
		for i := range 100 {
			h.to(start.Add(time.Duration(i+1) * time.Hour))
			h.mu.RLock()
			minEntries = min(minEntries, len(h.topics))
			h.mu.RUnlock()
		}
		done.Store(true)
	})
	bg.Go(func() {
		for !done.Load() {
			h.View(TopicPutNums, "T1")
			h.Runtime()
			h.TopicsToday(h.clk.Now())
			if _, err := h.Series(KindGet, "T2@g2", time.Minute, h.clk.Now().Add(-time.Hour), h.clk.Now()); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	bg.Wait()
	h.to(h.clk.Now().Add(time.Minute))
	if minEntries > len(topics)/2 {
		t.Errorf("at least %d topics kept at all times: no evictions", minEntries)
	}

	var put, get int64
	for i := range topics {
		for _, c := range []struct {
			kind, key string
			sum       *int64
		}{{KindPut, string(topics[i]), &put}, {KindGet, string(topics[i]) + "@" + string(groups[i]), &get}} {
			for _, p := range getSeries(t, h, c.kind, c.key, 24*time.Hour, start, h.clk.Now()) {
				*c.sum += p.Value
			}
		}
	}
	if put != sentPut.Load() || get != sentGet.Load() {
		t.Errorf("series hold %d put and %d get, want %d and %d", put, get, sentPut.Load(), sentGet.Load())
	}
	if rt := h.Runtime(); rt.PutTotalTodayNow != sentPut.Load() || rt.GetTotalTodayNow != sentGet.Load() {
		t.Errorf("totals %+v", rt)
	}
}

func BenchmarkTopicPut(b *testing.B) {
	h := newHarness(b, b.TempDir(), date(cst, 2026, 11, 20, 8, 0, 0))
	topic := []byte("OrderTopic")
	h.TopicPut(topic, 1, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.TopicPut(topic, 1, 1024)
		}
	})
}

func BenchmarkGroupGet(b *testing.B) {
	h := newHarness(b, b.TempDir(), date(cst, 2026, 11, 20, 8, 0, 0))
	var topics [64][]byte
	for i := range topics {
		topics[i] = fmt.Appendf(nil, "Topic%d", i)
	}
	group := []byte("order_consumer")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			h.GroupGet(topics[i%len(topics)], group, 32, 32<<10)
			i++
		}
	})
}
