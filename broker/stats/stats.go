// Package stats keeps the broker's traffic statistics: Apache RocketMQ's
// windowed counters (stats.log, VIEW_BROKER_STATS_DATA, the runtime table's
// midnight snapshots and TPS) and the business statistics RocketMQ lacks —
// per topic and per consumer group counts since local midnight and
// increments per minute, hour and day — which survive a restart.
//
// # stats.log
//
// At every wall-clock minute the Manager writes one line per statistic and
// key that had traffic since the broker started (idle keys keep printing
// SUM: 0, as in RocketMQ, until they have been idle for 24 hours), at every
// local hour the hour lines and at local midnight the day lines:
//
//	2026-11-21 10:01:00,000 +0800 INFO - [TOPIC_PUT_NUMS] [OrderTopic] Stats In One Minute, SUM: 1200 TPS: 20.00 AVGPT: 1.00
//	2026-11-21 11:00:00,000 +0800 INFO - [GROUP_GET_NUMS] [OrderTopic@order_consumer] Stats In One Hour, SUM: 71800 TPS: 19.94 AVGPT: 7.44
//	2026-11-22 00:00:00,000 +0800 INFO - [BROKER_PUT_NUMS] [DefaultCluster] Stats In One Day, SUM: 1730112 TPS: 20.02 AVGPT: 0.00
//
// Every line is exactly
//
//	<yyyy-MM-dd HH:mm:ss,SSS> <±hhmm> INFO - [<NAME>] [<KEY>] Stats In One <Minute|Hour|Day>, SUM: <integer> TPS: <d.dd> AVGPT: <d.dd>
//
// The time is the boundary the line belongs to (milliseconds always 000)
// in Options.Location, with that moment's UTC offset, so a parser needs no
// time zone setting. RocketMQ prints the same text after a time without
// milliseconds or offset, always in GMT+8.
//
// Names and keys: TOPIC_PUT_NUMS and TOPIC_PUT_SIZE [topic];
// GROUP_GET_NUMS, GROUP_GET_SIZE and SNDBCK_PUT_NUMS [topic@group];
// BROKER_PUT_NUMS and BROKER_GET_NUMS [cluster name]. At one boundary the
// minute lines come first, then the hour and the day lines, each in that
// name order with keys sorted.
//
// The numbers are RocketMQ's (StatsItem): each counter is sampled every
// 10 s, every 10 min and every hour; a window of 7, 7 or 25 samples (a
// minute, an hour, 24 hours) gives SUM = the increase from its first to its
// last sample, TPS = SUM*1000/elapsed ms and AVGPT = SUM/calls (0.00 for
// BROKER_*, which count no calls), rounded half-up as Java's %.2f does.
// Unlike RocketMQ's, the samples fall on the clock's boundaries, so a
// minute line's SUM is exactly that clock minute's count and the minute
// SUMs since 00:00 add up to the day's. A stop (Close) also writes the
// minute lines of the counts since the last boundary, stamped with the
// boundary that ends that minute, so a restart loses nothing from the
// sums; a minute may then have two lines per key. The day line covers the
// last 24 hours: yesterday, except on daylight-saving days.
//
// At local midnight the Manager also logs "yesterday put message total: N"
// and "yesterday get message total: N" to Options.Log, as RocketMQ does in
// broker.log.
//
// # Persistence
//
// Window counters live in memory and restart from zero, as in RocketMQ. The
// business series, the broker totals and the midnight snapshots are saved to
// Options.Dir/stats.bin every minute and by Close, so a crash loses at most
// the last minute. Hour and day buckets are local clock hours and calendar
// days of the zone in force when they were recorded.
package stats

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"
)

// Statistic names, as in stats.log and VIEW_BROKER_STATS_DATA.
const (
	TopicPutNums  = "TOPIC_PUT_NUMS"
	TopicPutSize  = "TOPIC_PUT_SIZE"
	GroupGetNums  = "GROUP_GET_NUMS"
	GroupGetSize  = "GROUP_GET_SIZE"
	SendBackNums  = "SNDBCK_PUT_NUMS"
	BrokerPutNums = "BROKER_PUT_NUMS"
	BrokerGetNums = "BROKER_GET_NUMS"
)

// Options configure a Manager.
type Options struct {
	// Dir holds the saved statistics (<storePathRootDir>/config/stats).
	Dir string
	// ClusterName is the key of the BROKER_* statistics.
	ClusterName string
	// Out receives the stats.log lines, each Write a run of whole lines;
	// nil discards them.
	Out io.Writer
	// Log receives the midnight totals and background errors (broker.log);
	// nil discards them.
	Log *slog.Logger
	// Location sets the day and hour boundaries; nil means time.Local.
	Location *time.Location
	// Now replaces time.Now in tests.
	Now func() time.Time
}

