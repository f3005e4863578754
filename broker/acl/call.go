package acl

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
)

// AuthScheme is the scheme of a RocketMQ 5 authorization value
// (apache/rocketmq-clients golang/metadata/metadata.go EncryptHeader).
const AuthScheme = "MQv2-HMAC-SHA1"

// ParseAuthorization reads a RocketMQ 5 authorization value, `MQv2-HMAC-SHA1 Credential=<AK>[/...],
// SignedHeaders=x-mq-date-time, Signature=<hex>` as Java's
// DefaultAuthenticationContextBuilder does (apache/rocketmq
// auth/src/main/java/org/apache/rocketmq/auth/authentication/builder/DefaultAuthenticationContextBuilder.java):
// split on the first space, then on ',', trim each key=value, take the
// Credential up to its first '/', hex-decode the Signature (either case).
func ParseAuthorization(v string) (ak string, mac []byte, err error) {
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok {
		return "", nil, errors.New("authorization header has no credentials after the scheme")
	}
	if scheme != AuthScheme {
		return "", nil, errors.New("authorization scheme is not " + AuthScheme)
	}
	var sig string
	for _, kv := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return "", nil, errors.New("authorization item is not key=value")
		}
		switch k {
		case "Credential":
			ak, _, _ = strings.Cut(val, "/")
		case "Signature":
			sig = val
		}
	}
	if ak == "" {
		return "", nil, errors.New("authorization header names no AccessKey (Credential)")
	}
	if mac, err = hex.DecodeString(sig); err != nil || len(mac) == 0 {
		return ak, nil, errors.New("authorization Signature is not a hex HMAC")
	}
	return ak, mac, nil
}

// Caller is the account a RocketMQ 5 gRPC call was authenticated as. The
// zero Caller came in through the global white list and may do anything.
type Caller struct{ a *Account }

// AccessKey is the caller's account, "" for the global white list.
func (k Caller) AccessKey() string {
	if k.a == nil {
		return ""
	}
	return k.a.AccessKey
}

// Account is the caller's account, nil for the global white list: the
// broker charges its sends to the account's produce quota.
func (k Caller) Account() *Account { return k.a }

// AuthenticateCall checks a gRPC call's credentials (apache/rocketmq
// auth/src/main/java/org/apache/rocketmq/auth/authentication/builder/DefaultAuthenticationContextBuilder.java):
// mac is the raw HMAC-SHA1 of the x-mq-date-time value under the
// account's secret. The global white list and the account's white list
// replace the signature, as for remoting requests.
func (c *Checker) AuthenticateCall(ip netip.Addr, ak, dateTime string, mac []byte) (Caller, Decision) {
	return c.authenticateCred(ip, ak, "Check signature failed", func(a *Account) bool { return a.verifyMAC(dateTime, mac) })
}

// AuthenticateSecret checks an accessKey and secretKey given as they are
// (HTTP Basic authentication on the HTTP gateway, over TLS only): the
// white lists as in AuthenticateCall, then the secret itself, compared in
// constant time.
func (c *Checker) AuthenticateSecret(ip netip.Addr, ak, secret string) (Caller, Decision) {
	return c.authenticateCred(ip, ak, "Check secret key failed", func(a *Account) bool {
		return subtle.ConstantTimeCompare(a.secret, []byte(secret)) == 1
	})
}

// authenticateCred is the shared order of both: the global white list, the
// account, its own white list, then verify.
func (c *Checker) authenticateCred(ip netip.Addr, ak, failed string, verify func(*Account) bool) (Caller, Decision) {
	s := c.snap.Load()
	for _, p := range s.GlobalWhite {
		if p.match(ip) {
			return Caller{}, Decision{OK: true}
		}
	}
	if ak == "" {
		return Caller{}, deny(ReasonNoAccessKey, "No accessKey is configured", "", 0)
	}
	a := s.Accounts[ak]
	if a == nil {
		return Caller{}, deny(ReasonUnknownAccount, "No acl config for "+ak, "", 0)
	}
	if !a.white.match(ip) && !verify(a) {
		return Caller{}, deny(ReasonSignature, failed+" for accessKey="+a.AccessKey, "", 0)
	}
	return Caller{a: a}, Decision{OK: true}
}

func (a *Account) verifyMAC(content string, mac []byte) bool {
	sc := scratches.Get().(*scratch)
	ok := subtle.ConstantTimeCompare(sc.st.MAC(&a.key, []byte(content)), mac) == 1
	scratches.Put(sc)
	return ok
}

// Topic checks need on a topic (a %RETRY% topic is its group's).
func (k Caller) Topic(topic string, need Perm) Decision {
	if k.a == nil || k.a.Admin || (need == Pub && topic == TraceTopic) {
		return Decision{OK: true}
	}
	return checkTopic(k.a, []byte(topic), need)
}

// Group checks SUB on a consumer group.
func (k Caller) Group(group string) Decision {
	if k.a == nil || k.a.Admin {
		return Decision{OK: true}
	}
	return checkGroup(k.a, []byte(group))
}
