package stats

import "sync/atomic"

// Samples kept per counter, as RocketMQ's StatsItem keeps them: 7 ten-second
// samples span a minute, 7 ten-minute samples an hour, 25 hourly samples a
// day. The broker counters keep ten minutes of 10 s samples for the 600 s
// rates of the runtime table.
const (
	secSamples       = 7
	tenMinSamples    = 7
	hourSamples      = 25
	brokerSecSamples = 61
)

// sample is a counter's running totals at a moment.
type sample struct {
	at int64 // unix ms
	v  int64 // value
	n  int64 // calls
}

// counter is one statistic of one key.
type counter struct {
	value, times atomic.Int64

	// The rest is guarded by Manager.state.
	flushed int64 // value already added to the business series
	// Samples, oldest first; nil until the counter has traffic. Each
	// slice's capacity is its length limit.
	sec, tenMin, hourly []sample
}

func (c *counter) add(v int) {
	c.value.Add(int64(v))
	c.times.Add(1)
}

// marks are when the previous samples were taken (unix ms). A counter that
// appears between samples was zero at those moments.
type marks struct {
	sec, tenMin, hour int64
}

// sample records the counter's totals at ms at; tenMin and hour say which
// longer lists take a sample too. It reports whether the totals moved
// since the previous sample.
func (c *counter) sample(at int64, prev marks, tenMin, hour bool, secCap int) bool {
	v, n := c.value.Load(), c.times.Load()
	if c.sec == nil {
		if v == 0 && n == 0 {
			return false
		}
		c.sec = append(make([]sample, 0, secCap), sample{at: prev.sec})
		c.tenMin = append(make([]sample, 0, tenMinSamples), sample{at: prev.tenMin})
		c.hourly = append(make([]sample, 0, hourSamples), sample{at: prev.hour})
	}
	last := c.sec[len(c.sec)-1]
	s := sample{at: at, v: v, n: n}
	c.sec = push(c.sec, s)
	if tenMin {
		c.tenMin = push(c.tenMin, s)
	}
	if hour {
		c.hourly = push(c.hourly, s)
	}
	return v != last.v || n != last.n
}

// idle reports whether the counter has not moved since its last sample.
func (c *counter) idle() bool {
	v, n := c.value.Load(), c.times.Load()
	if c.sec == nil {
		return v == 0 && n == 0
	}
	last := c.sec[len(c.sec)-1]
	return v == last.v && n == last.n
}

// push appends s, dropping the oldest sample when the list is full.
func push(l []sample, s sample) []sample {
	if len(l) == cap(l) {
		copy(l, l[1:])
		l = l[:len(l)-1]
	}
	return append(l, s)
}

// Window is a statistic over one window.
type Window struct {
	Sum   int64   // increase within the window
	TPS   float64 // Sum per second of the window
	AvgPT float64 // Sum per call; 0 when no calls are counted
}

// window computes a Window from its samples as RocketMQ's
// StatsItem.computeStatsData does, but 0 rather than NaN TPS while the
// window has a single sample.
func window(l []sample) Window {
	if len(l) < 2 {
		return Window{}
	}
	first, last := l[0], l[len(l)-1]
	w := Window{Sum: last.v - first.v}
	if ms := last.at - first.at; ms > 0 {
		w.TPS = float64(w.Sum) * 1000 / float64(ms)
	}
	if calls := last.n - first.n; calls > 0 {
		w.AvgPT = float64(w.Sum) / float64(calls)
	}
	return w
}

// tail is the last n samples of l, or all of them.
func tail(l []sample, n int) []sample { return l[max(0, len(l)-n):] }

func (c *counter) minute() Window { return window(tail(c.sec, secSamples)) }
func (c *counter) hour() Window   { return window(c.tenMin) }
func (c *counter) day() Window    { return window(c.hourly) }

// rates are the TPS over the last 10 s, 60 s and 600 s of samples.
func (c *counter) rates() [3]float64 {
	return [3]float64{
		window(tail(c.sec, 2)).TPS,
		window(tail(c.sec, secSamples)).TPS,
		window(tail(c.sec, brokerSecSamples)).TPS,
	}
}

// entryStats are the per-key statistics in stats.log order.
var entryStats = [...]struct {
	name   string
	groups bool // keyed topic@group rather than topic
	pick   func(*entry) *counter
}{
	{TopicPutNums, false, func(e *entry) *counter { return &e.nums }},
	{TopicPutSize, false, func(e *entry) *counter { return &e.size }},
	{GroupGetNums, true, func(e *entry) *counter { return &e.nums }},
	{GroupGetSize, true, func(e *entry) *counter { return &e.size }},
	{SendBackNums, true, func(e *entry) *counter { return &e.sndbck }},
}
