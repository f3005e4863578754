package amqp

import (
	"bufio"
	"testing"
)

// loopReader serves the same bytes forever.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

// publishStream is one basic.publish with a typical header and a 1 KiB
// body, as a client sends it.
func publishStream(tb testing.TB) []byte {
	out, err := AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "amq.topic", RoutingKey: "orders.eu.created"})
	if err != nil {
		tb.Fatal(err)
	}
	out, err = AppendPropertiesHeaderFrame(out, 1, 1024, &Properties{ContentType: "application/json", DeliveryMode: 2,
		MessageID: "0b8f3c1e-1f7e-4a5c-9a63-2d7f6a3e9b11", Headers: Table{"trace-id": "abc", "attempt": int32(1)}})
	if err != nil {
		tb.Fatal(err)
	}
	return AppendBodyFrames(out, 1, make([]byte, 1024), 131072)
}

// publishPath reads one publish (method, header, body) the way a gateway
// channel does: structs and buffers reused.
type publishPath struct {
	fr   *FrameReader
	pub  BasicPublish
	hdr  ContentHeader
	body []byte
}

func (p *publishPath) next(tb testing.TB) {
	f, err := p.fr.ReadFrame()
	if err != nil {
		tb.Fatal(err)
	}
	c, m, args, err := MethodIDs(f.Payload)
	if err != nil || c != ClassBasic || m != 40 {
		tb.Fatal(c, m, err)
	}
	if err := p.pub.Read(args); err != nil {
		tb.Fatal(err)
	}
	if f, err = p.fr.ReadFrame(); err != nil {
		tb.Fatal(err)
	}
	if err := p.hdr.Read(f.Payload); err != nil {
		tb.Fatal(err)
	}
	if f, err = p.fr.ReadFrame(); err != nil {
		tb.Fatal(err)
	}
	p.body = append(p.body[:0], f.Payload...)
}

// deliverPath writes one deliver with stored raw properties and body.
type deliverPath struct {
	out   []byte
	d     BasicDeliver
	flags uint16
	props []byte
	body  []byte
}

func (p *deliverPath) write(tb testing.TB) {
	p.d.DeliveryTag++
	out, start := BeginFrame(p.out[:0], FrameMethod, 1)
	out, err := p.d.Append(out)
	if err != nil {
		tb.Fatal(err)
	}
	out = EndFrame(out, start)
	out = AppendHeaderFrame(out, 1, ClassBasic, uint64(len(p.body)), p.flags, p.props)
	p.out = AppendBodyFrames(out, 1, p.body, 131072)
}

func newDeliverPath(tb testing.TB) *deliverPath {
	var h ContentHeader
	s := publishStream(tb)
	fr := NewFrameReader(bufio.NewReader(&loopReader{b: s}), 131072)
	fr.ReadFrame()
	f, _ := fr.ReadFrame()
	if err := h.Read(f.Payload); err != nil {
		tb.Fatal(err)
	}
	return &deliverPath{d: BasicDeliver{ConsumerTag: "amq.ctag-0123456789abcdefghijkl", Exchange: "amq.topic",
		RoutingKey: "orders.eu.created"}, flags: h.Flags, props: append([]byte(nil), h.Props...), body: make([]byte, 1024)}
}

// TestHotPathAllocations: reading a publish and writing a deliver do not
// allocate once buffers are warm.
func TestHotPathAllocations(t *testing.T) {
	pp := &publishPath{fr: NewFrameReader(bufio.NewReader(&loopReader{b: publishStream(t)}), 131072)}
	pp.next(t)
	if n := testing.AllocsPerRun(200, func() { pp.next(t) }); n != 0 {
		t.Errorf("publish read path: %v allocs", n)
	}
	dp := newDeliverPath(t)
	dp.write(t)
	if n := testing.AllocsPerRun(200, func() { dp.write(t) }); n != 0 {
		t.Errorf("deliver write path: %v allocs", n)
	}
	props := Properties{ContentType: "application/json", DeliveryMode: 2, MessageID: "m",
		Headers: Table{"trace-id": "abc", "attempt": int32(1)}}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(200, func() {
		if _, err := AppendPropertiesHeaderFrame(buf[:0], 1, 10, &props); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("header encode with a 2-key headers table: %v allocs", n)
	}
}

func BenchmarkFrameRead(b *testing.B) {
	s := publishStream(b)
	fr := NewFrameReader(bufio.NewReaderSize(&loopReader{b: s}, 64<<10), 131072)
	b.SetBytes(int64(len(s)) / 3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fr.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishRead(b *testing.B) {
	s := publishStream(b)
	pp := &publishPath{fr: NewFrameReader(bufio.NewReaderSize(&loopReader{b: s}, 64<<10), 131072)}
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		pp.next(b)
	}
}

func BenchmarkDeliverWrite(b *testing.B) {
	dp := newDeliverPath(b)
	dp.write(b)
	b.SetBytes(int64(len(dp.out)))
	b.ReportAllocs()
	for b.Loop() {
		dp.write(b)
	}
}

func BenchmarkFrameWrite(b *testing.B) {
	buf := make([]byte, 0, 256)
	m := &BasicAck{DeliveryTag: 1}
	b.ReportAllocs()
	for b.Loop() {
		m.DeliveryTag++
		out, start := BeginFrame(buf[:0], FrameMethod, 1)
		out, _ = m.Append(out)
		buf = EndFrame(out, start)
	}
}

func BenchmarkHeaderEncode(b *testing.B) {
	props := Properties{ContentType: "application/json", DeliveryMode: 2, MessageID: "0b8f3c1e-1f7e-4a5c-9a63-2d7f6a3e9b11",
		Headers: Table{"trace-id": "abc", "attempt": int32(1)}}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendPropertiesHeaderFrame(buf[:0], 1, 1024, &props); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHeaderRead(b *testing.B) {
	dp := newDeliverPath(b)
	payload := AppendHeaderFrame(nil, 1, ClassBasic, 1024, dp.flags, dp.props)
	payload = payload[7 : len(payload)-1]
	var h ContentHeader
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Read(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTableDecode(b *testing.B) {
	_, want := allClientTypes()
	in, err := AppendTable(nil, want)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ReadTable(in); err != nil {
			b.Fatal(err)
		}
	}
}
