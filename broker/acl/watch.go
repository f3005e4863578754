package acl

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultPollInterval is how often the rules files are compared with what
// was loaded (Java's AclFileWatchService: 5000 ms).
const DefaultPollInterval = 5 * time.Second

// Source says where the rules come from.
type Source struct {
	AclFile string // aclFile: one file, replacing the default set
	ConfDir string // where plain_acl.yml and acl/ live otherwise
}

// Watcher loads the rules and reloads them when a file changes: new,
// removed, or a different (mtime, size, SHA-256). A file that does not
// load leaves the rules in force and is reported (acl.log ERROR naming
// file and line, acl_reload_failures) until it is fixed.
type Watcher struct {
	src     Source
	checker *Checker
	audit   *Audit
	log     *slog.Logger

	mu      sync.Mutex
	also    []*Checker // Follow's checkers: other tables, the same rules
	stamps  []fileStamp
	lastErr string
	version int64
	stop    chan struct{}
	done    chan struct{}
}

// Load reads the rules once and returns a watcher holding them in a new
// checker for table. A broken file here is an error: the daemon does not
// start with rules it cannot read.
func Load(src Source, table *Table, audit *Audit, log *slog.Logger) (*Watcher, error) {
	w := &Watcher{src: src, audit: audit, log: log}
	s, stamps, err := w.read()
	if err != nil {
		return nil, err
	}
	w.version = 1
	s.Version = 1
	w.stamps = stamps
	w.checker = NewChecker(table, s)
	audit.Loaded(s)
	return w, nil
}

// LoadRules reads the rules of src once, as a daemon would load them.
func LoadRules(src Source) (*Snapshot, error) {
	w := &Watcher{src: src}
	s, _, err := w.read()
	return s, err
}

// Checker is the checker whose rules the watcher keeps current.
func (w *Watcher) Checker() *Checker { return w.checker }

// Follow returns a checker for another table that the watcher keeps on
// the same rules: a name server's embedded controller checks its port
// with ControllerTable and the name server's files.
func (w *Watcher) Follow(t *Table) *Checker {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := NewChecker(t, w.checker.Rules())
	w.also = append(w.also, c)
	return c
}

func (w *Watcher) read() (*Snapshot, []fileStamp, error) {
	files, err := Files(w.src.AclFile, w.src.ConfDir)
	if err != nil {
		return nil, nil, err
	}
	optional := ""
	if w.src.AclFile == "" {
		optional = files[0]
	}
	return readAll(files, optional)
}

// Start polls every interval until Close.
func (w *Watcher) Start(interval time.Duration) {
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.Poll()
			}
		}
	}()
}

// Close stops polling.
func (w *Watcher) Close() {
	if w.stop != nil {
		close(w.stop)
		<-w.done
	}
}

// Poll reloads the rules if a file changed and reports whether new rules
// are in force.
func (w *Watcher) Poll() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.changed() {
		return false
	}
	s, stamps, err := w.read()
	if err != nil {
		// Reported once per distinct error, not every poll.
		if msg := err.Error(); msg != w.lastErr {
			w.lastErr = msg
			w.checker.Stats.reloadFail.Add(1)
			w.audit.ReloadFailed(err)
			if w.log != nil {
				w.log.Error("[ACL] reload failed, keeping the rules in force", "err", err)
			}
		}
		return false
	}
	w.lastErr = ""
	w.version++
	s.Version = w.version
	w.stamps = stamps
	w.checker.Swap(s)
	for _, c := range w.also {
		c.Swap(s)
	}
	w.audit.Loaded(s)
	if w.log != nil {
		w.log.Info(fmt.Sprintf("[ACL] loaded version=%d accounts=%d whiteList=%d", s.Version, len(s.Accounts), len(s.GlobalWhite)), "files", s.Files)
	}
	return true
}

// changed compares the files now with the stamps of the last attempt.
func (w *Watcher) changed() bool {
	files, err := Files(w.src.AclFile, w.src.ConfDir)
	if err != nil || len(files) != len(w.stamps) {
		return true
	}
	for i, f := range files {
		old := w.stamps[i]
		if old.path != f {
			return true
		}
		st, err := os.Stat(f)
		if err != nil {
			if old.mtime == -1 && os.IsNotExist(err) {
				continue
			}
			return true
		}
		if st.ModTime().UnixNano() != old.mtime || st.Size() != old.size {
			return true
		}
		// Same mtime and size: an edit within the clock's resolution
		// still changes the content.
		data, err := os.ReadFile(f)
		if err != nil || sha256.Sum256(data) != old.sum {
			return true
		}
	}
	return false
}
