package stats

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// tickEvery is the sampling period; every other boundary is a multiple.
const tickEvery = 10 * time.Second

// timeLayout stamps stats.log lines: RocketMQ's, plus the UTC offset.
const timeLayout = "2006-01-02 15:04:05,000 -0700"

// idleEviction bounds memory: RocketMQ prints a key's lines until restart,
// we stop once it has had no traffic for a day. Its series are kept.
const idleEviction = 24 * time.Hour

// run ticks on the clock's 10-second boundaries until Close.
func (m *Manager) run() {
	for {
		now := m.now()
		next := now.Truncate(tickEvery).Add(tickEvery)
		timer := time.NewTimer(next.Sub(now))
		select {
		case <-m.stop:
			timer.Stop()
			return
		case <-timer.C:
			m.tick(next)
		}
	}
}

// tick samples every counter at boundary t and, on a minute boundary, adds
// the minute to the series, writes stats.log and saves. A late tick
// covers the boundaries it missed as one.
func (m *Manager) tick(t time.Time) {
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	if !m.advance(t) {
		return
	}
	if err := m.save(); err != nil {
		m.log.Error("save statistics", "err", err)
	}
}

// advance does the work of tick under state; it reports whether t began a
// minute.
func (m *Manager) advance(t time.Time) bool {
	m.state.Lock()
	defer m.state.Unlock()
	if !t.After(m.last) {
		return false
	}
	prev := m.last
	m.last = t
	c, pc := civil(t, m.loc), civil(prev, m.loc)
	minute := minuteIndex(t, m.loc) != minuteIndex(prev, m.loc)
	tenMin := crossed(c, pc, 600)
	hour := crossed(c, pc, 3600)

	at := t.UnixMilli()
	marks := m.marks
	topics, groups := m.collect()
	for _, ents := range [2][]*entry{topics, groups} {
		for _, e := range ents {
			moved := e.nums.sample(at, marks, tenMin, hour, secSamples)
			moved = e.size.sample(at, marks, tenMin, hour, secSamples) || moved
			moved = e.sndbck.sample(at, marks, tenMin, hour, secSamples) || moved
			if moved {
				e.lastActive = at
			}
		}
	}
	m.brokerPut.sample(at, marks, tenMin, hour, brokerSecSamples)
	m.brokerGet.sample(at, marks, tenMin, hour, brokerSecSamples)
	m.marks.sec = at
	if tenMin {
		m.marks.tenMin = at
	}
	if hour {
		m.marks.hour = at
	}
	if !minute {
		return false
	}

	// The counts so far belong to the minute that just ended.
	m.flush(topics, groups, t.Add(-time.Minute))
	slices.SortFunc(topics, byKey)
	slices.SortFunc(groups, byKey)
	b := m.lines[:0]
	ts := append(t.In(m.loc).AppendFormat(make([]byte, 0, 40), timeLayout), " INFO - "...)
	b = m.appendLines(b, ts, "Minute", (*counter).minute, topics, groups)
	if hour {
		b = m.appendLines(b, ts, "Hour", (*counter).hour, topics, groups)
	}
	yPut, yGet, newDay := m.daily.rollTo(civilDay(t, m.loc),
		m.daily.putBase+m.brokerPut.value.Load(), m.daily.getBase+m.brokerGet.value.Load())
	if newDay {
		b = m.appendLines(b, ts, "Day", (*counter).day, topics, groups)
	}
	if len(b) > 0 {
		if _, err := m.out.Write(b); err != nil {
			m.log.Warn("write stats.log", "err", err)
		}
	}
	m.lines = b[:0]
	if newDay {
		m.log.Info("yesterday put message total: " + strconv.FormatInt(yPut, 10))
		m.log.Info("yesterday get message total: " + strconv.FormatInt(yGet, 10))
	}
	if hour {
		m.evict(topics, groups, at-idleEviction.Milliseconds())
		m.expire(t)
	}
	return true
}

