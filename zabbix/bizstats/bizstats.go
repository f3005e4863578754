// Package bizstats turns the broker's stats.log into the business figures
// the Zabbix templates chart: per topic, per topic@group and per group,
// messages (and bytes) produced or consumed since local midnight, in the
// last minute, the last 5 minutes, the last clock hour and the last day.
//
// stats.log is RocketMQ's only per-topic record, but it has no "since
// midnight" figure: the minute lines of our broker are exact clock-minute
// counts (package broker/stats), so the day's figure is the sum of the day's
// minute lines. A Collector reads the lines it has not seen yet (package
// logtail), adds them to its counts and saves counts and read position in
// one atomic write, so no line is counted twice or lost across the helper's
// restarts; the broker's restarts cost nothing either, since a stopping
// broker writes its partial minute.
package bizstats

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mqops/mqops/zabbix/logparse"
	"github.com/mqops/mqops/zabbix/logtail"
	"github.com/mqops/mqops/zabbix/statefile"
)

// readBudget bounds the bytes one Update reads, so a first run over a
// large log answers within the agent's timeout and goes on next time.
const readBudget = 64 << 20

// keepIdle is how long a key without lines stays in the state.
const keepIdle = 48 * time.Hour

// fresh is how old the newest minute line may be for the minute and
// 5-minute figures to count: a broker that stopped writing shows zeros.
const fresh = 150 * time.Second

// Count is a number of messages and their bytes; SendBack is only kept for
// topic@group keys.
type Count struct {
	Msgs     int64 `json:"m"`
	Bytes    int64 `json:"b"`
	SendBack int64 `json:"s,omitempty"`
}

func (c *Count) add(o Count) {
	c.Msgs += o.Msgs
	c.Bytes += o.Bytes
	c.SendBack += o.SendBack
}

// stamped is a Count for the window that ends at At (unix seconds).
type stamped struct {
	At int64 `json:"t"`
	Count
}

// series is one key's state.
type series struct {
	Today     Count     `json:"today"`
	Yesterday Count     `json:"yday"`
	Minutes   []stamped `json:"min,omitempty"` // the last 5 minute boundaries, oldest first
	Hour      stamped   `json:"hour"`
	Day       stamped   `json:"day"`
	Seen      int64     `json:"seen"` // newest line's boundary
}

// state is the saved form of a Collector.
//
// Invariants: Day is the broker's civil date (yyyy-mm-dd, its own UTC
// offset) of the minutes counted in every Today; Yesterday holds the day
// before it. Position is the log position just after the last line
// counted.
type state struct {
	Position json.RawMessage    `json:"position,omitempty"`
	Day      string             `json:"day"`
	Offset   int                `json:"offset"` // the broker's latest UTC offset, seconds
	Newest   int64              `json:"newest"` // newest minute boundary seen
	Topics   map[string]*series `json:"topics"`
	Groups   map[string]*series `json:"groups"` // by topic@group
	Broker   [2]*series         `json:"broker"` // put, get
}

// Collector is the figures of one stats.log.
type Collector struct {
	path string
	st   state
}

