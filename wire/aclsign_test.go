package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// A Signer reused across requests gives each the signature a fresh
// signing gives (golden vectors of the ACL spec's worked examples, the
// ones broker/acl verifies), and re-signing in place allocates nothing.
func TestSignerReuse(t *testing.T) {
	route := func() *Command { return NewRequest(105, map[string]string{"topic": "TopicTest"}, nil) }
	s := NewSigner("RocketMQ", "12345678", "")
	for i, want := range []string{"0jiwhsaYp5ObE5GObbZH1I8/FT4=", "mg4Opz+9B+5jwoQfckobdiE2ZLg=", "0jiwhsaYp5ObE5GObbZH1I8/FT4="} {
		c := route()
		if i == 1 {
			c = NewRequest(14, map[string]string{"consumerGroup": "GroupA", "topic": "TopicTest", "queueId": "0"}, nil)
		}
		s.Sign(c)
		if got := c.GetString(ExtSignature); got != want {
			t.Fatalf("request %d: signature %s, want %s", i, got, want)
		}
	}
	tok := NewSigner("RocketMQ", "12345678", "tok123")
	c := route()
	tok.Sign(c)
	tok.Sign(c) // twice: the old fields are replaced
	if got := c.GetString(ExtSignature); got != "WQF9rEGPzRK3sncYyfnjSU8Z/No=" || len(c.Ext) != 4 {
		t.Fatalf("token signature %s with %d fields", got, len(c.Ext))
	}

	var dst [SignatureLen]byte
	tok.Signature(c, dst[:]) // the Signature field present is left out
	if string(dst[:]) != "WQF9rEGPzRK3sncYyfnjSU8Z/No=" {
		t.Fatalf("in-place signature %s", dst[:])
	}
	if n := testing.AllocsPerRun(100, func() { tok.Signature(c, dst[:]) }); n != 0 && !raceOn {
		t.Fatalf("%v allocations per in-place signature", n)
	}
}

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 1024)
	req := func() *Command {
		return NewRequest(SendMessageV2, map[string]string{"a": "ProducerGroupA", "b": "TopicA", "c": "TBW102", "d": "4",
			"e": "1", "f": "0", "g": "1700000000000", "h": "0", "i": "UNIQ_KEY\x01AC1100010001000000000000000000AB\x02",
			"j": "0", "k": "false", "l": "16", "m": "false"}, body)
	}
	b.Run("Sign", func(b *testing.B) {
		c := req()
		b.ReportAllocs()
		for b.Loop() {
			Sign(c, "producerA", "secretA1", "")
		}
	})
	b.Run("SignerSign", func(b *testing.B) { // a client's reused Signer (remoting.Client)
		c := req()
		s := NewSigner("producerA", "secretA1", "")
		b.ReportAllocs()
		for b.Loop() {
			s.Sign(c)
		}
	})
	b.Run("SignerSignature", func(b *testing.B) { benchSignature(b, req(), false) })
	// As mqbench re-signs: the fields in key order, as v2.1.2 sends them.
	b.Run("SignerSignatureInOrder", func(b *testing.B) { benchSignature(b, req(), true) })
}

