package shovel

import (
	"context"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Where messages go for each combination of the destination settings, and
// the combinations refused before anything connects. Run against real
// servers is in e2e (TestAMQPShovel, TestRabbitMQShovel).
func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want target
		str  string
		err  string
	}{
		{Config{SrcQueue: "q"}, target{key: "q"}, "queue q", ""},
		{Config{SrcQueue: "q", DestQueue: "r"}, target{key: "r"}, "queue r", ""},
		{Config{SrcQueue: "q", DestExchange: "x"}, target{exchange: "x", keepKey: true}, "exchange x (each message's routing key)", ""},
		{Config{SrcQueue: "q", DestExchange: "x", DestKey: "k"}, target{exchange: "x", key: "k"}, "exchange x key k", ""},
		{Config{SrcQueue: "q", DestQueue: "r", DestExchange: "x"}, target{}, "", "exclude each other"},
		{Config{SrcQueue: "q", DestQueue: "r", DestKey: "k"}, target{}, "", "exclude each other"},
		{Config{SrcQueue: "q", DestKey: "k"}, target{}, "", "needs a destination exchange"},
		{Config{SrcQueue: "q", SrcURI: "amqp://a:b@h:5672/v", DestURI: "amqp://c:d@h/v"}, target{}, "", "is the source queue"},
		{Config{SrcQueue: "q", SrcURI: "amqp://h/v", DestURI: "amqp://h/v", DestQueue: "q"}, target{}, "", "is the source queue"},
		{Config{SrcQueue: "q", SrcURI: "amqp://h/v", DestURI: "amqp://h/w"}, target{key: "q"}, "queue q", ""},
		{Config{SrcQueue: "q", SrcURI: "amqp://h/v", DestURI: "amqp://h/v", DestQueue: "r"}, target{key: "r"}, "queue r", ""},
	} {
		got, err := tc.cfg.target()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.err)
			}
			if _, rerr := Run(context.Background(), tc.cfg); rerr == nil || rerr.Error() != err.Error() {
				t.Errorf("%+v: Run returned %v, want the target's error", tc.cfg, rerr)
			}
			continue
		}
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("%+v: %+v %q %v, want %+v %q", tc.cfg, got, got.String(), err, tc.want, tc.str)
		}
	}
}

// Every property passes through; a user-id survives only when it names
// the destination's login.
func TestPublishing(t *testing.T) {
	ts := time.Unix(1_700_000_000, 0)
	d := amqp.Delivery{Headers: amqp.Table{"h": int32(1)}, ContentType: "ct", ContentEncoding: "ce", DeliveryMode: 2,
		Priority: 7, CorrelationId: "c", ReplyTo: "r", Expiration: "60000", MessageId: "m", Timestamp: ts,
		Type: "ty", UserId: "alice", AppId: "app", Body: []byte("body"), RoutingKey: "rk", Redelivered: true}
	p, dropped := publishing(&d, "alice")
	want := amqp.Publishing{Headers: d.Headers, ContentType: "ct", ContentEncoding: "ce", DeliveryMode: 2, Priority: 7,
		CorrelationId: "c", ReplyTo: "r", Expiration: "60000", MessageId: "m", Timestamp: ts, Type: "ty", UserId: "alice",
		AppId: "app", Body: d.Body}
	if dropped || p.UserId != "alice" || p.Expiration != "60000" || string(p.Body) != "body" || p.Headers["h"] != int32(1) ||
		p.ContentType != want.ContentType || p.ContentEncoding != want.ContentEncoding || p.DeliveryMode != 2 ||
		p.Priority != 7 || p.CorrelationId != "c" || p.ReplyTo != "r" || p.MessageId != "m" || !p.Timestamp.Equal(ts) ||
		p.Type != "ty" || p.AppId != "app" {
		t.Fatalf("publishing(alice) = %+v, dropped %v; want %+v", p, dropped, want)
	}
	if p, dropped = publishing(&d, "bob"); !dropped || p.UserId != "" {
		t.Fatalf("publishing(bob): user-id %q, dropped %v", p.UserId, dropped)
	}
	d.UserId = ""
	if p, dropped = publishing(&d, "bob"); dropped || p.UserId != "" {
		t.Fatalf("no user-id: %q, dropped %v", p.UserId, dropped)
	}
}
