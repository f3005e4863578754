package flow

import (
	"io"
	"strconv"
	"time"
)

// waterMarkLayout is Java's watermark.log stamp (logback pattern
// "%d{yyy-MM-dd HH:mm:ss} - %m%n") with the zone offset mqops puts on
// every log line.
const waterMarkLayout = "2006-01-02 15:04:05 -0700"

// AppendWaterMark appends watermark.log's lines for now, the four Java's
// BrokerController.printWaterMark writes every second (apache/rocketmq
// broker/src/main/java/org/apache/rocketmq/broker/BrokerController.java):
//
//	2026-12-07 00:30:01 +0000 - [WATERMARK] Send Queue Size: 3 SlowTimeMills: 41
//
// Send is the sends read and not yet answered (the runtime info's
// sendThreadPoolQueueSize) and how long the oldest one waiting for an
// append slot has waited; Transaction the END_TRANSACTIONs waiting for a
// slot. Pull and Query are always 0: mqops serves them as soon as their
// frame is read, so nothing waits for a thread (a long-polled pull waits
// for messages, as in Java's PullRequestHoldService, not in the queue).
func (s *Sends) AppendWaterMark(b []byte, now time.Time) []byte {
	count, _ := s.InFlight()
	b = waterMarkLine(b, now, "Send", count, s.HeadWait(SendQueue, now))
	b = waterMarkLine(b, now, "Pull", 0, 0)
	b = waterMarkLine(b, now, "Query", 0, 0)
	return waterMarkLine(b, now, "Transaction", s.Queued(TransactionQueue), s.HeadWait(TransactionQueue, now))
}

func waterMarkLine(b []byte, now time.Time, queue string, size int64, slow time.Duration) []byte {
	b = now.AppendFormat(b, waterMarkLayout)
	b = append(b, " - [WATERMARK] "...)
	b = append(b, queue...)
	b = append(b, " Queue Size: "...)
	b = strconv.AppendInt(b, size, 10)
	b = append(b, " SlowTimeMills: "...)
	b = strconv.AppendInt(b, slow.Milliseconds(), 10)
	return append(b, '\n')
}

// waterMarkWriter writes the lines to w once a second; Watch ticks it.
type waterMarkWriter struct {
	w    io.Writer
	last time.Time
	buf  []byte
}

func (m *waterMarkWriter) tick(s *Sends, now time.Time) {
	if m.w == nil || now.Sub(m.last) < time.Second {
		return
	}
	m.last = now
	m.buf = s.AppendWaterMark(m.buf[:0], now)
	_, _ = m.w.Write(m.buf) // a full disk must not stop the shedding
}
