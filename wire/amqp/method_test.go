package amqp

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// specMethods is the method table of spec section 1.6 plus the connection
// class: every method a RabbitMQ client or server can send.
var specMethods = map[string][2]uint16{
	"connection.start": {10, 10}, "connection.start-ok": {10, 11}, "connection.secure": {10, 20},
	"connection.secure-ok": {10, 21}, "connection.tune": {10, 30}, "connection.tune-ok": {10, 31},
	"connection.open": {10, 40}, "connection.open-ok": {10, 41}, "connection.close": {10, 50},
	"connection.close-ok": {10, 51}, "connection.blocked": {10, 60}, "connection.unblocked": {10, 61},
	"connection.update-secret": {10, 70}, "connection.update-secret-ok": {10, 71},
	"channel.open": {20, 10}, "channel.open-ok": {20, 11}, "channel.flow": {20, 20}, "channel.flow-ok": {20, 21},
	"channel.close": {20, 40}, "channel.close-ok": {20, 41},
	"exchange.declare": {40, 10}, "exchange.declare-ok": {40, 11}, "exchange.delete": {40, 20},
	"exchange.delete-ok": {40, 21}, "exchange.bind": {40, 30}, "exchange.bind-ok": {40, 31},
	"exchange.unbind": {40, 40}, "exchange.unbind-ok": {40, 51},
	"queue.declare": {50, 10}, "queue.declare-ok": {50, 11}, "queue.bind": {50, 20}, "queue.bind-ok": {50, 21},
	"queue.purge": {50, 30}, "queue.purge-ok": {50, 31}, "queue.delete": {50, 40}, "queue.delete-ok": {50, 41},
	"queue.unbind": {50, 50}, "queue.unbind-ok": {50, 51},
	"basic.qos": {60, 10}, "basic.qos-ok": {60, 11}, "basic.consume": {60, 20}, "basic.consume-ok": {60, 21},
	"basic.cancel": {60, 30}, "basic.cancel-ok": {60, 31}, "basic.publish": {60, 40}, "basic.return": {60, 50},
	"basic.deliver": {60, 60}, "basic.get": {60, 70}, "basic.get-ok": {60, 71}, "basic.get-empty": {60, 72},
	"basic.ack": {60, 80}, "basic.reject": {60, 90}, "basic.recover-async": {60, 100}, "basic.recover": {60, 110},
	"basic.recover-ok": {60, 111}, "basic.nack": {60, 120},
	"confirm.select": {85, 10}, "confirm.select-ok": {85, 11},
	"tx.select": {90, 10}, "tx.select-ok": {90, 11}, "tx.commit": {90, 20}, "tx.commit-ok": {90, 21},
	"tx.rollback": {90, 30}, "tx.rollback-ok": {90, 31},
}

var contentMethods = []string{"basic.publish", "basic.return", "basic.deliver", "basic.get-ok"}

// allMethods returns a zero struct of every method the codec knows.
func allMethods() []Method {
	var ms []Method
	for c := range uint16(100) {
		for m := range uint16(130) {
			if meth := newMethod(c, m); meth != nil {
				ms = append(ms, meth)
			}
		}
	}
	return ms
}

func TestMethodTableComplete(t *testing.T) {
	ms := allMethods()
	if len(ms) != len(specMethods) {
		t.Errorf("codec knows %d methods, spec lists %d", len(ms), len(specMethods))
	}
	for _, m := range ms {
		c, id := m.IDs()
		if want, ok := specMethods[m.Name()]; !ok || want != [2]uint16{c, id} {
			t.Errorf("%s has ids (%d,%d), spec %v", m.Name(), c, id, want)
		}
		if m.HasContent() != slices.Contains(contentMethods, m.Name()) {
			t.Errorf("%s HasContent = %v", m.Name(), m.HasContent())
		}
	}
	if _, err := NewMethod(60, 200); !isCode(err, CommandInvalid) {
		t.Errorf("NewMethod(60,200) error %v, want 503", err)
	}
}

func isCode(err error, code uint16) bool {
	e, ok := AsError(err)
	return ok && e.Code == code
}

// fill sets every field of the method struct m to a value derived from
// seed, so that two fills with different seeds differ in every field.
func fill(m Method, seed int) {
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		n := seed*31 + i + 1
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + string(rune('a'+n%26)))
		case reflect.Bool:
			f.SetBool(seed%2 == 1)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(n) * 0x0101010101010101 >> (64 - f.Type().Bits()))
		case reflect.Map:
			f.Set(reflect.ValueOf(Table{"k": int32(n), "nested": map[string]any{"s": "v"}}))
		default:
			panic("unhandled field kind " + f.Kind().String())
		}
	}
}

