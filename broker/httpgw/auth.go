package httpgw

import (
	"context"
	"net"
	"net/http"
	"net/netip"

	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/remoting"
)

// Request headers of the RocketMQ 5 credentials, as on the gRPC port
// (apache/rocketmq-clients golang/metadata/metadata.go).
const (
	hdrAuthorization = "Authorization"
	hdrDateTime      = "X-Mq-Date-Time"
)

// basicNeedsTLS is the answer to Basic credentials on a plaintext
// connection: the secret key would cross the network in clear, and
// whoever reads it once is that account for good, where a signature
// only replays the one date-time it signed.
const basicNeedsTLS = "HTTP Basic authentication is accepted over TLS only (https://; the broker's tlsServerMode is permissive or enforcing): " +
	"it would send the secret key in clear text. Over plain HTTP sign the request: " +
	"x-mq-date-time and authorization: " + acl.AuthScheme + " Credential=<accessKey>, SignedHeaders=x-mq-date-time, Signature=<hex HMAC-SHA1>"

type connKey struct{}

// withConn keeps the connection in each request's context so that a
// handler can ask whether it is TLS (http.Request.TLS is set only for a
// *tls.Conn, and the sniffing listener's connections are not one).
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func overTLS(r *http.Request) bool {
	c, ok := r.Context().Value(connKey{}).(net.Conn)
	return ok && remoting.IsTLS(c)
}

// checked runs h after the ACL check of its route when aclEnable is on:
// need is PUB on the path's topic for a send, SUB on the topic and the
// group for the consuming routes, as the gRPC port checks them
// (grpcsvc checkResources).
func (s *Server) checked(need acl.Perm, h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.ACL == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		caller, e := s.authorize(r, need)
		if e != nil {
			if e.code == v2.Code_UNAUTHORIZED {
				w.Header().Add("WWW-Authenticate", acl.AuthScheme)
				if overTLS(r) {
					w.Header().Add("WWW-Authenticate", `Basic realm="mqops", charset="UTF-8"`)
				}
			}
			writeErr(w, e)
			return
		}
		if need == acl.Pub && caller.Account() != nil {
			// The broker charges the send to the account's produce quota.
			r = r.WithContext(context.WithValue(r.Context(), accountKey{}, caller.Account()))
		}
		h(w, r)
	}
}

type accountKey struct{}

// accountOf is the ACL account r was authenticated as, nil without ACL
// or through the global white list.
func accountOf(r *http.Request) *acl.Account {
	a, _ := r.Context().Value(accountKey{}).(*acl.Account)
	return a
}

// authorize authenticates r (a signature, Basic credentials over TLS, or
// a white-listed address) and checks need; a refusal is counted and
// written to acl.log through the broker's ACL gate.
func (s *Server) authorize(r *http.Request, need acl.Perm) (acl.Caller, *apiError) {
	g := s.cfg.ACL
	var ip netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ip = ap.Addr().Unmap()
	}
	refuse := func(code v2.Code, ak string, d acl.Decision) (acl.Caller, *apiError) {
		g.RefuseHTTP(r.Pattern, ak, r.RemoteAddr, ip, d)
		return acl.Caller{}, apiErr(code, "%s", d.Remark)
	}
	var caller acl.Caller
	var d acl.Decision
	ak, secret, basic := r.BasicAuth()
	switch {
	case basic && !overTLS(r):
		return refuse(v2.Code_UNAUTHORIZED, ak, acl.Decision{Reason: acl.ReasonSignature, Remark: basicNeedsTLS})
	case basic:
		caller, d = g.AuthenticateSecret(ip, ak, secret)
	default:
		var mac []byte
		if v := r.Header.Get(hdrAuthorization); v != "" {
			var err error
			if ak, mac, err = acl.ParseAuthorization(v); err != nil {
				d = acl.Decision{Reason: acl.ReasonSignature, Remark: err.Error()}
				if ak == "" {
					d.Reason = acl.ReasonNoAccessKey
				}
				return refuse(v2.Code_UNAUTHORIZED, ak, d)
			}
		}
		caller, d = g.AuthenticateCall(ip, ak, r.Header.Get(hdrDateTime), mac)
	}
	if !d.OK {
		return refuse(v2.Code_UNAUTHORIZED, ak, d)
	}
	topic, group := r.PathValue("topic"), r.PathValue("group")
	if d = caller.Topic(topic, need); d.OK && group != "" {
		d = caller.Group(group)
	}
	if !d.OK {
		return refuse(v2.Code_FORBIDDEN, ak, d)
	}
	return caller, nil
}
