package amqp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// The tests in this file run the official Go client, amqp091-go v1.17.0,
// against a scripted server built on this package over loopback TCP: what
// the client writes is decoded by our reader (golden input from the real
// client), and what our writer produces must be understood by the client.

// scriptPeer is the server side of one scripted connection.
type scriptPeer struct {
	conn net.Conn
	fr   *FrameReader
	out  []byte
}

func (p *scriptPeer) send(channel uint16, m Method) error {
	var err error
	if p.out, err = AppendMethodFrame(p.out[:0], channel, m); err != nil {
		return err
	}
	_, err = p.conn.Write(p.out)
	return err
}

// next reads the next non-heartbeat frame.
func (p *scriptPeer) next() (Frame, error) {
	for {
		f, err := p.fr.ReadFrame()
		if err != nil || f.Type != FrameHeartbeat {
			return f, err
		}
	}
}

// expect reads a method frame on channel and decodes it into m, whose ids
// must match. It returns the raw payload (a copy) for golden comparisons.
func (p *scriptPeer) expect(channel uint16, m Method) ([]byte, error) {
	f, err := p.next()
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", m.Name(), err)
	}
	if f.Type != FrameMethod || f.Channel != channel {
		return nil, fmt.Errorf("waiting for %s on channel %d: got frame type %d on channel %d", m.Name(), channel, f.Type, f.Channel)
	}
	got, err := ReadMethod(f.Payload)
	if err != nil {
		return nil, fmt.Errorf("waiting for %s: %w", m.Name(), err)
	}
	if got.Name() != m.Name() {
		return nil, fmt.Errorf("waiting for %s: got %s", m.Name(), got.Name())
	}
	reflect.ValueOf(m).Elem().Set(reflect.ValueOf(got).Elem())
	return bytes.Clone(f.Payload), nil
}

// serve accepts one connection and runs script on it; the error (nil when
// the script ran to its end) arrives on the returned channel.
func serve(t *testing.T, script func(p *scriptPeer) error) (addr string, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			ch <- err
			return
		}
		defer conn.Close()
		p := &scriptPeer{conn: conn, fr: NewFrameReader(bufio.NewReader(conn), 0)}
		ch <- script(p)
	}()
	return ln.Addr().String(), ch
}

func wait(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server script: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server script did not finish")
	}
}

var serverProps = Table{
	"product": "mqops", "version": "test", "platform": "Go",
	"capabilities": map[string]any{
		"publisher_confirms": true, "exchange_exchange_bindings": true, "basic.nack": true,
		"consumer_cancel_notify": true, "connection.blocked": true, "authentication_failure_close": true,
	},
}

// handshake runs steps 1-7 of the tutorial trace (spec section 1.11) and
// returns the decoded start-ok.
func handshake(p *scriptPeer) (*ConnectionStartOk, error) {
	if err := ReadProtocolHeader(p.conn); err != nil {
		return nil, err
	}
	if err := p.send(0, &ConnectionStart{VersionMajor: 0, VersionMinor: 9, ServerProperties: serverProps,
		Mechanisms: "PLAIN AMQPLAIN", Locales: "en_US"}); err != nil {
		return nil, err
	}
	var so ConnectionStartOk
	if _, err := p.expect(0, &so); err != nil {
		return nil, err
	}
	if err := p.send(0, &ConnectionTune{ChannelMax: 2047, FrameMax: 131072, Heartbeat: 60}); err != nil {
		return nil, err
	}
	var tok ConnectionTuneOk
	raw, err := p.expect(0, &tok)
	if err != nil {
		return nil, err
	}
	// tune-ok 2047 / 131072 / 10 (amqp091-go's default heartbeat is 10 s).
	if want := []byte{0, 10, 0, 31, 0x07, 0xff, 0, 2, 0, 0, 0, 10}; !bytes.Equal(raw, want) {
		return nil, fmt.Errorf("tune-ok payload % x, want % x", raw, want)
	}
	p.fr.SetFrameMax(tok.FrameMax)
	var open ConnectionOpen
	if raw, err = p.expect(0, &open); err != nil {
		return nil, err
	}
	// virtual-host "/", reserved shortstr "", reserved bit 0.
	if want := []byte{0, 10, 0, 40, 1, '/', 0, 0}; !bytes.Equal(raw, want) {
		return nil, fmt.Errorf("connection.open payload % x, want % x", raw, want)
	}
	if err := p.send(0, &ConnectionOpenOk{}); err != nil {
		return nil, err
	}
	return &so, nil
}

