package hosts

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The remote side of each check: a POSIX sh script that degrades to
// "cannot tell" when a tool is missing, and a parser for what it prints.
// Parsing happens here rather than in awk so the formats are unit-tested.

// Service is whether a daemon runs: a process started from the binary,
// and its port listening.
type Service struct {
	Binary string `json:"binary"`
	Port   int    `json:"port"`
	// Process is null when the host has no pgrep.
	Process *bool `json:"process"`
	// Listening is null when the host has no ss, netstat or /proc/net/tcp.
	Listening *bool `json:"listening"`
	Running   bool  `json:"running"`
}

// serviceScript reports whether a process runs binary and lists the
// listening TCP sockets with whichever tool the host has.
func serviceScript(binary string) string {
	return `if command -v pgrep >/dev/null 2>&1; then
  if pgrep -f ` + shQuote(pgrepPattern(binary)) + ` >/dev/null 2>&1; then echo process=yes; else echo process=no; fi
fi
if command -v ss >/dev/null 2>&1; then ss -ltn
elif command -v netstat >/dev/null 2>&1; then netstat -ltn
else cat /proc/net/tcp /proc/net/tcp6
fi 2>/dev/null`
}

// pgrepPattern matches command lines whose program is binary. Anchoring
// it also keeps pgrep from matching the shell that runs the script, whose
// command line contains the pattern.
func pgrepPattern(binary string) string {
	return "^" + regexp.QuoteMeta(binary) + "( |$)"
}

func parseService(out, binary string, port int) *Service {
	s := &Service{Binary: binary, Port: port}
	yes, no := true, false
	listed := false
	for _, line := range strings.Split(out, "\n") {
		switch line = strings.TrimSpace(line); line {
		case "":
			continue
		case "process=yes":
			s.Process = &yes
			continue
		case "process=no":
			s.Process = &no
			continue
		}
		listed = true
		if listenPort(line) == port {
			s.Listening = &yes
		}
	}
	if listed && s.Listening == nil {
		s.Listening = &no
	}
	s.Running = (s.Process != nil || s.Listening != nil) && (s.Process == nil || *s.Process) && (s.Listening == nil || *s.Listening)
	return s
}

// listenPort reads the local port of a listening socket from a line of
// "ss -ltn" or "netstat -ltn" (4th field, "addr:port" or BSD "addr.port")
// or /proc/net/tcp ("0: 0100007F:2693 00000000:0000 0A ...", hex port,
// state 0A = LISTEN). Headers and other lines give 0.
func listenPort(line string) int {
	f := strings.Fields(line)
	if len(f) < 4 {
		return 0
	}
	if strings.HasSuffix(f[0], ":") { // /proc/net/tcp
		_, hex, ok := strings.Cut(f[1], ":")
		n, err := strconv.ParseUint(hex, 16, 16)
		if !ok || err != nil || f[3] != "0A" {
			return 0
		}
		return int(n)
	}
	local := f[3]
	n, err := strconv.Atoi(local[strings.LastIndexAny(local, ":.")+1:])
	if err != nil {
		return 0
	}
	return n
}

// State is the one-word summary shown in tables.
func (s *Service) State() string {
	isFalse := func(b *bool) bool { return b != nil && !*b }
	isTrue := func(b *bool) bool { return b != nil && *b }
	switch {
	case s.Running:
		return "running"
	case s.Process == nil && s.Listening == nil:
		return "unknown"
	case isFalse(s.Process) && isTrue(s.Listening):
		return "no-process"
	case isTrue(s.Process) && isFalse(s.Listening):
		return "port-closed"
	}
	return "stopped"
}

// problem explains a service that is not running; "" when it is.
func (s *Service) problem() string {
	if s.Running {
		return ""
	}
	var parts []string
	switch {
	case s.Process == nil:
		parts = append(parts, "no pgrep to look for "+s.Binary)
	case *s.Process:
		parts = append(parts, "a process runs "+s.Binary)
	default:
		parts = append(parts, "no process runs "+s.Binary)
	}
	switch {
	case s.Listening == nil:
		parts = append(parts, "no ss, netstat or /proc/net/tcp to see listening ports")
	case *s.Listening:
		parts = append(parts, fmt.Sprintf("port %d is listening", s.Port))
	default:
		parts = append(parts, fmt.Sprintf("nothing listens on port %d", s.Port))
	}
	return s.State() + ": " + strings.Join(parts, ", ")
}

// Version is what "<binary> -version" printed, e.g. "mqbroker 0.1.0-dev
// (mqops, RocketMQ protocol V4_9_8)". It is the installed binary's: a
// process started before an upgrade may still run an older one.
type Version struct {
	Version  string `json:"version"`
	Protocol string `json:"protocol"`
}

var versionLine = regexp.MustCompile(`^(\S+) (\S+) \(mqops, RocketMQ protocol (\S+)\)$`)

