// Package acl is RocketMQ's plain ACL (plain_acl.yml): accounts with
// HMAC-SHA1 request signatures, admin flags, per-topic and per-group
// permissions and IP white lists, checked once per request before a
// daemon dispatches it, with the rules reloaded while running.
package acl

import "fmt"

// Perm is a permission set (apache/rocketmq
// acl/src/main/java/org/apache/rocketmq/acl/common/Permission.java).
type Perm uint8

// Permission bits, Java's values.
const (
	Deny Perm = 1
	Any  Perm = 2
	Pub  Perm = 4
	Sub  Perm = 8
)

// ParsePerm reads DENY, PUB, SUB, PUB|SUB or SUB|PUB. Java reads anything
// else as DENY; a typo there silently locks an account out, so here it is
// an error.
func ParsePerm(s string) (Perm, error) {
	switch s {
	case "DENY":
		return Deny, nil
	case "PUB":
		return Pub, nil
	case "SUB":
		return Sub, nil
	case "PUB|SUB", "SUB|PUB":
		return Pub | Sub, nil
	}
	return 0, fmt.Errorf("permission %q is not DENY, PUB, SUB or PUB|SUB", s)
}

// String is the permission as written in plain_acl.yml.
func (p Perm) String() string {
	switch {
	case p&Deny != 0:
		return "DENY"
	case p&(Pub|Sub) == Pub|Sub:
		return "PUB|SUB"
	case p&Pub != 0:
		return "PUB"
	case p&Sub != 0:
		return "SUB"
	case p&Any != 0:
		return "ANY"
	}
	return "DENY"
}

// allows is Java's Permission.checkPermission(needed, owned).
func (p Perm) allows(need Perm) bool {
	if p&Deny != 0 {
		return false
	}
	if need&Any != 0 {
		return p&(Pub|Sub) != 0
	}
	return need&p != 0
}
