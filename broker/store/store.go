// Package store is the broker's message store: one append-only commit log
// of pre-sized, mmap'd segment files holding records in the RocketMQ stored
// layout (apache/rocketmq store/src/main/java/org/apache/rocketmq/store/CommitLog.java),
// per-queue consume queues of 20-byte units (ConsumeQueue.java there) built
// by a dispatcher that follows the log (DefaultMessageStore's
// ReputMessageService in Java), flushing (async or group-commit
// sync), a checkpoint, crash recovery and time/space based retention.
//
// Offsets: a physical offset is a byte position in the commit log; a queue
// offset is a unit index in one (topic, queueId) consume queue.
//
// Invariants (each file states the ones it relies on):
//   - maxPhy is published with an atomic store after the bytes are
//     written. complete ≤ maxPhy is a record boundary: every byte below it
//     is a complete record or blank filler. On a master (Put) complete ==
//     maxPhy; on a slave (AppendAt, replica.go) maxPhy may be inside a
//     record whose rest has not arrived yet. Bytes of the active segment
//     at or after the write position (== maxPhy) are zero.
//   - dispatched ≤ complete, and every record below dispatched has its
//     consume-queue unit written. The dispatcher's scan cursor may be
//     ahead of it while a queue is blocked (dispatch.go). With the confirm
//     gate on, dispatched stays at or below the confirm offset.
//   - flushed ≤ complete, and every commit-log byte below flushed is durable.
//   - the checkpoint's dispatched offset D is one for which every unit of
//     every record below D is durable; its flushed offset P ≤ flushed.
//   - the known damaged ranges (corrupt.go) are sorted and disjoint, and
//     only grow; no record in one is served, dispatched or indexed.
//   - a record is served only after its CRC passed: records at or above
//     verifiedFrom were checked by recovery or written by this process,
//     those below scrubbed by the scrub; others are checked when read.
//   - after a failed fsync of durable state (flush.go, Failure) flushed and
//     the checkpoint never move again and appends are refused: the kernel
//     may have dropped the dirty pages, so a later fsync that succeeds
//     proves nothing. Only a restart (recovery) makes the store writable.
//   - the consume-queue manifest (cqmanifest.go) lists every queue with
//     units of records below the checkpoint's D, and every unit below an
//     entry's max is durable.
//   - the checkpoint's offsets and the manifest's maxes only grow, except
//     in TruncateTo (replica.go), which lowers them after cutting the log
//     and its queues, under a durable "truncating" marker that recovery
//     obeys first: nothing at or past a truncation point is served again.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/fileutil"
	"github.com/mqops/mqops/wire"
)

// FlushMode selects how appends are made durable.
type FlushMode int

const (
	// AsyncFlush syncs the commit log every FlushInterval.
	AsyncFlush FlushMode = iota
	// SyncFlush lets senders wait for an fsync (group commit, WaitFlushed).
	SyncFlush
)

