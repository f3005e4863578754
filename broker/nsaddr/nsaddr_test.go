package nsaddr

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		content, want, err string
	}{
		{"10.0.0.1:9876", "10.0.0.1:9876", ""},
		{"# managed\n10.0.0.1:9876;10.0.0.2:9876;\n", "10.0.0.1:9876;10.0.0.2:9876", ""},
		{"10.0.0.1:9876\n\n  10.0.0.2:9876  \r\n", "10.0.0.1:9876;10.0.0.2:9876", ""},
		{"ns.example:9876", "ns.example:9876", ""},
		{"", "", "no address"},
		{"# only a comment\n", "", "no address"},
		{"10.0.0.1", "", `address "10.0.0.1"`},
		{"10.0.0.1:9876;:9876", "", `address ":9876"`},
		{"10.0.0.1:0", "", "port out of range"},
		{"10.0.0.1:http", "", `address "10.0.0.1:http"`},
	} {
		p := filepath.Join(dir, "nsaddr")
		if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Read(p)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("Read(%q) = %q, %v; want %q", c.content, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("Read(%q) = %q, %v; want an error with %q", c.content, got, err, c.err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file read without error")
	}
}
