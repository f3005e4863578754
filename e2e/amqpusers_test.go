package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/mqops/mqops/wire"
)

// AMQP users against real daemons: a user added with mqadmin logs in through the gateway (from anywhere: only guest is a
// loopback user), a wrong password is 403, a vhost without permissions is
// 530, and each permission (configure to declare, write to publish and
// bind, read to consume and bind) is RabbitMQ's 403 on the channel with
// its text; a deleted guest no longer logs in.
func TestAMQPUsersAndPermissions(t *testing.T) {
	c, gw := amqpStack(t)
	ns := c.ns.addr
	cli(t, ns, "amqp", "user", "add", "app", "--password", "app-pass", "--tags", "monitoring")
	// RabbitMQ's documented hash of "test12" (passwords.md), imported.
	cli(t, ns, "amqp", "user", "add", "nobody", "--password-hash", "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR")
	cli(t, ns, "amqp", "user", "set-permissions", "app", "--vhost", "/",
		"--configure", "^app\\.", "--write", "^app\\.|^amq\\.default$", "--read", "^app\\.")
	if msg := cliFail(t, ns, "amqp", "user", "set-permissions", "app", "--configure", "("); !strings.Contains(msg,
		`PRECONDITION_FAILED - configure permission "(" is not a regular expression`) {
		t.Fatalf("bad expression: %s", msg)
	}
	if msg := cliFail(t, ns, "amqp", "user", "add", "x"); !strings.Contains(msg, "a new user needs") {
		t.Fatalf("user without a password: %s", msg)
	}

	_, err := rmq.Dial(amqpURL(gw, "app:wrong", ""))
	wantAMQPError(t, "wrong password", err, 403, "")
	_, err = rmq.Dial(amqpURL(gw, "nobody:test12", ""))
	wantAMQPError(t, "no permissions in /", err, 530, "NOT_ALLOWED - access to vhost '/' refused for user 'nobody'")

	conn, err := rmq.Dial(amqpURL(gw, "app:app-pass", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	channel := func() *rmq.Channel {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	ch := channel()
	if _, err := ch.QueueDeclare("app.jobs", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("app.events", "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("app.jobs", "", "app.events", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", "app.jobs", false, false, rmq.Publishing{Body: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, "app.jobs", mustConsume(t, ch, "app.jobs", true)); string(d.Body) != "hi" {
		t.Fatalf("got %q", d.Body)
	}
	refused := []struct {
		what string
		do   func(*rmq.Channel) error
		text string
	}{
		{"declare a queue outside ^app\\.", func(ch *rmq.Channel) error {
			_, err := ch.QueueDeclare("other", false, false, false, false, nil)
			return err
		}, "ACCESS_REFUSED - access to queue 'other' in vhost '/' refused for user 'app'"},
		{"server-named queue", func(ch *rmq.Channel) error {
			_, err := ch.QueueDeclare("", false, false, true, false, nil)
			return err
		}, "ACCESS_REFUSED - access to queue 'amq.gen-0000000000000000000000' in vhost '/' refused for user 'app'"},
		{"bind from amq.fanout (no read)", func(ch *rmq.Channel) error {
			return ch.QueueBind("app.jobs", "", "amq.fanout", false, nil)
		}, "ACCESS_REFUSED - access to exchange 'amq.fanout' in vhost '/' refused for user 'app'"},
		{"publish to amq.topic (no write)", func(ch *rmq.Channel) error {
			closed := ch.NotifyClose(make(chan *rmq.Error, 1))
			if err := ch.Publish("amq.topic", "k", false, false, rmq.Publishing{}); err != nil {
				return err
			}
			_, err := ch.QueueDeclarePassive("app.jobs", false, false, false, false, nil)
			// The refusal closes the channel: the declare gets the 403, or,
			// when the close was read first, amqp091-go's own 504 (seen in
			// CI) and the 403 on NotifyClose.
			var e *rmq.Error
			if errors.As(err, &e) && e.Code == rmq.ChannelError {
				select {
				case ce := <-closed:
					if ce != nil {
						return ce
					}
				case <-time.After(15 * time.Second):
				}
			}
			return err
		}, "ACCESS_REFUSED - access to exchange 'amq.topic' in vhost '/' refused for user 'app'"},
	}
	for _, r := range refused {
		wantAMQPError(t, r.what, r.do(channel()), 403, r.text)
	}

	// guest is refused once deleted (the gateway asks the broker at every
	// login).
	g, err := rmq.Dial(amqpURL(gw, "guest:guest", ""))
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	cli(t, ns, "amqp", "user", "delete", "guest")
	_, err = rmq.Dial(amqpURL(gw, "guest:guest", ""))
	wantAMQPError(t, "deleted guest", err, 403, "")
	var us []wire.AMQPUserAccess
	cliJSON(t, ns, &us, "amqp", "user", "list")
	if len(us) != 2 || us[0].User != "app" || us[0].Tags[0] != "monitoring" || us[0].Permissions["/"].Write != "^app\\.|^amq\\.default$" ||
		us[1].User != "nobody" || len(us[1].Permissions) != 0 {
		t.Fatalf("users: %+v", us)
	}
	// Without permissions in / the user is refused again.
	cli(t, ns, "amqp", "user", "clear-permissions", "app", "--vhost", "/")
	_, err = rmq.Dial(amqpURL(gw, "app:app-pass", ""))
	wantAMQPError(t, "cleared permissions", err, 530, "NOT_ALLOWED - access to vhost '/' refused for user 'app'")
}
