package schedule

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestLevelsReplace: a master's progress (Java's unquoted level keys or
// ours) is adopted and saved; levels beyond the table are ignored; a bad
// body changes nothing; Encode answers what was adopted.
func TestLevelsReplace(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	path := filepath.Join(dir, "delayOffset.json")
	l, err := OpenLevels(st, testLevels, path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Replace([]byte(`{"offsetTable":{1:7,2:3,18:99}}`)); err != nil {
		t.Fatal(err)
	}
	if p := l.Progress(); p[0][0] != 7 || p[1][0] != 3 {
		t.Errorf("progress %v", p)
	}
	saved, err := os.ReadFile(path)
	if err != nil || string(saved) != `{"offsetTable":{"1":7,"2":3}}` {
		t.Errorf("saved %s %v", saved, err)
	}
	if got := string(l.Encode()); got != string(saved) {
		t.Errorf("Encode %s", got)
	}
	for _, bad := range []string{`{"offsetTable":{1:`, `{"offsetTable":{"x":1}}`, `{"offsetTable":{"1":-5}}`} {
		if err := l.Replace([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if p := l.Progress(); p[0][0] != 7 || p[1][0] != 3 {
		t.Errorf("a bad body changed the progress: %v", p)
	}
}

// TestLevelsReplaceWhileRunning: the slave sync adopts progress while the
// delivery loop runs (both save it); under -race this fails if the loop
// reads the last save time without the lock Replace writes it under.
func TestLevelsReplaceWhileRunning(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	l, err := OpenLevels(st, testLevels, filepath.Join(dir, "delayOffset.json"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	defer l.Close()
	// Several loop ticks, each after a Replace.
	for i := range 5 {
		if err := l.Replace([]byte(`{"offsetTable":{"1":` + strconv.Itoa(i) + `}}`)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(Tick + Tick/2)
	}
	if p := l.Progress(); p[0][0] != 4 {
		t.Errorf("progress %v", p)
	}
}
