package sql92

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

// props builds a stored properties string: "k", "v", ... in order.
func props(kv ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		if len(b) > 0 {
			b = append(b, 0x02)
		}
		b = append(b, kv[i]...)
		b = append(b, 0x01)
		b = append(b, kv[i+1]...)
	}
	return b
}

// outcome is Java's result: "true", "false", "null", or "error" where
// Java's evaluate throws.
func outcome(t *testing.T, expr string, p []byte) string {
	t.Helper()
	s, err := Parse(expr)
	if err != nil {
		t.Fatalf("Parse(%q): %v", expr, err)
	}
	v, ok := s.eval(p)
	// Looking properties up one by one (expressions naming more than
	// maxResolved) gives the same.
	if v2, ok2 := (&evaluator{props: p}).eval(s.root); ok2 != ok || !equals(v, v2) && (ok || v.k != v2.k) {
		t.Fatalf("%q on %q: %+v %v resolved, %+v %v looked up", expr, p, v, ok, v2, ok2)
	}
	switch {
	case !ok:
		return "error"
	case v.k == kNull:
		return "null"
	case v.k != kBool:
		t.Fatalf("%q evaluated to a non-boolean %+v", expr, v)
	}
	if s.Match(p) != v.b {
		t.Fatalf("%q: Match disagrees with eval", expr)
	}
	if v.b {
		return "true"
	}
	return "false"
}

// Java's ParserTest (filter/src/test/java/org/apache/rocketmq/filter/ParserTest.java).
func TestJavaParserTest(t *testing.T) {
	for _, expr := range []string{
		"a=3 and b<>4 And c>5 AND d<=4",
		"a=3 or b<>4 Or c>5 OR d<=4",
		"a in ('3', '4', '5')",
		"(a not in ('6', '4', '5')) or (b in ('3', '4', '5'))",
		"(a between 2 and 10) AND (b not between 6 and 9)",
		"a is null",
		"a is not null",
		"a <= now",
		"a=3 and b contains 'xxx' and c not contains 'xxx'",
	} {
		if _, err := Parse(expr); err != nil {
			t.Errorf("Parse(%q): %v", expr, err)
		}
	}
	huge := "1" + strings.Repeat(strings.Repeat("1", 51), 2048) + "." + strings.Repeat(strings.Repeat("1", 51), 2048)
	for _, expr := range []string{
		"a and between 2 and 10",
		"a > 100000000000000000000000",
		"a > " + huge,
		" a between 10 and 0",
	} {
		if _, err := Parse(expr); err == nil {
			t.Errorf("Parse(%.40q) succeeded; Java refuses it", expr)
		}
	}
	// testEquals: blanks do not change the tree; OR is another tree.
	a, _ := Parse("a=3 and b<>4 And c>5 AND d<=4")
	b, _ := Parse("a=3  and    b<>4 And c>5 AND d<=4")
	c, _ := Parse("a=3 or b<>4 Or c>5 OR d<=4")
	if a.root.String() != b.root.String() || a.root.String() == c.root.String() {
		t.Errorf("trees: %s / %s / %s", a.root, b.root, c.root)
	}
}

