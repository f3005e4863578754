package logparse

import (
	"bytes"
	"math"
	"time"
)

// Span is the window a stats.log line covers; 0 is none.
type Span uint8

const (
	Minute Span = iota + 1
	Hour
	Day // the 24 hours before local midnight
)

func (s Span) String() string {
	switch s {
	case Minute:
		return "Minute"
	case Hour:
		return "Hour"
	case Day:
		return "Day"
	}
	return "Span(?)"
}

// Stats is one stats.log line, written by package broker/stats:
//
//	2026-11-21 21:37:00,000 +0000 INFO - [TOPIC_PUT_NUMS] [T] Stats In One Minute, SUM: 50 TPS: 1.67 AVGPT: 1.00
//
// Name is TOPIC_PUT_NUMS, TOPIC_PUT_SIZE (Key = topic), GROUP_GET_NUMS,
// GROUP_GET_SIZE, SNDBCK_PUT_NUMS (Key = topic@group; see SplitGroupKey) or
// BROKER_PUT_NUMS, BROKER_GET_NUMS (Key = cluster name). Name and Key alias
// the line.
type Stats struct {
	Time   time.Time // the boundary that ends the window, UTC: 00:00's minute line is yesterday's
	Offset int       // the broker's UTC offset then, seconds east
	Name   []byte
	Key    []byte
	Span   Span
	Sum    int64   // increase within the window
	TPS    float64 // Sum per second
	AvgPT  float64 // Sum per counted call; 0 for BROKER_*
}

// ParseStats fills s from a stats.log line and reports whether the line
// had that shape.
func ParseStats(line []byte, s *Stats) bool {
	t, off, ok := parseStamp(line, ',')
	if !ok {
		return false
	}
	rest, ok := cut(line[stampLen:], " INFO - [")
	if !ok {
		return false
	}
	name, rest, ok := bracketed(rest)
	if !ok {
		return false
	}
	if rest, ok = cut(rest, " ["); !ok {
		return false
	}
	// Topic and group names cannot hold "] Stats", so the first one ends
	// the key whatever other brackets it holds.
	i := bytes.Index(rest, []byte("] Stats In One "))
	if i <= 0 {
		return false
	}
	key := rest[:i]
	rest = rest[i+len("] Stats In One "):]
	var span Span
	switch {
	case bytes.HasPrefix(rest, []byte("Minute")):
		span, rest = Minute, rest[len("Minute"):]
	case bytes.HasPrefix(rest, []byte("Hour")):
		span, rest = Hour, rest[len("Hour"):]
	case bytes.HasPrefix(rest, []byte("Day")):
		span, rest = Day, rest[len("Day"):]
	default:
		return false
	}
	if rest, ok = cut(rest, ", SUM: "); !ok {
		return false
	}
	sum, rest, ok := integer(rest)
	if !ok {
		return false
	}
	if rest, ok = cut(rest, " TPS: "); !ok {
		return false
	}
	tps, rest, ok := decimal(rest)
	if !ok {
		return false
	}
	if rest, ok = cut(rest, " AVGPT: "); !ok {
		return false
	}
	avg, rest, ok := decimal(rest)
	if !ok || len(rest) != 0 {
		return false
	}
	*s = Stats{Time: t, Offset: off, Name: name, Key: key, Span: span, Sum: sum, TPS: tps, AvgPT: avg}
	return true
}

// SplitGroupKey splits a topic@group key at its last '@': group names
// cannot hold one, and RocketMQ splits these keys from the right too.
func SplitGroupKey(key []byte) (topic, group []byte, ok bool) {
	i := bytes.LastIndexByte(key, '@')
	if i <= 0 || i == len(key)-1 {
		return nil, nil, false
	}
	return key[:i], key[i+1:], true
}

// bracketed reads a non-empty "NAME]" of statistic-name characters.
func bracketed(b []byte) (name, rest []byte, ok bool) {
	i := 0
	for i < len(b) && (b[i] >= 'A' && b[i] <= 'Z' || b[i] >= '0' && b[i] <= '9' || b[i] == '_') {
		i++
	}
	if i == 0 || i == len(b) || b[i] != ']' {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// integer reads an optionally negative decimal int64 at the start of b.
func integer(b []byte) (n int64, rest []byte, ok bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := int64(b[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, nil, false
		}
		n = n*10 + d
	}
	if i == 0 {
		return 0, nil, false
	}
	if neg {
		n = -n
	}
	return n, b[i:], true
}

const maxCents = 1 << 53

// decimal reads "<integer>.<two digits>", as stats.log prints rates
// (Java's %.2f); insisting on both digits rejects a line torn after one.
func decimal(b []byte) (float64, []byte, bool) {
	neg := len(b) > 0 && b[0] == '-'
	whole, rest, ok := integer(b)
	if !ok || len(rest) < 3 || rest[0] != '.' {
		return 0, nil, false
	}
	cents, ok := digits(rest[1:3])
	if !ok {
		return 0, nil, false
	}
	// Dividing the exact integer of cents rounds as ParseFloat would; past
	// 2^53 cents it would not be exact, and no rate gets there.
	if whole > maxCents/100 || whole < -maxCents/100 {
		return 0, nil, false
	}
	c := whole*100 + int64(cents)
	if neg { // whole is 0 for "-0.50": the sign comes from the text
		c = whole*100 - int64(cents)
	}
	return float64(c) / 100, rest[3:], true
}
