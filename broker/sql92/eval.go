package sql92

import (
	"bytes"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unsafe"

	"github.com/mqops/mqops/wire"
)

// kind is the Java class of a value: property values are always strings;
// constants are Integer, Long, Double, String or Boolean; NULL and missing
// properties are null.
type kind uint8

const (
	kNull kind = iota
	kStr
	kBool
	kInt    // java.lang.Integer
	kLong   // java.lang.Long
	kDouble // java.lang.Double
)

func (k kind) number() bool { return k >= kInt }

// value is one evaluated operand, passed by value so evaluation does not
// allocate; s aliases the message's properties or the expression.
type value struct {
	k kind
	b bool
	i int64
	f float64
	s []byte
}

var (
	vNull  = value{}
	vTrue  = value{k: kBool, b: true}
	vFalse = value{k: kBool}
)

func boolean(b bool) value {
	if b {
		return vTrue
	}
	return vFalse
}

type op uint8

const (
	opConst op = iota
	opProp
	opNeg      // unary minus: numbers only, anything else is null
	opNot      // three-valued NOT
	opBoolCast // a property used as a condition
	opAnd
	opOr
	opEq // also IS NULL; <> and IS NOT NULL are NOT over it
	opGt
	opGe
	opLt
	opLe
	opIn
	opContains
	opStartsWith
	opEndsWith
)

// node is one expression of the tree Java's parser builds.
type node struct {
	op        op
	not       bool  // NOT IN, NOT CONTAINS ...
	boolConst bool  // TRUE, FALSE or NULL (Java's BooleanConstantExpression)
	val       value // opConst
	name      string
	prop      int // index of name in Selector.names
	l, r      *node
	str       []byte              // CONTAINS, STARTSWITH, ENDSWITH argument
	list      []string            // IN
	set       map[string]struct{} // IN with many elements
}

var nullConst = &node{op: opConst, boolConst: true}

// isBoolean reports whether n is a Java BooleanExpression.
func (n *node) isBoolean() bool {
	switch n.op {
	case opConst:
		return n.boolConst
	case opProp, opNeg:
		return false
	}
	return true
}

var opSymbols = [...]string{opAnd: "AND", opOr: "OR", opEq: "=", opGt: ">", opGe: ">=", opLt: "<", opLe: "<=",
	opContains: "CONTAINS", opStartsWith: "STARTSWITH", opEndsWith: "ENDSWITH", opIn: "IN"}

// String renders n for error messages, as Java's toString roughly does.
func (n *node) String() string {
	switch n.op {
	case opConst:
		switch n.val.k {
		case kNull:
			return "NULL"
		case kBool:
			if n.val.b {
				return "TRUE"
			}
			return "FALSE"
		case kStr:
			return quote(string(n.val.s))
		case kDouble:
			return strconv.FormatFloat(n.val.f, 'g', -1, 64)
		}
		return strconv.FormatInt(n.val.i, 10)
	case opProp:
		return n.name
	case opNeg:
		return "(- " + n.l.String() + ")"
	case opNot:
		return "(NOT " + n.l.String() + ")"
	case opBoolCast:
		return n.l.String()
	case opIn:
		quoted := make([]string, len(n.list))
		for i, s := range n.list {
			quoted[i] = quote(s)
		}
		return n.l.String() + notWord(n.not) + "IN (" + strings.Join(quoted, ", ") + ")"
	case opContains, opStartsWith, opEndsWith:
		return n.l.String() + notWord(n.not) + opSymbols[n.op] + " " + quote(string(n.str))
	}
	return "(" + n.l.String() + " " + opSymbols[n.op] + " " + n.r.String() + ")"
}

