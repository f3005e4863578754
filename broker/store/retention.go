package store

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Disk pressure. Java (apache/rocketmq store/src/main/java/org/apache/
// rocketmq/store/DefaultMessageStore.java, CleanCommitLogService.
// isSpaceToDelete) marks the disk full above diskSpaceWarningLevelRatio
// (W, 90) and OK again at or below diskSpaceCleanForciblyRatio (C, 85),
// checked every cleanResourceInterval (10 s); with cleanFileForciblyEnable
// (true) it deletes the oldest files regardless of age or consumption above
// C, while a new 1 GiB segment can add several percent at once: a busy
// broker becomes a ring buffer that drops messages nobody has read. Here,
// with F = DiskMaxUsedSpaceRatio (10..95):
//
//   - the disk is marked full, and appends refused, once the usage of the
//     commit-log file system counting the segment a roll is about to
//     preallocate, or of the consume-queue file system, is above W: checked
//     before every new segment and every RetentionInterval
//     (cleanResourceInterval). It is marked OK again once both are at or
//     below C, the commit log's counting one segment (hysteresis). Each
//     transition is logged once, with Java's words; the refusals are
//     logged on the first and every notWritableLogEvery-th.
//   - segments are preallocated (fileutil.OpenMapped), so once a segment
//     exists its appends cannot meet ENOSPC; a roll that does (the check
//     raced other writers) marks the disk full like the check does.
//   - above F %, or when usage plus one segment passes C %, the oldest
//     segments whose messages every consumer has read (SetConsumedOffsets)
//     go regardless of age, so a broker whose consumers keep up keeps
//     accepting appends; a segment still holding unconsumed messages stops
//     this and is reported once;
//   - with CleanFileForcibly (the default), above max(F, W + diskForceMargin) %
//     the oldest segments go regardless of consumption: the broker's own
//     appends stop at W, so only growth it does not control (other files)
//     gets there; unconsumed messages removed then are logged at WARN with
//     counts. Without it they never go before they expire. This is the
//     deliberate deviation from Java, which deletes them above C.
//   - segments older than FileReservedTime go in the DeleteWhen hours
//     (routine expiry, INFO), read or not, as in Java.
const (
	// diskForceMargin is how far above W usage must be before unread
	// segments are deleted: consume-queue and index files the dispatcher
	// creates after appends stopped must not be what triggers it.
	diskForceMargin = 2
	// notWritableLogEvery spaces the lines of refused appends (Java's
	// DefaultMessageStore.putMessage logs every 50000th).
	notWritableLogEvery = 50000
	// appendErrorLogInterval spaces the lines of repeated append failures.
	appendErrorLogInterval = 10 * time.Second
	// unconsumedQueuesLogged bounds the queues named in one log line.
	unconsumedQueuesLogged = 10
)

// ErrDiskFull matches (errors.Is) the reason NotWritable gives while disk
// pressure refuses appends.
var ErrDiskFull = errors.New("disk full")

// forceAbove is the usage percentage above which retention deletes
// unconsumed data (+Inf: never).
func (c *Config) forceAbove() float64 {
	if c.CleanFileForcibly != nil && !*c.CleanFileForcibly {
		return math.Inf(1)
	}
	return float64(max(c.DiskMaxUsedSpaceRatio, c.DiskSpaceWarningLevelRatio+diskForceMargin))
}

// diskSpace returns the used and total bytes of the file system holding
// dir, as df computes them (space reserved for root counts as
// unavailable).
func diskSpace(dir string) (used, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := uint64(st.Bsize)
	used = (st.Blocks - st.Bfree) * bs
	return used, used + st.Bavail*bs, nil
}

func percent(part, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(part) / float64(total) * 100
}

// round1 rounds a percentage for log lines.
func round1(p float64) float64 { return math.Round(p*10) / 10 }

// checkDiskLocked marks the disk full when the commit-log file system's
// usage plus need bytes (a segment about to be created, or 0), or the
// consume-queue file system's, is above the warning level, marks it OK at
// or below the clean level, and reports whether appends are accepted. An
// unreadable usage changes nothing: creating a segment still fails cleanly
// on a full disk. Caller holds s.mu.
func (s *Store) checkDiskLocked(need int64) bool {
	warn, clean := float64(s.cfg.DiskSpaceWarningLevelRatio), float64(s.cfg.DiskSpaceCleanForciblyRatio)
	clUsed, clTotal, err := s.diskUsage(s.cfg.CommitLogDir)
	clKnown := err == nil && clTotal > 0
	cqUsed, cqTotal, err := s.diskUsage(s.cqDir)
	cqKnown := err == nil && cqTotal > 0
	cl, cq := percent(clUsed, clTotal), percent(cqUsed, cqTotal)
	if s.diskFull.Load() {
		if (!clKnown || percent(clUsed+uint64(s.segSize), clTotal) <= clean) && (!cqKnown || cq <= clean) && (clKnown || cqKnown) {
			s.diskFull.Store(false)
			s.log.Info(fmt.Sprintf("[DISK_FULL] physic disk space OK %.2f, so mark disk ok, storePathPhysic=%s", cl/100, s.cfg.CommitLogDir),
				"usedPercent", round1(cl), "consumeQueueUsedPercent", round1(cq), "cleanForciblyPercent", s.cfg.DiskSpaceCleanForciblyRatio)
		}
		return !s.diskFull.Load()
	}
	if p := percent(clUsed+uint64(need), clTotal); clKnown && p > warn {
		s.setDiskFullLocked(fmt.Sprintf("[DISK_FULL] physic disk maybe full soon %.2f, so mark disk full, storePathPhysic=%s", p/100, s.cfg.CommitLogDir),
			nil, "usedPercent", round1(cl), "withNextSegmentPercent", round1(p))
	} else if cqKnown && cq > warn {
		s.setDiskFullLocked(fmt.Sprintf("[DISK_FULL] logics disk maybe full soon %.2f, so mark disk full, storePathLogics=%s", cq/100, s.cqDir),
			nil, "consumeQueueUsedPercent", round1(cq))
	}
	return !s.diskFull.Load()
}

// setDiskFullLocked starts refusing appends, logs it with the message msg
// (tagged [DISK_FULL]) and attributes args, and wakes retention to reclaim consumed segments.
// Caller holds s.mu.
func (s *Store) setDiskFullLocked(msg string, err error, args ...any) {
	if s.diskFull.Swap(true) {
		return
	}
	s.refusedAppends.Store(0)
	args = append(args, "warningLevelPercent", s.cfg.DiskSpaceWarningLevelRatio, "cleanForciblyPercent", s.cfg.DiskSpaceCleanForciblyRatio)
	if err != nil {
		args = append(args, "err", err)
	}
	s.log.Error(msg+"; refusing appends until usage is back at or below the clean level", args...)
	select {
	case s.retentionWake <- struct{}{}:
	default:
	}
}

// refuseFullLocked counts an append refused because the disk is full and
// logs Java's line for the first and every notWritableLogEvery-th.
// Caller holds s.mu.
func (s *Store) refuseFullLocked() {
	if n := s.refusedAppends.Add(1); n%notWritableLogEvery == 1 {
		s.log.Warn("[DISK_FULL] the message store is not writable. It may be caused by one of the following reasons: "+
			"the broker's disk is full, write to logic queue error, write to index file error, etc", "refusedSinceDiskFull", n)
	}
}

// logDiskPolicy states the disk-full levels at start, and how mqops
// departs from RocketMQ's cleanFileForciblyEnable.
func (s *Store) logDiskPolicy() {
	c := &s.cfg
	unread := fmt.Sprintf("only above %.0f%% (cleanFileForciblyEnable=true), which the broker's own appends do not reach", c.forceAbove())
	if math.IsInf(c.forceAbove(), 1) {
		unread = "never (cleanFileForciblyEnable=false): they go when fileReservedTime expires them"
	}
	s.log.Info(fmt.Sprintf("[DISK] appends are refused above %d%% disk use (diskSpaceWarningLevelRatio) and accepted again at or below %d%% "+
		"counting the next commit-log segment (diskSpaceCleanForciblyRatio), checked every %v (cleanResourceInterval) and before each new segment; "+
		"segments every consumer group has read are deleted early above %d%% (diskMaxUsedSpaceRatio) or when the next segment would pass %d%%; unlike RocketMQ, which deletes "+
		"unread messages above %d%%, segments holding unread messages are deleted %s",
		c.DiskSpaceWarningLevelRatio, c.DiskSpaceCleanForciblyRatio, c.RetentionInterval, c.DiskMaxUsedSpaceRatio,
		c.DiskSpaceCleanForciblyRatio, c.DiskSpaceCleanForciblyRatio, unread))
}

// NotWritable returns why appends are refused, nil when they are not: the
// store's Failure, an error matching ErrDiskFull, or ErrClosed.
func (s *Store) NotWritable() error {
	if f := s.failure.Load(); f != nil {
		return f
	}
	if s.Role() != RoleMaster {
		return ErrSlave
	}
	if s.diskFull.Load() {
		return fmt.Errorf("%w: disk use of the commit log (%s) or consume queues passed %d%% (diskSpaceWarningLevelRatio); appends resume "+
			"by themselves at or below %d%% (diskSpaceCleanForciblyRatio) counting the next segment, once consumed or expired data is deleted or space is freed",
			ErrDiskFull, s.cfg.CommitLogDir, s.cfg.DiskSpaceWarningLevelRatio, s.cfg.DiskSpaceCleanForciblyRatio)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return nil
}

// SetConsumedOffsets sets how retention learns what has been consumed:
// fn returns the lowest offset of the queue that some consumer still has
// to read (the minimum committed offset over the groups consuming it), and
// tracked=false for queues no consumer reads (system queues with their own
// bookkeeping, dead letters): their messages never count as unconsumed.
// Without it every message counts as unconsumed. fn runs on the retention
// goroutine and must not call into the store's append path.
func (s *Store) SetConsumedOffsets(fn func(topic string, queueID int32) (offset int64, tracked bool)) {
	s.consumed.Store(&fn)
}

// retentionLoop runs RunRetention every RetentionInterval, and at once
// when appends start being refused.
func (s *Store) retentionLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.retentionWake:
		}
		s.RunRetention()
	}
}

