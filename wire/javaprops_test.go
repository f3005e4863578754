package wire

import (
	"reflect"
	"testing"
)

func TestParseJavaProperties(t *testing.T) {
	text := "# comment\n! also a comment\n" +
		"  a = 1  \n" +
		"b:2\n" +
		"c 3\n" +
		"d=x \\\n   y\n" +
		"e=\\u0041\\t\\\\\n" +
		"f\\ g=h\n" +
		"empty=\n" +
		"user.home=${user.home}\n" +
		"a=last\n"
	got, err := ParseJavaProperties(text)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "last", "b": "2", "c": "3", "d": "x y", "e": "A\t\\", "f g": "h", "empty": "", "user.home": "${user.home}"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	got, err = ParseJavaProperties("brokerName=a\nBrokerName=b\nbrokerName=c\n")
	if want := map[string]string{"brokerName": "c", "BrokerName": "b"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("keys differing only in case: %q %v", got, err)
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"plain", " lead", "a=b:c", "#x", "!x", "tab\there", "line\nbreak", `back\slash`, "ünïcode"} {
		text := FormatJavaProperties([]JavaProperty{{Key: s, Value: s}})
		got, err := ParseJavaProperties(string(text))
		if err != nil || len(got) != 1 || got[s] != s {
			t.Errorf("%q: wrote %q, read %q %v", s, text, got, err)
		}
	}
}
