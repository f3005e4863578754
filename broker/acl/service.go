package acl

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mqops/mqops/broker/logging"
)

// Options configure a daemon's ACL.
type Options struct {
	AclFile    string // aclFile; "" for the default set of files
	ConfigFile string // the daemon's config file (-c), whose directory holds the default files without ROCKETMQ_HOME
	LogDir     string // where acl.log goes
	Table      *Table
	Log        *slog.Logger // the daemon's main log
	// PollInterval is how often the files are compared (default 5 s).
	PollInterval time.Duration
}

// Service is a daemon's running ACL: the gate its handler calls and the
// watcher that keeps the rules current.
type Service struct {
	Gate    *Gate
	watcher *Watcher
	logc    io.Closer
}

// ConfDir is where the default rules live: $ROCKETMQ_HOME/conf as in
// Java, else the directory of the daemon's config file.
func ConfDir(configFile string) (string, error) {
	if home := os.Getenv("ROCKETMQ_HOME"); home != "" {
		return filepath.Join(home, "conf"), nil
	}
	if configFile != "" {
		return filepath.Dir(configFile), nil
	}
	return "", errors.New("aclEnable: set aclFile, ROCKETMQ_HOME or a config file (-c) to say where plain_acl.yml is")
}

// Start loads the rules (a file that does not load stops the daemon from
// starting), opens acl.log and starts the reload poll.
func Start(o Options) (*Service, error) {
	src := Source{AclFile: o.AclFile}
	if o.AclFile == "" {
		dir, err := ConfDir(o.ConfigFile)
		if err != nil {
			return nil, err
		}
		src.ConfDir = dir
	}
	alog, closer, err := logging.Open(o.LogDir, "acl.log", slog.LevelInfo)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	alog = alog.With(logging.TagKey, "ACL")
	audit := NewAudit(alog, 10*time.Second)
	w, err := Load(src, o.Table, audit, o.Log)
	if err != nil {
		_ = closer.Close()
		return nil, fmt.Errorf("acl: %w", err)
	}
	s := w.Checker().Rules()
	if o.Log != nil {
		o.Log.Info(fmt.Sprintf("[ACL] loaded version=%d accounts=%d whiteList=%d", s.Version, len(s.Accounts), len(s.GlobalWhite)), "files", s.Files)
	}
	interval := o.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	w.Start(interval)
	gate := NewGate(w.Checker(), audit)
	gate.Edit = w
	return &Service{Gate: gate, watcher: w, logc: closer}, nil
}

// GateFor is a gate for another table on the same rules, reloads and
// acl.log: the embedded controller's in a name server.
func (s *Service) GateFor(t *Table) *Gate { return NewGate(s.watcher.Follow(t), s.Gate.audit) }

// Close stops the reload poll and closes acl.log.
func (s *Service) Close() {
	if s == nil {
		return
	}
	s.watcher.Close()
	_ = s.logc.Close()
}

// WarnIfOpen logs a WARN when a daemon serves every interface, or another
// non-loopback address, with ACL off: anyone who reaches the port may
// then delete topics or rewrite the config.
func WarnIfOpen(log *slog.Logger, listen net.Addr, daemon string) {
	ta, ok := listen.(*net.TCPAddr)
	if !ok || ta.IP.IsLoopback() {
		return
	}
	log.Warn(fmt.Sprintf("[ACL] %s listens on %s with aclEnable=false: anyone who can reach it may change topics, groups, offsets and settings", daemon, listen))
}
