package stats

import (
	"bytes"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

var cst = time.FixedZone("CST", 8*3600)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// harness is a Manager on a fake clock whose output is captured.
type harness struct {
	*Manager
	t   testing.TB
	dir string
	clk *clock
	out *syncBuffer
	log *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// take returns what was written since the last take.
func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.b.String()
	s.b.Reset()
	return out
}

func newHarness(t testing.TB, dir string, start time.Time) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, clk: &clock{t: start}, out: &syncBuffer{}, log: &syncBuffer{}}
	h.open()
	return h
}

// open (re)creates the Manager on the harness's directory and clock, as a
// restarted broker does.
func (h *harness) open() {
	h.t.Helper()
	m, err := New(Options{
		Dir: h.dir, ClusterName: "prod-a", Out: h.out, Location: h.clk.t.Location(),
		Log: slog.New(slog.NewTextHandler(h.log, nil)), Now: h.clk.Now,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.Manager = m
}

// to moves the clock to t and ticks there.
func (h *harness) to(t time.Time) {
	h.clk.set(t)
	h.tick(t)
}

// every ticks at each step from the clock's time (exclusive) up to end.
func (h *harness) every(step time.Duration, end time.Time) {
	for t := h.clk.Now().Add(step); !t.After(end); t = t.Add(step) {
		h.to(t)
	}
}

func date(loc *time.Location, y int, mo time.Month, d, hh, mm, ss int) time.Time {
	return time.Date(y, mo, d, hh, mm, ss, 0, loc)
}

// orderTraffic sends, in each of the six 10 s periods of a minute, 200
// one-message sends of 512 bytes to OrderTopic; order_consumer pulls 1190
// messages in 160 pulls; and 3 messages are sent back.
func orderTraffic(h *harness, minute time.Time) {
	for i := range 6 {
		for range 200 {
			h.TopicPut([]byte("OrderTopic"), 1, 512)
		}
		if i == 0 {
			for p := range 160 {
				n := 7
				if p < 10 {
					n = 14
				}
				h.GroupGet([]byte("OrderTopic"), []byte("order_consumer"), n, n*100)
			}
			for range 3 {
				h.SendBack([]byte("OrderTopic"), []byte("order_consumer"))
			}
		}
		h.to(minute.Add(time.Duration(i+1) * 10 * time.Second))
	}
}

// TestLineShapes checks every kind of stats.log line byte for byte, and the
// broker.log totals at midnight.
func TestLineShapes(t *testing.T) {
	h := newHarness(t, t.TempDir(), date(cst, 2026, 11, 21, 23, 0, 0))
	orderTraffic(h, date(cst, 2026, 11, 21, 23, 0, 0))
	want := `2026-11-21 23:01:00,000 +0800 INFO - [TOPIC_PUT_NUMS] [OrderTopic] Stats In One Minute, SUM: 1200 TPS: 20.00 AVGPT: 1.00
2026-11-21 23:01:00,000 +0800 INFO - [TOPIC_PUT_SIZE] [OrderTopic] Stats In One Minute, SUM: 614400 TPS: 10240.00 AVGPT: 512.00
2026-11-21 23:01:00,000 +0800 INFO - [GROUP_GET_NUMS] [OrderTopic@order_consumer] Stats In One Minute, SUM: 1190 TPS: 19.83 AVGPT: 7.44
2026-11-21 23:01:00,000 +0800 INFO - [GROUP_GET_SIZE] [OrderTopic@order_consumer] Stats In One Minute, SUM: 119000 TPS: 1983.33 AVGPT: 743.75
2026-11-21 23:01:00,000 +0800 INFO - [SNDBCK_PUT_NUMS] [OrderTopic@order_consumer] Stats In One Minute, SUM: 3 TPS: 0.05 AVGPT: 1.00
2026-11-21 23:01:00,000 +0800 INFO - [BROKER_PUT_NUMS] [prod-a] Stats In One Minute, SUM: 1200 TPS: 20.00 AVGPT: 0.00
2026-11-21 23:01:00,000 +0800 INFO - [BROKER_GET_NUMS] [prod-a] Stats In One Minute, SUM: 1190 TPS: 19.83 AVGPT: 0.00
`
	if got := h.out.take(); got != want {
		t.Fatalf("minute lines:\n%s\nwant:\n%s", got, want)
	}

	// No more traffic: 10-minute samples up to 23:50, then 10 s ones
	// through the last minute to midnight.
	for _, mm := range []int{10, 20, 30, 40, 50, 59} {
		h.to(date(cst, 2026, 11, 21, 23, mm, 0))
	}
	h.out.take()
	h.every(10*time.Second, date(cst, 2026, 11, 22, 0, 0, 0))
	minute := `[TOPIC_PUT_NUMS] [OrderTopic] Stats In One Minute, SUM: 0 TPS: 0.00 AVGPT: 0.00
[TOPIC_PUT_SIZE] [OrderTopic] Stats In One Minute, SUM: 0 TPS: 0.00 AVGPT: 0.00
[GROUP_GET_NUMS] [OrderTopic@order_consumer] Stats In One Minute, SUM: 0 TPS: 0.00 AVGPT: 0.00
[GROUP_GET_SIZE] [OrderTopic@order_consumer] Stats In One Minute, SUM: 0 TPS: 0.00 AVGPT: 0.00
[SNDBCK_PUT_NUMS] [OrderTopic@order_consumer] Stats In One Minute, SUM: 0 TPS: 0.00 AVGPT: 0.00
[BROKER_PUT_NUMS] [prod-a] Stats In One Minute, SUM: 0 TPS: 0.00 AVGPT: 0.00
[BROKER_GET_NUMS] [prod-a] Stats In One Minute, SUM: 0 TPS: 0.00 AVGPT: 0.00
`
	// The hour window holds 10-minute samples from the start at 23:00,
	// the day window hourly ones: both span the hour since the start.
	hour := `[TOPIC_PUT_NUMS] [OrderTopic] Stats In One Hour, SUM: 1200 TPS: 0.33 AVGPT: 1.00
[TOPIC_PUT_SIZE] [OrderTopic] Stats In One Hour, SUM: 614400 TPS: 170.67 AVGPT: 512.00
[GROUP_GET_NUMS] [OrderTopic@order_consumer] Stats In One Hour, SUM: 1190 TPS: 0.33 AVGPT: 7.44
[GROUP_GET_SIZE] [OrderTopic@order_consumer] Stats In One Hour, SUM: 119000 TPS: 33.06 AVGPT: 743.75
[SNDBCK_PUT_NUMS] [OrderTopic@order_consumer] Stats In One Hour, SUM: 3 TPS: 0.00 AVGPT: 1.00
[BROKER_PUT_NUMS] [prod-a] Stats In One Hour, SUM: 1200 TPS: 0.33 AVGPT: 0.00
[BROKER_GET_NUMS] [prod-a] Stats In One Hour, SUM: 1190 TPS: 0.33 AVGPT: 0.00
`
	day := strings.ReplaceAll(hour, "In One Hour", "In One Day")
	want = stamp("2026-11-22 00:00:00,000 +0800", minute+hour+day)
	if got := h.out.take(); got != want {
		t.Fatalf("midnight lines:\n%s\nwant:\n%s", got, want)
	}
	logs := h.log.take()
	for _, l := range []string{`msg="yesterday put message total: 1200"`, `msg="yesterday get message total: 1190"`} {
		if !strings.Contains(logs, l) {
			t.Errorf("broker log lacks %s:\n%s", l, logs)
		}
	}
}

// stamp prefixes each line with ts and the level.
func stamp(ts, lines string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(lines, "\n") {
		if l != "" {
			b.WriteString(ts + " INFO - " + l)
		}
	}
	return b.String()
}

func TestFixed2RoundsLikeJava(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0.00", 0.125: "0.13", 1.005: "1.01", 7.4375: "7.44", 1190.0 / 60: "19.83",
		10240: "10240.00", 0.999: "1.00", 99.995: "100.00", 1e-9: "0.00", 2.675: "2.68", -1.005: "-1.01",
	} {
		if got := string(appendFixed2(nil, v)); got != want {
			t.Errorf("%v: %s, want %s", v, got, want)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func checkWindow(t *testing.T, what string, got, want Window) {
	t.Helper()
	if got.Sum != want.Sum || !near(got.TPS, want.TPS) || !near(got.AvgPT, want.AvgPT) {
		t.Errorf("%s: %+v, want %+v", what, got, want)
	}
}

// TestWindowMath checks SUM, TPS and AVGPT against hand-computed values,
// including a start off the 10 s grid and windows that drop old samples.
func TestWindowMath(t *testing.T) {
	start := date(cst, 2026, 5, 1, 10, 0, 5)
	h := newHarness(t, t.TempDir(), start)
	T := []byte("T")
	if _, ok := h.View(TopicPutNums, "T"); ok {
		t.Fatal("View of a key without traffic")
	}
	h.TopicPut(T, 3, 300)
	h.TopicPut(T, 3, 300)
	h.to(start.Add(5 * time.Second)) // 10:00:10
	v, ok := h.View(TopicPutNums, "T")
	if !ok {
		t.Fatal("no view")
	}
	// Samples at 10:00:05 (start, 0) and 10:00:10 (6 in 2 calls).
	checkWindow(t, "minute after 5 s", v.Minute, Window{6, 6 * 1000 / 5000.0, 3})
	checkWindow(t, "hour with one sample", v.Hour, Window{})

	h.TopicPut(T, 10, 1000)
	h.to(start.Add(15 * time.Second)) // 10:00:20: 16 in 3 calls over 15 s
	v, _ = h.View(TopicPutNums, "T")
	checkWindow(t, "minute after 15 s", v.Minute, Window{16, 16 * 1000 / 15000.0, 16 / 3.0})
	v, _ = h.View(TopicPutSize, "T")
	checkWindow(t, "size", v.Minute, Window{1600, 1600 * 1000 / 15000.0, 1600 / 3.0})

	h.every(10*time.Second, date(cst, 2026, 5, 1, 10, 0, 50))
	for range 4 {
		h.TopicPut(T, 1, 10)
	}
	h.every(10*time.Second, date(cst, 2026, 5, 1, 10, 1, 10))
	// The 7 samples now run from 10:00:10 (6, 2) to 10:01:10 (20, 7).
	v, _ = h.View(TopicPutNums, "T")
	checkWindow(t, "full minute", v.Minute, Window{14, 14 * 1000 / 60000.0, 14 / 5.0})

	h.to(date(cst, 2026, 5, 1, 10, 10, 0))
	v, _ = h.View(TopicPutNums, "T")
	checkWindow(t, "hour", v.Hour, Window{20, 20 * 1000 / 595000.0, 20 / 7.0})
	checkWindow(t, "day before the hour", v.Day, Window{})
	h.to(date(cst, 2026, 5, 1, 11, 0, 0))
	v, _ = h.View(TopicPutNums, "T")
	checkWindow(t, "day", v.Day, Window{20, 20 * 1000 / 3595000.0, 20 / 7.0})

	// Eight 10-minute samples later the hour window starts at 11:00.
	h.TopicPut(T, 60, 0)
	h.every(10*time.Minute, date(cst, 2026, 5, 1, 12, 0, 0))
	v, _ = h.View(TopicPutNums, "T")
	checkWindow(t, "hour after a full hour", v.Hour, Window{60, 60 * 1000 / 3600000.0, 60})
	checkWindow(t, "day spans both", v.Day, Window{80, 80 * 1000 / 7195000.0, 10})

	if v, ok := h.View(BrokerPutNums, "prod-a"); !ok || v.Day.Sum != 80 || v.Day.AvgPT != 0 {
		t.Errorf("broker put: %+v %v", v, ok)
	}
	for _, q := range [][2]string{{BrokerPutNums, "other"}, {GroupGetNums, "T"}, {"NOPE", "T"}, {SendBackNums, "T@g"}} {
		if _, ok := h.View(q[0], q[1]); ok {
			t.Errorf("View(%s, %s) found", q[0], q[1])
		}
	}
}

// TestRuntimeRates checks putTps/getTransferedTps over 10 s, 60 s, 600 s.
func TestRuntimeRates(t *testing.T) {
	start := date(cst, 2026, 5, 1, 10, 0, 0)
	h := newHarness(t, t.TempDir(), start)
	// 10 messages per 10 s for ten minutes, then 100 in the last 10 s.
	for i := range 61 {
		n := 10
		if i == 60 {
			n = 100
		}
		h.TopicPut([]byte("T"), n, 0)
		h.GroupGet([]byte("T"), []byte("g"), n/2, 0)
		h.to(start.Add(time.Duration(i+1) * 10 * time.Second))
	}
	rt := h.Runtime()
	// The 600 s window holds samples from 10:00:10 (10) to 10:10:10 (700).
	want := [3]float64{10, (50 + 100) / 60.0, 690 / 600.0}
	for i := range want {
		if !near(rt.PutTPS[i], want[i]) || !near(rt.GetTPS[i], want[i]/2) {
			t.Errorf("rates: put %v get %v, want put %v", rt.PutTPS, rt.GetTPS, want)
			break
		}
	}
	if rt.PutTotalTodayNow != 700 || rt.GetTotalTodayNow != 350 || rt.PutTotalTodayMorning != 0 {
		t.Errorf("totals %+v", rt)
	}
}

// TestMidnightSnapshots follows the morning snapshots over two midnights,
// one of them a 23-hour day.
func TestMidnightSnapshots(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	h := newHarness(t, t.TempDir(), date(ny, 2026, 3, 7, 22, 0, 0))
	h.TopicPut([]byte("T"), 100, 0)
	h.GroupGet([]byte("T"), []byte("g"), 40, 0)
	h.to(date(ny, 2026, 3, 7, 23, 0, 0))
	h.to(date(ny, 2026, 3, 8, 0, 0, 0))
	rt := h.Runtime()
	if rt.PutTotalTodayNow != 100 || rt.PutTotalTodayMorning != 100 || rt.PutTotalYesterdayMorning != 0 ||
		rt.GetTotalTodayMorning != 40 || rt.GetTotalYesterdayMorning != 0 {
		t.Fatalf("after the first midnight: %+v", rt)
	}
	if logs := h.log.take(); !strings.Contains(logs, "yesterday put message total: 100") || !strings.Contains(logs, "yesterday get message total: 40") {
		t.Fatalf("broker log: %s", logs)
	}
	// 8 March has 23 hours; every hour is a boundary, midnight once.
	h.TopicPut([]byte("T"), 50, 0)
	h.out.take()
	h.every(time.Hour, date(ny, 2026, 3, 9, 0, 0, 0))
	if got := h.clk.Now().Sub(date(ny, 2026, 3, 8, 0, 0, 0)); got != 23*time.Hour {
		t.Fatalf("day length %v", got)
	}
	out := h.out.take()
	if n := strings.Count(out, "Stats In One Day"); n != 6 { // put and get nums and size, broker put and get
		t.Errorf("%d day lines after the second midnight:\n%s", n, out)
	}
	if n := strings.Count(out, "[TOPIC_PUT_NUMS] [T] Stats In One Hour"); n != 23 {
		t.Errorf("%d hour lines on a 23-hour day", n)
	}
	rt = h.Runtime()
	if rt.PutTotalTodayNow != 150 || rt.PutTotalTodayMorning != 150 || rt.PutTotalYesterdayMorning != 100 ||
		rt.GetTotalTodayMorning != 40 || rt.GetTotalYesterdayMorning != 40 {
		t.Fatalf("after the second midnight: %+v", rt)
	}
	if logs := h.log.take(); !strings.Contains(logs, "yesterday put message total: 50") || !strings.Contains(logs, "yesterday get message total: 0") {
		t.Fatalf("broker log: %s", logs)
	}
}

// TestCloseWritesPartialMinute checks that a stop in mid-minute writes the
// counts since the minute began, stamped with the minute's end, and that
// the restarted broker's line for the same minute carries only the rest:
// the two add up to the minute's traffic.
func TestCloseWritesPartialMinute(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, date(cst, 2026, 11, 21, 10, 0, 5))
	h.to(date(cst, 2026, 11, 21, 10, 0, 10))
	for range 30 {
		h.TopicPut([]byte("OrderTopic"), 1, 100)
	}
	h.to(date(cst, 2026, 11, 21, 10, 1, 0))
	h.out.take()
	for range 40 { // 10:01:00–10:01:20, then a stop
		h.TopicPut([]byte("OrderTopic"), 1, 100)
	}
	h.to(date(cst, 2026, 11, 21, 10, 1, 10))
	h.TopicPut([]byte("OrderTopic"), 2, 200)
	h.clk.set(date(cst, 2026, 11, 21, 10, 1, 20))
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	want := stamp("2026-11-21 10:02:00,000 +0800", `[TOPIC_PUT_NUMS] [OrderTopic] Stats In One Minute, SUM: 42 TPS: 2.10 AVGPT: 1.02
[TOPIC_PUT_SIZE] [OrderTopic] Stats In One Minute, SUM: 4200 TPS: 210.00 AVGPT: 102.44
[BROKER_PUT_NUMS] [prod-a] Stats In One Minute, SUM: 42 TPS: 2.10 AVGPT: 0.00
`)
	if got := h.out.take(); got != want {
		t.Fatalf("lines at stop:\n%s\nwant:\n%s", got, want)
	}

	h.clk.set(date(cst, 2026, 11, 21, 10, 1, 30))
	h.open()
	for range 5 {
		h.TopicPut([]byte("OrderTopic"), 1, 100)
	}
	h.every(10*time.Second, date(cst, 2026, 11, 21, 10, 2, 0))
	got := h.out.take()
	if !strings.Contains(got, "2026-11-21 10:02:00,000 +0800 INFO - [TOPIC_PUT_NUMS] [OrderTopic] Stats In One Minute, SUM: 5 ") {
		t.Fatalf("restarted broker's minute line:\n%s", got)
	}

	// Nothing counted since the boundary: a stop writes nothing.
	h.clk.set(date(cst, 2026, 11, 21, 10, 2, 5))
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := h.out.take(); got != "" {
		t.Fatalf("idle stop wrote:\n%s", got)
	}
}
