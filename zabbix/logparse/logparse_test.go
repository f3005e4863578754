package logparse

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/broker/logging"
)

// testdata reads a captured log: every line but the leading '#' comment
// that says how it was captured.
func testdata(t testing.TB, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !bytes.HasPrefix(sc.Bytes(), []byte("#")) {
			lines = append(lines, bytes.Clone(sc.Bytes()))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatalf("%s has no lines", name)
	}
	return lines
}

func TestParseStatsCaptured(t *testing.T) {
	names := map[string]bool{"TOPIC_PUT_NUMS": true, "TOPIC_PUT_SIZE": true, "GROUP_GET_NUMS": true,
		"GROUP_GET_SIZE": true, "SNDBCK_PUT_NUMS": true, "BROKER_PUT_NUMS": true, "BROKER_GET_NUMS": true}
	seen := map[string]bool{}
	spans := map[Span]int{}
	// Per minute: the broker's put count is the sum of the topics'.
	topicPut, brokerPut := map[time.Time]int64{}, map[time.Time]int64{}
	for _, line := range testdata(t, "stats.log") {
		var s Stats
		if !ParseStats(line, &s) {
			t.Fatalf("not parsed: %s", line)
		}
		if !names[string(s.Name)] {
			t.Errorf("unknown statistic %s", s.Name)
		}
		seen[string(s.Name)] = true
		spans[s.Span]++
		if s.Time.Location() != time.UTC || s.Time.Nanosecond() != 0 || s.Time.Second() != 0 {
			t.Errorf("time %v of %s", s.Time, line)
		}
		if bytes.HasPrefix(s.Name, []byte("GROUP_")) || bytes.HasPrefix(s.Name, []byte("SNDBCK_")) {
			if _, _, ok := SplitGroupKey(s.Key); !ok {
				t.Errorf("key %s of %s", s.Key, s.Name)
			}
		}
		if s.Span == Minute {
			switch string(s.Name) {
			case "TOPIC_PUT_NUMS":
				topicPut[s.Time] += s.Sum
			case "BROKER_PUT_NUMS":
				brokerPut[s.Time] += s.Sum
			}
		}
	}
	if len(seen) != len(names) {
		t.Errorf("captured statistics %v, want all of %v", seen, names)
	}
	if spans[Minute] == 0 || spans[Hour] == 0 {
		t.Errorf("spans %v", spans)
	}
	for at, n := range brokerPut {
		if topicPut[at] != n {
			t.Errorf("%v: topics put %d, broker %d", at, topicPut[at], n)
		}
	}
}