// Config configures a Store. Zero fields take the defaults noted.
type Config struct {
	RootDir           string        // consumequeue/, checkpoint, abort, lock live here
	CommitLogDir      string        // default RootDir/commitlog
	SegmentSize       int64         // commit-log file size, default 1 GiB
	CQUnitsPerFile    int           // consume-queue units per file, default 300000
	FlushMode         FlushMode     // default AsyncFlush
	FlushInterval     time.Duration // async flush period, default 500ms
	CQFlushInterval   time.Duration // consume-queue and index flush period, default 1s
	RetentionInterval time.Duration // period of the retention pass and the disk-full check (cleanResourceInterval), default 10s
	SyncFlushTimeout  time.Duration // default 5s
	// WarmSegments (warmMapedFileEnable): a SyncFlush master keeps the
	// commit log zero-written ahead of its appends (warm.go).
	WarmSegments          bool
	FileReservedTime      time.Duration // default 72h
	DeleteWhen            []int         // hours of day when expired segments may be deleted, default {4}
	DiskMaxUsedSpaceRatio int           // percent, default 75; above it consumed segments go regardless of age (retention.go)
	MaxMessageSize        int           // body limit, default 4 MiB
	StoreHost             []byte        // raw host written into every record (8-byte IPv4 form), default 0.0.0.0:0
	Logger                *slog.Logger  // default slog.Default()
	Now                   func() time.Time

	// DiskSpaceWarningLevelRatio (percent, default 90): above it appends
	// are refused. DiskSpaceCleanForciblyRatio (percent, default 85, at
	// most the warning level): they are accepted again at or below it.
	// CleanFileForcibly (nil: true) lets retention delete segments holding
	// unread messages when the disk stays full anyway (retention.go).
	DiskSpaceWarningLevelRatio  int
	DiskSpaceCleanForciblyRatio int
	CleanFileForcibly           *bool

	// TagsCode, when set, computes the consume-queue tags code of a record
	// instead of DefaultTagsCode (e.g. the delivery time for
	// SCHEDULE_TOPIC_XXXX, as Java's CommitLog.checkMessageAndReturnSize
	// computes it).
	TagsCode func(rec wire.RecordView) int64

	// Index files (Java's IndexFile layout, see index.go) under
	// RootDir/index, for QueryIndex. A file takes 40 + IndexSlots×4 + IndexEntries×20 bytes,
	// reserved at creation (420 MB with the defaults).
	MessageIndexEnable *bool // nil means true (Java messageIndexEnable)
	IndexSlots         int   // hash slots per file, default 5000000 (Java maxHashSlotNum)
	IndexEntries       int   // entries per file, default 20000000 (Java maxIndexNum)

	// AcceptDataLoss lets Open start although the checkpoint or the consume
	// queues vouch for commit-log data that is not there (a deleted or
	// truncated segment, an empty CommitLogDir): what is missing is logged
	// at WARN and discarded. Without it Open refuses with an error naming
	// the directory. It is meant for one start, after an operator looked.
	AcceptDataLoss bool
	// ScrubRate is how many bytes per second the background scrub reads to
	// verify the segments recovery did not check (scrub.go); default
	// 16 MiB/s, negative: no scrub. ScrubDelay is how long after Open it
	// starts (default 1 minute, out of the way of consumers catching up).
	ScrubRate  int64
	ScrubDelay time.Duration
	// ConfirmGate opens the store with the confirm gate on (controller
	// mode, EnableConfirmGate), at the checkpoint's dispatched offset:
	// records not dispatched before the restart stay invisible to
	// consumers and queries until SetConfirmOffset says they are
	// replicated, so that none that a failover truncates is ever seen.
	ConfirmGate bool
	// LightQueues turns multi-dispatch into light message queues on (Java's
	// enableLmq with enableMultiDispatch, lmq.go). MaxLightQueues
	// (maxLmqConsumeQueueNum, default 20000) caps how many exist.
	LightQueues    bool
	MaxLightQueues int
	// FsyncFault is fault injection for tests: when set, it runs before
	// every fsync of durable state with the file's path, and an error it
	// returns fails that fsync. nil in production.
	FsyncFault func(path string) error
}

const (
	defaultSegmentSize    = 1 << 30
	defaultCQUnitsPerFile = 300000
	defaultScrubRate      = 16 << 20
	defaultScrubDelay     = time.Minute
	defaultMaxLightQueues = 20000
	cqUnitSize            = 20

	dispatchPoll = 100 * time.Millisecond
	// maxDeletesPerRun bounds the segments one retention pass removes
	// (Java DELETE_FILES_BATCH_MAX).
	maxDeletesPerRun = 10
)

