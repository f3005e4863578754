package wire

import (
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, ok := range []string{"T", "%RETRY%g", "a|b", "A-z_0-9", strings.Repeat("t", MaxTopicLen)} {
		if err := CheckTopic(ok); err != nil {
			t.Errorf("CheckTopic(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "a b", "a.b", "ü", "..", strings.Repeat("t", MaxTopicLen+1)} {
		if err := CheckTopic([]byte(bad)); err == nil {
			t.Errorf("CheckTopic(%q) accepted", bad)
		}
	}
	if err := CheckGroup(strings.Repeat("g", MaxGroupLen)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "a/b", "g\x00", strings.Repeat("g", MaxGroupLen+1)} {
		if err := CheckGroup(bad); err == nil {
			t.Errorf("CheckGroup(%q) accepted", bad)
		}
	}
	if err := CheckGroup("a/b"); !strings.Contains(err.Error(), `"a/b"`) {
		t.Errorf("the error must name the group: %v", err)
	}
	// The store's check keeps what earlier builds stored loadable.
	for name, want := range map[string]bool{"%RETRY%my.group": true, "a b": true, "a/b": false, ".": false, "..": false, "": false, "a\x00": false} {
		if StorableTopic(name) != want {
			t.Errorf("StorableTopic(%q) = %v", name, !want)
		}
	}
	name := []byte("TopicTest")
	if n := testing.AllocsPerRun(100, func() { _ = CheckTopic(name); _ = CheckGroup(name) }); n != 0 {
		t.Fatalf("checking a good name allocates %v times", n)
	}
}
