// Package output renders command results: aligned tables with Java
// mqadmin's "#Header" column names by default, indented JSON with -o json,
// and a progress indicator for long operations.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// Format is an output format; it implements pflag.Value for -o/--output.
type Format string

// Formats.
const (
	Table Format = "table"
	JSON  Format = "json"
)

// String implements pflag.Value.
func (f *Format) String() string {
	if *f == "" {
		return string(Table)
	}
	return string(*f)
}

// Set implements pflag.Value.
func (f *Format) Set(s string) error {
	switch Format(s) {
	case Table, JSON:
		*f = Format(s)
		return nil
	}
	return fmt.Errorf("unknown output format %q: want table or json", s)
}

// Type implements pflag.Value.
func (f *Format) Type() string { return "format" }

// Printer writes results in one format.
type Printer struct {
	w      io.Writer
	format Format
}

// New returns a printer writing to w.
func New(w io.Writer, f Format) *Printer {
	if f == "" {
		f = Table
	}
	return &Printer{w: w, format: f}
}

// IsJSON reports whether results must be printed with JSON.
func (p *Printer) IsJSON() bool { return p.format == JSON }

// JSON prints v as indented JSON.
func (p *Printer) JSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = p.w.Write(append(b, '\n'))
	return err
}

// Table prints rows under headers, columns left-aligned and separated by
// two spaces, without borders: every column starts where its header's
// '#' does, which keeps the output easy to cut and to parse.
func (p *Printer) Table(headers []string, rows [][]string) error {
	var buf bytes.Buffer
	t := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders:  tw.BorderNone,
			Symbols:  tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{Separators: tw.SeparatorsNone, Lines: tw.LinesNone},
		})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithPadding(tw.Padding{Right: "  ", Overwrite: true}),
		tablewriter.WithTrimSpace(tw.Off),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	)
	t.Header(headers)
	for _, r := range rows {
		// An empty cell would shift nothing, but "-" keeps every column
		// non-blank for tools that split on whitespace.
		cells := make([]string, len(r))
		for i, c := range r {
			if c == "" {
				c = "-"
			}
			cells[i] = c
		}
		if err := t.Append(cells); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		if _, err := fmt.Fprintln(p.w, strings.TrimRight(line, " ")); err != nil {
			return err
		}
	}
	return nil
}

// Printf prints a free-form line (footers such as "Total: …").
func (p *Printer) Printf(format string, args ...any) {
	fmt.Fprintf(p.w, format, args...)
}

// Time formats a millisecond timestamp in local time the way Java mqadmin
// does ("2006-01-02 15:04:05,000"); 0 means never and prints "-".
func Time(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).Format("2006-01-02 15:04:05,000")
}
