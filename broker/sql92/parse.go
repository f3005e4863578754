// Package sql92 is RocketMQ's SQL92 message selector (MessageSelector type
// SQL92, broker key enablePropertyFilter): a boolean expression over a
// message's properties (user properties and TAGS), parsed once per
// subscription and evaluated on the pull path against the stored
// properties string, without decoding it and without allocating.
//
// The parser is written by hand. RocketMQ's dialect (apache/rocketmq
// filter/src/main/java/org/apache/rocketmq/filter/parser/SelectorParser.jj,
// derived from ActiveMQ's JMS selector) is neither SQL nor JMS — no LIKE, no
// arithmetic, CONTAINS/STARTSWITH/ENDSWITH, its own string-to-number rules
// — and no maintained Go library implements it. Parse accepts exactly what
// Java's SelectorParser.parse accepts and evaluation gives Java's result,
// quirks included (see the tests, which port Java's ParserTest and
// ExpressionTest).
package sql92

import (
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds nesting, so a hostile expression cannot exhaust the
// stack when parsed or evaluated (Java fails with StackOverflowError, which
// SelectorParser reports as an invalid selector).
const maxDepth = 256

// Selector is a parsed expression. It is immutable and safe for concurrent
// use.
type Selector struct {
	expr  string
	root  *node
	names []string // the properties it reads, each once
}

// String returns the expression as written.
func (s *Selector) String() string { return s.expr }

// Error is an expression Java's SelectorParser would refuse.
type Error struct {
	Expr   string
	Column int // 1-based, in characters
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid SQL92 expression %q: %s at column %d", e.Expr, e.Msg, e.Column)
}

// Parse compiles an expression.
func Parse(expr string) (*Selector, error) {
	p := &parser{src: expr}
	p.advance()
	n := p.orExpr()
	if n != nil {
		n = p.asBoolean(n, 0)
	}
	if p.err != nil {
		return nil, p.err
	}
	// Like the JavaCC parser, which has no <EOF> at the end of its start
	// rule, whatever follows a complete expression is not parsed: only its
	// first token is read (a lexical error there still fails). Java accepts
	// "a = 1 b" as "a = 1", so refusing it would refuse subscriptions a
	// Java broker serves.
	s := &Selector{expr: expr, root: n}
	s.index(n)
	return s, nil
}

// index numbers the properties n reads. Nodes are shared (BETWEEN's
// operand appears twice), which numbering twice does not disturb.
func (s *Selector) index(n *node) {
	if n == nil {
		return
	}
	if n.op == opProp {
		n.prop = slices.Index(s.names, n.name)
		if n.prop < 0 {
			n.prop = len(s.names)
			s.names = append(s.names, n.name)
		}
	}
	s.index(n.l)
	s.index(n.r)
}

type parser struct {
	src   string
	tok   token // the current (lookahead) token
	next  int   // offset after tok
	peek  *token
	after int // offset after peek
	depth int
	err   *Error
}

func (p *parser) failAt(pos int, format string, args ...any) {
	if p.err == nil {
		p.err = &Error{Expr: p.src, Column: utf8.RuneCountInString(p.src[:pos]) + 1, Msg: fmt.Sprintf(format, args...)}
	}
}

// fail reports a semantic error at the current token.
func (p *parser) fail(format string, args ...any) { p.failAt(p.tok.pos, format, args...) }

func (p *parser) unexpected(want string) {
	text := strconv.Quote(p.tok.text)
	if p.tok.kind == tEOF {
		text = tokNames[tEOF]
	} else if p.tok.kind == tString {
		text = quote(p.tok.text)
	}
	p.fail("encountered %s, expected %s", text, want)
}

// advance moves to the next token.
func (p *parser) advance() {
	if p.err != nil {
		return
	}
	if p.peek != nil {
		p.tok, p.next, p.peek = *p.peek, p.after, nil
		return
	}
	t, n, le := lex(p.src, p.next)
	if le != nil {
		p.failAt(le.pos, "%s", le.msg)
		p.tok = token{kind: tEOF, pos: le.pos}
		return
	}
	p.tok, p.next = t, n
}

// peekKind is the kind of the token after the current one (the grammar's
// LOOKAHEAD(2) after NOT and IS).
func (p *parser) peekKind() tokKind {
	if p.peek == nil {
		t, n, le := lex(p.src, p.next)
		if le != nil {
			p.failAt(le.pos, "%s", le.msg)
			return tEOF
		}
		p.peek, p.after = &t, n
	}
	return p.peek.kind
}

func (p *parser) expect(k tokKind, want string) bool {
	if p.err != nil {
		return false
	}
	if p.tok.kind != k {
		p.unexpected(want)
		return false
	}
	p.advance()
	return true
}

func (p *parser) orExpr() *node {
	l := p.andExpr()
	for p.err == nil && p.tok.kind == tOr {
		pos := p.tok.pos
		p.advance()
		r := p.andExpr()
		if p.err != nil {
			return nil
		}
		l = &node{op: opOr, l: p.asBoolean(l, pos), r: p.asBoolean(r, pos)}
	}
	return p.ok(l)
}

func (p *parser) andExpr() *node {
	l := p.equalityExpr()
	for p.err == nil && p.tok.kind == tAnd {
		pos := p.tok.pos
		p.advance()
		r := p.equalityExpr()
		if p.err != nil {
			return nil
		}
		l = &node{op: opAnd, l: p.asBoolean(l, pos), r: p.asBoolean(r, pos)}
	}
	return p.ok(l)
}

func (p *parser) equalityExpr() *node {
	l := p.comparisonExpr()
	for p.err == nil {
		pos := p.tok.pos
		switch p.tok.kind {
		case tEq, tNe:
			ne := p.tok.kind == tNe
			p.advance()
			r := p.comparisonExpr()
			if p.err != nil {
				return nil
			}
			l = p.equal(l, r, pos)
			if ne {
				l = &node{op: opNot, l: l}
			}
		case tIs:
			if p.peekKind() == tNull {
				p.advance()
				p.advance()
				l = &node{op: opEq, l: l, r: nullConst}
				continue
			}
			p.advance()
			if p.expect(tNot, "NOT or NULL") && p.expect(tNull, "NULL") {
				l = &node{op: opNot, l: &node{op: opEq, l: l, r: nullConst}}
			}
		default:
			return p.ok(l)
		}
	}
	return nil
}

func (p *parser) comparisonExpr() *node {
	l := p.unaryExpr()
	for p.err == nil {
		pos := p.tok.pos
		kind, not := p.tok.kind, false
		if kind == tNot {
			switch k := p.peekKind(); k {
			case tContains, tStartsWith, tEndsWith, tBetween, tIn:
				p.advance()
				kind, not = k, true
			default:
				if p.err == nil {
					p.advance()
					p.unexpected("CONTAINS, STARTSWITH, ENDSWITH, BETWEEN or IN after NOT")
				}
				return nil
			}
		}
		switch kind {
		case tGt, tGe, tLt, tLe:
			p.advance()
			r := p.unaryExpr()
			if p.err != nil {
				return nil
			}
			l = p.order(cmpOps[kind-tGt], l, r, pos)
		case tContains, tStartsWith, tEndsWith:
			p.advance()
			s, ok := p.stringLit()
			if !ok {
				return nil
			}
			l = &node{op: strOps[kind-tContains], not: not, l: l, str: []byte(s)}
		case tBetween:
			p.advance()
			lo := p.unaryExpr()
			if !p.expect(tAnd, "AND") {
				return nil
			}
			hi := p.unaryExpr()
			if p.err != nil {
				return nil
			}
			if not {
				l = &node{op: opOr, l: p.order(opLt, l, lo, pos), r: p.order(opGt, l, hi, pos)}
			} else {
				l = p.between(l, lo, hi, pos)
			}
		case tIn:
			p.advance()
			l = p.in(l, not, pos)
		default:
			return p.ok(l)
		}
	}
	return nil
}

// The operator of each comparison token, from tGt and from tContains on.
var (
	cmpOps = [...]op{opGt, opGe, opLt, opLe}
	strOps = [...]op{opContains, opStartsWith, opEndsWith}
)

func (p *parser) in(l *node, not bool, pos int) *node {
	if !p.expect(tLParen, "(") {
		return nil
	}
	var list []string
	for {
		s, ok := p.stringLit()
		if !ok {
			return nil
		}
		list = append(list, s)
		if p.tok.kind != tComma {
			break
		}
		p.advance()
	}
	if !p.expect(tRParen, ", or )") {
		return nil
	}
	if l.op != opProp {
		p.failAt(pos, "expected a property for IN, got: %s", l)
		return nil
	}
	n := &node{op: opIn, not: not, l: l, list: list}
	if len(list) > 8 {
		n.set = make(map[string]struct{}, len(list))
		for _, s := range list {
			n.set[s] = struct{}{}
		}
	}
	return n
}

func (p *parser) stringLit() (string, bool) {
	if p.err != nil {
		return "", false
	}
	if p.tok.kind != tString {
		p.unexpected("a string literal")
		return "", false
	}
	s := p.tok.text
	p.advance()
	return s, p.err == nil
}

func (p *parser) unaryExpr() *node {
	if p.err != nil {
		return nil
	}
	if p.depth++; p.depth > maxDepth {
		p.fail("expression nested more than %d levels deep", maxDepth)
		return nil
	}
	defer func() { p.depth-- }()
	switch p.tok.kind {
	case tPlus:
		p.advance()
		return p.unaryExpr()
	case tMinus:
		p.advance()
		x := p.unaryExpr()
		if x == nil {
			return nil
		}
		return &node{op: opNeg, l: x}
	case tNot:
		pos := p.tok.pos
		p.advance()
		x := p.unaryExpr()
		if x == nil {
			return nil
		}
		return p.ok(&node{op: opNot, l: p.asBoolean(x, pos)})
	}
	return p.primaryExpr()
}

func (p *parser) primaryExpr() *node {
	t := p.tok
	switch t.kind {
	case tString:
		p.advance()
		return p.ok(&node{op: opConst, val: value{k: kStr, s: []byte(t.text)}})
	case tDecimal:
		p.advance()
		return p.ok(p.decimal(t))
	case tFloat:
		p.advance()
		return p.ok(p.float(t))
	case tTrue, tFalse:
		p.advance()
		return p.ok(&node{op: opConst, boolConst: true, val: value{k: kBool, b: t.kind == tTrue}})
	case tNull:
		p.advance()
		return p.ok(nullConst)
	case tID:
		p.advance()
		return p.ok(&node{op: opProp, name: t.text})
	case tLParen:
		p.advance()
		x := p.orExpr()
		if !p.expect(tRParen, ")") {
			return nil
		}
		return x
	}
	p.unexpected("an expression")
	return nil
}

// ok drops a result once an error is recorded.
func (p *parser) ok(n *node) *node {
	if p.err != nil {
		return nil
	}
	return n
}

// decimal is ConstantExpression.createFromDecimal: a Java long (an L suffix
// allowed), an Integer when it fits in 32 bits.
func (p *parser) decimal(t token) *node {
	text := t.text
	if c := text[len(text)-1]; c == 'l' || c == 'L' {
		text = text[:len(text)-1]
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		p.failAt(t.pos, "integer %s out of the range of a Java long", t.text)
		return nil
	}
	if n == int64(int32(n)) {
		return &node{op: opConst, val: value{k: kInt, i: n}}
	}
	return &node{op: opConst, val: value{k: kLong, i: n}}
}

// float is ConstantExpression.createFloat: a Java double, refused when
// infinite or below Double.MIN_VALUE (so 0.0 itself is refused, as in Java).
func (p *parser) float(t token) *node {
	f, err := strconv.ParseFloat(t.text, 64)
	if err != nil && f == 0 { // not a range error: cannot happen for a lexed literal
		p.failAt(t.pos, "bad number %s", t.text)
		return nil
	}
	if f > maxFloat64 {
		p.failAt(t.pos, "%s is greater than %v", t.text, maxFloat64)
		return nil
	}
	if f < minFloat64 {
		p.failAt(t.pos, "%s is less than %v", t.text, minFloat64)
		return nil
	}
	return &node{op: opConst, val: value{k: kDouble, f: f}}
}

// asBoolean is SelectorParser.asBooleanExpression: a property used as a
// condition is cast (true only if it is the boolean TRUE, which a string
// property never is); any other non-boolean operand is refused.
func (p *parser) asBoolean(n *node, pos int) *node {
	if p.err != nil {
		return nil
	}
	switch {
	case n.isBoolean():
		return n
	case n.op == opProp:
		return &node{op: opBoolCast, l: n}
	}
	p.failAt(pos, "expression will not result in a boolean value: %s", n)
	return nil
}

// equal is ComparisonExpression.createEqual with its operand checks.
func (p *parser) equal(l, r *node, pos int) *node {
	for _, n := range [2]*node{l, r} {
		if n.op == opConst && n.val.k == kNull {
			p.failAt(pos, "'%s' cannot be compared", n)
			return nil
		}
	}
	if l.op == opConst && r.op == opConst && l.boolConst && !r.boolConst {
		p.failAt(pos, "'%s' cannot be compared with '%s'", l, r)
		return nil
	}
	return &node{op: opEq, l: l, r: r}
}

// order is createGreaterThan and its kin: only numbers and non-boolean
// expressions may be ordered.
func (p *parser) order(o op, l, r *node, pos int) *node {
	if p.err != nil {
		return nil
	}
	for _, n := range [2]*node{l, r} {
		if n.op == opConst && !n.val.k.number() || n.op != opConst && n.isBoolean() {
			p.failAt(pos, "value '%s' cannot be compared", n)
			return nil
		}
	}
	return &node{op: o, l: l, r: r}
}

// between is ComparisonExpression.createBetween: constant bounds must be
// non-null and in order.
func (p *parser) between(v, lo, hi *node, pos int) *node {
	if lo.op == opConst && hi.op == opConst {
		if lo.val.k == kNull || hi.val.k == kNull {
			p.failAt(pos, "illegal values of between, values can not be null")
			return nil
		}
		c, ok := compare(hi.val, lo.val)
		if !ok {
			p.failAt(pos, "illegal values of between: %s and %s cannot be compared", lo, hi)
			return nil
		}
		if c < 0 {
			p.failAt(pos, "illegal values of between, left value(%s) must less than or equal to right value(%s)", lo, hi)
			return nil
		}
	}
	ge := p.order(opGe, v, lo, pos)
	le := p.order(opLe, v, hi, pos)
	return p.ok(&node{op: opAnd, l: ge, r: le})
}