func closeBoth(p *scriptPeer, channel uint16) error {
	var cc ChannelClose
	if _, err := p.expect(channel, &cc); err != nil {
		return err
	}
	if cc.ReplyCode != ReplySuccess {
		return fmt.Errorf("channel.close code %d", cc.ReplyCode)
	}
	if err := p.send(channel, &ChannelCloseOk{}); err != nil {
		return err
	}
	var c ConnectionClose
	if _, err := p.expect(0, &c); err != nil {
		return err
	}
	if c.ReplyCode != ReplySuccess {
		return fmt.Errorf("connection.close code %d", c.ReplyCode)
	}
	return p.send(0, &ConnectionCloseOk{})
}

// allClientTypes holds a header of every Go type amqp091-go encodes, and
// what our decoder must make of it.
func allClientTypes() (amqp091.Table, Table) {
	ts := time.Date(2026, 12, 7, 3, 4, 5, 0, time.UTC)
	sent := amqp091.Table{
		"bool": true, "byte": byte(200), "int8": int8(-100), "int16": int16(-30000), "uint16": uint16(60000),
		"int": 123456, "int32": int32(-7), "uint32": uint32(4000000000), "int64": int64(-1 << 40),
		"float32": float32(1.5), "float64": 2.25, "decimal": amqp091.Decimal{Scale: 2, Value: -12345},
		"string": "héllo", "bytes": []byte{0, 1, 0xff}, "time": ts, "void": nil,
		"array": []any{"cc1", int32(2), []any{true}},
		"table": amqp091.Table{"x-death": []any{amqp091.Table{"count": int64(3)}}, "empty": amqp091.Table{}},
	}
	want := Table{
		"bool": true, "byte": uint8(200), "int8": int8(-100), "int16": int16(-30000), "uint16": uint16(60000),
		"int": int32(123456), "int32": int32(-7), "uint32": uint32(4000000000), "int64": int64(-1 << 40),
		"float32": float32(1.5), "float64": 2.25, "decimal": Decimal{Scale: 2, Value: -12345},
		"string": "héllo", "bytes": []byte{0, 1, 0xff}, "time": ts, "void": nil,
		"array": []any{"cc1", int32(2), []any{true}},
		"table": map[string]any{"x-death": []any{map[string]any{"count": int64(3)}}, "empty": map[string]any{}},
	}
	return sent, want
}