// Java's ExpressionTest (filter/src/test/java/org/apache/rocketmq/filter/ExpressionTest.java),
// with the contexts a broker can have: property values are strings. Its
// cases with Double, Boolean or Object property values have no broker
// equivalent and are left out.
func TestJavaExpressionTest(t *testing.T) {
	type c struct {
		expr  string
		props []byte
		want  string
	}
	axb := props("value", "axb")
	abb := props("value", "abb")
	none := props("whatever", "whatever")
	cases := []c{
		{"value contains 'x'", axb, "true"},
		{"value startswith 'ax'", axb, "true"},
		{"value endswith 'xb'", axb, "true"},
		{"value not contains 'x'", axb, "false"},
		{"value not startswith 'ax'", axb, "false"},
		{"value not endswith 'xb'", axb, "false"},
		{"value contains 'x'", abb, "false"},
		{"value startswith 'x'", abb, "false"},
		{"value endswith 'x'", abb, "false"},
		{"value not contains 'x'", abb, "true"},
		{"value not startswith 'x'", abb, "true"},
		{"value not endswith 'x'", abb, "true"},
		{"value contains ''", axb, "false"},
		{"value startswith ''", axb, "false"},
		{"value endswith ''", axb, "false"},
		{"value not contains ''", axb, "false"},
		{"value not startswith ''", axb, "false"},
		{"value not endswith ''", axb, "false"},
		// null_has_1 and null_has_2: the property is missing.
		{"value contains 'x'", nil, "false"},
		{"value startswith 'x'", nil, "false"},
		{"value endswith 'x'", nil, "false"},
		{"value not contains 'x'", nil, "false"},
		{"value not startswith 'x'", nil, "false"},
		{"value not endswith 'x'", nil, "false"},
		{"'axb' contains 'x'", none, "true"},
		{"'axb' startswith 'ax'", none, "true"},
		{"'axb' endswith 'xb'", none, "true"},
		{"'axb' not contains 'x'", none, "false"},
		{"'axb' not startswith 'ax'", none, "false"},
		{"'axb' not endswith 'xb'", none, "false"},
		{"'axb' contains 'u'", none, "false"},
		{"'axb' startswith 'u'", none, "false"},
		{"'axb' endswith 'u'", none, "false"},
		{"'axb' not contains 'u'", none, "true"},
		{"'axb' not startswith 'u'", none, "true"},
		{"'axb' not endswith 'u'", none, "true"},
		{"'axb' contains ''", none, "false"},
		{"'axb' startswith ''", none, "false"},
		{"'axb' endswith ''", none, "false"},
		{"'axb' not contains ''", none, "false"},
		{"'axb' not startswith ''", none, "false"},
		{"'axb' not endswith ''", none, "false"},
		{"' ' contains ' '", none, "true"},
		{"' ' startswith ' '", none, "true"},
		{"' ' endswith ' '", none, "true"},
		{"' ' not contains ' '", none, "false"},
		{"' ' not startswith ' '", none, "false"},
		{"' ' not endswith ' '", none, "false"},
		{"'axb' contains '.'", none, "false"},
		{"'axb' startswith '.'", none, "false"},
		{"'axb' endswith '.'", none, "false"},
		{"'axb' not contains '.'", none, "true"},
		{"'axb' not startswith '.'", none, "true"},
		{"'axb' not endswith '.'", none, "true"},
		{`'s' contains '\'`, none, "false"},
		{`'s' startswith '\'`, none, "false"},
		{`'s' endswith '\'`, none, "false"},
		{"a not in ('4', '4', '5') and b between 3 and 10 and c not contains 'axbc'", props("a", "3", "b", "3", "c", "axbdc"), "true"},
		{"a not in ('4', '4', '5') and b between 3 and 10 and c not startswith 'axbc'", props("a", "3", "b", "3", "c", "axbdc"), "true"},
		{"a not in ('4', '4', '5') and b between 3 and 10 and c not endswith 'axbc'", props("a", "3", "b", "3", "c", "axbdc"), "true"},
		{"TAGS is not null and TAGS='''''tag'''''", props("TAGS", "''tag''"), "true"},
		// testEvaluate_stringCompare: the first is null, the second throws.
		{"a between up and low", props("a", "3.14"), "null"},
		{"a between up and low", props("a", "3.14", "up", "up", "low", "low"), "error"},
		{"key is not null and key between 0 and 100", props("key", "con"), "error"},
		{"a between 0 and 100", props("a", "abc"), "error"},
		{"a=b", props("a", "3.14", "b", "3.14"), "true"},
		{"a<>b", props("a", "3.14", "b", "3.14"), "false"},
		{"a<>b", props("a", "3.14", "b", "3.141"), "true"},
		{"a > 3.1E10", props("a", "3.1415E10"), "true"},
		{"a > 3.14", props("a", "3.1415"), "true"},
		{"a > b", props("a", "10", "b", "20"), "false"},
		{"a > b", props("b", "10", "a", "20"), "true"},
		{"a is null OR a='hello'", nil, "true"},
		{"a is null OR a='hello'", props("a", "hello"), "true"},
		{"a is null OR a='hello'", props("a", "abc"), "false"},
		{"a=TRUE OR b=FALSE", props("a", "true", "b", "false"), "true"},
		{"a=TRUE OR b=FALSE", props("a", "false", "b", "true"), "false"},
		{"a is not null and a='hello'", props("a", "hello"), "true"},
		{"a is not null and a='hello'", nil, "false"},
		{"a=3 and b<>4 And c>5 AND d<=4", props("a", "3", "b", "5", "c", "6", "d", "1"), "true"},
		{"a=3 and b<>4 And c>5 AND d<=4", props("a", "4", "b", "5", "c", "6", "d", "1"), "false"},
		{"a=3 or b<>4 Or c>5 OR d<=4", props("a", "3"), "true"},
		{"a=3 or b<>4 Or c>5 OR d<=4", props("a", "4", "b", "5"), "true"},
		{"a=3 or b<>4 Or c>5 OR d<=4", props("a", "4", "b", "4", "c", "6"), "true"},
		{"a=3 or b<>4 Or c>5 OR d<=4", props("a", "4", "b", "4", "c", "3", "d", "2"), "true"},
		{"a=3 or b<>4 Or c>5 OR d<=4", props("a", "4", "b", "4", "c", "3", "d", "10"), "false"},
		{"a in ('3', '4', '5')", props("a", "3"), "true"},
		{"a in ('3', '4', '5')", props("a", "4"), "true"},
		{"a in ('3', '4', '5')", props("a", "5"), "true"},
		{"a in ('3', '4', '5')", props("a", "8"), "false"},
		{"a not in ('3', '4', '5')", props("a", "8"), "true"},
		{"a not in ('3', '4', '5')", props("a", "3"), "false"},
		{"a not in ('3', '4', '5')", props("a", "4"), "false"},
		{"a not in ('3', '4', '5')", props("a", "5"), "false"},
		{"a between 2 and 10", props("a", "2"), "true"},
		{"a between 2 and 10", props("a", "10"), "true"},
		{"a between 2 and 10", props("a", "3"), "true"},
		{"a between 2 and 10", props("a", "1"), "false"},
		{"a between 2 and 10", props("a", "11"), "false"},
		{"a not between 2 and 10", props("a", "1"), "true"},
		{"a not between 2 and 10", props("a", "11"), "true"},
		{"a not between 2 and 10", props("a", "2"), "false"},
		{"a not between 2 and 10", props("a", "10"), "false"},
		{"a not between 2 and 10", props("a", "3"), "false"},
		{"a is null", props("abc", "2"), "true"},
		{"a is null", props("a", "2"), "false"},
		{"a is not null", props("a", "2"), "true"},
		{"a is not null", props("abc", "2"), "false"},
	}
	for _, tc := range cases {
		if got := outcome(t, tc.expr, tc.props); got != tc.want {
			t.Errorf("%q on %q = %s, Java gives %s", tc.expr, tc.props, got, tc.want)
		}
	}
	// Java's parse-failure cases of the same test.
	for _, expr := range []string{"value contains x", "value not contains x", "value contains 123",
		"value not contains 123", "'axb' contains ", "'axb' not contains "} {
		if _, err := Parse(expr); err == nil {
			t.Errorf("Parse(%q) succeeded; Java refuses it", expr)
		}
	}
}

