// Package logparse splits the lines the broker writes to its log files
// into fields, for the Zabbix helper to turn into items. The parsers take
// one line without its '\n', fill a caller's struct with sub-slices of the
// line (no copies, no allocation) and report false, never panic, on
// anything else: continuation lines, torn lines, other programs' lines.
//
// Times: both formats print the local wall clock with milliseconds and its
// UTC offset. Time is the instant in UTC and Offset the printed offset, so
// the broker's own civil day is Time.Add(Offset seconds), whatever the
// helper's time zone.
package logparse

import "time"

// stampLen is the length of "2006-01-02 15:04:05,000 -0700".
const stampLen = 29

// parseStamp reads a "2006-01-02 15:04:05<sep>000 -0700" time stamp at
// the start of b.
func parseStamp(b []byte, sep byte) (t time.Time, offset int, ok bool) {
	if len(b) < stampLen || b[4] != '-' || b[7] != '-' || b[10] != ' ' || b[13] != ':' ||
		b[16] != ':' || b[19] != sep || b[23] != ' ' || (b[24] != '+' && b[24] != '-') {
		return time.Time{}, 0, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	ms, ok7 := digits(b[20:23])
	oh, ok8 := digits(b[25:27])
	om, ok9 := digits(b[27:29])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8 && ok9) ||
		month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 || oh > 23 || om > 59 {
		return time.Time{}, 0, false
	}
	wall := time.Date(year, time.Month(month), day, hour, minute, sec, ms*int(time.Millisecond), time.UTC)
	if wall.Day() != day { // 2026-02-30 and the like
		return time.Time{}, 0, false
	}
	offset = oh*3600 + om*60
	if b[24] == '-' {
		offset = -offset
	}
	return wall.Add(-time.Duration(offset) * time.Second), offset, true
}

// digits parses a run of ASCII digits short enough not to overflow.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

// cut returns what follows prefix at the start of b.
func cut(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return nil, false
	}
	return b[len(prefix):], true
}
