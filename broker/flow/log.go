package flow

import (
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// LogEvery is how often one (tag, remote) pair is logged at most; the
// refusals in between are counted and reported as suppressed=N.
const LogEvery = 10 * time.Second

// maxLogKeys bounds the pairs remembered: past it, a pair not seen before
// is logged without being remembered (a flood from many addresses still
// cannot grow memory).
const maxLogKeys = 4096

// Log writes flowcontrol.log (logger RocketmqFlowControl, which Java
// defines in LoggerName.FLOW_CONTROL_LOGGER_NAME and never uses): one line
// per (tag, remote) per LogEvery,
//
//	WARN  [FLOW] [TIMEOUT_CLEAN_QUEUE] code=2 remote=10.0.0.7:53412 topic=TopicA waited=230ms queue=512 suppressed=41
//
// A nil *Log logs nothing.
type Log struct {
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	seen map[logKey]*logEntry
}

type logKey struct {
	tag    Tag
	remote string
}

type logEntry struct {
	last       time.Time
	suppressed int
	topic      string
}

// NewLog logs to l (the flowcontrol.log logger).
func NewLog(l *slog.Logger) *Log {
	return &Log{log: l.With("tag", "FLOW"), now: time.Now, seen: map[logKey]*logEntry{}}
}

// Event records one refusal: logged unless the pair was logged less than
// LogEvery ago. waited and queue are shown when queue >= 0; limit (a
// quota's description) when not empty.
func (l *Log) Event(tag Tag, remote, topic string, waited time.Duration, queue int64, limit string) {
	if l == nil {
		return
	}
	now := l.now()
	k := logKey{tag, remote}
	l.mu.Lock()
	e := l.seen[k]
	if e != nil && now.Sub(e.last) < LogEvery {
		e.suppressed++
		e.topic = topic
		l.mu.Unlock()
		return
	}
	suppressed := 0
	if e != nil {
		suppressed = e.suppressed
		e.last, e.suppressed = now, 0
	} else if len(l.seen) < maxLogKeys {
		l.seen[k] = &logEntry{last: now}
	}
	l.mu.Unlock()
	attrs := make([]any, 0, 14)
	attrs = append(attrs, "code", 2, "remote", remote)
	if topic != "" {
		attrs = append(attrs, "topic", topic)
	}
	if queue >= 0 {
		attrs = append(attrs, "waited", strconv.FormatInt(waited.Milliseconds(), 10)+"ms", "queue", queue)
	}
	if limit != "" {
		attrs = append(attrs, "limit", limit)
	}
	attrs = append(attrs, "suppressed", suppressed)
	l.log.Warn("["+tag.String()+"]", attrs...)
}

// flushSuppressed reports the pairs whose window ended with refusals not
// yet logged, and forgets the pairs quiet for a window.
func (l *Log) flushSuppressed(now time.Time) {
	if l == nil {
		return
	}
	type report struct {
		k     logKey
		topic string
		n     int
	}
	var out []report
	l.mu.Lock()
	for k, e := range l.seen {
		if now.Sub(e.last) < LogEvery {
			continue
		}
		if e.suppressed > 0 {
			out = append(out, report{k, e.topic, e.suppressed})
		}
		delete(l.seen, k)
	}
	l.mu.Unlock()
	for _, r := range out {
		l.log.Warn("["+r.k.tag.String()+"]", "code", 2, "remote", r.k.remote, "topic", r.topic, "suppressed", r.n)
	}
}
