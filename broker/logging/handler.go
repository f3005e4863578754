package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"time"
	"unicode"
)

// handler formats records close to RocketMQ's logback pattern. Each line
// goes to out in one Write, so concurrent lines never interleave.
type handler struct {
	out    io.Writer
	level  slog.Leveler
	tag    string
	prefix string // open groups, "a.b."
	attrs  []byte // " k=v" pairs from WithAttrs, already formatted
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	tag := h.tag
	if h.prefix == "" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == TagKey {
				tag = a.Value.Resolve().String()
			}
			return true
		})
	}
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	buf := make([]byte, 0, 256)
	buf = t.AppendFormat(buf, "2006-01-02 15:04:05.000 -0700 ")
	buf = fmt.Appendf(buf, "%-5s [%s] %s", r.Level, tag, r.Message)
	buf = append(buf, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		if h.prefix != "" || a.Key != TagKey {
			buf = appendAttr(buf, h.prefix, a)
		}
		return true
	})
	buf = append(buf, '\n')
	_, err := h.out.Write(buf)
	return err
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clip(h.attrs)
	for _, a := range attrs {
		if h.prefix == "" && a.Key == TagKey {
			c.tag = a.Value.Resolve().String()
			continue
		}
		c.attrs = appendAttr(c.attrs, h.prefix, a)
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix += name + "."
	return &c
}

// appendAttr writes " key=value", flattening groups into dotted keys as
// slog's TextHandler does.
func appendAttr(buf []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			buf = appendAttr(buf, prefix, g)
		}
		return buf
	}
	buf = append(buf, ' ')
	buf = appendText(buf, prefix+a.Key)
	buf = append(buf, '=')
	var s string
	switch a.Value.Kind() {
	case slog.KindTime:
		s = a.Value.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			s = err.Error()
		} else {
			s = fmt.Sprint(a.Value.Any())
		}
	default:
		s = a.Value.String()
	}
	return appendText(buf, s)
}

// appendText quotes s only when a reader could not split it back out.
func appendText(buf []byte, s string) []byte {
	if s == "" {
		return append(buf, `""`...)
	}
	for _, r := range s {
		if r == '=' || r == '"' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return strconv.AppendQuote(buf, s)
		}
	}
	return append(buf, s...)
}