func (c *Config) setDefaults() error {
	if c.RootDir == "" {
		return errors.New("store: RootDir is required")
	}
	if c.CommitLogDir == "" {
		c.CommitLogDir = filepath.Join(c.RootDir, "commitlog")
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = defaultSegmentSize
	}
	// Blank fillers carry the remaining size in an int32.
	if c.SegmentSize < 4096 || c.SegmentSize > 1<<31-1 {
		return fmt.Errorf("store: SegmentSize %d out of range [4096, 2^31)", c.SegmentSize)
	}
	if c.CQUnitsPerFile == 0 {
		c.CQUnitsPerFile = defaultCQUnitsPerFile
	}
	if c.CQUnitsPerFile < 1 {
		return fmt.Errorf("store: CQUnitsPerFile %d must be positive", c.CQUnitsPerFile)
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 500 * time.Millisecond
	}
	if c.CQFlushInterval <= 0 {
		c.CQFlushInterval = time.Second
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = 10 * time.Second
	}
	if c.SyncFlushTimeout <= 0 {
		c.SyncFlushTimeout = 5 * time.Second
	}
	if c.FileReservedTime <= 0 {
		c.FileReservedTime = 72 * time.Hour
	}
	if c.DeleteWhen == nil {
		c.DeleteWhen = []int{4}
	}
	if c.DiskMaxUsedSpaceRatio <= 0 {
		c.DiskMaxUsedSpaceRatio = 75
	}
	c.DiskMaxUsedSpaceRatio = min(max(c.DiskMaxUsedSpaceRatio, 10), 95) // Java's bounds
	if c.DiskSpaceWarningLevelRatio <= 0 {
		c.DiskSpaceWarningLevelRatio = 90
	}
	if c.DiskSpaceCleanForciblyRatio <= 0 {
		c.DiskSpaceCleanForciblyRatio = 85
	}
	c.DiskSpaceWarningLevelRatio = min(c.DiskSpaceWarningLevelRatio, 100)
	c.DiskSpaceCleanForciblyRatio = min(c.DiskSpaceCleanForciblyRatio, c.DiskSpaceWarningLevelRatio)
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 4 << 20
	}
	switch len(c.StoreHost) {
	case 0:
		c.StoreHost = make([]byte, 8)
	case 8, 20:
	default:
		return fmt.Errorf("store: StoreHost must be 8 or 20 bytes, got %d", len(c.StoreHost))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ScrubRate == 0 {
		c.ScrubRate = defaultScrubRate
	}
	if c.ScrubDelay <= 0 {
		c.ScrubDelay = defaultScrubDelay
	}
	if c.MaxLightQueues <= 0 {
		c.MaxLightQueues = defaultMaxLightQueues
	}
	if c.IndexSlots == 0 {
		c.IndexSlots = defaultIndexSlots
	}
	if c.IndexEntries == 0 {
		c.IndexEntries = defaultIndexEntries
	}
	// Slot values and entry numbers are int32s; entry 0 is never used.
	if c.IndexSlots < 1 || c.IndexSlots > 1<<31-1 {
		return fmt.Errorf("store: IndexSlots %d out of range [1, 2^31)", c.IndexSlots)
	}
	if c.IndexEntries < 2 || c.IndexEntries > 1<<31-1 {
		return fmt.Errorf("store: IndexEntries %d out of range [2, 2^31)", c.IndexEntries)
	}
	return nil
}

// indexEnabled reports whether the store builds index files.
func (c *Config) indexEnabled() bool { return c.MessageIndexEnable == nil || *c.MessageIndexEnable }

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("store: closed")

// queueKey names a consume queue in the append path's offset table.
type queueKey struct {
	topic string
	qid   int32
}