// TestJavaQuirks pins down evaluation rules that follow from Java's
// classes rather than from SQL, each worked out from ComparisonExpression,
// LogicExpression and UnaryExpression.
func TestJavaQuirks(t *testing.T) {
	cases := []struct {
		expr  string
		props []byte
		want  string
	}{
		// A string property against an Integer constant goes through
		// Integer.valueOf: no decimals, no blanks, '+' allowed.
		{"a > 5", props("a", "6"), "true"},
		{"a > 5", props("a", "5.5"), "error"},
		{"a = 3", props("a", "03"), "true"},
		{"a = 3", props("a", "+3"), "true"},
		{"a = 3", props("a", " 3"), "error"},
		{"a = 3", props("a", "abc"), "error"},
		{"a = '3'", props("a", "03"), "false"},
		{"a > 2147483647", props("a", "2147483648"), "error"}, // Integer.valueOf overflows
		{"a > 2147483648", props("a", "2147483649"), "true"},  // a Long constant
		{"a > -2147483649", props("a", "-2147483648"), "true"},
		{"a > 9223372036854775807", props("a", "9223372036854775808"), "error"},
		{"a = -9223372036854775807 - 1", props("a", "-9223372036854775807"), "true"},
		// Against a Double constant it is Double.valueOf: trimmed, with
		// suffixes, hex, NaN (above everything) and Infinity.
		{"a > 5.0", props("a", "6"), "true"},
		{"a > 1.5", props("a", " 2 "), "true"},
		{"a > 1.5", props("a", "2d"), "true"},
		{"a > 1.5", props("a", "2f"), "true"},
		{"a > 1.5", props("a", "0x1p1"), "true"},
		{"a > 1.5", props("a", "0x1p"), "error"},
		{"a > 1.5", props("a", "NaN"), "true"},
		{"a < 1.5", props("a", "NaN"), "false"},
		{"a > 1.5", props("a", "Infinity"), "true"},
		{"a > 1.5", props("a", "-Infinity"), "false"},
		{"a > 1.5", props("a", "inf"), "error"},
		{"a > 1.5", props("a", "1e999"), "true"},
		{"a < 1.5", props("a", "1e-999"), "true"},
		{"a > 1.5", props("a", "."), "error"},
		{"a > 1.5", props("a", "1_0"), "error"},
		{"a = 1.5", props("a", "1.50"), "true"},
		{"a = 1", props("a", "1.0"), "error"},
		{"a = 1.0", props("a", "1"), "true"},
		{"1.0 = a", props("a", "1"), "true"},
		{"-0.5 < a", props("a", "-0.0"), "true"},
		// Two properties are ordered as doubles; = compares the strings.
		{"a > b", props("a", "10", "b", "9.5"), "true"},
		{"a > b", props("a", "x", "b", "1"), "error"},
		{"a = b", props("a", "1", "b", "1.0"), "false"},
		{"a = b", nil, "true"}, // null == null in Java's equality
		{"a = b", props("a", "1"), "false"},
		{"a = b", props("b", "1"), "null"},
		// Boolean.valueOf on the property; the other way round is a
		// ClassCastException.
		{"a = TRUE", props("a", "TRUE"), "true"},
		{"a = TRUE", props("a", "yes"), "false"},
		{"a = FALSE", props("a", "yes"), "true"},
		{"TRUE = a", props("a", "true"), "error"},
		{"TRUE = a", nil, "false"},
		{"1 = TRUE", nil, "false"},
		{"TRUE = FALSE", nil, "false"},
		// A property as a condition is never TRUE; NOT of it is TRUE when
		// the property exists.
		{"a", props("a", "true"), "false"},
		{"a", nil, "null"},
		{"NOT a", props("a", "x"), "true"},
		{"NOT a", nil, "null"},
		{"TRUE", nil, "true"},
		{"NULL", nil, "null"},
		// NOT binds tighter than comparisons.
		{"NOT a = 1", props("a", "1"), "false"},
		{"NOT (a = 1)", props("a", "2"), "true"},
		// Three-valued logic.
		{"a <> 'x'", nil, "null"},
		{"a not in ('x')", nil, "null"},
		{"NOT (a in ('x'))", nil, "null"},
		{"a not contains 'x'", nil, "false"},
		{"NOT (a contains 'x')", nil, "true"},
		{"a = 1 OR b = 2", props("b", "2"), "true"},
		{"a = 1 OR b = 2", props("b", "3"), "null"},
		{"a = 1 AND b = 2", props("b", "3"), "false"},
		{"a = 1 AND b = 2", props("b", "2"), "null"},
		// An exception anywhere fails the whole expression, unless the
		// left side of AND/OR decides first.
		{"a = 3 OR b = 'x'", props("a", "abc", "b", "x"), "error"},
		{"b = 'x' OR a = 3", props("a", "abc", "b", "x"), "true"},
		{"(a > 5) contains ''", props("a", "x"), "false"},
		{"(a > 5) contains 'x'", props("a", "x"), "error"},
		{"a > b", props("b", "x"), "null"}, // a null left side skips the right
		// Unary minus works on numbers only.
		{"-a > 1", props("a", "-5"), "null"},
		{"a > -1", props("a", "0"), "true"},
		{"a > - -1", props("a", "0"), "false"},
		{"a > +1", props("a", "2"), "true"},
		// IN and string tests compare the stored bytes.
		{"a in ('x', 'é')", props("a", "é"), "true"},
		{"a in ('1','2','3','4','5','6','7','8','9','10')", props("a", "10"), "true"},
		{"a in ('1','2','3','4','5','6','7','8','9','10')", props("a", "11"), "false"},
		{"a not in ('1','2','3','4','5','6','7','8','9','10')", props("a", "11"), "true"},
		{"a = 'it''s'", props("a", "it's"), "true"},
		{"a startswith 'é'", props("a", "été"), "true"},
		// TAGS is a property like any other; names are case-sensitive,
		// keywords are not.
		{"a BETWEEN 3 AND 5 AND TAGS IN ('x','y')", props("TAGS", "y", "a", "4"), "true"},
		{"a BETWEEN 3 AND 5 AND TAGS IN ('x','y')", props("TAGS", "z", "a", "4"), "false"},
		{"a BETWEEN 3 AND 5 AND TAGS IN ('x','y')", props("TAGS", "x", "a", "6"), "false"},
		{"a BETWEEN 3 AND 5 AND TAGS IN ('x','y')", props("a", "4"), "null"},
		{"Tags = 'x'", props("TAGS", "x"), "null"},
		{"A Is Not Null", props("A", "1"), "true"},
		// Java's property map: the last of repeated keys, malformed
		// fragments skipped, Go's trailing separator accepted.
		{"a = 'y'", []byte("a\x01x\x02a\x01y"), "true"},
		{"a = 'x'", []byte("junk\x02a\x01x\x02"), "true"},
		{"a is null", []byte("a\x01\x02b\x01c"), "true"},
		// Whatever follows a complete expression is not parsed (no <EOF>
		// in Java's start rule).
		{"a = 1 b = 2", props("a", "1"), "true"},
		{"a > 1 + 2", props("a", "2"), "true"},
		{"a = 1 --comment", props("a", "1"), "true"},
		{"a = 0L", props("a", "0"), "true"},
		{"a = 012", props("a", "0"), "true"},
		{"a = 1e", props("a", "1"), "true"},
		// Comments and literal forms.
		{"a = 1 -- x\n AND b = 2", props("a", "1", "b", "2"), "true"},
		{"a = 1 /* x */ AND /**/ b = 2", props("a", "1", "b", "2"), "true"},
		{"a = 5L", props("a", "5"), "true"},
		{"a = .5", props("a", "0.5"), "true"},
		{"a = 5.", props("a", "5"), "true"},
		{"a = 1e3", props("a", "1000"), "true"},
		{"a = 00.5", props("a", "0.5"), "true"},
	}
	for _, tc := range cases {
		if got := outcome(t, tc.expr, tc.props); got != tc.want {
			t.Errorf("%q on %q = %s, Java gives %s", tc.expr, tc.props, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, expr := range []string{
		"", "   ", "-- only a comment\n", "a =", "a == 1", "a != 1", "a = 'x", "a.b = 1", "a = #", "/* open",
		"a = 1 !", "a = 1 NOT b", "a NOT = 1", "a IS 5", "a IS NOT 5",
		"5", "'x'", "-a", "a AND 5", "NOT 5", "(a) OR 'x'",
		"a > 'x'", "a > TRUE", "a > NULL", "(a = 1) > 1", "'x' < a", "a > b > c",
		"a = NULL", "NULL = a", "TRUE = 1", "FALSE = 'x'",
		"'x' IN ('x')", "NOT a IN ('x')", "a IN ()", "a IN (1)", "a IN ('x',)", "a IN 'x'",
		"a BETWEEN 1 AND 'x'", "a BETWEEN 'x' AND 'y'", "a BETWEEN NULL AND 1", "a BETWEEN 1 AND NULL",
		"a BETWEEN 10 AND 0", "a BETWEEN 1 OR 2", "a BETWEEN TRUE AND 1", "NOT a BETWEEN 1 AND 2",
		"a = 0.0", "a = 0e5", "a = 1e-400", "a = 9223372036854775808",
		"a CONTAINS b", "a STARTSWITH 1", "a ENDSWITH", "a NOT LIKE 'x'",
		strings.Repeat("(", 300) + "a" + strings.Repeat(")", 300),
		strings.Repeat("NOT ", 300) + "a",
	} {
		_, err := Parse(expr)
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%.60q) = %v, want a parse error", expr, err)
			continue
		}
		if pe.Column < 1 || pe.Msg == "" || !strings.Contains(err.Error(), "invalid SQL92 expression") {
			t.Errorf("Parse(%.60q): unhelpful error %v", expr, err)
		}
	}
	for _, expr := range []string{
		"a NOT BETWEEN 10 AND 0", "a BETWEEN b AND c", "a BETWEEN 5 AND 5.0", "a BETWEEN -5 AND -10",
		"(a) IN ('x')", "1 = a", "a = 9223372036854775807", "TRUE", "FALSE", "NULL", "a IS NULL IS NULL",
		"a CONTAINS 'x' CONTAINS 'y'", "a = 1 = 2", strings.Repeat("(", 100) + "a" + strings.Repeat(")", 100),
		"a > 4.9E-324", "a < 1.7976931348623157E308", "a = 1.5L",
	} {
		if _, err := Parse(expr); err != nil {
			t.Errorf("Parse(%q): %v; Java accepts it", expr, err)
		}
	}
}

func TestErrorNamesThePlace(t *testing.T) {
	_, err := Parse("a = 1 AND b BETWEEN 'x' AND 'y'")
	if err == nil || !strings.Contains(err.Error(), "'x'") || !strings.Contains(err.Error(), "column 13") {
		t.Fatalf("error %v", err)
	}
	_, err = Parse("é = 1")
	if err == nil || !strings.Contains(err.Error(), "'é'") || !strings.Contains(err.Error(), "column 1") {
		t.Fatalf("error %v", err)
	}
	_, err = Parse("a = 'é' AND !")
	if err == nil || !strings.Contains(err.Error(), "column 13") {
		t.Fatalf("error %v", err)
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	s, err := Parse("a BETWEEN 3.5 AND 5.5 AND TAGS IN ('x','y') AND b NOT CONTAINS 'zz' AND (c IS NULL OR c = TRUE)")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("1", 40) + ".5"
	for _, p := range [][]byte{
		props("TAGS", "x", "a", "4", "b", "q"),                 // match
		props("TAGS", "z", "a", "4", "b", "q"),                 // no match
		props("TAGS", "x", "a", "nope", "b", "q"),              // Java exception
		props("TAGS", "x", "a", long, "b", "q", "c", "false"),  // long number
		props("TAGS", "x", "a", "1e999", "b", "q", "c", "yes"), // overflow
		props("TAGS", "x", "a", "1e-999", "b", "q"),            // underflow
	} {
		if n := testing.AllocsPerRun(100, func() { s.Match(p) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times", p, n)
		}
	}
}

func TestJavaDouble(t *testing.T) {
	// 2^1024 - 2^970, half-way between Double.MAX_VALUE and 2^1024.
	half := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 1024), new(big.Int).Lsh(big.NewInt(1), 970))
	halfLess := new(big.Int).Sub(half, big.NewInt(1)).String()
	for in, want := range map[string]float64{
		"1.7976931348623157e308":      math.MaxFloat64,
		"1.7976931348623158e308":      math.MaxFloat64, // below the half-way point
		"1.797693134862315807e308":    math.MaxFloat64, // below the half-way point
		"1.79769313486231580794e308":  math.Inf(1),     // above it
		half.String():                 math.Inf(1),     // exactly half-way: to even, up
		"0." + half.String() + "e309": math.Inf(1),
		halfLess:                      math.MaxFloat64,
		"0" + halfLess + ".99e0":      math.MaxFloat64,
		"0.00017976931348623157e312":  math.MaxFloat64,
		"9e308":                       math.Inf(1),
		"1e309":                       math.Inf(1),
		"1e99999999999999999999":      math.Inf(1),
		"1e-99999999999999999999":     0,
		"000.000":                     0,
		"-1e400":                      math.Inf(-1),
		"0x1p1024":                    math.Inf(1),
		"0x1.fffffffffffffp1023":      math.MaxFloat64,
		" \t12.5f\n":                  12.5,
		"+.5":                         0.5,
	} {
		got, ok := javaDouble([]byte(in))
		if !ok || got != want {
			t.Errorf("javaDouble(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", " ", "+", "e5", "1e", "1e+", "0x", "0x1", "0xp1", "1.5ff", "1.5 f", "Inf", "nan", "1,5", "0b1", "１"} {
		if got, ok := javaDouble([]byte(in)); ok {
			t.Errorf("javaDouble(%q) = %v, want a NumberFormatException", in, got)
		}
	}
}

func TestCache(t *testing.T) {
	c := NewCache(2)
	a1, err := c.Parse("a = 1")
	if err != nil {
		t.Fatal(err)
	}
	if a2, _ := c.Parse("a = 1"); a2 != a1 {
		t.Error("a cached expression was parsed again")
	}
	if _, err := c.Parse("a ="); err == nil {
		t.Error("a bad expression was accepted")
	}
	if _, err := c.Parse("a ="); err == nil {
		t.Error("a cached bad expression was accepted")
	}
	c.Parse("b = 1")
	if len(c.m) != 2 {
		t.Errorf("cache holds %d, max 2", len(c.m))
	}
}

func TestManyProperties(t *testing.T) {
	var names []string
	var kv []string
	for i := 0; i < maxResolved+4; i++ {
		names = append(names, fmt.Sprintf("p%d = '%d'", i, i))
		kv = append(kv, fmt.Sprintf("p%d", i), strconv.Itoa(i))
	}
	expr := strings.Join(names, " AND ")
	if got := outcome(t, expr, props(kv...)); got != "true" {
		t.Fatalf("%d properties: %s", len(names), got)
	}
	kv[len(kv)-1] = "x"
	if got := outcome(t, expr, props(kv...)); got != "false" {
		t.Fatalf("%d properties, last differs: %s", len(names), got)
	}
}