func notWord(not bool) string {
	if not {
		return " NOT "
	}
	return " "
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// maxResolved is how many distinct properties Match looks up in one pass
// over the properties string; an expression naming more looks each up
// when it needs it.
const maxResolved = 16

// Match evaluates the selector against a message's serialised properties
// (name\x01value\x02...). A message matches only when the expression is
// TRUE: null (unknown) does not match, and neither does an evaluation Java
// ends with an exception (a property that is not a number compared with a
// number, for instance), since Java's ExpressionMessageFilter treats a
// failed evaluation as no match.
func (s *Selector) Match(props []byte) bool {
	v, ok := s.eval(props)
	return ok && v.k == kBool && v.b
}

func (s *Selector) eval(props []byte) (value, bool) {
	e := evaluator{props: props}
	if len(s.names) <= maxResolved {
		e.resolved = true
		for p := props; len(p) > 0; {
			k, v, rest, ok := wire.NextProperty(p)
			p = rest
			if !ok {
				continue
			}
			for i, name := range s.names {
				if string(k) == name {
					e.vals[i] = v // the last of repeated keys, as Java's map
				}
			}
		}
	}
	return e.eval(s.root)
}

// evaluator holds one message's property values: present values are never
// empty, so nil is a missing property.
type evaluator struct {
	props    []byte
	vals     [maxResolved][]byte // by node.prop, when resolved
	resolved bool
}

// eval computes n; ok is false where Java throws.
func (e *evaluator) eval(n *node) (value, bool) {
	switch n.op {
	case opConst:
		return n.val, true
	case opProp:
		var v []byte
		if e.resolved {
			v = e.vals[n.prop]
		} else {
			v = wire.PropertyValue(e.props, n.name)
		}
		if v == nil {
			return vNull, true
		}
		return value{k: kStr, s: v}, true
	case opNeg:
		v, ok := e.eval(n.l)
		switch {
		case !ok:
			return v, false
		case v.k == kInt:
			v.i = int64(-int32(v.i))
		case v.k == kLong:
			v.i = -v.i
		case v.k == kDouble:
			v.f = -v.f
		default:
			return vNull, true
		}
		return v, true
	case opNot:
		v, ok := e.eval(n.l)
		if !ok || v.k == kNull {
			return vNull, ok
		}
		return boolean(!v.b), true
	case opBoolCast:
		v, ok := e.eval(n.l)
		if !ok || v.k == kNull {
			return vNull, ok
		}
		return boolean(v.k == kBool && v.b), true
	case opAnd, opOr:
		// Java evaluates both sides unless the left one decides, and is
		// null when a side is null and the other does not decide.
		decisive := n.op == opOr
		l, ok := e.eval(n.l)
		if !ok {
			return l, false
		}
		if l.k == kBool && l.b == decisive {
			return l, true
		}
		r, ok := e.eval(n.r)
		if !ok {
			return r, false
		}
		if r.k == kBool && r.b == decisive {
			return r, true
		}
		if l.k == kNull || r.k == kNull {
			return vNull, true
		}
		return boolean(!decisive), true
	case opEq:
		l, ok := e.eval(n.l)
		if !ok {
			return l, false
		}
		r, ok := e.eval(n.r)
		if !ok {
			return r, false
		}
		if ln, rn := l.k == kNull, r.k == kNull; ln || rn {
			switch {
			case ln && rn:
				return vTrue, true
			case ln:
				return vNull, true
			}
			return vFalse, true
		}
		if equals(l, r) {
			return vTrue, true
		}
		c, ok := compare(l, r)
		return boolean(c == 0), ok
	case opGt, opGe, opLt, opLe:
		l, ok := e.eval(n.l)
		if !ok || l.k == kNull {
			return vNull, ok
		}
		r, ok := e.eval(n.r)
		if !ok || r.k == kNull {
			return vNull, ok
		}
		var c int
		if l.k == kStr && r.k == kStr {
			// Two strings are ordered as doubles, or not at all.
			lf, lok := javaDouble(l.s)
			rf, rok := javaDouble(r.s)
			if !lok || !rok {
				return vNull, false
			}
			c = compareDouble(lf, rf)
		} else if c, ok = compare(l, r); !ok {
			return vNull, false
		}
		switch n.op {
		case opGt:
			return boolean(c > 0), true
		case opGe:
			return boolean(c >= 0), true
		case opLt:
			return boolean(c < 0), true
		}
		return boolean(c <= 0), true
	case opIn:
		v, ok := e.eval(n.l)
		if !ok || v.k != kStr {
			return vNull, ok
		}
		return boolean(n.contains(v.s) != n.not), true
	case opContains, opStartsWith, opEndsWith:
		if len(n.str) == 0 { // Java answers FALSE before looking at the operand
			return vFalse, true
		}
		v, ok := e.eval(n.l)
		if !ok {
			return v, false
		}
		if v.k != kStr {
			return vFalse, true // NOT CONTAINS too is FALSE for null
		}
		var has bool
		switch n.op {
		case opContains:
			has = bytes.Contains(v.s, n.str)
		case opStartsWith:
			has = bytes.HasPrefix(v.s, n.str)
		default:
			has = bytes.HasSuffix(v.s, n.str)
		}
		return boolean(has != n.not), true
	}
	return vNull, false
}

func (n *node) contains(s []byte) bool {
	if n.set != nil {
		_, ok := n.set[string(s)]
		return ok
	}
	for _, e := range n.list {
		if e == string(s) {
			return true
		}
	}
	return false
}

// equals is Java's Object.equals between two values: same class, same
// value (Double.equals compares bits, so NaN equals NaN and 0.0 is not
// -0.0).
func equals(l, r value) bool {
	if l.k != r.k {
		return false
	}
	switch l.k {
	case kStr:
		return bytes.Equal(l.s, r.s)
	case kBool:
		return l.b == r.b
	case kDouble:
		return javaBits(l.f) == javaBits(r.f)
	}
	return l.i == r.i
}

// compare is ComparisonExpression.__compare with string conversion on
// (SelectorParser.parse always turns it on): operands of different classes
// are converted towards each other — Integer to Long to Double, a string
// to the number class or Boolean of the other side — and compared. ok is
// false where Java throws: a string that is not a number of that class, or
// a Boolean compared with a string (a ClassCastException in Java).
func compare(l, r value) (int, bool) {
	if l.k != r.k {
		switch l.k {
		case kBool:
			if r.k == kStr {
				return 0, false
			}
			return -1, true
		case kInt, kLong:
			switch r.k {
			case kInt, kLong:
				// Both are Java integers; widening changes nothing.
			case kDouble:
				l = value{k: kDouble, f: float64(l.i)}
			case kStr:
				var ok bool
				if r, ok = javaInteger(r.s, l.k); !ok {
					return 0, false
				}
			default:
				return -1, true
			}
		case kDouble:
			switch r.k {
			case kInt, kLong:
				r = value{k: kDouble, f: float64(r.i)}
			case kStr:
				f, ok := javaDouble(r.s)
				if !ok {
					return 0, false
				}
				r = value{k: kDouble, f: f}
			default:
				return -1, true
			}
		case kStr:
			switch r.k {
			case kBool:
				l = boolean(isTrue(l.s))
			case kInt, kLong:
				var ok bool
				if l, ok = javaInteger(l.s, r.k); !ok {
					return 0, false
				}
			case kDouble:
				f, ok := javaDouble(l.s)
				if !ok {
					return 0, false
				}
				l = value{k: kDouble, f: f}
			default:
				return -1, true
			}
		default:
			return -1, true
		}
	}
	switch l.k {
	case kStr:
		return bytes.Compare(l.s, r.s), true
	case kBool:
		switch {
		case l.b == r.b:
			return 0, true
		case r.b:
			return -1, true
		}
		return 1, true
	case kDouble:
		return compareDouble(l.f, r.f), true
	}
	switch {
	case l.i < r.i:
		return -1, true
	case l.i > r.i:
		return 1, true
	}
	return 0, true
}

// compareDouble is Double.compare: NaN above everything, -0.0 below 0.0.
func compareDouble(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	x, y := javaBits(a), javaBits(b)
	switch {
	case x == y:
		return 0
	case x < y:
		return -1
	}
	return 1
}

// javaBits is Double.doubleToLongBits: every NaN is the canonical one.
func javaBits(f float64) int64 {
	if f != f {
		return 0x7ff8000000000000
	}
	return int64(math.Float64bits(f))
}

// javaInteger is Integer.valueOf (k kInt) or Long.valueOf (k kLong): an
// optional sign and decimal digits, in range. (Java also takes non-ASCII
// Unicode digits; properties holding those are not supported here.)
func javaInteger(s []byte, k kind) (value, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 {
		return vNull, false
	}
	limit := uint64(math.MaxInt64)
	if k == kInt {
		limit = math.MaxInt32
	}
	if neg {
		limit++
	}
	var n uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return vNull, false
		}
		n = n*10 + uint64(c-'0')
		if n > limit {
			return vNull, false
		}
	}
	i := int64(n)
	if neg {
		i = -i // n == limit == 1<<63 wraps to MinInt64, as wanted
	}
	return value{k: k, i: i}, true
}

