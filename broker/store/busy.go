package store

import "time"

// Busy reports how long the commit-log work in progress has run: the
// append holding the append lock, and in SYNC_FLUSH mode (where every
// sender waits for it) the commit-log sync. 0 when nothing runs. It is
// Java's DefaultMessageStore.isOSPageCacheBusy measure (now minus
// CommitLog.beginTimeInLock, apache/rocketmq
// store/src/main/java/org/apache/rocketmq/store/DefaultMessageStore.java),
// extended to the sync because a stalled disk shows there first when
// appends go to the page cache.
func (s *Store) Busy(now time.Time) time.Duration {
	since := s.appendSince.Load()
	if s.cfg.FlushMode == SyncFlush {
		if f := s.flushSince.Load(); f != 0 && (since == 0 || f < since) {
			since = f
		}
	}
	if since == 0 {
		return 0
	}
	// Java ignores differences of 10 000 000 ms and more (a clock jump).
	d := now.UnixMilli() - since
	if d <= 0 || d >= 10_000_000 {
		return 0
	}
	return time.Duration(d) * time.Millisecond
}
