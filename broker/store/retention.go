package store

import (
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// diskUsagePercent returns how full the file system holding dir is, as df
// computes it (space reserved for root counts as unavailable).
func diskUsagePercent(dir string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	used := float64(st.Blocks - st.Bfree)
	total := used + float64(st.Bavail)
	if total <= 0 {
		return 0, nil
	}
	return used / total * 100, nil
}

// RunRetention deletes old commit-log segments and the consume-queue files
// that only point into them:
//   - segments whose mtime is older than FileReservedTime, when the
//     current hour is in DeleteWhen;
//   - the oldest segments regardless of age while disk usage is above
//     DiskMaxUsedSpaceRatio.
//
// Never the active (last) segment, and never data not yet dispatched or
// flushed, at most maxDeletesPerRun segments per run. It also refuses
// appends while usage is above diskFullRatio.
func (s *Store) RunRetention() {
	s.retentionMu.Lock()
	defer s.retentionMu.Unlock()

	usage, err := s.diskUsage()
	if err != nil {
		s.log.Warn("[RETENTION] cannot read disk usage", "err", err)
	}
	s.updateDiskFull(usage)
	now := s.cfg.Now()
	inWindow := slices.Contains(s.cfg.DeleteWhen, now.Hour())

	deleted := 0
	for deleted < maxDeletesPerRun {
		force := usage > float64(s.cfg.DiskMaxUsedSpaceRatio)
		ok, err := s.deleteOldestSegment(now, inWindow, force)
		if err != nil {
			s.log.Error("[RETENTION] deleting commitlog segment failed", "err", err)
			break
		}
		if !ok {
			break
		}
		deleted++
		if force {
			if usage, err = s.diskUsage(); err != nil {
				break
			}
		}
	}
	if deleted == 0 {
		return
	}
	s.updateDiskFull(usage)
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
	s.log.Info("[RETENTION] deleted expired data", "segments", deleted, "consumeQueueFiles", files,
		"indexFiles", indexFiles, "minPhyOffset", minPhy, "diskUsedPercent", usage)
}

// deleteOldestSegment removes the first segment if the rules allow it.
func (s *Store) deleteOldestSegment(now time.Time, inWindow, force bool) (bool, error) {
	if !inWindow && !force {
		return false, nil
	}
	s.clog.mu.RLock()
	if len(s.clog.segs) < 2 {
		s.clog.mu.RUnlock()
		return false, nil
	}
	seg := s.clog.segs[0]
	s.clog.mu.RUnlock()

	// Consume queues and the flushed mark must have moved past it.
	if seg.base+s.segSize > min(s.dispatched.Load(), s.flushed.Load()) {
		return false, nil
	}
	if !force {
		st, err := os.Stat(seg.path)
		if err != nil {
			return false, fmt.Errorf("stat %s: %w", seg.path, err)
		}
		if now.Sub(st.ModTime()) < s.cfg.FileReservedTime {
			return false, nil
		}
	}

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
	s.log.Info("[RETENTION] deleted commitlog segment", "path", seg.path, "forced", force)
	return true, nil
}

// updateDiskFull refuses or re-allows appends by disk usage.
func (s *Store) updateDiskFull(usage float64) {
	full := usage >= diskFullRatio
	if s.diskFull.Swap(full) != full {
		if full {
			s.log.Error("[DISK_FULL] disk usage above limit, refusing appends", "usedPercent", usage, "limit", diskFullRatio)
		} else {
			s.log.Info("[DISK_FULL] disk usage back below limit, accepting appends", "usedPercent", usage)
		}
	}
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
