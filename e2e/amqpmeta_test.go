package e2e

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"

	"github.com/mqops/mqops/wire"
)

// amqpCall sends one AMQP engine request over TCP and decodes a
// successful answer's body into out (when not nil).
func amqpCall(t *testing.T, addr string, code int32, body, out any) *wire.Command {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp := invoke(t, addr, code, nil, b)
	if out != nil && resp.Code == wire.Success {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			t.Fatalf("answer to %d: %v: %s", code, err, resp.Body)
		}
	}
	return resp
}

func amqpOK(t *testing.T, addr string, code int32, body, out any) {
	t.Helper()
	if resp := amqpCall(t, addr, code, body, out); resp.Code != wire.Success {
		t.Fatalf("request %d %+v: code %d %s", code, body, resp.Code, resp.Remark)
	}
}

func amqpRefused(t *testing.T, addr string, code int32, body any, replyCode, text string) {
	t.Helper()
	resp := amqpCall(t, addr, code, body, nil)
	if resp.Code != wire.AMQPException || resp.GetString(wire.AMQPReplyCodeField) != replyCode || string(resp.Remark) != text {
		t.Fatalf("request %d %+v: want AMQP %s %q,\n got code %d reply %s %q", code, body, replyCode, text, resp.Code, resp.GetString(wire.AMQPReplyCodeField), resp.Remark)
	}
}

