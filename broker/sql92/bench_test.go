package sql92

import "testing"

// Properties as the Go client stores them: system keys first, then the
// user's, with a trailing separator.
var benchProps = []byte("UNIQ_KEY\x017F0000010A2B18B4AAC2575D8A3F0000\x02WAIT\x01true\x02TAGS\x01y\x02KEYS\x01order-42\x02" +
	"region\x01eu-west\x02a\x014\x02price\x0119.99\x02")

func benchmarkMatch(b *testing.B, expr string, props []byte, want bool) {
	s, err := Parse(expr)
	if err != nil {
		b.Fatal(err)
	}
	if s.Match(props) != want {
		b.Fatalf("%q: Match != %v", expr, want)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(props)))
	for b.Loop() {
		s.Match(props)
	}
}

// The e2e test's selector on a message it delivers and on one it skips.
func BenchmarkMatchBetweenAndTags(b *testing.B) {
	benchmarkMatch(b, "a BETWEEN 3 AND 5 AND TAGS IN ('x','y')", benchProps, true)
}

func BenchmarkMatchBetweenAndTagsMiss(b *testing.B) {
	benchmarkMatch(b, "a BETWEEN 3 AND 5 AND TAGS IN ('x','z')", benchProps, false)
}

// A double comparison (Double.valueOf on the property), a string test and
// a missing property.
func BenchmarkMatchMixed(b *testing.B) {
	benchmarkMatch(b, "price > 10.5 AND region STARTSWITH 'eu' AND (vip IS NULL OR vip = 'yes')", benchProps, true)
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("a BETWEEN 3 AND 5 AND TAGS IN ('x','y')"); err != nil {
			b.Fatal(err)
		}
	}
}