// Manager counts traffic and keeps the statistics. Its counting methods
// are safe for concurrent use and do not allocate once a key exists.
type Manager struct {
	path    string
	cluster string
	out     io.Writer
	log     *slog.Logger
	loc     *time.Location
	now     func() time.Time

	// mu guards the key tables. Counting holds it shared, so the hourly
	// eviction, which holds it exclusively, never drops a count.
	mu        sync.RWMutex
	topics    map[string]*entry // by topic
	groups    map[string]*entry // by topic@group
	brokerPut counter
	brokerGet counter

	// state guards what ticks change: samples, series, snapshots.
	state  sync.Mutex
	last   time.Time // the latest tick, or New
	marks  marks
	series [2]map[string]*series // by kind, see kinds
	daily  daily
	tbuf   []*entry // scratch for collect
	gbuf   []*entry
	lines  []byte // scratch for stats.log lines

	saveMu sync.Mutex // serialises ticks and saves
	enc    []byte     // encode buffer, under saveMu

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// entry holds the counters of one key. Topic entries use nums and size;
// group entries also sndbck.
type entry struct {
	key        string
	nums, size counter
	sndbck     counter
	lastActive int64 // ms of the latest sample that saw a change; under Manager.state
}

// New loads the saved statistics, rolling the midnight snapshots forward
// when days have passed since they were saved.
func New(o Options) (*Manager, error) {
	if o.Dir == "" {
		return nil, errors.New("stats: empty directory")
	}
	m := &Manager{
		path:    filepath.Join(o.Dir, fileName),
		cluster: o.ClusterName,
		out:     o.Out,
		log:     o.Log,
		loc:     o.Location,
		now:     o.Now,
		topics:  map[string]*entry{},
		groups:  map[string]*entry{},
		series:  [2]map[string]*series{{}, {}},
		stop:    make(chan struct{}),
	}
	if m.out == nil {
		m.out = io.Discard
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.loc == nil {
		m.loc = time.Local
	}
	if m.now == nil {
		m.now = time.Now
	}
	now := m.now()
	m.last = now
	ms := now.UnixMilli()
	m.marks = marks{sec: ms, tenMin: ms, hour: ms}
	m.daily.day = civilDay(now, m.loc)
	if err := m.load(); err != nil {
		return nil, err
	}
	m.daily.roll(civilDay(now, m.loc))
	m.expire(now)
	return m, nil
}

// Start begins sampling and printing on the clock's 10-second boundaries.
func (m *Manager) Start() { m.wg.Go(m.run) }

// Close stops the background work, adds the counts of the current minute to
// the series, writes them to stats.log (see partialMinute) and saves. Counting still works afterwards but is not saved.
func (m *Manager) Close() error {
	m.stopOnce.Do(func() { close(m.stop) })
	m.wg.Wait()
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	m.state.Lock()
	now := m.now()
	topics, groups := m.collect()
	m.flush(topics, groups, now)
	if b := m.partialMinute(now, topics, groups); len(b) > 0 {
		if _, err := m.out.Write(b); err != nil {
			m.log.Warn("write stats.log", "err", err)
		}
	}
	m.state.Unlock()
	return m.save()
}

// TopicPut counts one send request that stored msgs messages of bytes
// bytes in total on topic: AVGPT is messages (or bytes) per request.
func (m *Manager) TopicPut(topic []byte, msgs, bytes int) {
	m.count(countPut, topic, msgs, bytes)
}

// GroupGet counts one pull that delivered msgs messages of bytes bytes in
// total from topic to group. Like RocketMQ, call it only for pulls that
// found messages: AVGPT is messages per such pull.
func (m *Manager) GroupGet(topic, group []byte, msgs, bytes int) {
	var buf [keyBuf]byte
	m.count(countGet, groupKey(buf[:0], topic, group), msgs, bytes)
}

// SendBack counts one message that group failed to consume and sent back
// to the broker, keyed topic@group with the topic the caller passes.
func (m *Manager) SendBack(topic, group []byte) {
	var buf [keyBuf]byte
	m.count(countSendBack, groupKey(buf[:0], topic, group), 1, 0)
}

// countKind says which counters a count call feeds.
type countKind int

const (
	countPut      countKind = iota // topic entry, BROKER_PUT_NUMS
	countGet                       // topic@group entry, BROKER_GET_NUMS
	countSendBack                  // topic@group entry's SNDBCK_PUT_NUMS
)

// count finds (or adds) the entry for key and adds to it. The add happens
// under mu so that eviction, which takes mu exclusively, never drops an
// entry between its look-up and the add. Existing keys take only the
// shared lock and allocate nothing.
func (m *Manager) count(kind countKind, key []byte, msgs, bytes int) {
	m.mu.RLock()
	if e := m.table(kind)[string(key)]; e != nil {
		m.add(kind, e, msgs, bytes)
		m.mu.RUnlock()
		return
	}
	m.mu.RUnlock()
	m.mu.Lock()
	m.add(kind, create(m.table(kind), key), msgs, bytes)
	m.mu.Unlock()
}

func (m *Manager) table(kind countKind) map[string]*entry {
	if kind == countPut {
		return m.topics
	}
	return m.groups
}

func (m *Manager) add(kind countKind, e *entry, msgs, bytes int) {
	switch kind {
	case countPut:
		e.nums.add(msgs)
		e.size.add(bytes)
		m.brokerPut.value.Add(int64(msgs))
	case countGet:
		e.nums.add(msgs)
		e.size.add(bytes)
		m.brokerGet.value.Add(int64(msgs))
	case countSendBack:
		e.sndbck.add(1)
	}
}

// keyBuf holds topic@group on the stack up to RocketMQ's longest: a
// 262-byte retry topic, '@' and a 255-byte group. Longer keys allocate.
const keyBuf = 520

func groupKey(buf, topic, group []byte) []byte {
	buf = append(buf, topic...)
	buf = append(buf, '@')
	return append(buf, group...)
}

// create returns t's entry for key, adding it if absent; the caller holds
// mu exclusively.
func create(t map[string]*entry, key []byte) *entry {
	if e := t[string(key)]; e != nil {
		return e
	}
	e := &entry{key: string(key)}
	t[e.key] = e
	return e
}

// Snapshot is one statistic's windows, VIEW_BROKER_STATS_DATA's body.
type Snapshot struct {
	Minute, Hour, Day Window
}

// View returns the windows of a statistic as RocketMQ computes them (see
// the package comment); false if the key has had no traffic since the
// broker started or was evicted as idle.
func (m *Manager) View(name, key string) (Snapshot, bool) {
	c := m.lookup(name, key)
	if c == nil {
		return Snapshot{}, false
	}
	m.state.Lock()
	defer m.state.Unlock()
	if c.sec == nil && c.value.Load() == 0 && c.times.Load() == 0 {
		return Snapshot{}, false
	}
	return Snapshot{Minute: c.minute(), Hour: c.hour(), Day: c.day()}, true
}

func (m *Manager) lookup(name, key string) *counter {
	m.mu.RLock()
	defer m.mu.RUnlock()
	switch name {
	case BrokerPutNums, BrokerGetNums:
		if key != m.cluster {
			return nil
		}
		if name == BrokerPutNums {
			return &m.brokerPut
		}
		return &m.brokerGet
	}
	for _, s := range entryStats {
		if s.name != name {
			continue
		}
		t := m.topics
		if s.groups {
			t = m.groups
		}
		if e := t[key]; e != nil {
			return s.pick(e)
		}
	}
	return nil
}

// RuntimeTotals are the GET_BROKER_RUNTIME_INFO figures: message totals
// now and at the last two local midnights (msgPutTotalTodayNow,
// msgPutTotalTodayMorning, msgPutTotalYesterdayMorning and the Get ones),
// and put and delivered-message rates over the last 10 s, 60 s and 600 s
// (putTps and getTransferedTps print these three, space separated). The
// totals survive restarts; "today" is TodayNow − TodayMorning, "yesterday"
// TodayMorning − YesterdayMorning.
type RuntimeTotals struct {
	PutTotalTodayNow, PutTotalTodayMorning, PutTotalYesterdayMorning int64
	GetTotalTodayNow, GetTotalTodayMorning, GetTotalYesterdayMorning int64
	PutTPS, GetTPS                                                   [3]float64
}

// Runtime returns the broker-wide totals and rates.
func (m *Manager) Runtime() RuntimeTotals {
	m.state.Lock()
	defer m.state.Unlock()
	d := &m.daily
	return RuntimeTotals{
		PutTotalTodayNow:         d.putBase + m.brokerPut.value.Load(),
		PutTotalTodayMorning:     d.putMorning,
		PutTotalYesterdayMorning: d.putYesterday,
		GetTotalTodayNow:         d.getBase + m.brokerGet.value.Load(),
		GetTotalTodayMorning:     d.getMorning,
		GetTotalYesterdayMorning: d.getYesterday,
		PutTPS:                   m.brokerPut.rates(),
		GetTPS:                   m.brokerGet.rates(),
	}
}

// daily holds the broker totals and their midnight snapshots.
type daily struct {
	day              int64 // civil day the morning snapshots belong to
	putBase, getBase int64 // totals of earlier runs
	putMorning       int64 // totals at the start of day
	getMorning       int64
	putYesterday     int64 // totals at the start of the day before
	getYesterday     int64
}

// rollTo moves the snapshots to day, given the totals at its midnight; it
// returns yesterday's put and get counts and whether day was a new day.
func (d *daily) rollTo(day, put, get int64) (yPut, yGet int64, ok bool) {
	if day <= d.day {
		return 0, 0, false
	}
	if day == d.day+1 {
		d.putYesterday, d.getYesterday = d.putMorning, d.getMorning
	} else { // no traffic on the missed days
		d.putYesterday, d.getYesterday = put, get
	}
	d.putMorning, d.getMorning, d.day = put, get, day
	return put - d.putYesterday, get - d.getYesterday, true
}

// roll is rollTo at load time: nothing was counted since the save, so the
// saved totals are the totals at midnight.
func (d *daily) roll(day int64) {
	d.rollTo(day, d.putBase, d.getBase)
}
