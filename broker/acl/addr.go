package acl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// addrPattern is one white-list entry, in the syntax of apache/rocketmq
// acl/src/main/java/org/apache/rocketmq/acl/plain/RemoteAddressStrategyFactory.java:
// "*" (or "*.*.*.*", "*:*:*:*:*:*:*:*") matches everything; "a,b,c" and
// "192.168.0.{1,2}" are lists; "192.168.1.1-200" and "192.168.*.*" are
// IPv4 ranges (a range or "*" in the last one to three octets); anything
// else is one IPv4 or IPv6 address. "10.0.0.0/8" (CIDR) is an mqops
// addition.
type addrPattern struct {
	src    string
	any    bool
	list   []netip.Addr
	prefix netip.Prefix
	// IPv4 range: per octet the accepted [lo, hi].
	lo, hi [4]uint8
	ranged bool
}

func parseAddrPattern(s string) (*addrPattern, error) {
	s = strings.TrimSpace(s)
	p := &addrPattern{src: s}
	switch {
	case s == "":
		return nil, nil // blank matches nothing
	case s == "*" || s == "*.*.*.*" || s == "*:*:*:*:*:*:*:*":
		p.any = true
	case strings.Contains(s, "/"):
		pre, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("address pattern %q: %w", s, err)
		}
		p.prefix = pre.Masked()
	case strings.HasSuffix(s, "}"):
		open := strings.LastIndexByte(s, '{')
		if open < 0 {
			return nil, fmt.Errorf("address pattern %q: '}' without '{'", s)
		}
		head := s[:open]
		if !strings.HasSuffix(head, ".") && !strings.HasSuffix(head, ":") {
			return nil, fmt.Errorf("address pattern %q: the {list} must be the last segment", s)
		}
		for _, part := range strings.Split(s[open+1:len(s)-1], ",") {
			a, err := netip.ParseAddr(head + strings.TrimSpace(part))
			if err != nil {
				return nil, fmt.Errorf("address pattern %q: %w", s, err)
			}
			p.list = append(p.list, a.Unmap())
		}
	case strings.Contains(s, ","):
		for _, part := range strings.Split(s, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(part))
			if err != nil {
				return nil, fmt.Errorf("address pattern %q: %w", s, err)
			}
			p.list = append(p.list, a.Unmap())
		}
	case strings.ContainsAny(s, "*-"):
		if err := p.parseRange(s); err != nil {
			return nil, fmt.Errorf("address pattern %q: %w", s, err)
		}
	default:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("address pattern %q: %w", s, err)
		}
		p.list = []netip.Addr{a.Unmap()}
	}
	return p, nil
}

// parseRange reads an IPv4 range: exact leading octets, then at most one
// "n-m" octet, then "*" octets (Java's RangeRemoteAddressStrategy).
func (p *addrPattern) parseRange(s string) error {
	oct := strings.Split(s, ".")
	if len(oct) != 4 {
		return fmt.Errorf("ranges are IPv4 only (four octets)")
	}
	wild := false
	for i, o := range oct {
		lo, hi := 0, 255
		switch {
		case o == "*":
			wild = true
		case wild:
			return fmt.Errorf("octet %q after a range or '*'", o)
		case strings.Contains(o, "-"):
			a, b, _ := strings.Cut(o, "-")
			var err1, err2 error
			lo, err1 = strconv.Atoi(a)
			hi, err2 = strconv.Atoi(b)
			if err1 != nil || err2 != nil || lo < 0 || hi > 255 || lo > hi {
				return fmt.Errorf("bad range %q", o)
			}
			wild = true
		default:
			n, err := strconv.Atoi(o)
			if err != nil || n < 0 || n > 255 {
				return fmt.Errorf("bad octet %q", o)
			}
			lo, hi = n, n
		}
		if i == 0 && (lo != hi) {
			return fmt.Errorf("the first octet must be a number")
		}
		p.lo[i], p.hi[i] = uint8(lo), uint8(hi)
	}
	p.ranged = true
	return nil
}

func (p *addrPattern) match(a netip.Addr) bool {
	if p == nil || !a.IsValid() {
		return false
	}
	switch {
	case p.any:
		return true
	case p.prefix.IsValid():
		return p.prefix.Contains(a)
	case p.ranged:
		if !a.Is4() {
			return false
		}
		b := a.As4()
		for i := range b {
			if b[i] < p.lo[i] || b[i] > p.hi[i] {
				return false
			}
		}
		return true
	}
	for _, x := range p.list {
		if x == a {
			return true
		}
	}
	return false
}