// RunRetention deletes commit-log segments (never the active one, never
// data not yet dispatched or flushed, at most maxDeletesPerRun per run) by
// the rules at the top of this file, then the consume-queue and index files
// that only point into them, and refreshes the append refusal.
func (s *Store) RunRetention() {
	s.retentionMu.Lock()
	defer s.retentionMu.Unlock()

	now := s.cfg.Now()
	inWindow := slices.Contains(s.cfg.DeleteWhen, now.Hour())
	force := s.cfg.forceAbove()
	reclaimAbove := float64(s.cfg.DiskMaxUsedSpaceRatio)
	cleanAt := float64(s.cfg.DiskSpaceCleanForciblyRatio)

	deleted := 0
	usage := -1.0
	for deleted < maxDeletesPerRun {
		s.mu.Lock()
		s.checkDiskLocked(0)
		used, total, err := s.diskUsage(s.cfg.CommitLogDir)
		s.mu.Unlock()
		known := err == nil && total > 0
		if err != nil {
			s.log.Warn("[RETENTION] cannot read disk usage", "err", err)
		}
		usage = percent(used, total)
		seg := s.oldestRemovable()
		if seg == nil {
			break
		}
		reason := ""
		switch {
		case known && usage > force:
			reason = "forced"
		case inWindow:
			old, err := s.expired(seg, now)
			if err != nil {
				s.log.Error("[RETENTION] cannot check segment age", "err", err)
			} else if old {
				reason = "expired"
			}
		}
		pressure := known && (usage > reclaimAbove || percent(used+uint64(s.segSize), total) > cleanAt)
		if !pressure {
			s.reclaimStuck = -1
		} else if reason == "" {
			// Under pressure consumed data goes first, whatever its age.
			if n, qs := s.unconsumedIn(seg.base, seg.base+s.segSize); n > 0 {
				s.reportStuck(seg, n, qs, usage)
			} else {
				reason = "reclaimed"
			}
		}
		if reason == "" {
			break
		}
		var unconsumed int64
		var qs []queueCount
		if reason == "forced" {
			unconsumed, qs = s.unconsumedIn(seg.base, seg.base+s.segSize)
		}
		if ok, err := s.removeSegment(seg); err != nil {
			s.log.Error("[RETENTION] deleting commitlog segment failed", "err", err)
			break
		} else if !ok {
			break
		}
		deleted++
		if unconsumed > 0 {
			s.log.Warn("[RETENTION] disk almost full: deleted a segment holding unconsumed messages", "path", seg.path,
				"unconsumed", unconsumed, "queues", formatQueueCounts(qs), "diskUsedPercent", round1(usage),
				"forcedAbovePercent", force)
		} else {
			s.log.Info("[RETENTION] deleted commitlog segment", "path", seg.path, "reason", reason, "diskUsedPercent", round1(usage))
		}
	}
	s.mu.Lock()
	s.checkDiskLocked(0)
	s.mu.Unlock()
	if deleted == 0 {
		return
	}
	minPhy := s.MinPhyOffset()
	files := 0
	for _, cq := range s.cqs.all() {
		n, err := cq.trim(minPhy)
		files += n
		if err != nil {
			s.log.Error("[RETENTION] trimming consume queue failed", "topic", cq.topic, "queueId", cq.qid, "err", err)
		}
	}
	// Index files whose entries all point into removed segments go too.
	indexFiles := s.trimIndex(minPhy)
	s.log.Info("[RETENTION] deleted old data", "segments", deleted, "consumeQueueFiles", files,
		"indexFiles", indexFiles, "minPhyOffset", minPhy, "diskUsedPercent", round1(usage))
}

