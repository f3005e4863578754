package stats

import (
	"encoding/binary"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestartAfterClose: a clean restart keeps the series, today's counts
// (including the unfinished minute) and the broker totals.
func TestRestartAfterClose(t *testing.T) {
	h := newHarness(t, t.TempDir(), date(cst, 2026, 11, 20, 0, 0, 0))
	twoDays(h)
	rt := h.Runtime()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h.open()
	checkTwoDays(t, h)
	got := h.Runtime()
	// Rates are not carried over, as RocketMQ's are not.
	if got.PutTotalTodayNow != 39 || got.PutTotalTodayNow != rt.PutTotalTodayNow ||
		got.PutTotalTodayMorning != 24 || got.PutTotalYesterdayMorning != 0 || got.GetTotalTodayNow != 4 {
		t.Errorf("after restart %+v, before %+v", got, rt)
	}
	// Counting goes on into the same minute.
	h.TopicPut([]byte("A"), 1, 0)
	if got := h.TopicsToday(h.clk.Now()); got["A"] != 16 {
		t.Errorf("today after restart: %v", got)
	}
	h.to(date(cst, 2026, 11, 21, 10, 6, 0))
	pts := getSeries(t, h, KindPut, "A", time.Minute, date(cst, 2026, 11, 21, 10, 5, 0), h.clk.Now())
	if len(pts) != 1 || pts[0].Value != 3 {
		t.Errorf("minute across the restart: %v", pts)
	}
}

// TestCrashLosesAtMostAMinute: without Close the last minute's save is
// what a restart finds.
func TestCrashLosesAtMostAMinute(t *testing.T) {
	h := newHarness(t, t.TempDir(), date(cst, 2026, 11, 21, 9, 0, 0))
	h.putAt(date(cst, 2026, 11, 21, 9, 0, 10), "A", 5)
	h.GroupGet([]byte("A"), []byte("g"), 5, 0)
	h.to(date(cst, 2026, 11, 21, 9, 1, 10)) // not a minute boundary: no save
	h.TopicPut([]byte("A"), 3, 0)
	h.clk.set(date(cst, 2026, 11, 21, 9, 1, 30))
	h.open() // the old Manager is abandoned, as by kill -9
	if got := h.TopicsToday(h.clk.Now()); !maps.Equal(got, map[string]int64{"A": 5}) {
		t.Errorf("after crash: %v", got)
	}
	if got := h.GroupsToday(h.clk.Now()); len(got) != 0 {
		t.Errorf("unsaved get survived: %v", got)
	}
	if rt := h.Runtime(); rt.PutTotalTodayNow != 5 || rt.GetTotalTodayNow != 0 {
		t.Errorf("totals after crash: %+v", rt)
	}
}

// TestRestartAfterMidnight: snapshots saved yesterday roll on load.
func TestRestartAfterMidnight(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, date(cst, 2026, 11, 20, 8, 0, 0))
	h.putAt(date(cst, 2026, 11, 20, 9, 0, 0), "A", 100)
	h.GroupGet([]byte("A"), []byte("g"), 60, 0)
	h.clk.set(date(cst, 2026, 11, 20, 23, 30, 0))
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	h.clk.set(date(cst, 2026, 11, 21, 8, 0, 0))
	h.open()
	rt := h.Runtime()
	if rt.PutTotalTodayNow != 100 || rt.PutTotalTodayMorning != 100 || rt.PutTotalYesterdayMorning != 0 ||
		rt.GetTotalTodayMorning != 60 || rt.GetTotalYesterdayMorning != 0 {
		t.Errorf("next day: %+v", rt)
	}
	if got := h.TopicsToday(h.clk.Now()); len(got) != 0 {
		t.Errorf("today on the next day: %v", got)
	}
	if got := h.GroupsToday(date(cst, 2026, 11, 20, 23, 59, 0)); !maps.Equal(got, map[string]int64{"A@g": 60}) {
		t.Errorf("yesterday: %v", got)
	}
	h.TopicPut([]byte("A"), 7, 0)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	// Down for two whole days: nothing was counted on them.
	h.clk.set(date(cst, 2026, 11, 24, 1, 0, 0))
	h.open()
	rt = h.Runtime()
	if rt.PutTotalTodayNow != 107 || rt.PutTotalTodayMorning != 107 || rt.PutTotalYesterdayMorning != 107 {
		t.Errorf("three days later: %+v", rt)
	}
	if pts := getSeries(t, h, KindPut, "A", 24*time.Hour, date(cst, 2026, 11, 20, 0, 0, 0), h.clk.Now()); len(pts) != 5 ||
		pts[0].Value != 100 || pts[1].Value != 7 {
		t.Errorf("days: %v", pts)
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, date(cst, 2026, 11, 20, 8, 0, 0))
	h.TopicPut([]byte("A"), 1, 0)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fileName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"flipped bit": append(append([]byte{}, good[:10]...), append([]byte{good[10] ^ 1}, good[11:]...)...),
		"truncated":   good[:len(good)-1],
		"empty":       {},
		"foreign":     []byte("{\"offsetTable\":{}}"),
	} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := New(Options{Dir: dir})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A file whose checksum holds but whose counts lie is refused too.
	b := []byte(fileMagic)
	b = append(b, fileVersion, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x7f)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Dir: dir}); err == nil {
		t.Error("absurd series count accepted")
	}
}

func TestStartClose(t *testing.T) {
	dir := t.TempDir()
	m, err := New(Options{Dir: dir, ClusterName: "c"})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	m.TopicPut([]byte("A"), 2, 0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	m, err = New(Options{Dir: dir, ClusterName: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.TopicsToday(time.Now()); got["A"] != 2 {
		t.Errorf("after restart: %v", got)
	}
}
