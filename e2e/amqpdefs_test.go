package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// defsUser is the RabbitMQ user the definitions tests carry over, with
// its password.
const defsUser, defsPass, defsVhost = "defs-user", "defs-pass", "defs-vh"

// defsTopology declares on a real RabbitMQ, through rabbitmqctl and
// amqp091-go, what TestRabbitMQDefinitions moves: a vhost, a user with a
// password, tags and permissions, two exchanges bound to each other, two
// queues (one with integer arguments) and a policy mqops has no
// counterpart for.
func defsTopology(t *testing.T, r *rabbitNode) {
	r.ctl(t, "add_vhost", defsVhost)
	r.ctl(t, "add_user", defsUser, defsPass)
	r.ctl(t, "set_user_tags", defsUser, "monitoring")
	r.ctl(t, "set_permissions", "-p", defsVhost, defsUser, ".*", ".*", ".*")
	r.ctl(t, "set_permissions", "-p", defsVhost, "guest", ".*", ".*", ".*")
	r.ctl(t, "set_policy", "-p", defsVhost, "--apply-to", "queues", "short-ttl", "^defs\\.dlq$", `{"message-ttl":3600000}`)
	_, ch := dialURL(t, r.URL(defsVhost))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ch.ExchangeDeclare("defs.topic", "topic", true, false, false, false, nil))
	must(ch.ExchangeDeclare("defs.fan", "fanout", true, false, false, false, nil))
	_, err := ch.QueueDeclare("defs.q", true, false, false, false, rmq.Table{"x-message-ttl": int64(60000), "x-max-length": int64(1000)})
	must(err)
	_, err = ch.QueueDeclare("defs.dlq", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind("defs.q", "a.*", "defs.topic", false, nil))
	must(ch.ExchangeBind("defs.fan", "e.#", "defs.topic", false, nil))
	must(ch.QueueBind("defs.dlq", "", "defs.fan", false, nil))
}

// defsRoutes checks, as defs-user with its password, that the topology
// routes: "a.b" to defs.q, "e.x" through defs.fan to defs.dlq, and that
// defs.q kept its integer arguments (a passive-equivalent declare).
func defsRoutes(t *testing.T, url string) {
	t.Helper()
	conn, err := rmq.Dial(url)
	if err != nil {
		t.Fatalf("log in as %s: %v", defsUser, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("defs.q", true, false, false, false, rmq.Table{"x-message-ttl": int64(60000), "x-max-length": int64(1000)}); err != nil {
		t.Fatalf("defs.q with its arguments: %v", err)
	}
	keys := []string{"a.b", "e.x"}
	confirmed(t, ch, "defs.topic", keys, func(i int) string { return keys[i] })
	for q, want := range map[string]string{"defs.q": "a.b", "defs.dlq": "e.x"} {
		var d rmq.Delivery
		waitFor(t, 15*time.Second, "a message in "+q, func() bool {
			var ok bool
			d, ok, err = ch.Get(q, true)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		})
		if string(d.Body) != want {
			t.Fatalf("%s: got %q, want %q", q, d.Body, want)
		}
	}
}

// defsFile is what the test reads of a definitions file.
type defsFile struct {
	Users []struct {
		Name         string `json:"name"`
		PasswordHash string `json:"password_hash"`
	} `json:"users"`
}

func (d *defsFile) hash(user string) string {
	for _, u := range d.Users {
		if u.Name == user {
			return u.PasswordHash
		}
	}
	return ""
}

// A RabbitMQ broker's definitions (rabbitmqctl export_definitions) come
// over to mqops with mqadmin amqp definitions import: the user logs in
// through mqamqp with the password it had on RabbitMQ, and the exchanges,
// queues and bindings route as they did there; the policy is reported as
// not imported. Back the other way, mqadmin's export goes into RabbitMQ
// with rabbitmqctl import_definitions and routes there the same.
func TestRabbitMQDefinitions(t *testing.T) {
	r := startRabbitMQ(t)
	defsTopology(t, r)
	dir := t.TempDir()
	fromRabbit := filepath.Join(dir, "rabbit.json")
	r.ctl(t, "export_definitions", fromRabbit)

	c, gw := amqpStack(t)
	ns := c.ns.addr
	dry := cli(t, ns, "amqp", "definitions", "import", fromRabbit, "--dry-run")
	if !strings.Contains(dry, "to import (dry run)") {
		t.Fatalf("dry run:\n%s", dry)
	}
	if out := runCLI(t, nil, "amqp", "user", "list", "-n", ns); strings.Contains(out.stdout, defsUser) {
		t.Fatalf("the dry run added the user:\n%s", out.stdout)
	}
	out := cli(t, ns, "amqp", "definitions", "import", fromRabbit)
	if !strings.Contains(out, "not imported: 1 policies") {
		t.Fatalf("import does not report the policy:\n%s", out)
	}
	// Again: nothing changes, nothing fails.
	cli(t, ns, "amqp", "definitions", "import", fromRabbit)
	defsRoutes(t, amqpURL(gw, defsUser+":"+defsPass, defsVhost))
	if _, err := rmq.Dial(amqpURL(gw, defsUser+":wrong", defsVhost)); err == nil {
		t.Fatal("a wrong password logged in after the import")
	}

	// mqops → RabbitMQ: the vhost goes from RabbitMQ first, so that only
	// the import can bring it back.
	fromMQOps := filepath.Join(dir, "mqops.json")
	cli(t, ns, "amqp", "definitions", "export", "-f", fromMQOps)
	if fi, err := os.Stat(fromMQOps); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi, err)
	}
	var rd, md defsFile
	for f, v := range map[string]*defsFile{fromRabbit: &rd, fromMQOps: &md} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if h := md.hash(defsUser); h == "" || h != rd.hash(defsUser) {
		t.Fatalf("exported hash of %s %q, RabbitMQ's %q", defsUser, h, rd.hash(defsUser))
	}
	r.ctl(t, "delete_vhost", defsVhost)
	r.ctl(t, "import_definitions", fromMQOps)
	defsRoutes(t, "amqp://"+defsUser+":"+defsPass+"@"+r.addr+"/"+defsVhost)
}