// partialMinute returns the minute lines of the counts made since the last
// minute boundary, stamped with the boundary that ends the minute, for keys
// that have any. Without them a restart would drop up to a minute from
// stats.log; with them the minute lines since 00:00 still add up to the
// day's counts, the restarted broker's line for the same minute carrying
// the rest. RocketMQ loses that minute. Callers hold state.
func (m *Manager) partialMinute(now time.Time, topics, groups []*entry) []byte {
	start := time.Unix(minuteIndex(m.last, m.loc)*60, 0).UnixMilli()
	at := now.UnixMilli()
	// The minute so far is the window from the counter's totals at the
	// boundary (or its first sample after it) to its totals now.
	since := func(c *counter) (Window, bool) {
		base := sample{at: start}
		for _, s := range c.sec {
			if s.at >= start {
				base = s
				break
			}
			base.v, base.n = s.v, s.n // the counter's totals at an older sample
		}
		w := window([]sample{base, {at: at, v: c.value.Load(), n: c.times.Load()}})
		return w, w.Sum > 0
	}
	slices.SortFunc(topics, byKey)
	slices.SortFunc(groups, byKey)
	end := time.UnixMilli(start).Add(time.Minute).In(m.loc)
	ts := append(end.AppendFormat(make([]byte, 0, 40), timeLayout), " INFO - "...)
	var b []byte
	for _, s := range entryStats {
		ents := topics
		if s.groups {
			ents = groups
		}
		for _, e := range ents {
			if w, ok := since(s.pick(e)); ok {
				b = appendLine(b, ts, s.name, e.key, "Minute", w)
			}
		}
	}
	for _, s := range [2]struct {
		name string
		c    *counter
	}{{BrokerPutNums, &m.brokerPut}, {BrokerGetNums, &m.brokerGet}} {
		if w, ok := since(s.c); ok {
			b = appendLine(b, ts, s.name, m.cluster, "Minute", w)
		}
	}
	return b
}

// byKey orders entries as stats.log lists them.
func byKey(a, b *entry) int { return strings.Compare(a.key, b.key) }

// crossed reports whether a local clock boundary of every seconds lies in
// (prev, cur]: the clock reads a multiple of every (also when it goes back
// to an hour it already showed) or moved to another period.
func crossed(cur, prev, every int64) bool {
	return floorMod(cur, every) == 0 || floorDiv(cur, every) != floorDiv(prev, every)
}

// collect lists the entries; the slices are reused, so callers hold state.
func (m *Manager) collect() (topics, groups []*entry) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	topics, groups = m.tbuf[:0], m.gbuf[:0]
	for _, e := range m.topics {
		topics = append(topics, e)
	}
	for _, e := range m.groups {
		groups = append(groups, e)
	}
	m.tbuf, m.gbuf = topics, groups
	return topics, groups
}

// evict drops the entries idle since before cut. Holding mu exclusively, it
// rechecks that nothing was counted since the last sample and flush.
func (m *Manager) evict(topics, groups []*entry, cut int64) {
	stale := func(e *entry) bool { return e.lastActive < cut }
	if !slices.ContainsFunc(topics, stale) && !slices.ContainsFunc(groups, stale) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range [2]struct {
		table map[string]*entry
		ents  []*entry
	}{{m.topics, topics}, {m.groups, groups}} {
		for _, e := range t.ents {
			if stale(e) && e.nums.idle() && e.size.idle() && e.sndbck.idle() && e.nums.value.Load() == e.nums.flushed {
				delete(t.table, e.key)
			}
		}
	}
}

// appendLines appends one line per sampled counter for one window.
func (m *Manager) appendLines(b, ts []byte, span string, win func(*counter) Window, topics, groups []*entry) []byte {
	for _, s := range entryStats {
		ents := topics
		if s.groups {
			ents = groups
		}
		for _, e := range ents {
			if c := s.pick(e); c.sec != nil {
				b = appendLine(b, ts, s.name, e.key, span, win(c))
			}
		}
	}
	for _, s := range [2]struct {
		name string
		c    *counter
	}{{BrokerPutNums, &m.brokerPut}, {BrokerGetNums, &m.brokerGet}} {
		if s.c.sec != nil {
			b = appendLine(b, ts, s.name, m.cluster, span, win(s.c))
		}
	}
	return b
}

// appendLine appends "<ts>[NAME] [KEY] Stats In One <span>, SUM: … TPS: … AVGPT: …\n".
func appendLine(b, ts []byte, name, key, span string, w Window) []byte {
	b = append(b, ts...)
	b = append(b, '[')
	b = append(b, name...)
	b = append(b, "] ["...)
	b = append(b, key...)
	b = append(b, "] Stats In One "...)
	b = append(b, span...)
	b = append(b, ", SUM: "...)
	b = strconv.AppendInt(b, w.Sum, 10)
	b = append(b, " TPS: "...)
	b = appendFixed2(b, w.TPS)
	b = append(b, " AVGPT: "...)
	b = appendFixed2(b, w.AvgPT)
	return append(b, '\n')
}

// appendFixed2 formats v with two decimals as Java's %.2f does: it rounds
// the shortest decimal form of v half-up, so 0.125 gives 0.13 and 1.005
// gives 1.01 where Go's 'f' formatting gives 0.12 and 1.00.
func appendFixed2(b []byte, v float64) []byte {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	neg := strings.HasPrefix(s, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	frac += "000"
	cents, err := strconv.ParseUint(whole+frac[:2], 10, 64)
	if err != nil { // beyond any rate a broker reaches
		return strconv.AppendFloat(b, v, 'f', 2, 64)
	}
	if frac[2] >= '5' {
		cents++
	}
	if neg && cents != 0 {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, cents/100, 10)
	return append(b, '.', byte('0'+cents/10%10), byte('0'+cents%10))
}
