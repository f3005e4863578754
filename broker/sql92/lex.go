package sql92

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tNot
	tAnd
	tOr
	tBetween
	tIn
	tTrue
	tFalse
	tNull
	tIs
	tContains
	tStartsWith
	tEndsWith
	tDecimal
	tFloat
	tString
	tID
	tEq
	tNe
	tGt
	tGe
	tLt
	tLe
	tLParen
	tComma
	tRParen
	tPlus
	tMinus
)

var tokNames = [...]string{
	tEOF: "end of expression", tDecimal: "integer", tFloat: "decimal number", tString: "string", tID: "property name",
}

// keywords are matched ignoring case, as the grammar's TOKEN [IGNORE_CASE].
var keywords = map[string]tokKind{
	"NOT": tNot, "AND": tAnd, "OR": tOr, "BETWEEN": tBetween, "IN": tIn, "TRUE": tTrue, "FALSE": tFalse,
	"NULL": tNull, "IS": tIs, "CONTAINS": tContains, "STARTSWITH": tStartsWith, "ENDSWITH": tEndsWith,
}

type token struct {
	kind tokKind
	text string // source text; for a string literal the decoded value
	pos  int    // byte offset in the expression
}

// lexError is a character no token starts with, or an unterminated string.
type lexError struct {
	pos int
	msg string
}

// lex returns the token at src[pos:] and the offset after it. Its rules are
// SelectorParser.jj's: white space and comments skipped, longest match,
// a keyword winning over a property name of the same length.
func lex(src string, pos int) (token, int, *lexError) {
	pos = skipBlanks(src, pos)
	if pos >= len(src) {
		return token{kind: tEOF, pos: pos}, pos, nil
	}
	start := pos
	c := src[pos]
	switch {
	case isIDStart(c):
		for pos++; pos < len(src) && isIDPart(src[pos]); pos++ {
		}
		text := src[start:pos]
		if len(text) <= len("STARTSWITH") {
			var up [10]byte
			for i := 0; i < len(text); i++ {
				up[i] = upper(text[i])
			}
			if k, ok := keywords[string(up[:len(text)])]; ok {
				return token{kind: k, text: text, pos: start}, pos, nil
			}
		}
		return token{kind: tID, text: text, pos: start}, pos, nil
	case isDigit(c):
		end, float := lexNumber(src, pos)
		kind := tDecimal
		if float {
			kind = tFloat
		}
		return token{kind: kind, text: src[start:end], pos: start}, end, nil
	case c == '.':
		if pos+1 < len(src) && isDigit(src[pos+1]) {
			end := exponent(src, digits(src, pos+1))
			return token{kind: tFloat, text: src[start:end], pos: start}, end, nil
		}
	case c == '\'':
		var b strings.Builder
		for pos++; ; {
			q := strings.IndexByte(src[pos:], '\'')
			if q < 0 {
				return token{}, 0, &lexError{start, "unterminated string literal"}
			}
			b.WriteString(src[pos : pos+q])
			pos += q + 1
			if pos < len(src) && src[pos] == '\'' { // '' is one quote
				b.WriteByte('\'')
				pos++
				continue
			}
			return token{kind: tString, text: b.String(), pos: start}, pos, nil
		}
	case c == '=':
		return token{kind: tEq, text: "=", pos: start}, pos + 1, nil
	case c == '<':
		if pos+1 < len(src) && src[pos+1] == '>' {
			return token{kind: tNe, text: "<>", pos: start}, pos + 2, nil
		}
		if pos+1 < len(src) && src[pos+1] == '=' {
			return token{kind: tLe, text: "<=", pos: start}, pos + 2, nil
		}
		return token{kind: tLt, text: "<", pos: start}, pos + 1, nil
	case c == '>':
		if pos+1 < len(src) && src[pos+1] == '=' {
			return token{kind: tGe, text: ">=", pos: start}, pos + 2, nil
		}
		return token{kind: tGt, text: ">", pos: start}, pos + 1, nil
	case c == '(':
		return token{kind: tLParen, text: "(", pos: start}, pos + 1, nil
	case c == ')':
		return token{kind: tRParen, text: ")", pos: start}, pos + 1, nil
	case c == ',':
		return token{kind: tComma, text: ",", pos: start}, pos + 1, nil
	case c == '+':
		return token{kind: tPlus, text: "+", pos: start}, pos + 1, nil
	case c == '-':
		return token{kind: tMinus, text: "-", pos: start}, pos + 1, nil
	}
	r, _ := utf8.DecodeRuneInString(src[pos:])
	return token{}, 0, &lexError{start, fmt.Sprintf("unexpected character %q", r)}
}

// skipBlanks skips white space, block comments and line comments. A line
// comment must end with a line break: "--" at the end of the expression is
// two minus signs, as in the grammar.
func skipBlanks(src string, pos int) int {
	for pos < len(src) {
		switch c := src[pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			pos++
		case strings.HasPrefix(src[pos:], "--"):
			nl := strings.IndexAny(src[pos+2:], "\n\r")
			if nl < 0 {
				return pos
			}
			pos += 2 + nl + 1
		case strings.HasPrefix(src[pos:], "/*"):
			end := strings.Index(src[pos+2:], "*/")
			if end < 0 {
				return pos
			}
			pos += 2 + end + 2
		default:
			return pos
		}
	}
	return pos
}

// lexNumber scans DECIMAL_LITERAL ("0" or [1-9][0-9]* with an optional L)
// or FLOATING_POINT_LITERAL (digits "." digits? exponent?, or digits
// exponent), whichever is longer.
func lexNumber(src string, pos int) (end int, float bool) {
	d := digits(src, pos)
	if d < len(src) && src[d] == '.' {
		return exponent(src, digits(src, d+1)), true
	}
	if e := exponent(src, d); e > d {
		return e, true
	}
	if src[pos] == '0' {
		return pos + 1, false
	}
	if d < len(src) && (src[d] == 'l' || src[d] == 'L') {
		d++
	}
	return d, false
}

func digits(src string, pos int) int {
	for pos < len(src) && isDigit(src[pos]) {
		pos++
	}
	return pos
}

// exponent returns the offset after an exponent ("E" sign? digits) at pos,
// or pos when there is no complete one.
func exponent(src string, pos int) int {
	if pos >= len(src) || upper(src[pos]) != 'E' {
		return pos
	}
	p := pos + 1
	if p < len(src) && (src[p] == '+' || src[p] == '-') {
		p++
	}
	if e := digits(src, p); e > p {
		return e
	}
	return pos
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIDStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$'
}
func isIDPart(c byte) bool { return isIDStart(c) || isDigit(c) }

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}