// oldestRemovable returns the first segment if retention may remove it:
// it is not the active one and the consume queues and the flushed mark
// moved past it.
func (s *Store) oldestRemovable() *mmapFile {
	s.clog.mu.RLock()
	defer s.clog.mu.RUnlock()
	if len(s.clog.segs) < 2 {
		return nil
	}
	seg := s.clog.segs[0]
	if seg.base+s.segSize > min(s.dispatched.Load(), s.flushed.Load()) {
		return nil
	}
	return seg
}

// expired reports whether seg is older than FileReservedTime.
func (s *Store) expired(seg *mmapFile, now time.Time) (bool, error) {
	st, err := os.Stat(seg.path)
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", seg.path, err)
	}
	return now.Sub(st.ModTime()) >= s.cfg.FileReservedTime, nil
}

// removeSegment takes seg, which must still be the first segment, out of
// the list and deletes its file.
func (s *Store) removeSegment(seg *mmapFile) (bool, error) {
	s.clog.mu.Lock()
	if len(s.clog.segs) < 2 || s.clog.segs[0] != seg {
		s.clog.mu.Unlock()
		return false, nil
	}
	s.clog.segs = s.clog.segs[1:]
	s.clog.mu.Unlock()

	// Readers still holding it keep the mapping until they release it;
	// unlinking a mapped file is fine.
	err := os.Remove(seg.path)
	seg.release()
	if err != nil {
		return true, fmt.Errorf("remove %s: %w", seg.path, err)
	}
	return true, nil
}

