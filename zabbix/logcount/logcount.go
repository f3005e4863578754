// Package logcount counts the records of the broker's and name server's
// logs (broker.log, store.log, storeerror.log, namesrv.log) by level and by
// event tag, for the Zabbix items that alert on registration failures, a
// full disk, a failed fsync, damaged data, store errors, panics and the
// like.
//
// The counts are running totals since the state file was created, saved
// with the read positions in one atomic write: several Zabbix items (or a
// person at a shell) may ask without taking counts from each other, and the
// templates turn totals into per-interval increments with "simple change"
// preprocessing, which also absorbs a reset state (Zabbix drops a negative
// change).
package logcount

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/mqops/mqops/zabbix/logparse"
	"github.com/mqops/mqops/zabbix/logtail"
	"github.com/mqops/mqops/zabbix/statefile"
)

// Files are the logs counted, by name without ".log".
var Files = []string{"broker", "store", "storeerror", "namesrv"}

// readBudget bounds the bytes one Update reads from each file.
const readBudget = 32 << 20

// File is the counts of one log.
type File struct {
	Present bool             `json:"present"` // the log exists
	Lines   int64            `json:"lines"`   // records (continuation lines not counted)
	Error   int64            `json:"error"`
	Warn    int64            `json:"warn"`
	Tags    map[string]int64 `json:"tags"` // event tag → records
	// Problems counts the tags of WARN and ERROR records only: DISK_FULL
	// also tags the INFO record saying the disk is fine again.
	Problems map[string]int64 `json:"problems"`
	// Events counts the WARN and ERROR records of the store events in
	// storeEvents, which a tag alone does not tell apart (DISK_FULL marks
	// refused sends and a blocked consume queue; RECOVERY routine notes as
	// well as damage), and the messages deleted unread.
	Events map[string]int64 `json:"events"`
}

// Counts is what `mqops-zbx logs` prints: per file, and the totals the
// templates alert on.
type Counts struct {
	Files map[string]*File `json:"files"`
	// RegisterFailed: the broker could not register with a name server
	// (broker.log REGISTER_FAILED).
	RegisterFailed int64 `json:"registerFailed"`
	// DiskFull: the store refused sends for lack of disk: the disk marked
	// full (store.log "[DISK_FULL] physic disk maybe full soon …, so mark
	// disk full", "logics disk …", "no space left for a new commitlog
	// segment"), the first refused send and every 50000th after ("[DISK_FULL]
	// the message store is not writable"), and failed segment creations
	// ("cannot create commitlog segment"; "refusing appends" and "appends
	// refused" from earlier builds).
	DiskFull int64 `json:"diskFull"`
	// FsyncFailed: an fsync failed and the store refuses every send until
	// the broker is restarted ("[FLUSH] fsync failed", or "[FLUSH] write
	// failed" for a SYNC_FLUSH append whose write failed).
	FsyncFailed int64 `json:"fsyncFailed"`
	// Corruption: damaged commit-log records found, by recovery ("[RECOVERY]
	// corrupt commitlog range"), on read or by the scrub ("[CORRUPT]").
	Corruption int64 `json:"corruption"`
	// QueueRebuilt: consume-queue ranges rebuilt from the commit log, at
	// start ("[RECOVERY] rebuilt consume queue") or after a damaged unit
	// was found while serving ("[CONSUME_QUEUE] rebuilt consume queue"),
	// and rebuilds that failed.
	QueueRebuilt int64 `json:"cqRebuilt"`
	// QueueBlocked: a consume queue could not be written, so its new
	// messages cannot be consumed ("[DISK_FULL] consume queue blocked",
	// "[DISPATCH] consume queue blocked", and "[DISPATCH] consume queues
	// still blocked" every minute until they resume).
	QueueBlocked int64 `json:"cqBlocked"`
	// UnreadDeleted: commit-log segments deleted with messages no group had
	// consumed, because the disk was almost full ("[RETENTION] disk almost
	// full: deleted a segment holding unconsumed messages");
	// UnreadMessagesDeleted sums their unconsumed=N.
	UnreadDeleted         int64 `json:"unreadDeleted"`
	UnreadMessagesDeleted int64 `json:"unreadMessagesDeleted"`
	// RetentionBlocked: the disk is under pressure but the oldest segment
	// holds unread messages, so nothing can be freed ("[RETENTION] disk
	// under pressure but the oldest segment holds unconsumed messages").
	RetentionBlocked int64 `json:"retentionBlocked"`
	// FlowControl: requests refused because the broker was busy (tags
	// TIMEOUT_CLEAN_QUEUE, PCBUSY_CLEAN_QUEUE, PC_SYNCHRONIZED, SYSTEM_BUSY).
	FlowControl int64 `json:"flowControl"`
	// StoreErrors: WARN and ERROR records of storeerror.log.
	StoreErrors int64 `json:"storeErrors"`
	// Errors and Warnings: ERROR and WARN records of every file.
	Errors   int64 `json:"errors"`
	Warnings int64 `json:"warnings"`
	// Panics: requests that crashed a handler, recovered (broker.log PANIC).
	Panics int64 `json:"panics"`
	// BrokerExpired: brokers a name server dropped for missed heartbeats
	// (namesrv.log BROKER_EXPIRED).
	BrokerExpired int64 `json:"brokerExpired"`
}

