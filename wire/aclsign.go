package wire

import (
	"bytes"
	"crypto/sha1"
	"crypto/subtle"
	"encoding"
	"encoding/binary"
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
	}
	from, dup := inOrderUpTo(c)
	if from < len(idx) {
		return insertionSort(c, idx, from, dup)
	}
	return idx, dup
}

// inOrderUpTo is the length of c.Ext's leading run of fields in key
// order, and whether that run repeats a key. rocketmq-client-go v2.1.2
// sends its fields in key order already (encoding/json writes a map's
// keys sorted): one pass of comparisons confirms it, most decided by the
// first byte.
func inOrderUpTo(c *Command) (n int, dup bool) {
	ext := c.Ext
	for j := 1; j < len(ext); j++ {
		a, b := ext[j-1].Key, ext[j].Key
		if len(a) > 0 && len(b) > 0 && a[0] < b[0] {
			continue
		}
		switch bytes.Compare(a, b) {
		case 0:
			dup = true
		case 1:
			return j, dup
		}
	}
	return len(ext), dup
}

// insertionSort finishes SortExtIndexes from position from, idx[:from]
// being in order: insertion sort, the fastest for a request's 10 to 20
// fields. An equal key is met where the inserted one stops.
func insertionSort(c *Command, idx []int, from int, dup bool) ([]int, bool) {
	for i := from; i < len(idx); i++ {
		for j := i; j > 0; j-- {
			a, b := c.Ext[idx[j-1]].Key, c.Ext[idx[j]].Key
			cmp := 0
			if len(a) > 0 && len(b) > 0 && a[0] != b[0] {
				cmp = int(a[0]) - int(b[0]) // no call for the usual one-letter keys
			} else {
				cmp = bytes.Compare(a, b)
			}
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

// WriteSignedContent writes what an ACL signature covers (apache/rocketmq
// acl/.../common/AclUtils.java combineRequestContent): the values of the
// extFields in the key order of idx (from SortExtIndexes; nil when c.Ext
// is in key order itself), no keys and no separators, Signature left out,
// then the body. Short values are gathered in buf's capacity (nothing is
// allocated) and written together: a hash's Write costs about as much per
// call as per 64 bytes, and a request has many short fields.
func WriteSignedContent(w io.Writer, c *Command, idx []int, flags int, buf []byte) {
	writeSignedContent(w, c, idx, flags, buf)
}

// writeSignedContent is WriteSignedContent; n is the number of bytes
// written, which HMAC's final padding needs.
func writeSignedContent(w io.Writer, c *Command, idx []int, flags int, buf []byte) (n int) {
	buf = buf[:0]
	ext := c.Ext
	m := len(ext)
	if idx != nil {
		m = len(idx)
	}
	for j := range m {
		kv := &ext[j]
		if idx != nil {
			kv = &ext[idx[j]]
		}
		// The fields left out have long keys; a send's are one letter.
		if len(kv.Key) >= len(ExtSignature) && leftOut(kv.Key, flags) {
			continue
		}
		v := kv.Value
		if len(buf)+len(v) > cap(buf) {
			_, _ = w.Write(buf)
			n += len(buf)
			buf = buf[:0]
			if len(v) > cap(buf) {
				_, _ = w.Write(v)
				n += len(v)
				continue
			}
		}
		buf = append(buf, v...)
	}
	// The body's first bytes join the fields up to a block boundary (the
	// hash's key block is whole), so that the hash takes the fields and
	// the body in two calls of its block function instead of three: each
	// call costs a block's worth of setup.
	body := c.Body
	if k := min(-(n+len(buf))&63, len(body), cap(buf)-len(buf)); k > 0 {
		buf, body = append(buf, body[:k]...), body[k:]
	}
	_, _ = w.Write(buf)
	_, _ = w.Write(body)
	return n + len(buf) + len(body)
}

// leftOut reports whether a signature leaves out the field key: Signature
// always, the others as flags say.
func leftOut(key []byte, flags int) bool {
	switch string(key) {
	case ExtSignature:
		return true
	case ExtSecurityToken:
		return flags&SignSkipToken != 0
	case ExtUniqueKeyQuery:
		return flags&SignSkipUniqueKeyQuery != 0
	}
	return false
}

// Sign adds AccessKey, SecurityToken (when token is set) and Signature to
// c the way Java's AclClientRPCHook does (the token is signed). Earlier
// ACL fields are replaced, so signing a command twice is harmless. A
// client signing many requests keeps a Signer instead.
func Sign(c *Command, accessKey, secretKey, token string) {
	NewSigner(accessKey, secretKey, token).Sign(c)
}

// SigningKey is an account's secret with HMAC's key blocks already hashed
// (RFC 2104): the SHA-1 states after key^ipad and after key^opad, saved
// with encoding.BinaryMarshaler. Restoring them costs a copy, so a
// signature costs the hash of its signed bytes and one outer block.
type SigningKey struct {
	inner, outer []byte
}

// NewSigningKey hashes the key blocks of secret.
func NewSigningKey(secret []byte) SigningKey {
	var k [sha1.BlockSize]byte
	if len(secret) > sha1.BlockSize {
		sum := sha1.Sum(secret)
		copy(k[:], sum[:])
	} else {
		copy(k[:], secret)
	}
	return SigningKey{inner: padState(k, 0x36), outer: padState(k, 0x5c)}
}

func padState(k [sha1.BlockSize]byte, pad byte) []byte {
	for i := range k {
		k[i] ^= pad
	}
	h := sha1.New()
	_, _ = h.Write(k[:])
	// crypto/sha1's digest marshals its state (since Go 1.9).
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("wire: SHA-1 state does not marshal: " + err.Error())
	}
	return st
}

// SignState computes signatures under any SigningKey, reusing its hashes
// and buffers from one request to the next. Not safe for concurrent use.
//
// It pads HMAC's two hashes itself instead of calling Sum (which copies
// the digest and pads through two more Writes): the inner hash is padded
// with one Write of pad, the outer one is a single block built in oblock
// around the inner hash, and each result is read from the digest's
// AppendBinary state, whose bytes 4 to 24 are the hash once the input
// ended on a block boundary. That halves the work around the SHA-1 blocks.
type SignState struct {
	inner, outer   hash.Hash
	innerU, outerU encoding.BinaryUnmarshaler
	innerA, outerA encoding.BinaryAppender
	// idx is c.Ext's key order, or nil when c.Ext is in order itself,
	// as Sort found.
	idx    []int
	idxBuf []int
	buf    [SignedFieldsBuf]byte
	// pad is SHA-1's padding: 0x80, zeros, the bit length (written at a
	// varying offset, zeroed again after use).
	pad [sha1.BlockSize + 8]byte
	// oblock is the outer hash's last block: the inner hash, then the
	// padding of the 64+20 bytes it ends.
	oblock [sha1.BlockSize]byte
	state  [sha1StateLen]byte
	b64    [SignatureLen]byte
}

// sha1StateLen is crypto/sha1's marshaled state: magic "sha\x01", the
// five state words big-endian (the hash itself after a padded input), the
// pending block and the length.
const (
	sha1StateLen = 4 + sha1.Size + sha1.BlockSize + 8
	sha1StateH   = 4
)

// NewSignState returns a SignState.
func NewSignState() *SignState {
	s := &SignState{inner: sha1.New(), outer: sha1.New(), idxBuf: make([]int, 0, 32)}
	s.innerU, s.outerU = s.inner.(encoding.BinaryUnmarshaler), s.outer.(encoding.BinaryUnmarshaler)
	s.innerA, s.outerA = s.inner.(encoding.BinaryAppender), s.outer.(encoding.BinaryAppender)
	s.pad[0] = 0x80
	s.oblock[sha1.Size] = 0x80
	binary.BigEndian.PutUint64(s.oblock[sha1.BlockSize-8:], (sha1.BlockSize+sha1.Size)*8)
	return s
}

// Sort orders c's fields for Signature and Verify (SortExtIndexes); dup
// reports two fields with one key.
func (s *SignState) Sort(c *Command) (dup bool) {
	n, dup := inOrderUpTo(c)
	if n == len(c.Ext) {
		s.idx = nil // no index to build for the usual in-order request
		return dup
	}
	s.idxBuf, dup = SortExtIndexes(c, s.idxBuf)
	s.idx = s.idxBuf
	return dup
}

// Signature writes the Base64 signature under k of c, its fields as Sort
// last ordered them, to dst[:SignatureLen]; flags (SignSkip...) say which
// fields to leave out besides Signature.
func (s *SignState) Signature(k *SigningKey, c *Command, flags int, dst []byte) {
	s.sign(k, c, flags, dst)
}

// sign is Signature; false when k is not NewSigningKey's.
func (s *SignState) sign(k *SigningKey, c *Command, flags int, dst []byte) bool {
	ok := s.restore(k)
	n := writeSignedContent(s.inner, c, s.idx, flags, s.buf[:])
	encodeMAC(dst[:SignatureLen], s.finish(n))
	return ok
}

// Verify reports, in constant time, whether sig is c's signature under k
// as Signature computes it. A SigningKey not made by NewSigningKey (the
// zero value) verifies nothing.
func (s *SignState) Verify(k *SigningKey, c *Command, flags int, sig []byte) bool {
	if len(sig) != SignatureLen || !s.sign(k, c, flags, s.b64[:]) {
		return false
	}
	// subtle.ConstantTimeCompare goes byte by byte; words are as blind
	// to where the signatures differ and a few times cheaper.
	a, b := s.b64[:], sig[:SignatureLen]
	d := (binary.LittleEndian.Uint64(a) ^ binary.LittleEndian.Uint64(b)) |
		(binary.LittleEndian.Uint64(a[8:]) ^ binary.LittleEndian.Uint64(b[8:])) |
		(binary.LittleEndian.Uint64(a[16:]) ^ binary.LittleEndian.Uint64(b[16:])) |
		uint64(binary.LittleEndian.Uint32(a[24:])^binary.LittleEndian.Uint32(b[24:]))
	return subtle.ConstantTimeEq(int32(d>>32|d&0xffffffff), 0) == 1
}

const b64Std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// encodeMAC is base64.StdEncoding.Encode of a 20-byte MAC into 28 bytes,
// unrolled for the one length (encoding/base64's general loop costs about
// twice as much).
func encodeMAC(dst []byte, mac []byte) {
	_, _ = dst[SignatureLen-1], mac[sha1.Size-1]
	for i := 0; i < 6; i++ {
		v := uint(mac[3*i])<<16 | uint(mac[3*i+1])<<8 | uint(mac[3*i+2])
		dst[4*i] = b64Std[v>>18&0x3f]
		dst[4*i+1] = b64Std[v>>12&0x3f]
		dst[4*i+2] = b64Std[v>>6&0x3f]
		dst[4*i+3] = b64Std[v&0x3f]
	}
	v := uint(mac[18])<<16 | uint(mac[19])<<8
	dst[24] = b64Std[v>>18&0x3f]
	dst[25] = b64Std[v>>12&0x3f]
	dst[26] = b64Std[v>>6&0x3f]
	dst[27] = '='
}

// MAC is the raw HMAC-SHA1 of content under k, valid until the next call;
// nil when k is not NewSigningKey's.
func (s *SignState) MAC(k *SigningKey, content []byte) []byte {
	if !s.restore(k) {
		return nil
	}
	_, _ = s.inner.Write(content)
	return s.finish(len(content))
}

// restore puts the hashes in k's keyed states; false, leaving them in an
// unusable state, when k's states do not unmarshal (not NewSigningKey's).
func (s *SignState) restore(k *SigningKey) bool {
	return s.innerU.UnmarshalBinary(k.inner) == nil && s.outerU.UnmarshalBinary(k.outer) == nil
}

// finish is HMAC's outer hash over the inner one, n bytes having been
// written to the inner hash after its key block.
func (s *SignState) finish(n int) []byte {
	total := sha1.BlockSize + n
	// 0x80 and zeros up to 8 bytes short of a block boundary, then the
	// length: t is 1 to 64 bytes.
	t := 56 - total%sha1.BlockSize
	if t <= 0 {
		t += sha1.BlockSize
	}
	binary.BigEndian.PutUint64(s.pad[t:], uint64(total)*8)
	_, _ = s.inner.Write(s.pad[:t+8])
	clear(s.pad[t : t+8])
	st, _ := s.innerA.AppendBinary(s.state[:0])
	copy(s.oblock[:sha1.Size], st[sha1StateH:])
	_, _ = s.outer.Write(s.oblock[:])
	st, _ = s.outerA.AppendBinary(s.state[:0])
	return st[sha1StateH : sha1StateH+sha1.Size]
}

// Signer signs requests for one account. Its key blocks are hashed once,
// so each request costs the hash of its signed bytes and nothing else, as
// the broker's verifier does. Not safe for concurrent use.
type Signer struct {
	ak, token []byte
	key       SigningKey
	st        *SignState
}

// NewSigner returns a signer for an account (token: SecurityToken, or "").
func NewSigner(accessKey, secretKey, token string) *Signer {
	return &Signer{ak: []byte(accessKey), token: []byte(token), key: NewSigningKey([]byte(secretKey)), st: NewSignState()}
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
	s.st.Sort(c)
	s.st.Signature(&s.key, c, 0, dst)
}

// Credentials are an ACL account's keys as a client holds them.
type Credentials struct {
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
}

// IsEmpty reports whether requests go out unsigned (either key missing,
// as rocketmq-client-go's primitive.Credentials.IsEmpty).
func (cr Credentials) IsEmpty() bool { return cr.AccessKey == "" || cr.SecretKey == "" }