// The AMQP metadata requests against a real broker: declares, binds and
// RabbitMQ's refusals over remoting; after kill -9 and a restart the
// durable entities are back with their argument types, transient and
// exclusive ones are gone.
func TestAMQPMetadataOverRemoting(t *testing.T) {
	c := startCluster(t)
	addr := c.broker.addr
	gw1, gw2 := wire.AMQPOwner{Gateway: "gw-a", Conn: 1}, wire.AMQPOwner{Gateway: "gw-a", Conn: 2}

	amqpOK(t, addr, wire.AMQPDeclareExchange, wire.AMQPExchangeDeclare{Vhost: "/", Exchange: "logs_topic", Type: "topic", Durable: true,
		Arguments: wire.AMQPTable{"alternate-exchange": "unrouted"}}, nil)
	amqpOK(t, addr, wire.AMQPDeclareExchange, wire.AMQPExchangeDeclare{Vhost: "/", Exchange: "unrouted", Type: "fanout", Durable: true}, nil)
	amqpOK(t, addr, wire.AMQPDeclareExchange, wire.AMQPExchangeDeclare{Vhost: "/", Exchange: "scratch", Type: "direct"}, nil)
	taskArgs := wire.AMQPTable{"x-queue-type": "quorum", "x-max-length": int32(1000), "x-message-ttl": int64(60000), "x-tag": []byte{1, 2}}
	var task wire.AMQPQueueDeclareOk
	amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "task_queue", Durable: true, Arguments: taskArgs}, &task)
	if task.Queue != "task_queue" || task.ID == 0 {
		t.Fatalf("declare-ok %+v", task)
	}
	var tmp wire.AMQPQueueDeclareOk
	amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Exclusive: true, Durable: true, Owner: gw1}, &tmp)
	if !regexp.MustCompile(`^amq\.gen-[A-Za-z0-9_-]{22}$`).MatchString(tmp.Queue) {
		t.Fatalf("server-named queue %q", tmp.Queue)
	}
	amqpOK(t, addr, wire.AMQPBind, wire.AMQPBinding{Vhost: "/", Source: "logs_topic", Destination: "task_queue", RoutingKey: "kern.*"}, nil)
	amqpOK(t, addr, wire.AMQPBind, wire.AMQPBinding{Vhost: "/", Source: "amq.fanout", Destination: tmp.Queue, Owner: gw1}, nil)
	amqpOK(t, addr, wire.AMQPBind, wire.AMQPBinding{Vhost: "/", Source: "logs_topic", Destination: "unrouted", ToExchange: true, RoutingKey: "#"}, nil)
	amqpOK(t, addr, wire.AMQPUnbind, wire.AMQPBinding{Vhost: "/", Source: "logs_topic", Destination: "unrouted", ToExchange: true, RoutingKey: "#"}, nil)

	// Redeclare with equal arguments (another integer type, same value) is
	// fine; with other flags RabbitMQ's 406.
	same := wire.AMQPTable{"x-queue-type": "quorum", "x-max-length": int64(1000), "x-message-ttl": int32(60000)}
	amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "task_queue", Durable: true, Arguments: same}, nil)
	amqpRefused(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "task_queue", Arguments: same}, "406",
		"PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'task_queue' in vhost '/': received 'false' but current is 'true'")
	amqpRefused(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: tmp.Queue, Passive: true, Owner: gw2}, "405",
		"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '"+tmp.Queue+"' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.")
	amqpRefused(t, addr, wire.AMQPBind, wire.AMQPBinding{Vhost: "/", Source: "nope", Destination: "task_queue"}, "404",
		"NOT_FOUND - no exchange 'nope' in vhost '/'")
	amqpRefused(t, addr, wire.AMQPDeclareExchange, wire.AMQPExchangeDeclare{Vhost: "/", Exchange: "x", Type: "bogus"}, "503",
		"COMMAND_INVALID - unknown exchange type 'bogus'")
	amqpRefused(t, addr, wire.AMQPDeleteExchange, wire.AMQPExchangeDelete{Vhost: "/", Exchange: "amq.topic"}, "403",
		"ACCESS_REFUSED - deletion of system exchange 'amq.topic' in vhost '/' not allowed")
	amqpRefused(t, addr, wire.AMQPDeleteExchange, wire.AMQPExchangeDelete{Vhost: "/", Exchange: "logs_topic", IfUnused: true}, "406",
		"PRECONDITION_FAILED - exchange 'logs_topic' in vhost '/' in use")
	amqpRefused(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "nope", Queue: "q"}, "530",
		"NOT_ALLOWED - vhost nope not found")
	if resp := invoke(t, addr, wire.AMQPDeclareQueue, nil, []byte("{bad")); resp.Code != wire.SystemError {
		t.Fatalf("bad body: code %d %s", resp.Code, resp.Remark)
	}
	var gone wire.AMQPQueueDeleteOk
	amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "to-delete", Durable: true}, nil)
	amqpOK(t, addr, wire.AMQPDeleteQueue, wire.AMQPQueueDelete{Vhost: "/", Queue: "to-delete"}, &gone)

	var vhosts, before wire.AMQPListing
	amqpOK(t, addr, wire.AMQPList, wire.AMQPListRequest{}, &vhosts)
	if !reflect.DeepEqual(vhosts.Vhosts, []string{"/"}) {
		t.Fatalf("vhosts %v", vhosts.Vhosts)
	}
	amqpOK(t, addr, wire.AMQPList, wire.AMQPListRequest{Vhost: "/"}, &before)
	if len(before.Queues) != 2 || len(before.Bindings) != 2 || len(before.Exchanges) != 9 {
		t.Fatalf("listing before the restart: %+v", before)
	}

	c.broker.kill()
	c.broker = restartBroker(t, c)
	addr = c.broker.addr
	var after wire.AMQPListing
	amqpOK(t, addr, wire.AMQPList, wire.AMQPListRequest{Vhost: "/"}, &after)
	if after.Version != before.Version {
		t.Fatalf("version %d after the restart, %d before", after.Version, before.Version)
	}
	if len(after.Queues) != 1 || after.Queues[0].Name != "task_queue" || after.Queues[0].ID != task.ID {
		t.Fatalf("queues after kill -9: %+v", after.Queues)
	}
	if got := after.Queues[0].Arguments; !reflect.DeepEqual(got, taskArgs) {
		t.Fatalf("arguments came back as %#v, declared %#v", got, taskArgs)
	}
	if len(after.Bindings) != 1 || !reflect.DeepEqual(after.Bindings[0], wire.AMQPBindingInfo{Source: "logs_topic", Destination: "task_queue", RoutingKey: "kern.*"}) {
		t.Fatalf("bindings after kill -9: %+v", after.Bindings)
	}
	names := map[string]bool{}
	for _, x := range after.Exchanges {
		names[x.Name] = true
	}
	if !names["logs_topic"] || !names["unrouted"] || names["scratch"] || len(after.Exchanges) != 8 {
		t.Fatalf("exchanges after kill -9: %+v", after.Exchanges)
	}
	// The restarted broker compares the persisted arguments exactly.
	var again wire.AMQPQueueDeclareOk
	amqpOK(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "task_queue", Durable: true, Arguments: same}, &again)
	if again.ID != task.ID {
		t.Fatalf("id %d after the restart, %d before", again.ID, task.ID)
	}
	amqpRefused(t, addr, wire.AMQPDeclareQueue, wire.AMQPQueueDeclare{Vhost: "/", Queue: "task_queue", Durable: true,
		Arguments: wire.AMQPTable{"x-queue-type": "quorum", "x-max-length": int32(999), "x-message-ttl": int32(60000)}}, "406",
		"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'task_queue' in vhost '/': received '999' but current is '1000'")
}