const (
	maxFloat64 = math.MaxFloat64
	minFloat64 = math.SmallestNonzeroFloat64 // Java's Double.MIN_VALUE
)

// javaDouble is Double.valueOf: surrounding characters up to U+0020
// trimmed, an optional sign, then NaN, Infinity, a decimal number (digits
// with an optional point and exponent) or a hexadecimal one (0x...p...),
// optionally followed by one of f, F, d, D. Numbers beyond the double
// range are infinite, as in Java.
func javaDouble(s []byte) (float64, bool) {
	for len(s) > 0 && s[0] <= ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] <= ' ' {
		s = s[:len(s)-1]
	}
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var f float64
	switch {
	case string(s) == "NaN":
		return math.NaN(), true
	case string(s) == "Infinity":
		f = math.Inf(1)
	default:
		if n := len(s); n > 0 && (s[n-1] == 'f' || s[n-1] == 'F' || s[n-1] == 'd' || s[n-1] == 'D') {
			s = s[:n-1]
		}
		dec := validDecimal(s)
		if !dec && !validHex(s) {
			return 0, false
		}
		if dec && decimalOverflows(s) {
			// Java's infinity, without ParseFloat's range error, which
			// would allocate.
			f = math.Inf(1)
			break
		}
		// s is valid, so only a hexadecimal number beyond the double
		// range can fail: ParseFloat then returns ±Inf, Java's answer too.
		// unsafe.String: ParseFloat keeps no reference to its argument,
		// and a copy of a long number would allocate.
		f, _ = strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), 64)
	}
	if neg {
		f = -f
	}
	return f, true
}