// Store is the message store. All methods are safe for concurrent use.
type Store struct {
	cfg     Config
	log     *slog.Logger
	segSize int64
	cqDir   string

	lockFile *fileutil.Lock

	clog commitLog
	cqs  cqTable
	idx  *indexStore // nil when MessageIndexEnable is false

	// mu is the append lock. It guards everything below up to the atomics.
	mu           sync.Mutex
	closed       bool
	writePos     int64               // next byte to write; == maxPhy outside the lock
	active       *mmapFile           // segment containing writePos, nil until needed
	queueOffsets map[queueKey]*int64 // next queue offset per queue
	lmqs         int                 // light queues among them (lmq.go)
	lastStoreTS  int64               // store timestamps never go backwards

	maxPhy     atomic.Int64 // published end of the log (on a slave possibly inside a record)
	complete   atomic.Int64 // end of the complete records below maxPhy (replica.go); == maxPhy on a master
	dispatched atomic.Int64 // records below have their units written
	flushed    atomic.Int64 // commit-log bytes below are durable
	diskFull   atomic.Bool  // disk pressure: appends refused (retention.go)
	failure    atomic.Pointer[Failure]

	onDispatch atomic.Pointer[func(topic string, queueID int32, queueOffset int64, tagsCode int64)]
	onAppend   atomic.Pointer[func(maxPhy int64)]

	role        atomic.Int32 // Role (replica.go)
	confirmGate atomic.Bool  // dispatch only below confirm (replica.go)
	confirm     atomic.Int64
	// dispMu is held by whoever runs the dispatcher's pass, clFlushMu by
	// the commit-log flush, so that a truncation (replica.go) can move
	// their state.
	dispMu    sync.Mutex
	clFlushMu sync.Mutex

	dispatchWake  chan struct{}
	prefaultWake  chan struct{}
	warm          warmer       // zeros ahead of a SyncFlush master's appends (warm.go)
	prefaulted    atomic.Int64 // commit-log pages below are mapped (prefault.go)
	encBuf        []byte       // SyncFlush appends encode here (commitlog.go); under mu
	dispatchStall int64        // position last reported as undispatchable (under dispMu)
	disp          dispatchState

	// Rebuilds of queues whose damaged units the read path found
	// (cqrebuild.go). repairMu guards repairs.
	repairMu   sync.Mutex
	repairs    []*consumeQueue
	repairWake chan struct{}

	// Group commit (flush.go). flushMu guards waiters, waitEnd and
	// flushClosed.
	flushMu      sync.Mutex
	waiters      []flushWaiter
	waitEnd      int64 // highest end a waiter ever waited for
	flushClosed  bool
	flushReady   []flushWaiter // completer-owned scratch
	reapReady    []flushWaiter // reaper-owned scratch
	flushWake    chan struct{}
	completeWake chan struct{}
	answered     atomic.Pointer[func()] // OnWaitersAnswered
	fsyncs       atomic.Int64           // commit-log fdatasync calls, for tests and metrics

	ckMu   sync.Mutex // serialises consume-queue flushes and checkpoint writes
	lastCk checkpoint
	// manifestLast is the manifest last written, manifestNext a spare
	// buffer (cqmanifest.go); ckMu guards both.
	manifestLast, manifestNext []byte

	retentionMu   sync.Mutex                                       // serialises RunRetention, guards cfg's retention fields and reclaimStuck
	diskUsage     func(dir string) (used, total uint64, err error) // under mu; replaceable in tests
	retentionWake chan struct{}
	reclaimStuck  int64 // segment last reported as not reclaimable, under retentionMu
	consumed      atomic.Pointer[func(topic string, queueID int32) (int64, bool)]

	refusedAppends      atomic.Int64 // refused since the disk was marked full
	appendErrLast       atomic.Int64 // unix nanos of the last logged append error
	appendErrSuppressed atomic.Int64

	// Damage and verification (corrupt.go, scrub.go). verifiedFrom is set
	// by recovery before anything runs: records at or above it were
	// CRC-checked by recovery's walk or written by this process.
	verifiedFrom int64
	scrubbed     atomic.Int64                // records in [MinPhyOffset, scrubbed) were CRC-checked by the scrub
	damaged      atomic.Pointer[[]byteRange] // known damaged commit-log ranges, sorted and disjoint; nil: none
	damagedMu    sync.Mutex                  // serialises changes of damaged
	skippedReads atomic.Int64                // reads refused because the record is damaged

	stop chan struct{}
	wg   sync.WaitGroup

	// appendSince and flushSince are when the append holding mu and the
	// commit-log sync in progress began (Unix ms), 0 when none runs: what
	// Busy reports.
	appendSince, flushSince atomic.Int64
}

