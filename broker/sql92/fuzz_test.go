package sql92

import "testing"

// FuzzParse: no expression or properties string makes Parse or Match
// panic, and an accepted expression evaluates to TRUE, FALSE, null or
// Java's exception, nothing else.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a BETWEEN 3 AND 5 AND TAGS IN ('x','y')", "a=3 and b<>4 And c>5 AND d<=4", "a is not null or b not in ('1')",
		"NOT (a contains 'x') OR b startswith 'y' OR c endswith 'z'", "a > -1.5e3 AND b <= 2147483648L",
		"-- c\n a = 'it''s' /* x */", "(((a)))", "a = TRUE OR NOT b", "a between 10 and 0", "'x' = a = b",
		"a > 0x10", "a = .5e", "a IS NOT", "a in (", "é",
	} {
		f.Add(s, []byte("a\x014\x02TAGS\x01x\x02b\x011.5e3\x02c\x01true"))
	}
	f.Fuzz(func(t *testing.T, expr string, props []byte) {
		s, err := Parse(expr)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse(%q) error of type %T", expr, err)
			}
			return
		}
		_ = s.root.String()
		v, ok := s.eval(props)
		if ok && v.k != kNull && v.k != kBool {
			t.Fatalf("%q evaluated to %+v", expr, v)
		}
		s.Match(props)
	})
}