func benchSignature(b *testing.B, c *Command, inOrder bool) {
	s := NewSigner("producerA", "secretA1", "")
	s.Sign(c)
	if inOrder {
		slices.SortFunc(c.Ext, func(x, y KV) int { return bytes.Compare(x.Key, y.Key) })
	}
	var dst [SignatureLen]byte
	b.ReportAllocs()
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	for b.Loop() {
		s.Signature(c, dst[:])
	}
	// CPU time per signature: on a shared machine ns/op counts the
	// time other processes held the CPU too.
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkSortExtIndexes orders a send's fields as a Java client may
// send them (AccessKey and Signature appended) and as v2.1.2 sends them
// (in key order).
func BenchmarkSortExtIndexes(b *testing.B) {
	fields := []string{"a", "ProducerGroupA", "b", "TopicA", "c", "TBW102", "d", "4", "e", "1", "f", "0", "g", "1700000000000",
		"h", "0", "i", "UNIQ_KEY\x01AC1100010001000000000000000000AB\x02", "j", "0", "k", "false", "l", "16", "m", "false",
		"AccessKey", "producerA", "Signature", "0jiwhsaYp5ObE5GObbZH1I8/FT4="}
	for _, sorted := range []bool{false, true} {
		c := &Command{}
		for i := 0; i < len(fields); i += 2 {
			c.Ext = append(c.Ext, KV{Key: []byte(fields[i]), Value: []byte(fields[i+1])})
		}
		name := "appended"
		if sorted {
			name = "sorted"
			slices.SortFunc(c.Ext, func(x, y KV) int { return bytes.Compare(x.Key, y.Key) })
		}
		b.Run(name, func(b *testing.B) {
			idx := make([]int, 0, 16)
			b.ReportAllocs()
			for b.Loop() {
				idx, _ = SortExtIndexes(c, idx)
			}
		})
	}
}

// SortExtIndexes orders like a byte-wise sort and finds duplicates, for
// keys sharing long prefixes, prefixes of each other and zero bytes.
func TestSortExtIndexes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{0, 'a', 'b', 'A', 0xff}
	for round := range 2000 {
		c := &Command{}
		for range r.IntN(40) {
			k := make([]byte, r.IntN(11))
			for i := range k {
				k[i] = alphabet[r.IntN(len(alphabet))]
			}
			c.Ext = append(c.Ext, KV{Key: k})
		}
		idx, dup := SortExtIndexes(c, nil)
		want := make([]string, len(c.Ext))
		for i, kv := range c.Ext {
			want[i] = string(kv.Key)
		}
		slices.Sort(want)
		wantDup := false
		for i := 1; i < len(want); i++ {
			wantDup = wantDup || want[i] == want[i-1]
		}
		for i, j := range idx {
			if string(c.Ext[j].Key) != want[i] {
				t.Fatalf("round %d: position %d has %q, want %q", round, i, c.Ext[j].Key, want[i])
			}
		}
		if len(idx) != len(want) || dup != wantDup {
			t.Fatalf("round %d: %d indexes for %d fields, dup %v want %v", round, len(idx), len(want), dup, wantDup)
		}
	}
}

// WriteSignedContent writes the sorted values and the body whatever the
// values' lengths against its gathering buffer (short ones gathered, long
// ones written through), leaving out what the flags say.
func TestWriteSignedContent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 500 {
		c := &Command{Body: []byte("BODY")}
		want := map[string]string{}
		for i := range r.IntN(12) {
			k := string(rune('a' + i))
			v := make([]byte, r.IntN(20))
			for j := range v {
				v[j] = byte('0' + r.IntN(10))
			}
			c.Ext = append(c.Ext, KV{Key: []byte(k), Value: v})
			want[k] = string(v)
		}
		c.Ext = append(c.Ext, KV{Key: []byte(ExtSignature), Value: []byte("sig")},
			KV{Key: []byte(ExtSecurityToken), Value: []byte("tok")})
		r.Shuffle(len(c.Ext), func(i, j int) { c.Ext[i], c.Ext[j] = c.Ext[j], c.Ext[i] })
		idx, _ := SortExtIndexes(c, nil)
		var sorted []string
		for k := range want {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted)
		exp := "tok"
		for _, k := range sorted {
			exp += want[k]
		}
		var got bytes.Buffer
		WriteSignedContent(&got, c, idx, 0, make([]byte, 0, round%16))
		if got.String() != exp+"BODY" {
			t.Fatalf("round %d: wrote %q, want %q", round, got.String(), exp+"BODY")
		}
		got.Reset()
		WriteSignedContent(&got, c, idx, SignSkipToken, make([]byte, 0, round%16))
		if got.String() != exp[3:]+"BODY" {
			t.Fatalf("round %d without token: wrote %q", round, got.String())
		}
	}
}

// A SigningKey's restored pads give crypto/hmac's HMAC-SHA1 for keys
// shorter than, as long as and longer than SHA-1's block (hashed first),
// the empty key included, and for contents around block boundaries.
func TestSigningKeyIsHMAC(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	st := NewSignState()
	for _, kl := range []int{0, 1, 8, 63, 64, 65, 200} {
		key := make([]byte, kl)
		for i := range key {
			key[i] = byte(r.Uint32())
		}
		k := NewSigningKey(key)
		for _, cl := range []int{0, 1, 55, 56, 64, 119, 1200} {
			content := make([]byte, cl)
			for i := range content {
				content[i] = byte(r.Uint32())
			}
			want := hmac.New(sha1.New, key)
			want.Write(content)
			if got := st.MAC(&k, content); !bytes.Equal(got, want.Sum(nil)) {
				t.Fatalf("key %d bytes, content %d bytes: MAC %x, want %x", kl, cl, got, want.Sum(nil))
			}
		}
	}
}