var flowControlTags = []string{"TIMEOUT_CLEAN_QUEUE", "PCBUSY_CLEAN_QUEUE", "PC_SYNCHRONIZED", "SYSTEM_BUSY"}

// Store events: File.Events keys.
const (
	evDiskFull         = "diskFull"
	evFsyncFailed      = "fsyncFailed"
	evCorruption       = "corruption"
	evQueueRebuilt     = "cqRebuilt"
	evQueueBlocked     = "cqBlocked"
	evUnreadDeleted    = "unreadDeleted"
	evUnreadMessages   = "unreadMessagesDeleted"
	evRetentionBlocked = "retentionBlocked"
)

// storeEvents tells the store's WARN and ERROR records apart by tag and
// the start of the message, as broker/store words them (the test checks
// that each wording is still in its source).
var storeEvents = []struct {
	tag, prefix, event string
	// legacy: a wording of earlier builds, which the logs an agent reads
	// may still hold.
	legacy bool
}{
	{"DISK_FULL", "physic disk maybe full soon", evDiskFull, false},
	{"DISK_FULL", "logics disk maybe full soon", evDiskFull, false},
	{"DISK_FULL", "no space left for a new commitlog segment", evDiskFull, false},
	{"DISK_FULL", "the message store is not writable", evDiskFull, false},
	{"DISK_FULL", "refusing appends", evDiskFull, true},
	{"DISK_FULL", "appends refused", evDiskFull, true},
	{"DISK_FULL", "cannot create commitlog segment", evDiskFull, false},
	{"DISK_FULL", "consume queue blocked", evQueueBlocked, false},
	{"DISPATCH", "consume queue blocked", evQueueBlocked, false},
	{"DISPATCH", "consume queues still blocked", evQueueBlocked, false},
	{"FLUSH", "fsync failed", evFsyncFailed, false},
	{"FLUSH", "write failed", evFsyncFailed, false}, // a SYNC_FLUSH append's pwrite: as fatal as a failed fsync
	{"CORRUPT", "", evCorruption, false},
	{"RECOVERY", "corrupt commitlog range", evCorruption, false},
	{"RECOVERY", "rebuilt consume queue", evQueueRebuilt, false},
	{"RECOVERY", "rebuilding consume queues", evQueueRebuilt, false},
	{"CONSUME_QUEUE", "rebuilt consume queue", evQueueRebuilt, false},
	{"CONSUME_QUEUE", "rebuilding consume queue", evQueueRebuilt, false},
	{"RETENTION", "disk almost full: deleted a segment holding unconsumed messages", evUnreadDeleted, false},
	{"RETENTION", "disk under pressure but the oldest segment holds unconsumed messages", evRetentionBlocked, false},
}

type state struct {
	Positions map[string]json.RawMessage `json:"positions"`
	Files     map[string]*File           `json:"files"`
}