// Open opens (creating if needed) the store at cfg.RootDir, recovers the
// commit log and consume queues, and starts the background goroutines.
func Open(cfg Config) (*Store, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:          cfg,
		log:          cfg.Logger,
		segSize:      cfg.SegmentSize,
		cqDir:        filepath.Join(cfg.RootDir, "consumequeue"),
		queueOffsets: make(map[queueKey]*int64),
		dispatchWake: make(chan struct{}, 1),
		prefaultWake: make(chan struct{}, 1),
		flushWake:    make(chan struct{}, 1),
		completeWake: make(chan struct{}, 1),
		repairWake:   make(chan struct{}, 1),
		stop:         make(chan struct{}),

		retentionWake: make(chan struct{}, 1),
	}
	s.clog.dir = cfg.CommitLogDir
	s.clog.segSize = cfg.SegmentSize
	s.cqs.topics = make(map[string]*topicQueues)
	s.dispatchStall = -1
	s.diskUsage = diskSpace
	s.reclaimStuck = -1
	s.warm.init()

	dirs := []string{cfg.RootDir, cfg.CommitLogDir, s.cqDir}
	if cfg.indexEnabled() {
		s.idx = newIndexStore(&cfg)
		dirs = append(dirs, s.idx.dir)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open store: create %s: %w", d, err)
		}
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	abortPath := filepath.Join(cfg.RootDir, "abort")
	_, err := os.Stat(abortPath)
	crashed := err == nil
	if crashed {
		s.log.Warn("[RECOVERY] abort marker found: previous run did not shut down cleanly", "path", abortPath)
	}
	if err := os.WriteFile(abortPath, nil, 0o644); err != nil {
		s.releaseAll()
		return nil, fmt.Errorf("open store: create abort marker %s: %w", abortPath, err)
	}
	if err := s.syncDir(cfg.RootDir); err != nil {
		s.releaseAll()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.recover(crashed); err != nil {
		s.releaseAll()
		return nil, err
	}

	s.logDiskPolicy()
	// A store opened on a full disk refuses appends from the start, not
	// from the first retention pass.
	s.mu.Lock()
	s.checkDiskLocked(0)
	s.mu.Unlock()
	s.wg.Add(6)
	go s.scrubLoop()
	go s.prefaultLoop()
	go s.dispatchLoop()
	go s.flushLoop()
	go s.retentionLoop()
	go s.repairLoop()
	s.every(s.cfg.CQFlushInterval, "[FLUSH] consume queue flush failed", s.flushConsumeQueues)
	if cfg.FlushMode == SyncFlush {
		s.wg.Add(2)
		go s.reapLoop()
		go s.completeLoop()
		if cfg.WarmSegments {
			s.wg.Add(1)
			go s.warmLoop()
		}
	}
	if s.idx != nil {
		// Index files are flushed at the consume queues' cadence.
		s.every(s.cfg.CQFlushInterval, "[FLUSH] index flush failed", s.flushIndex)
	}
	return s, nil
}

// every runs fn every d on its own goroutine until the store stops,
// logging its errors with msg.
func (s *Store) every(d time.Duration, msg string, fn func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				// A store failure was logged once when it happened.
				if err := fn(); err != nil && !errors.Is(err, ErrFailed) {
					s.log.Error(msg, "err", err)
				}
			}
		}
	}()
}

// lock takes an exclusive flock on RootDir/lock so two processes never
// share a store.
func (s *Store) lock() error {
	l, err := fileutil.TryLock(filepath.Join(s.cfg.RootDir, "lock"))
	if err != nil {
		return fmt.Errorf("open store (is another broker using it?): %w", err)
	}
	s.lockFile = l
	return nil
}

// Close stops the background goroutines, dispatches and flushes
// everything, writes the checkpoint and removes the abort marker. After a
// store failure (Failure) it keeps the marker and returns the failure: the
// next Open recovers from the last checkpoint written before it.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()

	s.dispatchAvailable()
	errs := []error{s.flushCommitLog()}
	s.completeWaiters()
	errs = append(errs, s.flushConsumeQueues(), s.flushIndex())
	if f := s.failure.Load(); f != nil {
		// Once, not once per flush that reported it.
		errs = slices.DeleteFunc(errs, func(err error) bool { return errors.Is(err, ErrFailed) })
		errs = append(errs, f)
	}
	if err := errors.Join(errs...); err != nil {
		// Keep the abort marker: the next Open must not trust this shutdown.
		s.releaseAll()
		return fmt.Errorf("close store %s: %w", s.cfg.RootDir, err)
	}
	s.releaseAll()
	abortPath := filepath.Join(s.cfg.RootDir, "abort")
	if err := os.Remove(abortPath); err != nil {
		return fmt.Errorf("close store: remove abort marker %s: %w", abortPath, err)
	}
	if err := s.syncDir(s.cfg.RootDir); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// crashForTest abandons the store the way a killed process would: the
// goroutines stop and the mappings go away without a final flush,
// checkpoint or abort-marker removal. Written pages stay in the page cache.
func (s *Store) crashForTest() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	s.flushMu.Lock()
	s.flushClosed = true
	s.waiters = nil
	s.flushMu.Unlock()
	// A PutDispatch's pass that began before stop closed ends first.
	s.dispMu.Lock()
	s.releaseAll()
	s.dispMu.Unlock()
}