// Signature is crypto/hmac's HMAC-SHA1 of the signed content, in Base64,
// whatever the lengths: the padding it writes itself depends on the number
// of bytes written, values gathered or written through (longer than the
// gathering buffer), bodies ending around block boundaries, fields in key
// order or not.
func TestSignatureIsHMAC(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	st := NewSignState()
	k := NewSigningKey([]byte("secretA1"))
	var sig [SignatureLen]byte
	for round := range 400 {
		c := &Command{Body: make([]byte, r.IntN(300))}
		for i := range c.Body {
			c.Body[i] = byte(r.Uint32())
		}
		keys := r.Perm(10)[:r.IntN(10)]
		if round%2 == 0 {
			slices.Sort(keys)
		}
		for _, i := range keys {
			v := make([]byte, []int{0, 1, 7, 63, 64, 65, SignedFieldsBuf, SignedFieldsBuf + 1}[r.IntN(8)])
			for j := range v {
				v[j] = byte('0' + r.IntN(10))
			}
			c.Ext = append(c.Ext, KV{Key: []byte{byte('a' + i)}, Value: v})
		}
		st.Sort(c)
		st.Signature(&k, c, 0, sig[:])
		want := hmac.New(sha1.New, []byte("secretA1"))
		idx, _ := SortExtIndexes(c, nil)
		for _, i := range idx {
			want.Write(c.Ext[i].Value)
		}
		want.Write(c.Body)
		if exp := base64.StdEncoding.EncodeToString(want.Sum(nil)); string(sig[:]) != exp {
			t.Fatalf("round %d: signature %s, want %s", round, sig[:], exp)
		}
	}
}

// encodeMAC is encoding/base64's standard encoding of a MAC.
func TestEncodeMAC(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var mac [sha1.Size]byte
	var got [SignatureLen]byte
	for range 1000 {
		for i := range mac {
			mac[i] = byte(r.Uint32())
		}
		encodeMAC(got[:], mac[:])
		if want := base64.StdEncoding.EncodeToString(mac[:]); string(got[:]) != want {
			t.Fatalf("%x: %s, want %s", mac, got, want)
		}
	}
}

// Verify accepts the signature Signature gives and refuses any other: one
// byte changed at each position, and a signature one byte short or long;
// a verify allocates nothing.
func TestVerifySignature(t *testing.T) {
	c := NewRequest(SendMessageV2, map[string]string{"a": "ProducerGroupA", "b": "TopicA", "AccessKey": "RocketMQ"}, []byte("body"))
	k := NewSigningKey([]byte("12345678"))
	st := NewSignState()
	if st.Sort(c) {
		t.Fatal("duplicate reported")
	}
	var sig [SignatureLen]byte
	st.Signature(&k, c, 0, sig[:])
	if !st.Verify(&k, c, 0, sig[:]) {
		t.Fatal("own signature refused")
	}
	for i := range sig {
		for _, flip := range []byte{1, 0x20, 0x80} {
			bad := sig
			bad[i] ^= flip
			if st.Verify(&k, c, 0, bad[:]) {
				t.Fatalf("signature with byte %d changed (^%#x) accepted", i, flip)
			}
		}
	}
	if st.Verify(&k, c, 0, sig[:SignatureLen-1]) || st.Verify(&k, c, 0, append(sig[:], '=')) || st.Verify(&k, c, 0, nil) {
		t.Fatal("signature of the wrong length accepted")
	}
	var zero SigningKey // not NewSigningKey's: verifies nothing, whatever the state left behind
	if st.Verify(&zero, c, 0, sig[:]) || st.MAC(&zero, []byte("x")) != nil {
		t.Fatal("the zero SigningKey verified a signature")
	}
	if n := testing.AllocsPerRun(100, func() { st.Verify(&k, c, 0, sig[:]) }); n != 0 && !raceOn {
		t.Fatalf("%v allocations per verify", n)
	}
}
