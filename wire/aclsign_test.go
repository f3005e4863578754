package wire

import "testing"

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
	if n := testing.AllocsPerRun(100, func() { tok.Signature(c, dst[:]) }); n != 0 {
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
	b.Run("SignerSignature", func(b *testing.B) {
		c := req()
		s := NewSigner("producerA", "secretA1", "")
		s.Sign(c)
		var dst [SignatureLen]byte
		b.ReportAllocs()
		for b.Loop() {
			s.Signature(c, dst[:])
		}
	})
}

func BenchmarkSortExtIndexes(b *testing.B) {
	c := NewRequest(SendMessageV2, map[string]string{"a": "ProducerGroupA", "b": "TopicA", "c": "TBW102", "d": "4",
		"e": "1", "f": "0", "g": "1700000000000", "h": "0", "i": "UNIQ_KEY\x01AC1100010001000000000000000000AB\x02",
		"j": "0", "k": "false", "AccessKey": "producerA", "Signature": "0jiwhsaYp5ObE5GObbZH1I8/FT4="}, nil)
	idx := make([]int, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		idx, _ = SortExtIndexes(c, idx)
	}
}
