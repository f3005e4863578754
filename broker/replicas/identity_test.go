package replicas

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIdentityFilesGolden(t *testing.T) {
	dir := t.TempDir()
	f := IdentityFiles{Path: filepath.Join(dir, "brokerIdentity")}
	if _, ok, err := f.Load(); ok || err != nil {
		t.Fatalf("empty dir: ok=%v err=%v", ok, err)
	}
	tmp := Identity{Cluster: "DefaultCluster", Name: "broker-a", ID: 2, CheckCode: "127.0.0.1:30921;1733480000000"}
	if err := f.SaveTemp(tmp); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.Path + "-temp"); string(b) != "DefaultCluster#broker-a#2#127.0.0.1:30921;1733480000000" {
		t.Fatalf("temp file %q", b)
	}
	if got, ok, err := f.LoadTemp(); !ok || err != nil || got != tmp {
		t.Fatalf("LoadTemp = %v %v %v", got, ok, err)
	}
	if err := f.Commit(Identity{Cluster: "DefaultCluster", Name: "broker-a", ID: 2}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.Path); string(b) != "DefaultCluster#broker-a#2" {
		t.Fatalf("identity file %q", b)
	}
	if _, err := os.Stat(f.Path + "-temp"); !os.IsNotExist(err) {
		t.Fatal("temp file kept after commit")
	}
	if got, ok, err := f.Load(); !ok || err != nil || got.ID != 2 || got.Name != "broker-a" || got.Cluster != "DefaultCluster" {
		t.Fatalf("Load = %v %v %v", got, ok, err)
	}
	// A file written by Java (same text) with a line end added by hand still loads.
	if err := os.WriteFile(f.Path, []byte("C#b#7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := f.Load(); !ok || err != nil || got.ID != 7 {
		t.Fatalf("Load(hand-edited) = %v %v %v", got, ok, err)
	}
	for _, bad := range []string{"C#b", "C#b#x", "C#b#-1", "#b#1", "C#b#1#extra"} {
		if err := os.WriteFile(f.Path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.Load(); err == nil {
			t.Errorf("Load(%q) accepted", bad)
		}
	}
	if err := f.SaveTemp(Identity{Cluster: "a#b", Name: "n", ID: 1, CheckCode: "x"}); err == nil {
		t.Fatal("a cluster name with '#' was written")
	}
}
