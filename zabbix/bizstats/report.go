package bizstats

import (
	"time"

	"github.com/mqops/mqops/zabbix/logparse"
)

// Figures are one key's numbers as of the report.
type Figures struct {
	Today          int64   `json:"today"`
	TodayBytes     int64   `json:"todayBytes"`
	Yesterday      int64   `json:"yesterday"`
	Minute         int64   `json:"minute"`
	MinuteBytes    int64   `json:"minuteBytes"`
	TPS            float64 `json:"tps"` // over the last minute
	FiveMin        int64   `json:"fiveMin"`
	Hour           int64   `json:"hour"` // the last clock hour
	HourBytes      int64   `json:"hourBytes"`
	Day            int64   `json:"day"` // the 24 hours before the last midnight
	SendBackToday  int64   `json:"sendBackToday,omitempty"`
	SendBackMinute int64   `json:"sendBackMinute,omitempty"`
}

func (f *Figures) add(o Figures) {
	f.Today += o.Today
	f.TodayBytes += o.TodayBytes
	f.Yesterday += o.Yesterday
	f.Minute += o.Minute
	f.MinuteBytes += o.MinuteBytes
	f.TPS += o.TPS
	f.FiveMin += o.FiveMin
	f.Hour += o.Hour
	f.HourBytes += o.HourBytes
	f.Day += o.Day
	f.SendBackToday += o.SendBackToday
	f.SendBackMinute += o.SendBackMinute
}

// Report is what `mqops-zbx stats` prints: figures per topic, per
// topic@group, per group (all its topics, retry topic included) and for
// the whole broker (Put, Get).
type Report struct {
	Day string `json:"day"` // the broker's date "today" refers to
	// Updated is the newest minute line's time (unix s) and Age how long
	// ago that was: the log stopped moving when Age grows past a minute.
	Updated int64              `json:"updated"`
	Age     int64              `json:"age"`
	Topics  map[string]Figures `json:"topics"`
	Groups  map[string]Figures `json:"groups"`
	Pairs   map[string]Figures `json:"pairs"` // by topic@group
	Put     Figures            `json:"put"`
	Get     Figures            `json:"get"`
}

// Report computes the figures as of now. Today and Yesterday follow the
// broker's calendar: after midnight with no line yet, today is 0.
func (c *Collector) Report(now time.Time) *Report {
	r := &Report{
		Topics: map[string]Figures{}, Groups: map[string]Figures{}, Pairs: map[string]Figures{},
		Updated: c.st.Newest,
	}
	if c.st.Newest > 0 {
		r.Age = max(0, now.Unix()-c.st.Newest)
	}
	// "Now" on the broker's calendar: the minute that is running.
	r.Day = civilDay(now.Add(time.Minute), c.st.Offset)
	shift := 0 // days between the counted day and today
	if c.st.Day != r.Day {
		shift = 2
		if d, err := time.Parse(time.DateOnly, c.st.Day); err == nil && d.AddDate(0, 0, 1).Format(time.DateOnly) == r.Day {
			shift = 1
		}
	}
	for k, s := range c.st.Topics {
		r.Topics[k] = c.figures(s, now, shift)
	}
	for k, s := range c.st.Groups {
		f := c.figures(s, now, shift)
		r.Pairs[k] = f
		if _, g, ok := logparse.SplitGroupKey([]byte(k)); ok {
			sum := r.Groups[string(g)]
			sum.add(f)
			r.Groups[string(g)] = sum
		}
	}
	if s := c.st.Broker[0]; s != nil {
		r.Put = c.figures(s, now, shift)
	}
	if s := c.st.Broker[1]; s != nil {
		r.Get = c.figures(s, now, shift)
	}
	return r
}

func (c *Collector) figures(s *series, now time.Time, shift int) Figures {
	var f Figures
	switch shift {
	case 0:
		f.Today, f.TodayBytes, f.SendBackToday = s.Today.Msgs, s.Today.Bytes, s.Today.SendBack
		f.Yesterday = s.Yesterday.Msgs
	case 1:
		f.Yesterday = s.Today.Msgs
	}
	n := now.Unix()
	if c.st.Newest >= n-int64(fresh/time.Second) {
		for _, m := range s.Minutes {
			if m.At == c.st.Newest {
				f.Minute, f.MinuteBytes, f.SendBackMinute = m.Msgs, m.Bytes, m.SendBack
			}
			if m.At > c.st.Newest-300 {
				f.FiveMin += m.Msgs
			}
		}
		f.TPS = float64(f.Minute) / 60
	}
	if s.Hour.At > n-3600-int64(fresh/time.Second) {
		f.Hour, f.HourBytes = s.Hour.Msgs, s.Hour.Bytes
	}
	if s.Day.At > n-86400-int64(fresh/time.Second) {
		f.Day = s.Day.Msgs
	}
	return f
}