// TestClientWritesDecode decodes tutorial 1's send.go sequence as written by
// amqp091-go: protocol header, start-ok with PLAIN, tune-ok, open,
// channel.open, queue.declare with x-queue-type, basic.publish + header +
// body (split over frames), headers of every type, then both closes.
func TestClientWritesDecode(t *testing.T) {
	sentHeaders, wantHeaders := allClientTypes()
	body := bytes.Repeat([]byte("0123456789abcdef"), 200000/16) // > frame_max: two body frames
	addr, done := serve(t, func(p *scriptPeer) error {
		so, err := handshake(p)
		if err != nil {
			return err
		}
		if so.Mechanism != "PLAIN" || so.Response != "\x00guest\x00guest" || so.Locale != "en_US" {
			return fmt.Errorf("start-ok mechanism %q response %q locale %q", so.Mechanism, so.Response, so.Locale)
		}
		cp := so.ClientProperties
		if cp["product"] != "AMQP 0.9.1 Client" || cp["version"] != "1.17.0" || cp["platform"] != "golang" {
			return fmt.Errorf("client properties %v", cp)
		}
		caps, _ := cp["capabilities"].(map[string]any)
		for _, c := range []string{"publisher_confirms", "basic.nack", "consumer_cancel_notify", "connection.blocked"} {
			if caps[c] != true {
				return fmt.Errorf("client capability %s = %v", c, caps[c])
			}
		}
		var co ChannelOpen
		if _, err := p.expect(1, &co); err != nil {
			return err
		}
		if err := p.send(1, &ChannelOpenOk{}); err != nil {
			return err
		}
		var qd QueueDeclare
		raw, err := p.expect(1, &qd)
		if err != nil {
			return err
		}
		// reserved 0, "hello", bits: durable only (0x02), then the table
		// {x-queue-type: S "quorum"}.
		want := append([]byte{0, 50, 0, 10, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0x02, 0, 0, 0, 24,
			12}, "x-queue-typeS\x00\x00\x00\x06quorum"...)
		if !bytes.Equal(raw, want) {
			return fmt.Errorf("queue.declare payload\n% x\nwant\n% x", raw, want)
		}
		if err := p.send(1, &QueueDeclareOk{Queue: "hello"}); err != nil {
			return err
		}
		var pub BasicPublish
		if raw, err = p.expect(1, &pub); err != nil {
			return err
		}
		if want := []byte{0, 60, 0, 40, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0x01}; !bytes.Equal(raw, want) {
			return fmt.Errorf("basic.publish payload % x, want % x", raw, want)
		}
		if pub.Exchange != "" || pub.RoutingKey != "hello" || !pub.Mandatory || pub.Immediate {
			return fmt.Errorf("basic.publish %+v", pub)
		}
		f, err := p.next()
		if err != nil || f.Type != FrameHeader || f.Channel != 1 {
			return fmt.Errorf("content header: %+v %v", f, err)
		}
		var h ContentHeader
		if err := h.Read(f.Payload); err != nil {
			return err
		}
		if h.BodySize != uint64(len(body)) {
			return fmt.Errorf("body size %d", h.BodySize)
		}
		if v, ok := h.Lookup(FlagContentType); !ok || string(v) != "text/plain" {
			return fmt.Errorf("Lookup(content-type) = %q %v", v, ok)
		}
		var props Properties
		if err := h.Properties(&props); err != nil {
			return err
		}
		if !reflect.DeepEqual(props.Headers, wantHeaders) {
			return fmt.Errorf("headers\n%#v\nwant\n%#v", props.Headers, wantHeaders)
		}
		props.Headers = nil
		wantProps := Properties{ContentType: "text/plain", ContentEncoding: "gzip", DeliveryMode: 2, Priority: 7,
			CorrelationID: "c1", ReplyTo: "rq", Expiration: "60000", MessageID: "m1",
			Timestamp: time.Unix(1700000000, 0).UTC(), Type: "t", UserID: "guest", AppID: "app"}
		if !reflect.DeepEqual(props, wantProps) {
			return fmt.Errorf("properties %+v, want %+v", props, wantProps)
		}
		var got []byte
		frames := 0
		for uint64(len(got)) < h.BodySize {
			f, err := p.next()
			if err != nil || f.Type != FrameBody || f.Channel != 1 {
				return fmt.Errorf("body frame: %+v %v", f.Type, err)
			}
			got = append(got, f.Payload...)
			frames++
		}
		if !bytes.Equal(got, body) || frames != 2 {
			return fmt.Errorf("body of %d bytes in %d frames", len(got), frames)
		}
		return closeBoth(p, 1)
	})

	conn, err := amqp091.Dial("amqp://guest:guest@" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("hello", true, false, false, false, amqp091.Table{"x-queue-type": "quorum"})
	if err != nil || q.Name != "hello" {
		t.Fatalf("QueueDeclare: %v %v (server: %v)", q, err, <-done)
	}
	err = ch.PublishWithContext(context.Background(), "", "hello", true, false, amqp091.Publishing{
		Headers: sentHeaders, ContentType: "text/plain", ContentEncoding: "gzip", DeliveryMode: amqp091.Persistent,
		Priority: 7, CorrelationId: "c1", ReplyTo: "rq", Expiration: "60000", MessageId: "m1",
		Timestamp: time.Unix(1700000000, 0), Type: "t", UserId: "guest", AppId: "app", Body: body,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	wait(t, done)
}

// TestClientAMQPLAIN decodes amqp091-go's AMQPLAIN response (a table
// without its length prefix) and checks the client surfaces our
// connection.close 530 with its text.
func TestClientAMQPLAIN(t *testing.T) {
	addr, done := serve(t, func(p *scriptPeer) error {
		if err := ReadProtocolHeader(p.conn); err != nil {
			return err
		}
		if err := p.send(0, &ConnectionStart{VersionMinor: 9, ServerProperties: serverProps,
			Mechanisms: "PLAIN AMQPLAIN", Locales: "en_US"}); err != nil {
			return err
		}
		var so ConnectionStartOk
		if _, err := p.expect(0, &so); err != nil {
			return err
		}
		login, err := DecodeTableEntries([]byte(so.Response))
		if err != nil {
			return err
		}
		if so.Mechanism != "AMQPLAIN" || !reflect.DeepEqual(login, Table{"LOGIN": "bob", "PASSWORD": "s3cret"}) {
			return fmt.Errorf("AMQPLAIN %q %v", so.Mechanism, login)
		}
		if err := p.send(0, &ConnectionTune{ChannelMax: 2047, FrameMax: 131072, Heartbeat: 60}); err != nil {
			return err
		}
		if _, err := p.expect(0, &ConnectionTuneOk{}); err != nil {
			return err
		}
		var open ConnectionOpen
		if _, err := p.expect(0, &open); err != nil {
			return err
		}
		e := Errorf(NotAllowed, "vhost %s not found", open.VirtualHost)
		if err := p.send(0, &ConnectionClose{ReplyCode: e.Code, ReplyText: e.Text, ClassID: ClassConnection, MethodID: 40}); err != nil {
			return err
		}
		_, err = p.expect(0, &ConnectionCloseOk{})
		return err
	})
	_, err := amqp091.DialConfig("amqp://"+addr+"/nope", amqp091.Config{
		SASL: []amqp091.Authentication{&amqp091.AMQPlainAuth{Username: "bob", Password: "s3cret"}},
	})
	var ae *amqp091.Error
	if !errors.As(err, &ae) || ae.Code != NotAllowed || ae.Reason != "NOT_ALLOWED - vhost nope not found" {
		t.Fatalf("Dial error %v, want 530 NOT_ALLOWED with our text", err)
	}
	wait(t, done)
}

// TestClientReadsOurFrames has amqp091-go Dial, open a channel, declare a
// queue and consume from it while every server frame comes from our writer:
// start, tune, open-ok, channel.open-ok, declare-ok with counts, consume-ok,
// and a deliver with all properties, a header table of every type and a body
// split over frames.
func TestClientReadsOurFrames(t *testing.T) {
	sentHeaders, ourHeaders := allClientTypes()
	body := bytes.Repeat([]byte{'z'}, 300000)
	props := Properties{ContentType: "application/json", ContentEncoding: "utf-8", Headers: ourHeaders,
		DeliveryMode: 2, Priority: 3, CorrelationID: "corr", ReplyTo: "amq.rabbitmq.reply-to.abc",
		Expiration: "1500", MessageID: "mid", Timestamp: time.Unix(1800000000, 0).UTC(), Type: "kind",
		UserID: "guest", AppID: "mqops"}
	addr, done := serve(t, func(p *scriptPeer) error {
		if _, err := handshake(p); err != nil {
			return err
		}
		if _, err := p.expect(1, &ChannelOpen{}); err != nil {
			return err
		}
		if err := p.send(1, &ChannelOpenOk{}); err != nil {
			return err
		}
		var qd QueueDeclare
		if _, err := p.expect(1, &qd); err != nil {
			return err
		}
		if err := p.send(1, &QueueDeclareOk{Queue: "amq.gen-" + qd.Queue, MessageCount: 42, ConsumerCount: 3}); err != nil {
			return err
		}
		var bc BasicConsume
		if _, err := p.expect(1, &bc); err != nil {
			return err
		}
		if bc.Queue != "amq.gen-q" || bc.NoAck || !bc.Exclusive || bc.Arguments["x-priority"] != int32(5) {
			return fmt.Errorf("basic.consume %+v", bc)
		}
		if err := p.send(1, &BasicConsumeOk{ConsumerTag: bc.ConsumerTag}); err != nil {
			return err
		}
		out, start := BeginFrame(nil, FrameMethod, 1)
		out, err := (&BasicDeliver{ConsumerTag: bc.ConsumerTag, DeliveryTag: 1 << 40, Redelivered: true,
			Exchange: "ex", RoutingKey: "rk"}).Append(out)
		if err != nil {
			return err
		}
		out = EndFrame(out, start)
		if out, err = AppendPropertiesHeaderFrame(out, 1, uint64(len(body)), &props); err != nil {
			return err
		}
		out = AppendBodyFrames(out, 1, body, 131072)
		if _, err := p.conn.Write(out); err != nil {
			return err
		}
		var ack BasicAck
		if _, err := p.expect(1, &ack); err != nil {
			return err
		}
		if ack.DeliveryTag != 1<<40 || ack.Multiple {
			return fmt.Errorf("basic.ack %+v", ack)
		}
		return closeBoth(p, 1)
	})

	conn, err := amqp091.Dial("amqp://guest:guest@" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("q", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Name != "amq.gen-q" || q.Messages != 42 || q.Consumers != 3 {
		t.Fatalf("QueueDeclare = %+v", q)
	}
	deliveries, err := ch.Consume(q.Name, "", false, true, false, false, amqp091.Table{"x-priority": int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	var d amqp091.Delivery
	select {
	case d = <-deliveries:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery")
	}
	if !strings.HasPrefix(d.ConsumerTag, "ctag-") || d.DeliveryTag != 1<<40 || !d.Redelivered ||
		d.Exchange != "ex" || d.RoutingKey != "rk" {
		t.Fatalf("delivery method fields %+v", d)
	}
	if d.ContentType != props.ContentType || d.ContentEncoding != props.ContentEncoding ||
		d.DeliveryMode != 2 || d.Priority != 3 || d.CorrelationId != "corr" || d.ReplyTo != props.ReplyTo ||
		d.Expiration != "1500" || d.MessageId != "mid" || !d.Timestamp.Equal(props.Timestamp) ||
		d.Type != "kind" || d.UserId != "guest" || d.AppId != "mqops" {
		t.Fatalf("delivery properties %+v", d)
	}
	// amqp091-go decodes I as int32 and T in the local zone.
	wantHeaders := maps.Clone(sentHeaders)
	wantHeaders["int"] = int32(123456)
	d.Headers["time"] = d.Headers["time"].(time.Time).UTC()
	if !reflect.DeepEqual(d.Headers, wantHeaders) {
		t.Fatalf("delivery headers\n%#v\nwant\n%#v", d.Headers, wantHeaders)
	}
	if !bytes.Equal(d.Body, body) {
		t.Fatalf("body of %d bytes, want %d", len(d.Body), len(body))
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	wait(t, done)
}
