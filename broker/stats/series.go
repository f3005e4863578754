package stats

import (
	"fmt"
	"time"
)

// Series kinds: what a business series counts and how it is keyed.
const (
	KindPut = "put" // messages produced, by topic
	KindGet = "get" // messages delivered to consumers, by topic@group
)

var kinds = [2]string{KindPut, KindGet}

func kindIndex(kind string) (int, bool) {
	for i, k := range kinds {
		if k == kind {
			return i, true
		}
	}
	return 0, false
}

// resolution is one granularity of the business series. Minutes are UTC
// minutes; hours and days are local clock hours and calendar days, so an
// hour repeated when clocks go back is one bucket of two hours, an hour
// skipped has no bucket, and days have 23 to 25 hours.
type resolution struct {
	step   time.Duration
	retain int64 // buckets kept besides the current one
	index  func(time.Time, *time.Location) int64
	// start is when bucket i begins; false if the clock skips it.
	start func(i int64, loc *time.Location) (time.Time, bool)
}

var resolutions = [3]resolution{
	{time.Minute, 48 * 60, minuteIndex, minuteStart},
	{time.Hour, 31 * 24, hourIndex, hourStart},
	{24 * time.Hour, 400, civilDay, dayStart},
}

// chunkLen buckets are allocated together, so a key with traffic in a few
// minutes of two days costs a few chunks rather than two days of buckets.
const chunkLen = 32

// slots is the ring length that keeps retain buckets before the current one.
func (r *resolution) slots() int { return int(r.retain/chunkLen) + 2 }

type chunk struct {
	no int64 // first bucket / chunkLen
	v  [chunkLen]int64
}

// ring keeps the latest buckets of one resolution. Chunk no lives in slot
// no mod len(slots); a newer chunk replaces an older one.
type ring struct {
	slots []*chunk // nil when empty
}

func (r *ring) add(i, v int64, slots int) {
	no := floorDiv(i, chunkLen)
	if r.slots == nil {
		r.slots = make([]*chunk, slots)
	}
	p := &r.slots[floorMod(no, int64(len(r.slots)))]
	switch c := *p; {
	case c == nil:
		*p = &chunk{no: no}
	case c.no > no:
		return // older than the retention
	case c.no < no:
		*c = chunk{no: no}
	}
	(*p).v[i-no*chunkLen] += v
}

func (r *ring) chunk(no int64) *chunk {
	if r.slots == nil {
		return nil
	}
	if c := r.slots[floorMod(no, int64(len(r.slots)))]; c != nil && c.no == no {
		return c
	}
	return nil
}

// sum adds up buckets [lo, hi).
func (r *ring) sum(lo, hi int64) int64 {
	var s int64
	for i := lo; i < hi; {
		no := floorDiv(i, chunkLen)
		end := min(hi, (no+1)*chunkLen)
		if c := r.chunk(no); c != nil {
			for j := i; j < end; j++ {
				s += c.v[j-no*chunkLen]
			}
		}
		i = end
	}
	return s
}

// expire frees the chunks that end before bucket oldest.
func (r *ring) expire(oldest int64) {
	live := false
	for i, c := range r.slots {
		if c != nil && (c.no+1)*chunkLen <= oldest {
			r.slots[i] = nil
		}
		live = live || r.slots[i] != nil
	}
	if !live {
		r.slots = nil
	}
}

// series is one key's buckets at each resolution.
type series struct {
	r [len(resolutions)]ring
}

func (m *Manager) seriesOf(kind int, key string) *series {
	s := m.series[kind][key]
	if s == nil {
		s = &series{}
		m.series[kind][key] = s
	}
	return s
}

// flush adds the counts since the last flush to the buckets holding at.
func (m *Manager) flush(topics, groups []*entry, at time.Time) {
	var idx [len(resolutions)]int64
	for i, r := range resolutions {
		idx[i] = r.index(at, m.loc)
	}
	for k, ents := range [2][]*entry{topics, groups} {
		for _, e := range ents {
			v := e.nums.value.Load()
			if d := v - e.nums.flushed; d != 0 {
				s := m.seriesOf(k, e.key)
				for i := range s.r {
					s.r[i].add(idx[i], d, resolutions[i].slots())
				}
				e.nums.flushed = v
			}
		}
	}
}

// expire drops buckets past their retention and series left empty.
func (m *Manager) expire(now time.Time) {
	for _, t := range m.series {
		for key, s := range t {
			live := false
			for i := range s.r {
				r := &resolutions[i]
				s.r[i].expire(r.index(now, m.loc) - r.retain)
				live = live || s.r[i].slots != nil
			}
			if !live {
				delete(t, key)
			}
		}
	}
}

// TopicsToday returns, per topic, the messages produced from local
// midnight up to at (clamped to now), counting the minutes that began
// before at. Topics with none are absent. at must lie within the last two
// days; older minutes are no longer kept.
func (m *Manager) TopicsToday(at time.Time) map[string]int64 { return m.today(0, at) }