func versionScript(binary string) string { return shQuote(binary) + " -version 2>&1" }

func parseVersion(o output, binary, program string) (*Version, error) {
	first, _, _ := strings.Cut(strings.TrimSpace(o.stdout), "\n")
	if o.code != 0 {
		return nil, fmt.Errorf("%s -version: exit status %d: %s", binary, o.code, first)
	}
	m := versionLine.FindStringSubmatch(strings.TrimSpace(first))
	if m == nil || m[1] != program {
		return nil, fmt.Errorf("%s -version printed %q, not %q", binary, first, program+" VERSION (mqops, RocketMQ protocol V…)")
	}
	return &Version{Version: m[2], Protocol: m[3]}, nil
}

// Disk is the usage of the file system holding a path, from "df -Pk".
type Disk struct {
	Path       string `json:"path"`
	Filesystem string `json:"filesystem"`
	MountedOn  string `json:"mountedOn"`
	SizeKiB    int64  `json:"sizeKiB"`
	UsedKiB    int64  `json:"usedKiB"`
	AvailKiB   int64  `json:"availKiB"`
	// UsePercent is df's Capacity: used / (used + available), rounded up.
	UsePercent int `json:"usePercent"`
}

func diskScript(path string) string { return "df -Pk " + shQuote(path) + " 2>&1" }

// parseDF reads the data line of "df -Pk": Filesystem, size, used,
// available, capacity, mount point. Names with blanks are kept whole by
// anchoring on the capacity field.
func parseDF(o output, path string) (*Disk, error) {
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if o.code != 0 {
		return nil, fmt.Errorf("df -Pk %s: exit status %d: %s", path, o.code, last)
	}
	f := strings.Fields(last)
	for i := 4; i < len(f); i++ {
		pct, ok := strings.CutSuffix(f[i], "%")
		if !ok {
			continue
		}
		d := &Disk{Path: path, Filesystem: strings.Join(f[:i-3], " "), MountedOn: strings.Join(f[i+1:], " ")}
		var errs [4]error
		d.SizeKiB, errs[0] = strconv.ParseInt(f[i-3], 10, 64)
		d.UsedKiB, errs[1] = strconv.ParseInt(f[i-2], 10, 64)
		d.AvailKiB, errs[2] = strconv.ParseInt(f[i-1], 10, 64)
		d.UsePercent, errs[3] = strconv.Atoi(pct)
		if errs == [4]error{} {
			return d, nil
		}
	}
	return nil, fmt.Errorf("df %s: cannot read %q", path, last)
}

// StoreErrors summarises <log_dir>/storeerror.log, where the broker's
// store writes its warnings and errors. The file is rotated daily and at
// 128 MiB, so the count covers the current day at most.
type StoreErrors struct {
	Path string `json:"path"`
	// Exists is false when the broker never opened the file.
	Exists     bool     `json:"exists"`
	ErrorLines int      `json:"errorLines"`
	LastError  string   `json:"lastError,omitempty"`
	Tail       []string `json:"tail"`
}

// Exit statuses of storeErrorsScript.
const (
	exitNoLogDir = 3
	exitReadLog  = 4
)

// storeErrorsScript prints the number of ERROR lines (the 4th field of
// "2026-11-21 19:03:04.123 +0000 ERROR [store] ..."), the last of them,
// then the file's last n lines.
func storeErrorsScript(logDir string, n int) string {
	return fmt.Sprintf(`cd %s || exit %d
[ -f storeerror.log ] || exit 0
awk '$4 == "ERROR" { n++; last = $0 } END { print n + 0; print last }' storeerror.log || exit %d
tail -n %d storeerror.log`, shQuote(logDir), exitNoLogDir, exitReadLog, n)
}

func parseStoreErrors(o output, logDir string) (*StoreErrors, error) {
	s := &StoreErrors{Path: strings.TrimSuffix(logDir, "/") + "/storeerror.log", Tail: []string{}}
	msg := strings.TrimSpace(o.stderr)
	switch o.code {
	case 0:
	case exitNoLogDir:
		return nil, fmt.Errorf("log dir %s: %s", logDir, msg)
	default:
		return nil, fmt.Errorf("read %s: exit status %d: %s", s.Path, o.code, msg)
	}
	if o.stdout == "" {
		return s, nil
	}
	lines := strings.Split(strings.TrimSuffix(o.stdout, "\n"), "\n")
	n, err := strconv.Atoi(lines[0])
	if err != nil || len(lines) < 2 {
		return nil, fmt.Errorf("read %s: unexpected output %q", s.Path, o.stdout)
	}
	s.Exists, s.ErrorLines, s.LastError = true, n, lines[1]
	s.Tail = append(s.Tail, lines[2:]...)
	return s, nil
}