// overflowDigits are the significant digits of 2^1024 - 2^970, the
// smallest number that rounds to infinity (half-way between
// Double.MAX_VALUE and 2^1024: round half to even goes up).
var overflowDigits = strings.TrimRight(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 1024),
	new(big.Int).Lsh(big.NewInt(1), 970)).String(), "0")

// decimalOverflows reports whether a valid decimal number rounds to
// infinity as a double.
func decimalOverflows(s []byte) bool {
	mant, exp := s, int64(0)
	if i := bytes.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], saturatingExponent(s[i+1:])
	}
	intPart, frac := mant, []byte(nil)
	if i := bytes.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	intPart = bytes.TrimLeft(intPart, "0")
	// The value is in [10^(e-1), 10^e).
	e := int64(len(intPart))
	if e == 0 {
		sig := bytes.TrimLeft(frac, "0")
		if len(sig) == 0 {
			return false // zero
		}
		e, frac = -int64(len(frac)-len(sig)), sig
	}
	switch e += exp; {
	case e > 309:
		return true
	case e < 309:
		return false
	}
	i := 0
	for _, part := range [2][]byte{intPart, frac} {
		for _, d := range part {
			if i == len(overflowDigits) {
				if d != '0' {
					return true
				}
				continue
			}
			if d != overflowDigits[i] {
				return d > overflowDigits[i]
			}
			i++
		}
	}
	return i == len(overflowDigits)
}

// saturatingExponent parses an exponent's sign and digits, clamped far
// beyond the double range.
func saturatingExponent(s []byte) int64 {
	neg := len(s) > 0 && s[0] == '-'
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	var n int64
	for _, c := range s {
		if n < 1e9 {
			n = n*10 + int64(c-'0')
		}
	}
	if neg {
		return -n
	}
	return n
}

// validDecimal: digits, at most one point, at least one digit, then an
// optional exponent with at least one digit.
func validDecimal(s []byte) bool {
	i, nd := 0, 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		nd++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && isDigit(s[i]); i++ {
			nd++
		}
	}
	if nd == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		e := i
		for ; i < len(s) && isDigit(s[i]); i++ {
		}
		if i == e {
			return false
		}
	}
	return i == len(s)
}

// validHex is Java's hexadecimal floating-point form: 0x, hex digits with
// an optional point (at least one digit), and a mandatory binary exponent.
func validHex(s []byte) bool {
	if len(s) < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return false
	}
	i, nd := 2, 0
	for ; i < len(s) && isHex(s[i]); i++ {
		nd++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && isHex(s[i]); i++ {
			nd++
		}
	}
	if nd == 0 || i >= len(s) || (s[i] != 'p' && s[i] != 'P') {
		return false
	}
	i++
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	e := i
	for ; i < len(s) && isDigit(s[i]); i++ {
	}
	return i > e && i == len(s)
}

// isTrue is Boolean.valueOf: "true" in any case.
func isTrue(s []byte) bool {
	return len(s) == 4 && s[0]|0x20 == 't' && s[1]|0x20 == 'r' && s[2]|0x20 == 'u' && s[3]|0x20 == 'e'
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
