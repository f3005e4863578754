// Package logging opens the daemons' log files: RocketMQ-style text lines,
// rotated by day and by size, with a bounded number of old files kept.
package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Rotation limits: logback's broker.log rolls at 128MB, and ten old files
// keep a busy day or two without filling the disk.
const (
	maxSize  = 128 << 20
	maxFiles = 10
)

// TagKey is the attribute shown as the line's [tag] instead of as key=value,
// e.g. log.With(logging.TagKey, "HAService"). Without one the tag is the
// file's name without extension ("broker" for broker.log).
const TagKey = "tag"

// Option changes what Open does.
type Option func(*options)

type options struct {
	stderr io.Writer
}

// WithStderr also writes every line to standard error, for running in a
// terminal.
func WithStderr() Option {
	w := os.Stderr
	return func(o *options) { o.stderr = w }
}

// Open returns a logger that writes lines such as
//
//	2026-11-21 19:03:04.123 +0000 INFO  [broker] message key=value
//
// to dir/name, creating dir if needed. The file is renamed to
// name.yyyy-MM-dd.N when the day changes or it reaches 128 MiB; the ten
// newest such files are kept. Closing the closer closes the file.
func Open(dir, name string, level slog.Level, opts ...Option) (*slog.Logger, io.Closer, error) {
	if dir == "" {
		return nil, nil, errors.New("open log: empty directory")
	}
	if name == "" || name != filepath.Base(name) {
		return nil, nil, fmt.Errorf("open log: %q is not a file name", name)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	r, err := newRotator(filepath.Join(dir, name), maxSize, maxFiles, time.Now)
	if err != nil {
		return nil, nil, err
	}
	var out io.Writer = r
	if o.stderr != nil {
		out = io.MultiWriter(r, o.stderr)
	}
	tag := strings.TrimSuffix(name, filepath.Ext(name))
	return slog.New(&handler{out: out, level: level, tag: tag}), r, nil
}
