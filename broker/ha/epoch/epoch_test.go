package epoch

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The golden file from RocketMQ's format: epochs (1, 0) and (2, 4096); the
// CRC is CRC32("1-0\n2-4096\n") & 0x7FFFFFFF.
const golden = "2\n1694929738\n1-0\n2-4096\n"

func TestFormatGolden(t *testing.T) {
	got := string(Format([]Entry{{1, 0}, {2, 4096}}))
	if got != golden {
		t.Fatalf("Format = %q, want %q", got, golden)
	}
	e, err := Parse([]byte(golden))
	if err != nil || !reflect.DeepEqual(e, []Entry{{1, 0}, {2, 4096}}) {
		t.Fatalf("Parse = %v, %v", e, err)
	}
	// The example in CheckpointFile's comment, written by Java.
	e, err = Parse([]byte("2\n773307083\n7-7000\n8-8000\n"))
	if err != nil || !reflect.DeepEqual(e, []Entry{{7, 7000}, {8, 8000}}) {
		t.Fatalf("Parse(Java sample) = %v, %v", e, err)
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":         "",
		"bad count":     "x\n0\n",
		"count":         "3\n1694929738\n1-0\n2-4096\n",
		"crc":           "2\n1694929739\n1-0\n2-4096\n",
		"entry":         "1\n0\n1:0\n",
		"not increase":  "2\n0\n2-0\n1-4096\n",
		"offset back":   "2\n0\n1-4096\n2-0\n",
		"negative":      "1\n0\n1--5\n",
		"huge epoch":    "1\n0\n99999999999-0\n",
		"crc not int32": "1\n99999999999\n1-0\n",
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: Parse(%q) accepted", name, in)
		}
	}
	// CRC 0 disables the check, as in Java.
	if e, err := Parse([]byte("1\n0\n3-10\n")); err != nil || len(e) != 1 {
		t.Fatalf("crc 0: %v %v", e, err)
	}
}

