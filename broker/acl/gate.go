package acl

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// Gate is a daemon's check before dispatch: it decides each request,
// answers a refusal with NO_PERMISSION (16, as RocketMQ 5's ACL; 4.9
// answered 1) and writes the audit log.
type Gate struct {
	*Checker
	audit *Audit
	// Edit changes the rules for the ACL admin codes (50, 51, 53); nil
	// when the gate was built without a watcher.
	Edit *Watcher
}

// NewGate returns the gate of one daemon; audit may be nil.
func NewGate(c *Checker, audit *Audit) *Gate { return &Gate{Checker: c, audit: audit} }

// Allow checks req, a request (responses never reach a handler), and
// answers it itself when it is refused.
func (g *Gate) Allow(c *remoting.Conn, req *wire.Command) bool {
	_, ok := g.AllowAccount(c, req)
	return ok
}

// AllowAccount is Allow that also returns the account the request was
// authenticated as (nil when none was needed), for the account's produce
// quota: the send path gets it without looking the AccessKey up again.
func (g *Gate) AllowAccount(c *remoting.Conn, req *wire.Command) (*Account, bool) {
	ip := RemoteIP(c.RemoteAddr())
	d := g.Check(ip, req)
	return d.Account, g.settle(c, ip, req, d)
}

// AllowTopic is Authorize for a handler that looked up the topic, with the
// same answer and audit as Allow.
func (g *Gate) AllowTopic(c *remoting.Conn, req *wire.Command, topic string, need Perm) bool {
	ip := RemoteIP(c.RemoteAddr())
	d := g.Authorize(ip, req, topic, need)
	return g.settle(c, ip, req, d)
}

func (g *Gate) settle(c *remoting.Conn, ip netip.Addr, req *wire.Command, d Decision) bool {
	if d.OK {
		if d.Admin {
			g.Stats.allowedAdmin.Add(1)
			g.audit.allow(g.table, c.RemoteAddr().String(), req)
		}
		return true
	}
	g.Stats.denied[d.Reason].Add(1)
	g.audit.deny(g.table, c.RemoteAddr().String(), ip, req, d)
	c.ReplyCode(req, wire.NoPermission, d.Remark)
	return false
}

// Audit writes acl.log (logger RocketmqAuthorize in Java 4.9): refusals,
// admin codes allowed, reloads. Identical refusals (account, address, code,
// reason) are written once per window with the number folded into the
// next line's suppressed=N: v2.1.2 repeats a refused send four times and a
// refused heartbeat every 30 s.
type Audit struct {
	log    *slog.Logger
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[auditKey]*auditEntry
}

type auditKey struct {
	ak     string
	ip     netip.Addr
	code   int32
	method string // a gRPC call's method or an HTTP request's; code is 0
	reason Reason
	res    string
}

type auditEntry struct {
	last       time.Time
	suppressed int
}

// maxAuditKeys bounds the rate limiter's memory under a flood of distinct
// refusals; past it, expired entries are dropped.
const maxAuditKeys = 10000

// NewAudit returns an audit log writing to log, folding identical
// refusals within window (10 s in production).
func NewAudit(log *slog.Logger, window time.Duration) *Audit {
	return &Audit{log: log, window: window, now: time.Now, seen: map[auditKey]*auditEntry{}}
}

func codeLabel(t *Table, code int32) string {
	return fmt.Sprintf("%d(%s)", code, t.Name(code))
}

func (a *Audit) allow(t *Table, remote string, req *wire.Command) {
	if a == nil {
		return
	}
	a.log.Info("ALLOW", "code", codeLabel(t, req.Code), "ak", clip(req.Get(wire.ExtAccessKey)), "remote", remote, "admin", true)
}

func (a *Audit) deny(t *Table, remote string, ip netip.Addr, req *wire.Command, d Decision) {
	if a == nil {
		return
	}
	ak := clip(req.Get(wire.ExtAccessKey))
	k := auditKey{ak: ak, ip: ip, code: req.Code, reason: d.Reason, res: d.Resource}
	suppressed, ok := a.fold(k)
	if !ok {
		return
	}
	attrs := []any{"code", codeLabel(t, req.Code), "ak", ak, "remote", remote}
	if d.Resource != "" {
		attrs = append(attrs, "resource", d.Resource, "need", d.Need.String())
	}
	attrs = append(attrs, "reason", d.Remark)
	// Enough of the received signature to match a client's log, not to replay it.
	if sig := req.Get(wire.ExtSignature); len(sig) > 0 {
		attrs = append(attrs, "sig", string(sig[:min(6, len(sig))]))
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	a.log.Warn("DENY", attrs...)
}

// RefuseCall counts a refused RocketMQ 5 gRPC call and writes it to
// acl.log like a refused remoting request, method in place of the code.
func (g *Gate) RefuseCall(method, ak, remote string, ip netip.Addr, d Decision) {
	g.refuse("grpc", method, ak, remote, ip, d)
}

// RefuseHTTP is RefuseCall for the HTTP gateway: call is "POST /path".
func (g *Gate) RefuseHTTP(call, ak, remote string, ip netip.Addr, d Decision) {
	g.refuse("http", call, ak, remote, ip, d)
}

func (g *Gate) refuse(proto, method, ak, remote string, ip netip.Addr, d Decision) {
	g.Stats.denied[d.Reason].Add(1)
	a := g.audit
	if a == nil {
		return
	}
	ak = clipString(ak)
	suppressed, ok := a.fold(auditKey{ak: ak, ip: ip, method: method, reason: d.Reason, res: d.Resource})
	if !ok {
		return
	}
	attrs := []any{proto, clipString(method), "ak", ak, "remote", remote}
	if d.Resource != "" {
		attrs = append(attrs, "resource", d.Resource, "need", d.Need.String())
	}
	attrs = append(attrs, "reason", d.Remark)
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	a.log.Warn("DENY", attrs...)
}

// fold rate-limits identical refusals: ok is false when k was written
// within the window; otherwise suppressed is how many were left out since.
func (a *Audit) fold(k auditKey) (suppressed int, ok bool) {
	now := a.now()
	a.mu.Lock()
	e := a.seen[k]
	if e != nil && now.Sub(e.last) < a.window {
		e.suppressed++
		a.mu.Unlock()
		return 0, false
	}
	if e == nil {
		if len(a.seen) >= maxAuditKeys {
			for k2, e2 := range a.seen {
				if now.Sub(e2.last) >= a.window {
					delete(a.seen, k2)
				}
			}
		}
		if len(a.seen) < maxAuditKeys {
			a.seen[k] = &auditEntry{last: now}
		}
	} else {
		suppressed = e.suppressed
		e.last, e.suppressed = now, 0
	}
	a.mu.Unlock()
	return suppressed, true
}

// clip bounds what a peer's AccessKey can put into a log line.
func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

func clipString(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Loaded logs a successful (re)load.
func (a *Audit) Loaded(s *Snapshot) {
	if a == nil {
		return
	}
	a.log.Info("loaded", "version", s.Version, "accounts", len(s.Accounts), "whiteList", len(s.GlobalWhite), "files", s.Files)
}

// ReloadFailed logs a file that could not be loaded.
func (a *Audit) ReloadFailed(err error) {
	if a == nil {
		return
	}
	a.log.Error("reload failed, keeping the rules in force", "err", err)
}
