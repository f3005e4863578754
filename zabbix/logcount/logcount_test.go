package logcount

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCapturedLogs counts the logs captured from a real broker and name
// server run; the expected numbers were taken with grep from the files.
func TestCapturedLogs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range Files {
		data, err := os.ReadFile(filepath.Join("..", "logparse", "testdata", f+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f+".log"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(t.TempDir(), "logs.json")
	c, err := Update(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Files["broker"]
	if !b.Present || b.Lines != 12 || b.Warn != 5 || b.Error != 0 {
		t.Errorf("broker.log: %+v", b)
	}
	if b.Tags["PERMISSION_CHANGED"] != 2 || b.Tags["CONFIG_UPDATE"] != 3 || b.Tags["TOPIC_CREATE"] != 2 {
		t.Errorf("broker.log tags: %v", b.Tags)
	}
	if c.RegisterFailed != 1 || c.DiskFull != 0 || c.Panics != 0 || c.StoreErrors != 1 {
		t.Errorf("totals: %+v", c)
	}

	// A second call reads nothing new: totals stay.
	again, err := Update(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	if again.RegisterFailed != 1 || again.Files["broker"].Lines != 12 {
		t.Errorf("second call changed the totals: %+v", again)
	}

	// DISK_FULL counts when the store refuses writes (ERROR), not when it
	// says the disk is fine again (INFO).
	f, err := os.OpenFile(filepath.Join(dir, "store.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("2026-11-21 22:10:00.000 +0000 ERROR [store] [DISK_FULL] disk usage above limit, refusing appends usedPercent=96 limit=95\n")
	f.WriteString("2026-11-21 22:11:00.000 +0000 INFO  [store] [DISK_FULL] disk usage back below limit, accepting appends usedPercent=80\n")
	f.Close()
	c, err = Update(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	if c.DiskFull != 1 || c.Files["store"].Tags["DISK_FULL"] != 2 || c.Errors != 1 {
		t.Errorf("after a disk-full episode: diskFull=%d tags=%v errors=%d", c.DiskFull, c.Files["store"].Tags, c.Errors)
	}
}
