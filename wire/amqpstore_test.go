package wire

import "testing"

func TestAMQPStoreTopic(t *testing.T) {
	for vhost, want := range map[string]string{
		"/":       "AMQP_STORE",
		"orders":  "orders%AMQP_STORE",
		"a-b_C9":  "a-b_C9%AMQP_STORE",
		"/orders": "_orders_" + "",
	} {
		got := AMQPStoreTopic(vhost)
		if vhost == "/orders" {
			// Altered names carry a hash so "/orders" and "_orders" differ.
			if len(got) != len("_orders_abcdef%AMQP_STORE") || got[:8] != "_orders_" || got == AMQPStoreTopic("_orders") {
				t.Fatalf("%q -> %q", vhost, got)
			}
			continue
		}
		if got != want {
			t.Fatalf("%q -> %q, want %q", vhost, got, want)
		}
	}
	if got := AMQPStoreTopic("_orders"); got != "_orders%AMQP_STORE" {
		t.Fatalf("_orders -> %q", got)
	}
}
