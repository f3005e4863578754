package stats

import (
	"maps"
	"slices"
	"testing"
	"time"
)

// traffic puts n messages to topic at t and ticks the minute after.
func (h *harness) putAt(t time.Time, topic string, n int) {
	h.clk.set(t)
	h.TopicPut([]byte(topic), n, 0)
	h.to(t.Truncate(time.Minute).Add(time.Minute))
}

// values lists the points' values, checking they start at first and are
// one step apart.
func values(t *testing.T, pts []Point, first time.Time, step time.Duration) []int64 {
	t.Helper()
	var out []int64
	for i, p := range pts {
		if want := first.Add(time.Duration(i) * step); !p.Time.Equal(want) {
			t.Fatalf("point %d at %v, want %v", i, p.Time, want)
		}
		out = append(out, p.Value)
	}
	return out
}

func getSeries(t *testing.T, h *harness, kind, key string, step time.Duration, from, to time.Time) []Point {
	t.Helper()
	pts, err := h.Series(kind, key, step, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return pts
}

// twoDays is traffic on 20 and 21 November, the clock ending at 21
// November 10:05:30 with 2 messages of the current minute not yet flushed.
func twoDays(h *harness) {
	h.putAt(date(cst, 2026, 11, 20, 9, 0, 30), "A", 5)
	h.putAt(date(cst, 2026, 11, 20, 9, 30, 0), "A", 7)
	h.putAt(date(cst, 2026, 11, 20, 15, 0, 0), "A", 11)
	h.putAt(date(cst, 2026, 11, 20, 23, 59, 59), "B", 1)
	h.putAt(date(cst, 2026, 11, 21, 10, 0, 0), "A", 13)
	h.GroupGet([]byte("A"), []byte("g"), 4, 0)
	h.to(date(cst, 2026, 11, 21, 10, 5, 20))
	h.TopicPut([]byte("A"), 2, 0)
	h.clk.set(date(cst, 2026, 11, 21, 10, 5, 30))
}

// checkTwoDays checks the series and today's counts of twoDays.
func checkTwoDays(t *testing.T, h *harness) {
	t.Helper()
	now := h.clk.Now()
	pts := getSeries(t, h, KindPut, "A", time.Minute, date(cst, 2026, 11, 21, 10, 0, 0), date(cst, 2026, 11, 21, 10, 6, 0))
	if got := values(t, pts, date(cst, 2026, 11, 21, 10, 0, 0), time.Minute); !slices.Equal(got, []int64{13, 0, 0, 0, 0, 2}) {
		t.Errorf("minutes: %v", got)
	}
	pts = getSeries(t, h, KindPut, "A", time.Hour, date(cst, 2026, 11, 20, 8, 20, 0), date(cst, 2026, 11, 21, 12, 0, 0))
	got := values(t, pts, date(cst, 2026, 11, 20, 8, 0, 0), time.Hour)
	want := make([]int64, 27) // 20th 08:00 to 21st 10:00
	want[1], want[7], want[26] = 12, 11, 15
	if !slices.Equal(got, want) {
		t.Errorf("hours: %v\nwant   %v", got, want)
	}
	pts = getSeries(t, h, KindPut, "A", 24*time.Hour, date(cst, 2026, 11, 19, 12, 0, 0), now)
	if got := values(t, pts, date(cst, 2026, 11, 19, 0, 0, 0), 24*time.Hour); !slices.Equal(got, []int64{0, 23, 15}) {
		t.Errorf("days: %v", got)
	}
	pts = getSeries(t, h, KindGet, "A@g", 24*time.Hour, now, now.Add(time.Hour))
	if len(pts) != 1 || pts[0].Value != 4 {
		t.Errorf("get days: %v", pts)
	}

	for _, c := range []struct {
		at   time.Time
		want map[string]int64
	}{
		{now, map[string]int64{"A": 15}},
		{now.Add(time.Hour), map[string]int64{"A": 15}},                // clamped to now
		{date(cst, 2026, 11, 21, 10, 0, 0), map[string]int64{}},        // minutes before 10:00 only
		{date(cst, 2026, 11, 21, 10, 0, 1), map[string]int64{"A": 13}}, // the 10:00 minute began before
		{date(cst, 2026, 11, 21, 10, 5, 0), map[string]int64{"A": 13}}, // the current minute began at 10:05
		{date(cst, 2026, 11, 20, 12, 0, 0), map[string]int64{"A": 12}}, // that day, up to noon
		{date(cst, 2026, 11, 20, 23, 59, 59), map[string]int64{"A": 23, "B": 1}},
		{date(cst, 2026, 11, 21, 0, 0, 0), map[string]int64{}},
		{date(cst, 2026, 11, 21, 0, 0, 1), map[string]int64{}}, // B's message was in the minute before
	} {
		if got := h.TopicsToday(c.at); !maps.Equal(got, c.want) {
			t.Errorf("TopicsToday(%v) = %v, want %v", c.at, got, c.want)
		}
	}
	if got := h.GroupsToday(now); !maps.Equal(got, map[string]int64{"A@g": 4}) {
		t.Errorf("GroupsToday = %v", got)
	}
}

func TestSeriesAndToday(t *testing.T) {
	h := newHarness(t, t.TempDir(), date(cst, 2026, 11, 20, 0, 0, 0))
	twoDays(h)
	checkTwoDays(t, h)

	now := h.clk.Now()
	if pts := getSeries(t, h, KindPut, "A", time.Minute, now.Add(-72*time.Hour), now); len(pts) != 48*60+1 ||
		!pts[0].Time.Equal(now.Truncate(time.Minute).Add(-48*time.Hour)) {
		t.Errorf("minute retention: %d points from %v", len(pts), pts[0].Time)
	}
	if pts := getSeries(t, h, KindPut, "A", 24*time.Hour, now.AddDate(-2, 0, 0), now); len(pts) != 401 {
		t.Errorf("day retention: %d points", len(pts))
	}
	if pts := getSeries(t, h, KindPut, "nobody", time.Hour, now.Add(-2*time.Hour), now); len(pts) != 3 || pts[2].Value != 0 {
		t.Errorf("unknown key: %v", pts)
	}
	if pts := getSeries(t, h, KindPut, "A", time.Hour, now, now.Add(-time.Hour)); len(pts) != 0 {
		t.Errorf("empty range: %v", pts)
	}
	if _, err := h.Series("send", "A", time.Minute, now, now); err == nil {
		t.Error("bad kind accepted")
	}
	if _, err := h.Series(KindPut, "A", 5*time.Minute, now, now); err == nil {
		t.Error("bad step accepted")
	}
}

// TestSeriesRetention: old buckets go, and with them idle series.
func TestSeriesRetention(t *testing.T) {
	start := date(cst, 2026, 1, 1, 12, 0, 0)
	h := newHarness(t, t.TempDir(), start)
	h.putAt(start, "A", 1)
	h.to(start.Add(49 * time.Hour))
	if pts := getSeries(t, h, KindPut, "A", time.Hour, start, start.Add(time.Hour)); len(pts) != 1 || pts[0].Value != 1 {
		t.Fatalf("hour after 49 h: %v", pts)
	}
	if got := h.TopicsToday(start.Add(time.Hour)); len(got) != 0 {
		t.Errorf("minutes older than two days still counted: %v", got)
	}
	h.to(start.AddDate(0, 0, 33))
	if pts := getSeries(t, h, KindPut, "A", 24*time.Hour, start, start.Add(time.Hour)); len(pts) != 1 || pts[0].Value != 1 {
		t.Fatalf("day after 33 days: %v", pts)
	}
	// Buckets go a chunk at a time: the last one by 400 + chunkLen days.
	h.to(start.AddDate(0, 0, 400+chunkLen))
	h.state.Lock()
	n := len(h.series[0])
	h.state.Unlock()
	if n != 0 {
		t.Errorf("%d series kept after %d idle days", n, 400+chunkLen)
	}
}

// TestDaylightSaving: local hours and days around both clock changes.
func TestDaylightSaving(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip(err)
	}
	// One message every real hour from 31 October 23:30 to 2 November 00:30.
	start := date(ny, 2026, 10, 31, 23, 0, 0)
	h := newHarness(t, t.TempDir(), start)
	for i := range 27 {
		h.putAt(start.Add(time.Duration(i)*time.Hour+30*time.Minute), "T", 1)
	}
	nov1 := date(ny, 2026, 11, 1, 0, 0, 0)
	pts := getSeries(t, h, KindPut, "T", time.Hour, nov1, date(ny, 2026, 11, 2, 0, 0, 0))
	if len(pts) != 24 {
		t.Fatalf("%d hours on 1 November", len(pts))
	}
	for i, p := range pts {
		want := int64(1)
		if i == 1 { // 01:00 happens twice
			want = 2
		}
		if p.Value != want || p.Time.Hour() != i {
			t.Errorf("hour %d: %v %d", i, p.Time, p.Value)
		}
	}
	days := getSeries(t, h, KindPut, "T", 24*time.Hour, start, h.clk.Now())
	if len(days) != 3 || days[0].Value != 1 || days[1].Value != 25 || !days[1].Time.Equal(nov1) || days[2].Value != 1 {
		t.Errorf("days: %v", days)
	}

	spring := date(ny, 2026, 3, 8, 0, 0, 0)
	h = newHarness(t, t.TempDir(), spring)
	for i := range 23 {
		h.putAt(spring.Add(time.Duration(i)*time.Hour+30*time.Minute), "T", 1)
	}
	pts = getSeries(t, h, KindPut, "T", time.Hour, spring, h.clk.Now())
	var hours []int
	for _, p := range pts {
		hours = append(hours, p.Time.Hour())
		if p.Value != 1 {
			t.Errorf("%v: %d", p.Time, p.Value)
		}
	}
	if want := []int{0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}; !slices.Equal(hours, want) {
		t.Errorf("hours of 8 March: %v", hours)
	}
	if got := h.TopicsToday(date(ny, 2026, 3, 8, 23, 59, 0)); got["T"] != 23 {
		t.Errorf("today on a 23-hour day: %v", got)
	}
}

// TestSkippedMidnight: where clocks jump from 00:00 to 01:00 the day
// starts at 01:00 and has no hour 0.
func TestSkippedMidnight(t *testing.T) {
	sp, err := time.LoadLocation("America/Sao_Paulo")
	if err != nil {
		t.Skip(err)
	}
	day := civilDay(date(sp, 2018, 11, 4, 12, 0, 0), sp)
	start, ok := dayStart(day, sp)
	if !ok || start.Format("2006-01-02 15:04 -0700") != "2018-11-04 01:00 -0200" {
		t.Errorf("day starts %v %v", start, ok)
	}
	if _, ok := hourStart(day*24, sp); ok {
		t.Error("hour 0 exists")
	}
	if h, ok := hourStart(day*24+1, sp); !ok || !h.Equal(start) {
		t.Errorf("hour 1 starts %v %v", h, ok)
	}
}