// reportStuck logs once per segment that pressure cannot reclaim it.
func (s *Store) reportStuck(seg *mmapFile, n int64, qs []queueCount, usage float64) {
	if s.reclaimStuck == seg.base {
		return
	}
	s.reclaimStuck = seg.base
	s.log.Warn("[RETENTION] disk under pressure but the oldest segment holds unconsumed messages: keeping it until they are consumed or expire",
		"path", seg.path, "unconsumed", n, "queues", formatQueueCounts(qs), "diskUsedPercent", round1(usage))
}

// queueCount is a number of messages of one queue.
type queueCount struct {
	topic string
	qid   int32
	n     int64
}

// unconsumedIn counts the messages with records in [from, to) that a
// consumer has yet to read, per queue (most first) and in total.
func (s *Store) unconsumedIn(from, to int64) (int64, []queueCount) {
	hook := s.consumed.Load()
	var total int64
	var qs []queueCount
	for _, cq := range s.cqs.all() {
		var consumed int64
		if hook != nil {
			off, tracked := (*hook)(cq.topic, cq.qid)
			if !tracked {
				continue
			}
			consumed = off
		}
		lo := max(cq.offsetAtPhy(from), consumed)
		if hi := cq.offsetAtPhy(to); hi > lo {
			total += hi - lo
			qs = append(qs, queueCount{cq.topic, cq.qid, hi - lo})
		}
	}
	sort.Slice(qs, func(i, j int) bool {
		if qs[i].n != qs[j].n {
			return qs[i].n > qs[j].n
		}
		return qs[i].topic < qs[j].topic || qs[i].topic == qs[j].topic && qs[i].qid < qs[j].qid
	})
	return total, qs
}

// offsetAtPhy returns the first queue offset whose record starts at or
// after physical offset p (the queue's max offset if none does). Units in
// [min, max) ascend by physical offset.
func (cq *consumeQueue) offsetAtPhy(p int64) int64 {
	lo, hi := cq.min.Load(), cq.max.Load()
	if hi <= lo {
		return hi
	}
	return lo + int64(sort.Search(int(hi-lo), func(i int) bool {
		u, ok := cq.unitAt(lo + int64(i))
		return !ok || u.phys >= p
	}))
}

// formatQueueCounts renders the largest counts as "topic/queueId=n ...".
func formatQueueCounts(qs []queueCount) string {
	var b strings.Builder
	for i, q := range qs {
		if i == unconsumedQueuesLogged {
			fmt.Fprintf(&b, " (+%d more queues)", len(qs)-i)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(q.topic)
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(int(q.qid)))
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(q.n, 10))
	}
	return b.String()
}

// SetRetention changes the retention settings of a running store (mqadmin
// updateBrokerConfig): they are only read by RunRetention, under the same
// lock, so the next run applies them.
func (s *Store) SetRetention(fileReserved time.Duration, deleteWhen []int, diskMaxUsedSpaceRatio int) {
	s.retentionMu.Lock()
	defer s.retentionMu.Unlock()
	s.cfg.FileReservedTime = fileReserved
	s.cfg.DeleteWhen = slices.Clone(deleteWhen)
	s.cfg.DiskMaxUsedSpaceRatio = diskMaxUsedSpaceRatio
}
