package acl

import (
	"crypto/subtle"
	"net/netip"
)

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

// AuthenticateCall checks a gRPC call's credentials (apache/rocketmq
// auth/src/main/java/org/apache/rocketmq/auth/authentication/builder/DefaultAuthenticationContextBuilder.java):
// mac is the raw HMAC-SHA1 of the x-mq-date-time value under the
// account's secret. The global white list and the account's white list
// replace the signature, as for remoting requests.
func (c *Checker) AuthenticateCall(ip netip.Addr, ak, dateTime string, mac []byte) (Caller, Decision) {
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
	if !a.white.match(ip) && !a.verifyMAC(dateTime, mac) {
		return Caller{}, deny(ReasonSignature, "Check signature failed for accessKey="+a.AccessKey, "", 0)
	}
	return Caller{a: a}, Decision{OK: true}
}

func (a *Account) verifyMAC(content string, mac []byte) bool {
	m := a.mac()
	defer a.macs.Put(m)
	m.h.Reset()
	_, _ = m.h.Write([]byte(content))
	return subtle.ConstantTimeCompare(m.h.Sum(m.sum[:0]), mac) == 1
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
