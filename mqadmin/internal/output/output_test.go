package output

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// Columns start under their header's '#', empty cells print "-", and no
// line carries trailing blanks.
func TestTable(t *testing.T) {
	var b bytes.Buffer
	p := New(&b, Table)
	if err := p.Table([]string{"#Broker Name", "#QID", "#Last Updated"}, [][]string{
		{"broker-a", "0", ""},
		{"broker-long-name", "12", "2024-05-01 10:15:02,123"},
	}); err != nil {
		t.Fatal(err)
	}
	want := "#Broker Name      #QID  #Last Updated\n" +
		"broker-a          0     -\n" +
		"broker-long-name  12    2024-05-01 10:15:02,123\n"
	if b.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestJSONAndFormat(t *testing.T) {
	var f Format
	if err := f.Set("yaml"); err == nil {
		t.Fatal("yaml accepted")
	}
	if err := f.Set("json"); err != nil || f.String() != "json" {
		t.Fatalf("json: %v %s", err, f.String())
	}
	var b bytes.Buffer
	p := New(&b, f)
	if !p.IsJSON() || p.JSON(map[string]int{"a": 1}) != nil || b.String() != "{\n  \"a\": 1\n}\n" {
		t.Fatalf("json output %q", b.String())
	}
}

// Piped, the progress indicator stays silent.
func TestProgressQuietWhenPiped(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := StartProgress(w, "working")
	p.Update("still working")
	p.Stop()
	w.Close()
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Fatalf("progress wrote %q to a pipe", b)
	}
}