func TestParseStatsFields(t *testing.T) {
	for _, c := range []struct {
		line string
		want Stats
	}{
		{"2026-11-21 21:37:00,000 +0000 INFO - [TOPIC_PUT_SIZE] [OrderTopic] Stats In One Minute, SUM: 3720 TPS: 124.00 AVGPT: 186.00",
			Stats{Time: time.Date(2026, 11, 21, 21, 37, 0, 0, time.UTC), Name: []byte("TOPIC_PUT_SIZE"), Key: []byte("OrderTopic"),
				Span: Minute, Sum: 3720, TPS: 124, AvgPT: 186}},
		{"2026-11-21 21:37:00,000 +0000 INFO - [GROUP_GET_SIZE] [T@BENCH_CG] Stats In One Minute, SUM: 7850 TPS: 261.67 AVGPT: 1962.50",
			Stats{Time: time.Date(2026, 11, 21, 21, 37, 0, 0, time.UTC), Name: []byte("GROUP_GET_SIZE"), Key: []byte("T@BENCH_CG"),
				Span: Minute, Sum: 7850, TPS: 261.67, AvgPT: 1962.5}},
		// The package comment's example of broker/stats: offset and Day.
		{"2026-11-22 00:00:00,000 +0800 INFO - [BROKER_PUT_NUMS] [DefaultCluster] Stats In One Day, SUM: 1730112 TPS: 20.02 AVGPT: 0.00",
			Stats{Time: time.Date(2026, 11, 21, 16, 0, 0, 0, time.UTC), Offset: 8 * 3600, Name: []byte("BROKER_PUT_NUMS"),
				Key: []byte("DefaultCluster"), Span: Day, Sum: 1730112, TPS: 20.02}},
		// A key with brackets and '@' in the topic, a negative offset and
		// the zone's half hour, negative numbers (never written, still read).
		{"2026-03-08 02:30:00,000 -0330 INFO - [SNDBCK_PUT_NUMS] [%RETRY%a]b@c@g] Stats In One Hour, SUM: -5 TPS: -0.50 AVGPT: 1.00",
			Stats{Time: time.Date(2026, 3, 8, 6, 0, 0, 0, time.UTC), Offset: -(3*3600 + 30*60), Name: []byte("SNDBCK_PUT_NUMS"),
				Key: []byte("%RETRY%a]b@c@g"), Span: Hour, Sum: -5, TPS: -0.5, AvgPT: 1}},
	} {
		var got Stats
		if !ParseStats([]byte(c.line), &got) {
			t.Errorf("not parsed: %s", c.line)
			continue
		}
		if !got.Time.Equal(c.want.Time) || got.Offset != c.want.Offset || !bytes.Equal(got.Name, c.want.Name) ||
			!bytes.Equal(got.Key, c.want.Key) || got.Span != c.want.Span || got.Sum != c.want.Sum ||
			got.TPS != c.want.TPS || got.AvgPT != c.want.AvgPT {
			t.Errorf("%s\n got %s %d %s %s %v %d %v %v\nwant %s %d %s %s %v %d %v %v", c.line,
				got.Time, got.Offset, got.Name, got.Key, got.Span, got.Sum, got.TPS, got.AvgPT,
				c.want.Time, c.want.Offset, c.want.Name, c.want.Key, c.want.Span, c.want.Sum, c.want.TPS, c.want.AvgPT)
		}
	}
	topic, group, ok := SplitGroupKey([]byte("%RETRY%a]b@c@g"))
	if !ok || string(topic) != "%RETRY%a]b@c" || string(group) != "g" {
		t.Errorf("SplitGroupKey: %q %q %v", topic, group, ok)
	}
	for _, k := range []string{"", "T", "@g", "T@"} {
		if _, _, ok := SplitGroupKey([]byte(k)); ok {
			t.Errorf("SplitGroupKey(%q) ok", k)
		}
	}
}

const goodStats = "2026-11-21 21:37:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [T] Stats In One Minute, SUM: 50 TPS: 1.67 AVGPT: 1.00"

func TestParseStatsRejects(t *testing.T) {
	bad := []string{
		"",
		"\x00",
		"garbage",
		"# comment",
		goodStats + " ",
		goodStats + "\r",
		strings.Replace(goodStats, ",000", ".000", 1), // broker.log's stamp
		strings.Replace(goodStats, "INFO -", "WARN -", 1),
		strings.Replace(goodStats, "[TOPIC_PUT_NUMS]", "[]", 1),
		strings.Replace(goodStats, "[TOPIC_PUT_NUMS]", "[topic_put_nums]", 1),
		strings.Replace(goodStats, "[T]", "[]", 1),
		strings.Replace(goodStats, "Minute", "Week", 1),
		strings.Replace(goodStats, "Minute", "Minutes", 1),
		strings.Replace(goodStats, "50", "", 1),
		strings.Replace(goodStats, "50", "5x", 1),
		strings.Replace(goodStats, "50", "99999999999999999999", 1), // overflows int64
		strings.Replace(goodStats, "1.67", "1", 1),
		strings.Replace(goodStats, "1.67", "1.", 1),
		strings.Replace(goodStats, "1.67", ".67", 1),
		strings.Replace(goodStats, "1.67", "1.67e3", 1),
		strings.Replace(goodStats, "1.67", "NaN", 1),
		strings.Replace(goodStats, "AVGPT: 1.00", "AVGPT: 1.00 TIMES: 3", 1),
		strings.Replace(goodStats, "2026-11-21", "2026-02-30", 1),
		strings.Replace(goodStats, "2026-11-21", "2026-13-01", 1),
		strings.Replace(goodStats, "21:37", "24:37", 1),
		strings.Replace(goodStats, "+0000", "+2400", 1),
		strings.Replace(goodStats, "+0000", "Z0000", 1),
		strings.Replace(goodStats, "2026", "２０26", 1),
		// RocketMQ's own stamp: no milliseconds, no offset.
		"2024-05-01 10:01:00 INFO - [TOPIC_PUT_NUMS] [OrderTopic] Stats In One Minute, SUM: 1200 TPS: 20.00 AVGPT: 1.00",
	}
	// Every proper prefix: a line cut short by a crash or a partial read.
	for i := range len(goodStats) {
		bad = append(bad, goodStats[:i])
	}
	for _, line := range bad {
		var s Stats
		if ParseStats([]byte(line), &s) {
			t.Errorf("parsed: %q", line)
		}
	}
	var s Stats
	if !ParseStats([]byte(goodStats), &s) {
		t.Fatal("the good line is not parsed")
	}
}

