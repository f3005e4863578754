package wire

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"hash"
	"io"
)

// extFields of RocketMQ's plain ACL (apache/rocketmq
// acl/src/main/java/org/apache/rocketmq/acl/common/SessionCredentials.java;
// _UNIQUE_KEY_QUERY is MixAll.UNIQUE_MSG_QUERY_FLAG).
const (
	ExtAccessKey      = "AccessKey"
	ExtSignature      = "Signature"
	ExtSecurityToken  = "SecurityToken"
	ExtUniqueKeyQuery = "_UNIQUE_KEY_QUERY"
)

// SignatureLen is the length of a Base64 HMAC-SHA1 signature.
const SignatureLen = 28

// SignedFieldsBuf is a buffer size for WriteSignedContent: a send's
// extField values fit (about 150 bytes from the official clients).
const SignedFieldsBuf = 256

// Flags of WriteSignedContent: which fields a verifier leaves out besides
// Signature.
const (
	// SignSkipToken leaves SecurityToken out, as rocketmq-client-go
	// v2.1.2's ACLInterceptor signs (internal/remote/interceptor.go).
	SignSkipToken = 1 << iota
	// SignSkipUniqueKeyQuery leaves _UNIQUE_KEY_QUERY out, as RocketMQ 5
	// servers do for clients of version <= V4_9_3 (apache/rocketmq
	// auth/.../builder/DefaultAuthenticationContextBuilder.java).
	SignSkipUniqueKeyQuery
)

// SortExtIndexes appends to idx the indexes of c.Ext ordered by key bytes,
// which for ASCII keys is the order of Java's TreeMap. dup reports two
// fields with the same key: the signed bytes would then depend on which
// one a peer keeps, so a verifier refuses such a request.
func SortExtIndexes(c *Command, idx []int) (sorted []int, dup bool) {
	idx = idx[:0]
	for i := range c.Ext {
		idx = append(idx, i)
		for j := len(idx) - 1; j > 0; j-- {
			a, b := c.Ext[idx[j-1]].Key, c.Ext[idx[j]].Key
			cmp := compareBytes(a, b)
			if cmp == 0 {
				dup = true
			}
			if cmp <= 0 {
				break
			}
			idx[j-1], idx[j] = idx[j], idx[j-1]
		}
	}
	return idx, dup
}

func compareBytes(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

// WriteSignedContent writes what an ACL signature covers (apache/rocketmq
// acl/.../common/AclUtils.java combineRequestContent): the values of the
// extFields in the key order of idx (from SortExtIndexes), no keys and no
// separators, Signature left out, then the body. Short values are gathered
// in buf's capacity (nothing is allocated) and written together: a hash's
// Write costs about as much per call as per 64 bytes, and a request has
// many short fields.
func WriteSignedContent(w io.Writer, c *Command, idx []int, flags int, buf []byte) {
	buf = buf[:0]
	for _, i := range idx {
		v, ok := signedValue(&c.Ext[i], flags)
		if !ok {
			continue
		}
		if len(buf)+len(v) > cap(buf) {
			_, _ = w.Write(buf)
			buf = buf[:0]
			if len(v) > cap(buf) {
				_, _ = w.Write(v)
				continue
			}
		}
		buf = append(buf, v...)
	}
	_, _ = w.Write(buf)
	_, _ = w.Write(c.Body)
}

func signedValue(kv *KV, flags int) ([]byte, bool) {
	switch string(kv.Key) {
	case ExtSignature:
		return nil, false
	case ExtSecurityToken:
		return kv.Value, flags&SignSkipToken == 0
	case ExtUniqueKeyQuery:
		return kv.Value, flags&SignSkipUniqueKeyQuery == 0
	}
	return kv.Value, true
}

// Sign adds AccessKey, SecurityToken (when token is set) and Signature to
// c the way Java's AclClientRPCHook does (the token is signed). Earlier
// ACL fields are replaced, so signing a command twice is harmless. A
// client signing many requests keeps a Signer instead.
func Sign(c *Command, accessKey, secretKey, token string) {
	NewSigner(accessKey, secretKey, token).Sign(c)
}

// Signer signs requests for one account. It keys its HMAC once, so each
// request costs the hash of its signed bytes and nothing else (Reset
// restores the hashed key pads), as the broker's verifier does. Not safe
// for concurrent use.
type Signer struct {
	ak, token []byte
	mac       hash.Hash
	idx       []int
	buf       [SignedFieldsBuf]byte
	sum       [sha1.Size]byte
}

// NewSigner returns a signer for an account (token: SecurityToken, or "").
func NewSigner(accessKey, secretKey, token string) *Signer {
	return &Signer{ak: []byte(accessKey), token: []byte(token), mac: hmac.New(sha1.New, []byte(secretKey))}
}

// Sign is the package's Sign with the signer's account.
func (s *Signer) Sign(c *Command) {
	ext := c.Ext[:0]
	for _, kv := range c.Ext {
		switch string(kv.Key) {
		case ExtAccessKey, ExtSignature, ExtSecurityToken:
		default:
			ext = append(ext, kv)
		}
	}
	c.Ext = append(ext, KV{Key: []byte(ExtAccessKey), Value: s.ak})
	if len(s.token) > 0 {
		c.Ext = append(c.Ext, KV{Key: []byte(ExtSecurityToken), Value: s.token})
	}
	sig := make([]byte, SignatureLen)
	s.Signature(c, sig)
	c.Ext = append(c.Ext, KV{Key: []byte(ExtSignature), Value: sig})
}

// Signature writes the Base64 signature of c as it stands (its AccessKey
// and SecurityToken fields included, any Signature field left out) to
// dst[:SignatureLen], allocating nothing: a client that resends one
// encoded request re-signs it in place.
func (s *Signer) Signature(c *Command, dst []byte) {
	s.idx, _ = SortExtIndexes(c, s.idx)
	s.mac.Reset()
	WriteSignedContent(s.mac, c, s.idx, 0, s.buf[:])
	base64.StdEncoding.Encode(dst[:SignatureLen], s.mac.Sum(s.sum[:0]))
}

// Credentials are an ACL account's keys as a client holds them.
type Credentials struct {
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
}

// IsEmpty reports whether requests go out unsigned (either key missing,
// as rocketmq-client-go's primitive.Credentials.IsEmpty).
func (cr Credentials) IsEmpty() bool { return cr.AccessKey == "" || cr.SecretKey == "" }
