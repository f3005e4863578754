package atomicfile

import (
	"os"
	"path/filepath"
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