// TestMethodRoundTrip writes and reads back every method, with fields set
// to two different fillings and to zero values.
func TestMethodRoundTrip(t *testing.T) {
	for _, m := range allMethods() {
		for seed := range 3 {
			if seed < 2 {
				fill(m, seed)
			} else {
				reflect.ValueOf(m).Elem().SetZero()
			}
			frame, err := AppendMethodFrame(nil, 7, m)
			if err != nil {
				t.Fatalf("%s: %v", m.Name(), err)
			}
			got, err := ReadMethod(frame[7 : len(frame)-1])
			if err != nil {
				t.Fatalf("%s: %v", m.Name(), err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("%s round trip:\n got %+v\nwant %+v", m.Name(), got, m)
			}
			// Every strict prefix of the arguments is a syntax error, and so
			// is a trailing byte.
			args := frame[11 : len(frame)-1]
			for n := range len(args) {
				if err := got.Read(args[:n]); !isCode(err, SyntaxError) {
					t.Fatalf("%s truncated to %d bytes: error %v, want 502", m.Name(), n, err)
				}
			}
			if err := got.Read(append(args[:len(args):len(args)], 0)); !isCode(err, SyntaxError) {
				t.Fatalf("%s with a trailing byte: error %v, want 502", m.Name(), err)
			}
		}
	}
}

// TestMethodBitsEachAlone sets each bit field alone, so a bit written to or
// read from the wrong position shows up.
func TestMethodBitsEachAlone(t *testing.T) {
	for _, m := range allMethods() {
		v := reflect.ValueOf(m).Elem()
		for i := range v.NumField() {
			if v.Field(i).Kind() != reflect.Bool {
				continue
			}
			v.SetZero()
			v.Field(i).SetBool(true)
			b, err := m.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadMethod(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("%s with only %s set: got %+v", m.Name(), v.Type().Field(i).Name, got)
			}
		}
	}
}

// TestQueueDeclareBits checks the bit packing against spec section 1.1:
// passive 0x01, durable 0x02, exclusive 0x04, auto-delete 0x08, no-wait 0x10.
func TestQueueDeclareBits(t *testing.T) {
	for _, c := range []struct {
		m   QueueDeclare
		bit byte
	}{
		{QueueDeclare{Passive: true}, 0x01}, {QueueDeclare{Durable: true}, 0x02}, {QueueDeclare{Exclusive: true}, 0x04},
		{QueueDeclare{AutoDelete: true}, 0x08}, {QueueDeclare{NoWait: true}, 0x10},
	} {
		b, err := c.m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		// ids 4, reserved short 2, empty queue name 1, bits 1, table 4.
		if want := []byte{0, 50, 0, 10, 0, 0, 0, c.bit, 0, 0, 0, 0}; !slices.Equal(b, want) {
			t.Errorf("%+v: % x, want % x", c.m, b, want)
		}
	}
}

func TestMethodErrors(t *testing.T) {
	if _, err := ReadMethod([]byte{0, 60}); !isCode(err, SyntaxError) {
		t.Errorf("2-byte method payload: %v, want 502", err)
	}
	if _, err := ReadMethod([]byte{0, 61, 0, 10}); !isCode(err, CommandInvalid) {
		t.Errorf("unknown class: %v, want 503", err)
	}
	long := string(make([]byte, 256))
	_, err := (&BasicPublish{RoutingKey: long}).Append([]byte{1, 2})
	if err == nil {
		t.Fatal("routing key of 256 bytes encoded")
	}
	if b, err := AppendMethodFrame([]byte{9}, 1, &BasicPublish{Exchange: long}); err == nil || !slices.Equal(b, []byte{9}) {
		t.Errorf("AppendMethodFrame with a bad method: % x, %v; want the buffer unchanged and an error", b, err)
	}
	_, err = (&QueueDeclare{Arguments: Table{"x": struct{}{}}}).Append(nil)
	if err == nil {
		t.Fatal("unsupported table value encoded")
	}
	e := new(Error)
	if _, err := ReadMethod([]byte{0, 50, 0, 10, 0}); !errors.As(err, &e) || e.ClassID != 50 || e.MethodID != 10 || !e.Hard {
		t.Errorf("truncated queue.declare: %#v", e)
	}
}

// TestReadReusesStrings: decoding the same names into a reused struct does
// not allocate (the publish hot path).
func TestReadReusesStrings(t *testing.T) {
	b, err := (&BasicPublish{Exchange: "amq.topic", RoutingKey: "kern.critical", Mandatory: true}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	var m BasicPublish
	if err := m.Read(b[4:]); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := m.Read(b[4:]); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("BasicPublish.Read allocates %v times", n)
	}
	if m.Exchange != "amq.topic" || m.RoutingKey != "kern.critical" || !m.Mandatory {
		t.Errorf("%+v", m)
	}
}

func TestErrorText(t *testing.T) {
	e := Errorf(NotFound, "no queue '%s' in vhost '%s'", "q", "/")
	if e.Text != "NOT_FOUND - no queue 'q' in vhost '/'" || e.Hard {
		t.Errorf("%+v", e)
	}
	for code, hard := range map[uint16]bool{311: false, 312: false, 313: false, 403: false, 404: false, 405: false,
		406: false, 320: true, 402: true, 501: true, 502: true, 503: true, 504: true, 505: true, 506: true,
		530: true, 540: true, 541: true} {
		if IsHard(code) != hard {
			t.Errorf("IsHard(%d) = %v", code, !hard)
		}
	}
	if ReplyName(UnexpectedFrame) != "UNEXPECTED_FRAME" {
		t.Error(ReplyName(UnexpectedFrame))
	}
}

// A reply text longer than a short string is cut as RabbitMQ cuts it and
// then encodes.
func TestReplyText(t *testing.T) {
	short := strings.Repeat("x", 255)
	if ReplyText(short) != short {
		t.Fatal("a 255-byte text changed")
	}
	long := strings.Repeat("y", 252) + "zzzz"
	got := ReplyText(long)
	if got != strings.Repeat("y", 252)+"..." {
		t.Fatalf("ReplyText of 256 bytes: %q", got)
	}
	if _, err := AppendMethodFrame(nil, 1, &ChannelClose{ReplyCode: 406, ReplyText: got}); err != nil {
		t.Fatal(err)
	}
}