// Update reads the lines of logPath added since the last call and saves
// the figures in statePath, under a lock, then returns them.
func Update(logPath, statePath string) (*Collector, error) {
	f, err := statefile.Open(statePath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &Collector{path: logPath}
	if err := f.Load(&c.st); err != nil {
		return nil, err
	}
	t, err := logtail.Resume(logPath, c.st.Position, logtail.Options{})
	if err != nil {
		return nil, fmt.Errorf("%w (state %s)", err, statePath)
	}
	var read int64
	for read < readBudget {
		var line logparse.Stats
		res, err := t.Next(func(b []byte) {
			read += int64(len(b)) + 1
			if logparse.ParseStats(b, &line) {
				c.add(&line)
			}
		})
		if err != nil {
			return nil, err
		}
		if !res.More {
			break
		}
	}
	c.st.Position = t.Position()
	c.prune()
	if err := f.Save(&c.st); err != nil {
		return nil, err
	}
	return c, nil
}

// civilDay is the broker's date of the minute that ends at boundary t.
func civilDay(t time.Time, offset int) string {
	return t.Add(time.Duration(offset)*time.Second - time.Minute).UTC().Format(time.DateOnly)
}

// add counts one line.
func (c *Collector) add(l *logparse.Stats) {
	s, cnt := c.seriesOf(l)
	if s == nil {
		return
	}
	at := l.Time.Unix()
	switch l.Span {
	case logparse.Minute:
		c.st.Offset = l.Offset
		c.st.Newest = max(c.st.Newest, at)
		day := civilDay(l.Time, l.Offset)
		switch {
		case c.st.Day == "" || day > c.st.Day:
			c.rollTo(day)
		case day < c.st.Day: // an old line of a rotated file read late
			return
		}
		s.Today.add(cnt)
		s.Seen = max(s.Seen, at)
		if n := len(s.Minutes); n > 0 && s.Minutes[n-1].At == at {
			s.Minutes[n-1].add(cnt) // a stop's partial minute and the rest
			return
		}
		s.Minutes = append(s.Minutes, stamped{At: at, Count: cnt})
		if len(s.Minutes) > 5 {
			s.Minutes = append(s.Minutes[:0], s.Minutes[len(s.Minutes)-5:]...)
		}
	case logparse.Hour:
		s.Hour = merge(s.Hour, at, cnt)
	case logparse.Day:
		s.Day = merge(s.Day, at, cnt)
	}
}

// merge adds cnt to w if w ends at at, or starts a new window.
func merge(w stamped, at int64, cnt Count) stamped {
	if w.At != at {
		return stamped{At: at, Count: cnt}
	}
	w.add(cnt)
	return w
}

// seriesOf finds (or adds) the series a line feeds and what it adds.
func (c *Collector) seriesOf(l *logparse.Stats) (*series, Count) {
	var table *map[string]*series
	var cnt Count
	switch string(l.Name) {
	case "TOPIC_PUT_NUMS":
		table, cnt.Msgs = &c.st.Topics, l.Sum
	case "TOPIC_PUT_SIZE":
		table, cnt.Bytes = &c.st.Topics, l.Sum
	case "GROUP_GET_NUMS":
		table, cnt.Msgs = &c.st.Groups, l.Sum
	case "GROUP_GET_SIZE":
		table, cnt.Bytes = &c.st.Groups, l.Sum
	case "SNDBCK_PUT_NUMS":
		table, cnt.SendBack = &c.st.Groups, l.Sum
	case "BROKER_PUT_NUMS", "BROKER_GET_NUMS":
		i := 0
		if string(l.Name) == "BROKER_GET_NUMS" {
			i = 1
		}
		if c.st.Broker[i] == nil {
			c.st.Broker[i] = &series{}
		}
		return c.st.Broker[i], Count{Msgs: l.Sum}
	default:
		return nil, cnt
	}
	if table == &c.st.Groups {
		if _, _, ok := logparse.SplitGroupKey(l.Key); !ok {
			return nil, cnt
		}
	}
	if *table == nil {
		*table = map[string]*series{}
	}
	s := (*table)[string(l.Key)]
	if s == nil {
		s = &series{}
		(*table)[string(l.Key)] = s
	}
	return s, cnt
}

// rollTo starts day: today becomes yesterday if day follows it.
func (c *Collector) rollTo(day string) {
	next := ""
	if d, err := time.Parse(time.DateOnly, c.st.Day); err == nil {
		next = d.AddDate(0, 0, 1).Format(time.DateOnly)
	}
	for _, s := range c.all() {
		s.Yesterday = Count{}
		if day == next {
			s.Yesterday = s.Today
		}
		s.Today = Count{}
	}
	c.st.Day = day
}

func (c *Collector) all() []*series {
	out := make([]*series, 0, len(c.st.Topics)+len(c.st.Groups)+2)
	for _, s := range c.st.Topics {
		out = append(out, s)
	}
	for _, s := range c.st.Groups {
		out = append(out, s)
	}
	for _, s := range c.st.Broker {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// prune drops keys that have had no line for keepIdle and count nothing
// today or yesterday: deleted topics and gone groups.
func (c *Collector) prune() {
	cut := c.st.Newest - int64(keepIdle/time.Second)
	for _, t := range []map[string]*series{c.st.Topics, c.st.Groups} {
		for k, s := range t {
			if s.Seen < cut && s.Today == (Count{}) && s.Yesterday == (Count{}) {
				delete(t, k)
			}
		}
	}
}
