package logparse

import (
	"bytes"
	"log/slog"
	"time"
)

// Log is one record of broker.log, store.log, storeerror.log or
// namesrv.log, written by package broker/logging:
//
//	2026-11-21 21:36:40.158 +0000 WARN  [broker] [PERMISSION_CHANGED] broker permission changed from=6 to=4
//
// Logger is the logging tag, the file's name without extension unless the
// code set another ("store" also in storeerror.log). Tag is the optional
// [UPPER_CASE] word the broker starts a message with so that ops can count
// events; nil when the message has none. Msg is the rest, key=value
// attributes included. Logger, Tag and Msg alias the line.
type Log struct {
	Time   time.Time // UTC
	Offset int       // the broker's UTC offset then, seconds east
	Level  slog.Level
	Logger []byte
	Tag    []byte
	Msg    []byte
}

// maxTag bounds a message tag, so that a bracketed upper-case phrase in
// free text is not taken for one.
const maxTag = 64

// ParseLog fills l from a log record line and reports whether the line
// had that shape. A message holding a newline continues on lines that are
// not records; they report false.
func ParseLog(line []byte, l *Log) bool {
	t, off, ok := parseStamp(line, '.')
	if !ok || len(line) == stampLen || line[stampLen] != ' ' {
		return false
	}
	rest := line[stampLen+1:]
	// The level is padded to five columns: "INFO  [", "ERROR [", and
	// slog's "ERROR+2 [" for levels between the named ones.
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return false
	}
	level, ok := parseLevel(rest[:sp])
	if !ok {
		return false
	}
	rest = bytes.TrimLeft(rest[sp:], " ")
	if len(rest) == 0 || rest[0] != '[' {
		return false
	}
	end := bytes.IndexByte(rest, ']')
	if end <= 1 {
		return false
	}
	logger := rest[1:end]
	msg, ok := cut(rest[end+1:], " ")
	if !ok {
		return false
	}
	var tag []byte
	if len(msg) > 0 && msg[0] == '[' {
		if name, after, ok := bracketed(msg[1:]); ok && len(name) <= maxTag {
			// "[DISK_FULL] disk full" but also RocketMQ's "[NOTIFYME]putMessage".
			tag, msg = name, bytes.TrimPrefix(after, []byte(" "))
		}
	}
	*l = Log{Time: t, Offset: off, Level: level, Logger: logger, Tag: tag, Msg: msg}
	return true
}

// parseLevel reads slog.Level.String's output: DEBUG, INFO, WARN or ERROR
// with an optional signed distance, "WARN+1", "INFO-2".
func parseLevel(b []byte) (slog.Level, bool) {
	var base slog.Level
	var rest []byte
	var ok bool
	for _, l := range levels {
		if rest, ok = cut(b, l.name); ok {
			base = l.level
			break
		}
	}
	if !ok {
		return 0, false
	}
	if len(rest) == 0 {
		return base, true
	}
	if rest[0] != '+' && rest[0] != '-' || len(rest) > 4 { // slog levels are small ints
		return 0, false
	}
	n, ok := digits(rest[1:])
	if !ok {
		return 0, false
	}
	if rest[0] == '-' {
		n = -n
	}
	return base + slog.Level(n), true
}

var levels = [...]struct {
	name  string
	level slog.Level
}{{"DEBUG", slog.LevelDebug}, {"INFO", slog.LevelInfo}, {"WARN", slog.LevelWarn}, {"ERROR", slog.LevelError}}

// AttrInt reads the integer attribute key=N that the broker's logging
// package appends to a record's message (Log.Msg), skipping quoted values
// (err="… unconsumed=5" is not the attribute). It reports false when the
// message has no such attribute or its value is not an integer.
func AttrInt(msg []byte, key string) (int64, bool) {
	quoted := false
	for i := 0; i < len(msg); i++ {
		switch c := msg[i]; {
		case quoted && c == '\\':
			i++ // strconv.Quote's escapes: \" does not end the value
		case c == '"':
			quoted = !quoted
		case !quoted && c == ' ':
			v, ok := cut(msg[i+1:], key)
			if !ok || len(v) == 0 || v[0] != '=' {
				continue
			}
			if n, rest, ok := integer(v[1:]); ok && (len(rest) == 0 || rest[0] == ' ') {
				return n, true
			}
		}
	}
	return 0, false
}