// Update counts the records added to the logs in dir since the last call
// and saves the totals in statePath.
func Update(dir, statePath string) (*Counts, error) {
	f, err := statefile.Open(statePath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st state
	if err := f.Load(&st); err != nil {
		return nil, err
	}
	if st.Positions == nil {
		st.Positions = map[string]json.RawMessage{}
	}
	if st.Files == nil {
		st.Files = map[string]*File{}
	}
	for _, name := range Files {
		path := filepath.Join(dir, name+".log")
		fc := st.Files[name]
		if fc == nil {
			fc = &File{}
			st.Files[name] = fc
		}
		if fc.Tags == nil {
			fc.Tags = map[string]int64{}
		}
		if fc.Problems == nil {
			fc.Problems = map[string]int64{}
		}
		if fc.Events == nil {
			fc.Events = map[string]int64{}
		}
		_, err := os.Stat(path)
		fc.Present = err == nil
		t, err := logtail.Resume(path, st.Positions[name], logtail.Options{})
		if err != nil {
			return nil, err
		}
		var read int64
		for read < readBudget {
			var rec logparse.Log
			res, err := t.Next(func(b []byte) {
				read += int64(len(b)) + 1
				if logparse.ParseLog(b, &rec) {
					fc.count(&rec)
				}
			})
			if err != nil {
				return nil, err
			}
			if !res.More {
				break
			}
		}
		st.Positions[name] = t.Position()
	}
	if err := f.Save(&st); err != nil {
		return nil, err
	}
	return summarise(st.Files), nil
}

func (fc *File) count(rec *logparse.Log) {
	fc.Lines++
	switch {
	case rec.Level >= slog.LevelError:
		fc.Error++
	case rec.Level >= slog.LevelWarn:
		fc.Warn++
	}
	if rec.Tag != nil {
		bump(fc.Tags, rec.Tag)
		if rec.Level >= slog.LevelWarn {
			bump(fc.Problems, rec.Tag)
			fc.event(rec)
		}
	}
}

// event counts rec, a WARN or ERROR record with a tag, under the first
// store event it matches.
func (fc *File) event(rec *logparse.Log) {
	for _, e := range storeEvents {
		if string(rec.Tag) != e.tag || len(rec.Msg) < len(e.prefix) || string(rec.Msg[:len(e.prefix)]) != e.prefix {
			continue
		}
		fc.Events[e.event]++
		if e.event == evUnreadDeleted {
			if n, ok := logparse.AttrInt(rec.Msg, "unconsumed"); ok {
				fc.Events[evUnreadMessages] += n
			}
		}
		return
	}
}

// bump adds one to m[tag], allocating only for a new tag.
func bump(m map[string]int64, tag []byte) {
	if n, ok := m[string(tag)]; ok {
		m[string(tag)] = n + 1
		return
	}
	m[string(tag)] = 1
}

func summarise(files map[string]*File) *Counts {
	c := &Counts{Files: files}
	for name, f := range files {
		c.Errors += f.Error
		c.Warnings += f.Warn
		for _, t := range flowControlTags {
			c.FlowControl += f.Tags[t]
		}
		switch name {
		case "broker":
			c.RegisterFailed += f.Problems["REGISTER_FAILED"]
			c.Panics += f.Problems["PANIC"]
		case "store": // storeerror.log holds the same records again
			c.DiskFull += f.Events[evDiskFull]
			c.FsyncFailed += f.Events[evFsyncFailed]
			c.Corruption += f.Events[evCorruption]
			c.QueueRebuilt += f.Events[evQueueRebuilt]
			c.QueueBlocked += f.Events[evQueueBlocked]
			c.UnreadDeleted += f.Events[evUnreadDeleted]
			c.UnreadMessagesDeleted += f.Events[evUnreadMessages]
			c.RetentionBlocked += f.Events[evRetentionBlocked]
		case "storeerror":
			c.StoreErrors += f.Error + f.Warn
		case "namesrv":
			c.BrokerExpired += f.Tags["BROKER_EXPIRED"]
		}
	}
	return c
}
