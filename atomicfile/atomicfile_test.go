package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteReplacesAndKeepsBackup(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "topics.json")
	if err := Write(p, []byte("v1"), Options{Backup: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("v2"), Options{Backup: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "v2" {
		t.Fatalf("content %q", b)
	}
	if b, _ := os.ReadFile(p + ".bak"); string(b) != "v1" {
		t.Fatalf("backup %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v: an existing file keeps its permissions", fi.Mode())
	}
	left, _ := filepath.Glob(filepath.Join(dir, "sub", "*.tmp*"))
	if len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

func TestWriteFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(blocker, "x.json"), []byte("x"), Options{}); err == nil {
		t.Fatal("writing under a regular file succeeded")
	}
}

func TestLoadFallsBackToBackup(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "topics.json")
	parse := func(got *string) func([]byte) error {
		return func(b []byte) error {
			if len(b) == 0 || b[len(b)-1] != '}' {
				return errors.New("torn")
			}
			*got = string(b)
			return nil
		}
	}
	var got string
	if fb, err := Load(p, parse(&got)); fb != nil || err != nil || got != "" {
		t.Fatalf("nothing saved: %v %v %q", fb, err, got)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p, []byte("{v2}"), 0o644))
	must(os.WriteFile(p+".bak", []byte("{v1}"), 0o644))
	if fb, err := Load(p, parse(&got)); fb != nil || err != nil || got != "{v2}" {
		t.Fatalf("good file: %v %v %q", fb, err, got)
	}
	must(os.WriteFile(p, []byte("{v3, torn"), 0o644))
	fb, err := Load(p, parse(&got))
	if err != nil || got != "{v1}" || fb == nil || !strings.Contains(fb.Error(), p+": torn") {
		t.Fatalf("torn file: fellBack %v err %v got %q", fb, err, got)
	}
	must(os.WriteFile(p+".bak", []byte("{v0, torn"), 0o644))
	if _, err := Load(p, parse(&got)); err == nil || !strings.Contains(err.Error(), p+": torn") || !strings.Contains(err.Error(), p+".bak: torn") {
		t.Fatalf("both torn: %v", err)
	}
	must(os.Remove(p + ".bak"))
	if _, err := Load(p, parse(&got)); err == nil || !strings.Contains(err.Error(), "no usable backup") {
		t.Fatalf("torn without backup: %v", err)
	}
}
