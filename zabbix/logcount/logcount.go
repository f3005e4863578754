// Package logcount counts the records of the broker's and name server's
// logs (broker.log, store.log, storeerror.log, namesrv.log) by level and by
// event tag, for the Zabbix items that alert on registration failures, a
// full disk, store errors, panics and the like.
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
}

// Counts is what `mqops-zbx logs` prints: per file, and the totals the
// templates alert on.
type Counts struct {
	Files map[string]*File `json:"files"`
	// RegisterFailed: the broker could not register with a name server
	// (broker.log REGISTER_FAILED).
	RegisterFailed int64 `json:"registerFailed"`
	// DiskFull: the store refused writes for lack of disk (store.log
	// DISK_FULL).
	DiskFull int64 `json:"diskFull"`
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
		}
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
		case "store":
			c.DiskFull += f.Problems["DISK_FULL"]
		case "storeerror":
			c.StoreErrors += f.Error + f.Warn
		case "namesrv":
			c.BrokerExpired += f.Tags["BROKER_EXPIRED"]
		}
	}
	return c
}
