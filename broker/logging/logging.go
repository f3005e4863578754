// Package logging opens the daemons' log files: RocketMQ-style text lines,
// rotated by day and by size, with a bounded number of old files kept.
package logging

import (
	"context"
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
	stderr    io.Writer
	copyName  string
	copyLevel slog.Level
}

// WithCopy also writes records at or above level to a second file in the
// same directory, as RocketMQ keeps store errors in storeerror.log beside
// store.log.
func WithCopy(name string, level slog.Level) Option {
	return func(o *options) { o.copyName, o.copyLevel = name, level }
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
	h := &handler{out: out, level: level, tag: tag}
	if o.copyName == "" {
		return slog.New(h), r, nil
	}
	if o.copyName != filepath.Base(o.copyName) || o.copyName == name {
		r.Close()
		return nil, nil, fmt.Errorf("open log: %q is not a second file name", o.copyName)
	}
	cr, err := newRotator(filepath.Join(dir, o.copyName), maxSize, maxFiles, time.Now)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	copyH := &handler{out: cr, level: o.copyLevel, tag: tag}
	return slog.New(fanout{h, copyH}), multiCloser{r, cr}, nil
}

// fanout hands each record to every handler that wants its level.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(attrs)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var errs []error
	for _, c := range m {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// OpenWriter returns the rotating file dir/name itself, for logs whose
// lines are formatted by their writer (stats.log), with the same rotation
// as Open.
func OpenWriter(dir, name string) (io.WriteCloser, error) {
	if dir == "" || name == "" || name != filepath.Base(name) {
		return nil, fmt.Errorf("open log: %q in %q is not a file name", name, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return newRotator(filepath.Join(dir, name), maxSize, maxFiles, time.Now)
}
