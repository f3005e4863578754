package wire

import (
	"maps"
	"testing"
	"unicode/utf16"
)

func TestPropertyValue(t *testing.T) {
	tests := []struct {
		name, props, key, want string
		found                  bool
	}{
		{"java form", "TAGS\x01a\x02KEYS\x01k1 k2", "KEYS", "k1 k2", true},
		{"go form trailing sep", "TAGS\x01a\x02KEYS\x01k1\x02", "KEYS", "k1", true},
		{"first", "TAGS\x01a\x02KEYS\x01k1", "TAGS", "a", true},
		{"missing", "TAGS\x01a", "KEYS", "", false},
		{"empty props", "", "TAGS", "", false},
		{"prefix key not matched", "TAGSX\x01a", "TAGS", "", false},
		{"empty value ignored", "TAGS\x01\x02KEYS\x01k", "TAGS", "", false},
		{"empty key ignored", "\x01v\x02TAGS\x01t", "", "", false},
		{"no separator fragment ignored", "TAGS\x02KEYS\x01k", "TAGS", "", false},
		{"value with 0x01 kept", "TAGS\x01a\x01b", "TAGS", "a\x01b", true},
		{"duplicate: last wins", "TAGS\x01a\x02TAGS\x01b", "TAGS", "b", true},
		{"double separators", "\x02\x02TAGS\x01a\x02\x02", "TAGS", "a", true},
		{"utf8 value", "TAGS\x01标签", "TAGS", "标签", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := PropertyValue([]byte(tc.props), tc.key)
			if string(got) != tc.want || (got != nil) != tc.found {
				t.Fatalf("PropertyValue = %q (nil=%v), want %q found=%v", got, got == nil, tc.want, tc.found)
			}
			m := ParseProperties([]byte(tc.props))
			if v, ok := m[tc.key]; v != tc.want || ok != tc.found {
				t.Fatalf("ParseProperties[%q] = %q,%v", tc.key, v, ok)
			}
		})
	}
	props := []byte("A\x01b\x02TAGS\x01tag\x02C\x01d")
	if a := testing.AllocsPerRun(100, func() { PropertyValue(props, PropTags) }); a != 0 {
		t.Errorf("PropertyValue allocs = %v", a)
	}
}

func TestAppendAndRemoveProperties(t *testing.T) {
	var p []byte
	p = AppendProperty(p, "A", "1")
	p = AppendProperty(p, "B", "2")
	if string(p) != "A\x011\x02B\x012" {
		t.Fatalf("AppendProperty = %q", p)
	}
	// Go-style input with a trailing separator gets no doubled separator.
	if got := AppendProperty([]byte("X\x01y\x02"), "A", "1"); string(got) != "X\x01y\x02A\x011" {
		t.Fatalf("AppendProperty after trailing sep = %q", got)
	}
	m := map[string]string{"UNIQ_KEY": "id", "TAGS": "t", "KEYS": "k"}
	enc := AppendProperties(nil, m)
	if string(enc) != "KEYS\x01k\x02TAGS\x01t\x02UNIQ_KEY\x01id" {
		t.Fatalf("AppendProperties = %q", enc)
	}
	if back := ParseProperties(enc); !maps.Equal(back, m) {
		t.Fatalf("round trip = %v", back)
	}

	tests := []struct{ in, name, want string }{
		{"A\x011\x02B\x012\x02C\x013", "B", "A\x011\x02C\x013"},
		{"A\x011\x02B\x012\x02C\x013", "A", "B\x012\x02C\x013"},
		{"A\x011\x02B\x012\x02C\x013", "C", "A\x011\x02B\x012"},
		{"A\x011\x02B\x012\x02", "B", "A\x011"},
		{"B\x012\x02A\x011\x02B\x013", "B", "A\x011"},
		{"A\x011", "Z", "A\x011"},
		{"junk\x02A\x011", "A", "junk"},
		{"", "A", ""},
	}
	for _, tc := range tests {
		if got := RemoveProperty([]byte("pre:"), []byte(tc.in), tc.name); string(got) != "pre:"+tc.want {
			t.Errorf("RemoveProperty(%q, %s) = %q, want %q", tc.in, tc.name, got, "pre:"+tc.want)
		}
	}
}

// javaHash is a reference String.hashCode via the standard UTF-16 encoder.
func javaHash(s string) int64 {
	var h int32
	for _, c := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(c)
	}
	return int64(h)
}

func TestTagsHashCode(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"", 0},
		{"TagA", 2598919},
		{"hello world", 1794106052},
		{"中文", 646394},
		{"polygenelubricants", -2147483648}, // Java's famous Integer.MIN_VALUE hash
		{"😀", 1772899},                      // U+1F600 → surrogates D83D DE00
		{"\xff", 0xFFFD},                    // invalid byte → U+FFFD
	}
	for _, tc := range tests {
		if got := TagsHashCode([]byte(tc.in)); got != tc.want {
			t.Errorf("TagsHashCode(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	for _, s := range []string{"a||b", "TagB", "𝄞 music 𝄞", "mixed 中 😀 é", "a very long tag string that overflows int32 many times"} {
		if got, want := TagsHashCode([]byte(s)), javaHash(s); got != want {
			t.Errorf("TagsHashCode(%q) = %d, want %d", s, got, want)
		}
	}
}