func TestFileAppendTruncatePersist(t *testing.T) {
	p := filepath.Join(t.TempDir(), "epochFileCheckpoint")
	f, err := Open(p)
	if err != nil || len(f.Entries()) != 0 || f.LastEpoch() != -1 {
		t.Fatalf("new file: %v %v", f, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.Append(Entry{1, 0}))
	must(f.Append(Entry{2, 4096}))
	if b, _ := os.ReadFile(p); string(b) != golden {
		t.Fatalf("file %q, want %q", b, golden)
	}
	if b, _ := os.ReadFile(p + ".bak"); string(b) != "1\n1725254278\n1-0\n" {
		t.Fatalf("backup %q: want the previous list", b)
	}
	// Epoch and offset must grow.
	for _, e := range []Entry{{2, 5000}, {1, 9000}, {3, 4000}} {
		if err := f.Append(e); !errors.Is(err, ErrNotIncreasing) {
			t.Fatalf("Append(%v) = %v, want ErrNotIncreasing", e, err)
		}
	}
	// Deviation: an empty previous epoch is replaced.
	must(f.Append(Entry{3, 8192}))
	must(f.Append(Entry{4, 8192}))
	if got := f.Entries(); !reflect.DeepEqual(got, []Entry{{1, 0}, {2, 4096}, {4, 8192}}) {
		t.Fatalf("entries %v", got)
	}
	if e, end, ok := f.Find(5000, 9000); !ok || e != (Entry{2, 4096}) || end != 8192 {
		t.Fatalf("Find(5000) = %v %d %v", e, end, ok)
	}
	if e, end, ok := f.Find(8192, 9000); !ok || e.Epoch != 4 || end != 9000 {
		t.Fatalf("Find(8192) = %v %d %v", e, end, ok)
	}
	if _, _, ok := f.Find(9000, 9000); ok {
		t.Fatal("Find at the log end found an entry")
	}
	// Reopen: the list survives.
	g, err := Open(p)
	must(err)
	if !reflect.DeepEqual(g.Entries(), f.Entries()) {
		t.Fatalf("reopened %v, want %v", g.Entries(), f.Entries())
	}
	// Truncate to 4096 drops entries starting at or after it.
	must(g.TruncateFrom(4096))
	if got := g.Entries(); !reflect.DeepEqual(got, []Entry{{1, 0}}) {
		t.Fatalf("after TruncateFrom(4096): %v", got)
	}
	// A damaged primary falls back to the .bak copy.
	must(os.WriteFile(p, []byte("garbage"), 0o644))
	h, err := Open(p)
	must(err)
	if got := h.Entries(); !reflect.DeepEqual(got, []Entry{{1, 0}, {2, 4096}, {4, 8192}}) {
		t.Fatalf("fallback to .bak: %v", got)
	}
	// Truncating everything removes both files: nothing comes back.
	must(h.TruncateFrom(0))
	for _, q := range []string{p, p + ".bak"} {
		if _, err := os.Stat(q); !os.IsNotExist(err) {
			t.Fatalf("%s still exists after truncating every epoch", q)
		}
	}
	if k, err := Open(p); err != nil || len(k.Entries()) != 0 {
		t.Fatalf("reopen after full truncate: %v %v", k.Entries(), err)
	}
}

func TestOpenRefusesDamagedWithoutBackup(t *testing.T) {
	p := filepath.Join(t.TempDir(), "epochFileCheckpoint")
	if err := os.WriteFile(p, []byte("2\n5\n1-0\n2-4096\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p); err == nil {
		t.Fatal("a file with a wrong CRC and no backup was accepted")
	}
}

func TestFindConsistentPoint(t *testing.T) {
	for _, c := range []struct {
		name              string
		local             []Entry
		localMax          int64
		master            []Entry
		masterMax, expect int64
	}{
		// ha.md example: old master M had (5, 1000) and data to 1500;
		// S was promoted at 1300 with (6, 1300): M truncates to 1300.
		{"rejoining old master", []Entry{{4, 0}, {5, 1000}}, 1500, []Entry{{4, 0}, {5, 1000}, {6, 1300}}, 2000, 1300},
		{"slave behind, same epoch", []Entry{{1, 0}}, 500, []Entry{{1, 0}}, 900, 500},
		{"slave ahead within the epoch (unconfirmed tail)", []Entry{{1, 0}}, 900, []Entry{{1, 0}}, 500, 500},
		{"slave behind master's later epochs", []Entry{{1, 0}, {2, 100}}, 150, []Entry{{1, 0}, {2, 100}, {3, 400}}, 800, 150},
		{"newest local epoch unknown to master", []Entry{{1, 0}, {2, 100}, {3, 200}}, 300, []Entry{{1, 0}, {2, 100}, {4, 150}}, 400, 150},
		{"same epoch, different start: older one decides", []Entry{{1, 0}, {2, 100}}, 300, []Entry{{1, 0}, {2, 120}}, 400, 100},
		{"nothing in common", []Entry{{2, 0}}, 100, []Entry{{3, 0}}, 100, -1},
		{"empty local", nil, 0, []Entry{{1, 0}}, 100, -1},
		{"empty master", []Entry{{1, 0}}, 100, nil, 0, -1},
		// A master killed before any write, back after the election: the
		// new master's first epoch replaced the empty one (Append).
		{"old master with an empty log, new master empty", []Entry{{1, 0}}, 0, []Entry{{2, 0}}, 0, 0},
		{"old master with an empty log, new master wrote", []Entry{{1, 0}}, 0, []Entry{{2, 0}}, 700, 0},
		{"empty local epochs after epochless data", []Entry{{1, 300}}, 300, []Entry{{2, 300}}, 900, 300},
		{"empty local epochs, master's epoch starts earlier", []Entry{{1, 300}}, 300, []Entry{{2, 100}}, 900, 100},
		{"local data in an epoch the master lacks", []Entry{{1, 0}}, 50, []Entry{{2, 0}}, 700, -1},
	} {
		if got := FindConsistentPoint(c.local, c.localMax, c.master, c.masterMax); got != c.expect {
			t.Errorf("%s: got %d, want %d", c.name, got, c.expect)
		}
	}
}
