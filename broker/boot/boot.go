// Package boot holds the start-up the mqnamesrv and mqcontroller daemons
// share: the -c/-p/-version flags, loading and validating the config file,
// opening the log, the boot and shutdown lines, and the embedded or
// standalone controller.
package boot

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/broker/controller"
	"github.com/mqops/mqops/broker/logging"
	"github.com/mqops/mqops/version"
)

// Command describes one daemon's start-up.
type Command[C any] struct {
	Name      string // "mqnamesrv": version line and prefix of messages on stderr
	ConfUsage string // help text of -c
	LogFile   string // file under the config's logDir, e.g. "namesrv.log"
	// Load reads the config file (path may be "") with -p overrides applied.
	Load func(path string, overrides map[string]string) (C, []string, error)
	// LogDir picks logDir out of a loaded config.
	LogDir func(C) string
	// Flags (may be nil) adds the command's own flags before parsing.
	Flags func(*flag.FlagSet)
}

// Daemon is a started command: its config and log, ready to start servers.
type Daemon[C any] struct {
	Config         C
	Log            *slog.Logger
	ConfPath       string // -c, "" when none
	name           string
	stdout, stderr io.Writer
	logClose       io.Closer
}

// Start parses args, loads the config and opens the log. When it returns a
// nil Daemon the process exits with code: 0 after -version, 2 for bad
// flags, 1 for a config or log error (written to stderr). Config warnings
// go to stderr and, once the log is open, to the log.
func (c Command[C]) Start(args []string, stdout, stderr io.Writer) (*Daemon[C], int) {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	overrides := config.Overrides{}
	confPath := fs.String("c", "", c.ConfUsage)
	fs.Var(overrides, "p", "override one config key, key=value (repeatable)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if c.Flags != nil {
		c.Flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.String(c.Name))
		return nil, 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", c.Name, fs.Arg(0))
		return nil, 2
	}
	cfg, warnings, err := c.Load(*confPath, overrides)
	if err != nil {
		fmt.Fprintln(stderr, c.Name+":", err)
		return nil, 1
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, c.Name+": warning:", w)
	}
	log, logClose, err := logging.Open(c.LogDir(cfg), c.LogFile, slog.LevelInfo, logging.WithStderr())
	if err != nil {
		fmt.Fprintln(stderr, c.Name+":", err)
		return nil, 1
	}
	for _, w := range warnings {
		log.Warn("[CONFIG] " + w)
	}
	return &Daemon[C]{Config: cfg, Log: log, ConfPath: *confPath, name: c.Name, stdout: stdout, stderr: stderr, logClose: logClose}, 0
}

// Announce writes a boot line to stdout and the log.
func (d *Daemon[C]) Announce(msg string) {
	fmt.Fprintln(d.stdout, msg)
	d.Log.Info(msg)
}

// Failed reports that what failed to start, in the log ([BOOT_FAILED]) and
// on stderr, and returns the exit code 1.
func (d *Daemon[C]) Failed(what string, err error) int {
	d.Log.Error("[BOOT_FAILED] "+what+" failed to start", "err", err)
	fmt.Fprintln(d.stderr, d.name+":", err)
	return 1
}

// StartController starts a controller node with settings and announces
// it; sec.Credentials come from settings.
func (d *Daemon[C]) StartController(settings *config.ControllerSettings, scanInterval time.Duration, sec controller.Security) (*controller.Controller, error) {
	cr, err := config.ParseCredentials(settings.InnerClientAuthenticationCredentials)
	if err != nil {
		return nil, fmt.Errorf("innerClientAuthenticationCredentials: %w", err)
	}
	sec.Credentials = cr
	ctl, err := controller.Start(settings, scanInterval, sec, d.Log)
	if err != nil {
		return nil, err
	}
	d.Announce(fmt.Sprintf("The Controller boot success. group %s, self %s, address %s", settings.Group, settings.SelfID, ctl.Addr()))
	return ctl, nil
}

// Wait blocks until a signal arrives and logs it.
func (d *Daemon[C]) Wait(sigs <-chan os.Signal) {
	s := <-sigs
	d.Log.Info("shutting down", "signal", s.String())
}

// Close closes the log.
func (d *Daemon[C]) Close() { d.logClose.Close() }
