package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cliResult is what one mqadmin run printed and returned.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs bin/mqadmin with a private HOME (a developer's
// ~/.mqadmin.yaml must not leak in) and no NAMESRV_ADDR unless env sets it.
func runCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "mqadmin"), args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String()}
	if i := strings.Index(r.stderr, raceReport); i >= 0 {
		t.Errorf("mqadmin %v: data race detected:\n%s", args, r.stderr[i:])
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run mqadmin %v: %v", args, err)
	}
	return r
}

// cli runs mqadmin against name server ns and returns stdout; any failure
// fails the test.
func cli(t *testing.T, ns string, args ...string) string {
	t.Helper()
	r := runCLI(t, nil, append(args, "-n", ns)...)
	if r.code != 0 {
		t.Fatalf("mqadmin %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// cliJSON runs mqadmin with JSON output and decodes it into v.
func cliJSON(t *testing.T, ns string, v any, args ...string) {
	t.Helper()
	out := cli(t, ns, append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("mqadmin %s: bad json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// cliFail runs mqadmin expecting failure: non-zero exit, nothing on
// stdout, and exactly one "mqadmin: …" line on stderr, which it returns.
func cliFail(t *testing.T, ns string, args ...string) string {
	t.Helper()
	if ns != "" {
		args = append(args, "-n", ns)
	}
	r := runCLI(t, nil, args...)
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if r.code == 0 || r.stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "mqadmin: ") {
		t.Fatalf("mqadmin %s: want one-line failure, got exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return lines[0]
}

// table is one parsed "#Header" table; rows map header names (without
// '#') to cells.
type table struct {
	header []string
	rows   []map[string]string
}

// sections splits output at blank lines.
func sections(out string) []string {
	var secs []string
	for _, s := range strings.Split(strings.TrimRight(out, "\n"), "\n\n") {
		if s = strings.Trim(s, "\n"); s != "" {
			secs = append(secs, s)
		}
	}
	return secs
}

// parseTable reads a table whose columns start where the header's '#'
// marks do.
func parseTable(t *testing.T, sec string) table {
	t.Helper()
	lines := strings.Split(sec, "\n")
	head := lines[0]
	if !strings.HasPrefix(head, "#") {
		t.Fatalf("not a table:\n%s", sec)
	}
	var starts []int
	for i := range head {
		if head[i] == '#' && (i == 0 || head[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	cut := func(line string, i int) string {
		from := starts[i]
		if from >= len(line) {
			return ""
		}
		to := len(line)
		if i+1 < len(starts) && starts[i+1] < to {
			to = starts[i+1]
		}
		return strings.TrimSpace(line[from:to])
	}
	var tb table
	for i := range starts {
		tb.header = append(tb.header, strings.TrimPrefix(cut(head, i), "#"))
	}
	for _, l := range lines[1:] {
		row := map[string]string{}
		for i, h := range tb.header {
			row[h] = cut(l, i)
		}
		tb.rows = append(tb.rows, row)
	}
	return tb
}

// tableOf parses the first section of out as a table.
func tableOf(t *testing.T, out string) table {
	t.Helper()
	secs := sections(out)
	if len(secs) == 0 {
		t.Fatalf("no output")
	}
	return parseTable(t, secs[0])
}

// wantHeader checks a table's columns.
func (tb table) wantHeader(t *testing.T, cols ...string) {
	t.Helper()
	if strings.Join(tb.header, "|") != strings.Join(cols, "|") {
		t.Fatalf("columns %q, want %q", tb.header, cols)
	}
}

// where returns the rows whose column col equals v.
func (tb table) where(col, v string) []map[string]string {
	var out []map[string]string
	for _, r := range tb.rows {
		if r[col] == v {
			out = append(out, r)
		}
	}
	return out
}

// one returns the single row whose column col equals v.
func (tb table) one(t *testing.T, col, v string) map[string]string {
	t.Helper()
	rs := tb.where(col, v)
	if len(rs) != 1 {
		t.Fatalf("%d rows with %s=%s in %v", len(rs), col, v, tb.rows)
	}
	return rs[0]
}