// releaseAll drops the lists' references to every mapped file and releases
// the store lock. Readers still holding a file keep it mapped until they
// release it.
func (s *Store) releaseAll() {
	s.clog.mu.Lock()
	segs := s.clog.segs
	s.clog.segs = nil
	s.clog.mu.Unlock()
	for _, seg := range segs {
		seg.release()
	}
	s.mu.Lock()
	s.active = nil
	s.mu.Unlock()

	s.cqs.mu.Lock()
	topics := s.cqs.topics
	s.cqs.topics = make(map[string]*topicQueues)
	s.cqs.mu.Unlock()
	for _, t := range topics {
		for _, cq := range t.queues {
			cq.drop()
		}
	}
	s.releaseIndex()
	_ = s.lockFile.Unlock()
	s.lockFile = nil
}

// OnDispatch sets the callback the dispatcher runs after writing each
// consume-queue unit (long-poll wake-up). It runs on the dispatcher
// goroutine and must not block. Set it before traffic starts.
func (s *Store) OnDispatch(fn func(topic string, queueID int32, queueOffset int64, tagsCode int64)) {
	s.onDispatch.Store(&fn)
}

// SyncFlush reports whether the store runs in SyncFlush mode.
func (s *Store) SyncFlush() bool { return s.cfg.FlushMode == SyncFlush }

// StoreHost returns the raw store host written into records.
func (s *Store) StoreHost() []byte { return s.cfg.StoreHost }

// MinPhyOffset returns the first retained commit-log offset.
func (s *Store) MinPhyOffset() int64 {
	if m, ok := s.clog.minOffset(); ok {
		return m
	}
	return s.maxPhy.Load()
}

// MaxPhyOffset returns the end of the commit log (next byte to write).
func (s *Store) MaxPhyOffset() int64 { return s.maxPhy.Load() }

// FlushedOffset returns the commit-log offset below which data is durable.
func (s *Store) FlushedOffset() int64 { return s.flushed.Load() }

// DispatchBehind returns how many bytes of complete commit-log records
// have no consume-queue units yet (a slave's partial tail is not counted;
// records the confirm gate holds back are).
func (s *Store) DispatchBehind() int64 { return s.complete.Load() - s.dispatched.Load() }

// QueueIDs returns the queue ids of topic that exist, ascending.
func (s *Store) QueueIDs(topic string) []int32 {
	s.cqs.mu.RLock()
	defer s.cqs.mu.RUnlock()
	t := s.cqs.topics[topic]
	if t == nil {
		return nil
	}
	ids := make([]int32, 0, len(t.queues))
	for id := range t.queues {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// DeleteTopic removes the consume queues and queue-offset counters of
// topic. Its records stay in the commit log until retention removes them.
// Callers stop sending to the topic first.
func (s *Store) DeleteTopic(topic string) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("delete topic %s: %w", topic, ErrClosed)
	}
	// Let the dispatcher cover what is already appended, so it does not
	// re-create the queues right after they are removed.
	s.waitDispatched(s.complete.Load(), 3*time.Second)

	s.mu.Lock()
	for k := range s.queueOffsets {
		if k.topic == topic {
			delete(s.queueOffsets, k)
			if wire.IsLMQ(topic) {
				s.lmqs--
			}
		}
	}
	s.mu.Unlock()

	s.cqs.mu.Lock()
	t := s.cqs.topics[topic]
	delete(s.cqs.topics, topic)
	s.cqs.mu.Unlock()
	if t != nil {
		for _, cq := range t.queues {
			cq.drop()
		}
	}
	// Move the checkpoint past the topic's records so recovery does not
	// re-dispatch them into new queues, and drop them from the manifest
	// before the files go, so recovery does not rebuild them as missing.
	if err := s.flushConsumeQueues(); err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	dir := filepath.Join(s.cqDir, topic)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete topic %s: remove %s: %w", topic, dir, err)
	}
	if err := fileutil.SyncDir(s.cqDir); err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	s.log.Info("[TOPIC_DELETE] removed consume queues", "topic", topic)
	return nil
}

// waitDispatched waits until the dispatcher reached off or timeout passed.
func (s *Store) waitDispatched(off int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for s.dispatched.Load() < off {
		if time.Now().After(deadline) {
			return false
		}
		s.wakeDispatcher()
		time.Sleep(time.Millisecond)
	}
	return true
}