func TestParseLogCaptured(t *testing.T) {
	type count struct {
		level slog.Level
		tag   string
	}
	for _, c := range []struct {
		file   string
		logger string
		want   map[count]int // some of the counts
	}{
		{"broker.log", "broker", map[count]int{
			{slog.LevelWarn, "PERMISSION_CHANGED"}: 2, {slog.LevelWarn, "REGISTER_FAILED"}: 1,
			{slog.LevelWarn, "DLQ"}: 1, {slog.LevelWarn, "CONFIG_UPDATE"}: 1, {slog.LevelInfo, ""}: 3}},
		{"store.log", "store", map[count]int{{slog.LevelWarn, "RECOVERY"}: 1, {slog.LevelInfo, "RECOVERY"}: 3}},
		{"storeerror.log", "store", map[count]int{{slog.LevelWarn, "RECOVERY"}: 1}},
		{"faults/store.log", "store", map[count]int{
			{slog.LevelError, "DISK_FULL"}: 9, {slog.LevelInfo, "DISK_FULL"}: 1, {slog.LevelError, "FLUSH"}: 1,
			{slog.LevelError, "CORRUPT"}: 2, {slog.LevelError, "RECOVERY"}: 1, {slog.LevelWarn, "RECOVERY"}: 8,
			{slog.LevelError, "CONSUME_QUEUE"}: 1, {slog.LevelWarn, "CONSUME_QUEUE"}: 1, {slog.LevelWarn, "RETENTION"}: 4,
			{slog.LevelWarn, "DISPATCH"}: 2}},
		{"faults/storeerror.log", "store", map[count]int{
			{slog.LevelError, "DISK_FULL"}: 9, {slog.LevelError, "FLUSH"}: 1, {slog.LevelError, "CORRUPT"}: 2,
			{slog.LevelWarn, "RETENTION"}: 4, {slog.LevelInfo, "RECOVERY"}: 0}},
		{"namesrv.log", "namesrv", map[count]int{{slog.LevelWarn, "BROKER_CHANNEL_CLOSED"}: 2,
			{slog.LevelInfo, "BROKER_REGISTERED"}: 3, {slog.LevelInfo, "BROKER_UNREGISTERED"}: 1}},
	} {
		got := map[count]int{}
		for _, line := range testdata(t, c.file) {
			var l Log
			if !ParseLog(line, &l) {
				t.Errorf("%s: not parsed: %s", c.file, line)
				continue
			}
			if string(l.Logger) != c.logger || l.Time.Location() != time.UTC || len(l.Msg) == 0 {
				t.Errorf("%s: logger %q time %v msg %q", c.file, l.Logger, l.Time, l.Msg)
			}
			got[count{l.Level, string(l.Tag)}]++
		}
		for k, n := range c.want {
			if got[k] != n {
				t.Errorf("%s: %d lines at %v tagged %q, want %d (all: %v)", c.file, got[k], k.level, k.tag, n, got)
			}
		}
	}
}

func TestParseLogFields(t *testing.T) {
	line := `2026-11-21 21:37:27.643 +0000 WARN  [broker] [REGISTER_FAILED] register broker to name server failed namesrv=127.0.0.1:53379 err="dial 127.0.0.1:53379: dial tcp 127.0.0.1:53379: connect: connection refused"`
	var l Log
	if !ParseLog([]byte(line), &l) {
		t.Fatal("not parsed")
	}
	if want := time.Date(2026, 11, 21, 21, 37, 27, 643e6, time.UTC); !l.Time.Equal(want) || l.Offset != 0 ||
		l.Level != slog.LevelWarn || string(l.Logger) != "broker" || string(l.Tag) != "REGISTER_FAILED" ||
		!strings.HasPrefix(string(l.Msg), "register broker to name server failed namesrv=") {
		t.Errorf("got %v %d %v %q %q %q", l.Time, l.Offset, l.Level, l.Logger, l.Tag, l.Msg)
	}
}

