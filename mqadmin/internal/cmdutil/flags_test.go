package cmdutil

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	loc := time.FixedZone("X", 2*3600)
	now := time.Date(2024, 5, 1, 10, 15, 2, 123e6, loc)
	for in, want := range map[string]time.Time{
		"now":                     now,
		"today":                   time.Date(2024, 5, 1, 0, 0, 0, 0, loc),
		"1714551302123":           time.UnixMilli(1714551302123),
		"-1h30m":                  now.Add(-90 * time.Minute),
		"2024-05-01#09:00:00:500": time.Date(2024, 5, 1, 9, 0, 0, 500e6, loc),
		"2024-05-01 09:00:00":     time.Date(2024, 5, 1, 9, 0, 0, 0, loc),
		"2024-05-01T09:00:00":     time.Date(2024, 5, 1, 9, 0, 0, 0, loc),
		"2024-05-01":              time.Date(2024, 5, 1, 0, 0, 0, 0, loc),
		"2024-05-01T09:00:00Z":    time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime(in, now)
		if err != nil || got != want.UnixMilli() {
			t.Errorf("ParseTime(%q) = %d, %v; want %d", in, got, err, want.UnixMilli())
		}
	}
	for _, bad := range []string{"", "yesterday", "1h", "2024-13-01"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}
