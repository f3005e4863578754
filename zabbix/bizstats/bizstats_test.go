package bizstats

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// setup copies the stats.log captured from a real broker run (host TZ UTC)
// into a temp dir and returns the log and state paths.
func setup(t *testing.T) (log, state string) {
	t.Helper()
	data, err := os.ReadFile("../logparse/testdata/stats.log")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log, state = filepath.Join(dir, "stats.log"), filepath.Join(dir, "state", "stats.json")
	if err := os.WriteFile(log, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return log, state
}

func update(t *testing.T, log, state string) *Collector {
	t.Helper()
	c, err := Update(log, state)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestCapturedLog checks the figures of a real stats.log against sums
// taken by hand (grep "In One Minute" | awk) from the same file.
func TestCapturedLog(t *testing.T) {
	log, state := setup(t)
	r := update(t, log, state).Report(at("2026-11-21 22:00:30"))
	check := func(what string, got, want int64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %d, want %d", what, got, want)
		}
	}
	check("OrderTopic today", r.Topics["OrderTopic"].Today, 30)
	check("OrderTopic bytes today", r.Topics["OrderTopic"].TodayBytes, 5420)
	check("T today", r.Topics["T"].Today, 95)
	check("T@BENCH_CG today", r.Pairs["T@BENCH_CG"].Today, 295)
	check("BENCH_CG today", r.Groups["BENCH_CG"].Today, 295+20)
	check("OrderTopic@order_consumer send-backs", r.Pairs["OrderTopic@order_consumer"].SendBackToday, 3)
	check("broker put today", r.Put.Today, 125)
	check("broker get today", r.Get.Today, 315)
	check("OrderTopic last hour (hour line)", r.Topics["OrderTopic"].Hour, 10)
	check("T last minute (22:00 line)", r.Topics["T"].Minute, 0)
	check("age", r.Age, 30)
	if r.Day != "2026-11-21" {
		t.Errorf("day %s", r.Day)
	}

	// Asking again reads nothing new and counts nothing twice.
	r2 := update(t, log, state).Report(at("2026-11-21 22:00:40"))
	check("T today, second ask", r2.Topics["T"].Today, 95)

	// New minutes add exactly their lines; a stop's partial minute and
	// the restarted broker's rest of it make one minute.
	appendLines(t, log,
		"2026-11-21 22:01:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [T] Stats In One Minute, SUM: 7 TPS: 0.12 AVGPT: 1.00",
		"2026-11-21 22:02:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [T] Stats In One Minute, SUM: 4 TPS: 0.20 AVGPT: 1.00",
		"2026-11-21 22:02:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [T] Stats In One Minute, SUM: 5 TPS: 0.17 AVGPT: 1.00",
		"2026-11-21 22:02:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [OrderTopic] Stats In One Minute, SUM: 1 TPS: 0.02 AVGPT: 1.00",
	)
	r = update(t, log, state).Report(at("2026-11-21 22:02:20"))
	check("T today after two minutes", r.Topics["T"].Today, 95+7+4+5)
	check("T last minute", r.Topics["T"].Minute, 9)
	check("T last 5 minutes", r.Topics["T"].FiveMin, 0+7+9)
	check("OrderTopic last minute", r.Topics["OrderTopic"].Minute, 1)

	// A log that stopped moving shows no current traffic.
	r = update(t, log, state).Report(at("2026-11-21 22:30:00"))
	check("T last minute, log stale", r.Topics["T"].Minute, 0)
	check("T today, log stale", r.Topics["T"].Today, 111)

	// After midnight without a line, today is 0 and the day moved to
	// yesterday; the first line of the new day starts today.
	r = update(t, log, state).Report(at("2026-11-22 00:00:30"))
	check("T today after midnight", r.Topics["T"].Today, 0)
	check("T yesterday after midnight", r.Topics["T"].Yesterday, 111)
	appendLines(t, log,
		"2026-11-22 00:00:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [T] Stats In One Minute, SUM: 2 TPS: 0.03 AVGPT: 1.00",
		"2026-11-22 00:00:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [T] Stats In One Day, SUM: 113 TPS: 0.00 AVGPT: 1.00",
		"2026-11-22 00:01:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [T] Stats In One Minute, SUM: 3 TPS: 0.05 AVGPT: 1.00",
	)
	r = update(t, log, state).Report(at("2026-11-22 00:01:30"))
	check("T today, new day", r.Topics["T"].Today, 3)
	check("T yesterday, with 23:59's minute", r.Topics["T"].Yesterday, 113)
	check("T day line", r.Topics["T"].Day, 113)
}

// TestRotation: lines written before and after a rename rotation are each
// counted once.
func TestRotation(t *testing.T) {
	log, state := setup(t)
	update(t, log, state)
	appendLines(t, log, "2026-11-21 22:01:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [T] Stats In One Minute, SUM: 7 TPS: 0.12 AVGPT: 1.00")
	if err := os.Rename(log, log+".2026-11-21.1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, []byte("2026-11-21 22:02:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [T] Stats In One Minute, SUM: 4 TPS: 0.07 AVGPT: 1.00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := update(t, log, state).Report(at("2026-11-21 22:02:10"))
	if got := r.Topics["T"].Today; got != 95+7+4 {
		t.Fatalf("T today across a rotation: %d, want %d", got, 95+7+4)
	}
}

// TestBadState: a state file that is not ours is an error naming it, not
// a silent restart from zero.
func TestBadState(t *testing.T) {
	log, state := setup(t)
	if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Update(log, state); err == nil {
		t.Fatal("a corrupt state file was accepted")
	}
}

// BenchmarkUpdate measures a first read of a busy broker's hour of
// stats.log: 500 topics (two lines a minute each) and 1000 topic@group
// keys (three lines a minute each), 60 minutes: 240 000 lines, 30 MB.
func BenchmarkUpdate(b *testing.B) {
	dir := b.TempDir()
	log := filepath.Join(dir, "stats.log")
	f, err := os.Create(log)
	if err != nil {
		b.Fatal(err)
	}
	lines := 0
	for m := 1; m <= 60; m++ {
		ts := time.Date(2026, 11, 21, 10, m, 0, 0, time.UTC).Format("2006-01-02 15:04:05,000 -0700")
		for k := range 500 {
			fmt.Fprintf(f, "%s INFO - [TOPIC_PUT_NUMS] [Topic%d] Stats In One Minute, SUM: 1200 TPS: 20.00 AVGPT: 1.00\n", ts, k)
			fmt.Fprintf(f, "%s INFO - [TOPIC_PUT_SIZE] [Topic%d] Stats In One Minute, SUM: 614400 TPS: 10240.00 AVGPT: 512.00\n", ts, k)
			for g := range 2 {
				fmt.Fprintf(f, "%s INFO - [GROUP_GET_NUMS] [Topic%d@Group%d] Stats In One Minute, SUM: 1190 TPS: 19.83 AVGPT: 7.44\n", ts, k, g)
				fmt.Fprintf(f, "%s INFO - [GROUP_GET_SIZE] [Topic%d@Group%d] Stats In One Minute, SUM: 119000 TPS: 1983.33 AVGPT: 743.75\n", ts, k, g)
				fmt.Fprintf(f, "%s INFO - [SNDBCK_PUT_NUMS] [Topic%d@Group%d] Stats In One Minute, SUM: 3 TPS: 0.05 AVGPT: 1.00\n", ts, k, g)
			}
			lines += 8
		}
	}
	f.Close()
	fi, _ := os.Stat(log)
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for i := range b.N {
		c, err := Update(log, filepath.Join(dir, fmt.Sprintf("state-%d.json", i)))
		if err != nil {
			b.Fatal(err)
		}
		if got := c.Report(time.Date(2026, 11, 21, 11, 0, 30, 0, time.UTC)).Topics["Topic7"].Today; got != 60*1200 {
			b.Fatalf("Topic7 today %d", got)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