// TestParseLogOfLoggingPackage parses what the broker's logging package
// writes for every level, tag placement and the copy to storeerror.log.
func TestParseLogOfLoggingPackage(t *testing.T) {
	dir := t.TempDir()
	log, closer, err := logging.Open(dir, "store.log", slog.LevelDebug, logging.WithCopy("storeerror.log", slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	// Messages as broker/store words them.
	log.Error("[DISK_FULL] refusing appends: disk usage 86.5% (88.0% counting what this append needs) would pass the append limit 88%",
		"dir", "/var/lib/mqops/store/commitlog", "resumeAtPercent", 86)
	log.Info("[DISK_FULL] disk usage back below the limit, accepting appends", "usedPercent", 83.3, "resumeAtPercent", 86)
	log.Debug("no tag here")
	log.Log(t.Context(), slog.LevelWarn+2, "[FLUSH] commitlog flush failed", "err", "input/output error")
	log.Log(t.Context(), slog.LevelInfo-2, "[NOTIFYME]putMessage in lock cost time(ms)=600")
	log.With(logging.TagKey, "HAService").Warn("[lower] is not a tag", "panic", "multi\nline")
	log.Info("[" + strings.Repeat("X", maxTag+1) + "] too long for a tag")
	log.Info("first line\n[SECOND] a continuation is not a record")
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	type rec struct {
		level          slog.Level
		logger, tag, m string
	}
	parse := func(name string) (recs []rec, rejected int) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(data) {
			var l Log
			if !ParseLog(bytes.TrimSuffix(line, []byte("\n")), &l) {
				rejected++
				continue
			}
			if time.Since(l.Time).Abs() > time.Hour {
				t.Errorf("time %v", l.Time)
			}
			if _, off := l.Time.In(time.Local).Zone(); off != l.Offset {
				t.Errorf("offset %d, local %d", l.Offset, off)
			}
			recs = append(recs, rec{l.Level, string(l.Logger), string(l.Tag), string(l.Msg)})
		}
		return recs, rejected
	}
	all, rejected := parse("store.log")
	want := []rec{
		{slog.LevelError, "store", "DISK_FULL", "refusing appends: disk usage 86.5% (88.0% counting what this append needs) would pass the append limit 88% dir=/var/lib/mqops/store/commitlog resumeAtPercent=86"},
		{slog.LevelInfo, "store", "DISK_FULL", "disk usage back below the limit, accepting appends usedPercent=83.3 resumeAtPercent=86"},
		{slog.LevelDebug, "store", "", "no tag here"},
		{slog.LevelWarn + 2, "store", "FLUSH", `commitlog flush failed err="input/output error"`},
		{slog.LevelInfo - 2, "store", "NOTIFYME", "putMessage in lock cost time(ms)=600"},
		{slog.LevelWarn, "HAService", "", `[lower] is not a tag panic="multi\nline"`},
		{slog.LevelInfo, "store", "", "[" + strings.Repeat("X", maxTag+1) + "] too long for a tag"},
		{slog.LevelInfo, "store", "", "first line"},
	}
	if fmt.Sprint(all) != fmt.Sprint(want) || rejected != 1 {
		t.Errorf("store.log: %d rejected, got\n%v\nwant\n%v", rejected, all, want)
	}
	errs, rejected := parse("storeerror.log")
	if fmt.Sprint(errs) != fmt.Sprint([]rec{want[0], want[3], want[5]}) || rejected != 0 {
		t.Errorf("storeerror.log: %d rejected, got %v", rejected, errs)
	}
}

const goodLog = "2026-11-21 21:36:40.158 +0000 WARN  [broker] [PERMISSION_CHANGED] broker permission changed from=6 to=4"

func TestParseLogRejects(t *testing.T) {
	bad := []string{
		"",
		"garbage",
		"\tat goroutine 7 [running]:", // a continuation line
		strings.Replace(goodLog, ".158", ",158", 1), // stats.log's stamp
		strings.Replace(goodLog, "WARN ", "WARNING", 1),
		strings.Replace(goodLog, "WARN ", "warn ", 1),
		strings.Replace(goodLog, "WARN ", "WARN+x", 1),
		strings.Replace(goodLog, "WARN ", "WARN+99999", 1),
		strings.Replace(goodLog, "WARN  [broker]", "WARN  broker", 1),
		strings.Replace(goodLog, "[broker]", "[]", 1),
		strings.Replace(goodLog, "[broker] ", "[broker]", 1),
		strings.Replace(goodLog, "+0000 ", "+0000", 1),
		strings.Replace(goodLog, "2026-11-21", "2026-11-31", 1),
		"2024-05-01 10:01:00 WARN RocketmqBroker - registerBroker Exception", // RocketMQ's pattern
	}
	// Cut before the message: a partial record is not one. (With some
	// message it parses; the tailer hands out only whole lines.)
	for i := range strings.Index(goodLog, "] [PERM") + 2 {
		bad = append(bad, goodLog[:i])
	}
	for _, line := range bad {
		var l Log
		if ParseLog([]byte(line), &l) {
			t.Errorf("parsed: %q", line)
		}
	}
	// A message that is only a tag, or empty, is still a record.
	for _, line := range []string{goodLog[:strings.Index(goodLog, " broker permission")], goodLog[:strings.Index(goodLog, "[PERM")]} {
		var l Log
		if !ParseLog([]byte(line), &l) {
			t.Errorf("not parsed: %q", line)
		}
	}
}

// TestAttrInt reads integer attributes as broker/logging writes them: a
// plain value, not a quoted one, not a key inside another value.
func TestAttrInt(t *testing.T) {
	const deleted = `disk almost full: deleted a segment holding unconsumed messages path=/s/commitlog/00000000000000000000 unconsumed=3840 queues="T/0=960 T/1=960 T/2=960 T/3=960" diskUsedPercent=97 forcedAbovePercent=95`
	for _, c := range []struct {
		msg, key string
		n        int64
		ok       bool
	}{
		{deleted, "unconsumed", 3840, true},
		{deleted, "forcedAbovePercent", 95, true},
		{deleted, "diskUsedPercent", 97, true},
		{deleted, "T/0", 0, false},    // inside a quoted value
		{deleted, "queues", 0, false}, // not an integer
		{deleted, "path", 0, false},   // not an integer
		{deleted, "unconsumed messages", 0, false},
		{"x err=\"a \\\" unconsumed=5\" unconsumed=7", "unconsumed", 7, true}, // escaped quote inside the value
		{"appends refused refusedSinceLastLog=940 diskUsedPercent=82.8", "refusedSinceLastLog", 940, true},
		{"appends refused refusedSinceLastLog=940 diskUsedPercent=82.8", "diskUsedPercent", 0, false}, // a float
		{"n=-3", "n", 0, false}, // the first word is the message, not an attribute
		{"msg n=-3", "n", -3, true},
		{"msg n=", "n", 0, false},
		{"msg n=99999999999999999999", "n", 0, false},
		{"", "n", 0, false},
	} {
		n, ok := AttrInt([]byte(c.msg), c.key)
		if n != c.n || ok != c.ok {
			t.Errorf("AttrInt(%q, %q) = %d, %v; want %d, %v", c.msg, c.key, n, ok, c.n, c.ok)
		}
	}
}

func TestParsersDoNotAllocate(t *testing.T) {
	stats, log := []byte(goodStats), []byte(goodLog)
	var s Stats
	var l Log
	if n := testing.AllocsPerRun(100, func() {
		if !ParseStats(stats, &s) || !ParseLog(log, &l) {
			t.Fatal("not parsed")
		}
		if n, ok := AttrInt(l.Msg, "to"); !ok || n != 4 {
			t.Fatal("to=4 not read")
		}
	}); n != 0 {
		t.Errorf("%v allocations per line pair", n)
	}
}

// The fuzz targets run their seeds with go test; go test -fuzz explores.
// A parser must not panic, and what it returns must lie in the line.
func FuzzParseStats(f *testing.F) {
	for _, line := range testdata(f, "stats.log") {
		f.Add(line)
	}
	f.Add([]byte(goodStats[:40]))
	f.Fuzz(func(t *testing.T, line []byte) {
		var s Stats
		if ParseStats(line, &s) && (!bytes.Contains(line, s.Name) || !bytes.Contains(line, s.Key)) {
			t.Errorf("fields outside %q", line)
		}
	})
}

func FuzzParseLog(f *testing.F) {
	for _, name := range []string{"broker.log", "store.log", "storeerror.log", "namesrv.log", "faults/store.log"} {
		for _, line := range testdata(f, name) {
			f.Add(line)
		}
	}
	f.Add([]byte(goodLog + "\n2026-11-21 21:36:40.158 +0000 ERROR+1 [x] [Y]"))
	f.Fuzz(func(t *testing.T, line []byte) {
		var l Log
		if ParseLog(line, &l) && (!bytes.Contains(line, l.Logger) || !bytes.Contains(line, l.Msg)) {
			t.Errorf("fields outside %q", line)
		}
	})
}

func TestSpanString(t *testing.T) {
	if got := fmt.Sprint(Minute, Hour, Day, Span(0)); got != "Minute Hour Day Span(?)" {
		t.Errorf("got %q", got)
	}
}