// GroupsToday is TopicsToday for messages delivered, per topic@group.
func (m *Manager) GroupsToday(at time.Time) map[string]int64 { return m.today(1, at) }

func (m *Manager) today(kind int, at time.Time) map[string]int64 {
	m.state.Lock()
	defer m.state.Unlock()
	now := m.now()
	if at.After(now) {
		at = now
	}
	midnight, _ := dayStart(civilDay(at, m.loc), m.loc)
	cur := minuteIndex(now, m.loc)
	lo := max(minuteIndex(midnight, m.loc), cur-resolutions[0].retain)
	hi := minuteIndex(at, m.loc)
	if start, _ := minuteStart(hi, m.loc); start.Before(at) {
		hi++
	}
	out := map[string]int64{}
	for key, s := range m.series[kind] {
		if v := s.r[0].sum(lo, hi); v != 0 {
			out[key] = v
		}
	}
	if lo <= cur && cur < hi { // counts not flushed yet belong to this minute
		topics, groups := m.collect()
		for _, e := range [2][]*entry{topics, groups}[kind] {
			if d := e.nums.value.Load() - e.nums.flushed; d != 0 {
				out[e.key] += d
			}
		}
	}
	return out
}

// Point is one bucket of a series: Value messages in [Time, next bucket).
type Point struct {
	Time  time.Time
	Value int64
}

// Series returns the increments of one key (a topic for KindPut,
// topic@group for KindGet) per step — time.Minute, time.Hour or 24 hours
// (a local calendar day) — for the buckets from the one holding from up to
// those that begin before to. The range is clamped to now and to what is
// kept: 48 hours of minutes, 31 days of hours and 400 days of days.
func (m *Manager) Series(kind, key string, step time.Duration, from, to time.Time) ([]Point, error) {
	k, ok := kindIndex(kind)
	if !ok {
		return nil, fmt.Errorf("stats: unknown series kind %q, want %q or %q", kind, KindPut, KindGet)
	}
	ri := -1
	for i, r := range resolutions {
		if r.step == step {
			ri = i
		}
	}
	if ri < 0 {
		return nil, fmt.Errorf("stats: unsupported step %v, want 1m, 1h or 24h", step)
	}
	r := &resolutions[ri]
	m.state.Lock()
	defer m.state.Unlock()
	now := m.now()
	if to.After(now) {
		to = now
	}
	cur := r.index(now, m.loc)
	lo := max(r.index(from, m.loc), cur-r.retain)
	hi := r.index(to, m.loc)
	s := m.series[k][key]
	var partial int64
	if e := m.entryOf(k, key); e != nil {
		partial = e.nums.value.Load() - e.nums.flushed
	}
	pts := make([]Point, 0, max(0, hi-lo+1))
	for i := lo; i <= hi; i++ {
		t, ok := r.start(i, m.loc)
		if !ok || !t.Before(to) {
			continue
		}
		p := Point{Time: t}
		if s != nil {
			p.Value = s.r[ri].sum(i, i+1)
		}
		if i == cur {
			p.Value += partial
		}
		pts = append(pts, p)
	}
	return pts, nil
}

func (m *Manager) entryOf(kind int, key string) *entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if kind == 0 {
		return m.topics[key]
	}
	return m.groups[key]
}

// Calendar arithmetic. civil is t's local wall clock as seconds since
// 1970-01-01 00:00 of that clock, so local days and hours are plain
// divisions and never assume a day has 24 hours.

func civil(t time.Time, loc *time.Location) int64 {
	_, off := t.In(loc).Zone()
	return t.Unix() + int64(off)
}

func civilDay(t time.Time, loc *time.Location) int64 { return floorDiv(civil(t, loc), 86400) }
func hourIndex(t time.Time, loc *time.Location) int64 {
	return floorDiv(civil(t, loc), 3600)
}
func minuteIndex(t time.Time, _ *time.Location) int64 { return floorDiv(t.Unix(), 60) }

func minuteStart(i int64, loc *time.Location) (time.Time, bool) {
	return time.Unix(i*60, 0).In(loc), true
}

func hourStart(i int64, loc *time.Location) (time.Time, bool) {
	day := floorDiv(i, 24)
	y, mo, d := time.Unix(day*86400, 0).UTC().Date()
	t := time.Date(y, mo, d, int(i-day*24), 0, 0, 0, loc)
	return t, hourIndex(t, loc) == i
}

// dayStart is the first moment of local day i. Where clocks skip midnight
// the day begins at the change; time.Date may answer an hour early.
func dayStart(i int64, loc *time.Location) (time.Time, bool) {
	y, mo, d := time.Unix(i*86400, 0).UTC().Date()
	t := time.Date(y, mo, d, 0, 0, 0, 0, loc)
	if civilDay(t, loc) < i {
		_, t = t.ZoneBounds()
	}
	return t, civilDay(t, loc) == i
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }
