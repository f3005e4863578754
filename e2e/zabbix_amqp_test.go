package e2e

import (
	"testing"
	"time"

	"github.com/mqops/mqops/zabbix/probe"
)

// TestZabbixAMQP: a real zabbix_agentd answers the "mqops AMQP" keys
// about a broker an amqp091-go application uses: discovery finds its
// queues, and the per-queue figures the template reads (ready, unacked,
// consumers, paused, counters) match what the application did.
func TestZabbixAMQP(t *testing.T) {
	agentd := agentBinary(t, "zabbix_agentd")
	c, gw := amqpStack(t)
	ns, broker := c.ns.addr, c.broker.addr
	_, ch := dialAMQP(t, gw)
	const q = "zbx.q"
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	confirmed(t, ch, "", keysN(q, 7), func(i int) string { return "z" })
	_, cch := dialAMQP(t, gw)
	if err := cch.Qos(3, 0, false); err != nil {
		t.Fatal(err)
	}
	ds := mustConsume(t, cch, q, false)
	for range 3 {
		recv(t, "prefetched", ds) // held unacked
	}

	a := startAgent(t, agentd)
	var rows []map[string]string
	a.get(t, `mqops.amqp.queue.discovery["`+broker+`"]`, &rows)
	if len(rows) != 1 || rows[0]["{#VHOST}"] != "/" || rows[0]["{#QUEUE}"] != q || rows[0]["{#AMQP.GROUP}"] == "" {
		t.Fatalf("discovery %v", rows)
	}
	key := `mqops.amqp.get["` + broker + `"]`
	var st probe.AMQPStatus
	waitFor(t, 15*time.Second, "3 unacked, 1 consumer", func() bool {
		st = probe.AMQPStatus{}
		a.get(t, key, &st)
		qs := st.Queues["/"][q]
		return qs.Unacked == 3 && qs.Consumers == 1
	})
	qs := st.Queues["/"][q]
	if st.Up != 1 || st.Vhosts != 1 || st.QueueCount != 1 || qs.Ready != 4 || qs.Published != 7 || qs.Delivered != 3 ||
		qs.Acked != 0 || qs.Paused != 0 || st.Ready != 4 || st.Unacked != 3 {
		t.Fatalf("amqp status %+v", st)
	}

	// Closing the channel releases its 3 unacked messages: they come back
	// redelivered to the next consumer, which acks everything.
	if err := cch.Close(); err != nil {
		t.Fatal(err)
	}
	_, cch2 := dialAMQP(t, gw)
	ds2 := mustConsume(t, cch2, q, false)
	for range 7 {
		if err := recv(t, "after release", ds2).Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 15*time.Second, "7 acked", func() bool {
		st = probe.AMQPStatus{}
		a.get(t, key, &st)
		return st.Queues["/"][q].Acked == 7
	})
	if qs := st.Queues["/"][q]; qs.Delivered != 10 || qs.Redelivered != 3 || qs.Ready != 0 || qs.Unacked != 0 {
		t.Fatalf("after release and acks: %+v", qs)
	}

	cli(t, ns, "amqp", "queue", "pause", q)
	st = probe.AMQPStatus{}
	a.get(t, key, &st)
	if st.Queues["/"][q].Paused != 1 || st.PausedQueues != 1 {
		t.Fatalf("after pause: %+v", st)
	}

	var down probe.AMQPStatus
	a.get(t, `mqops.amqp.get["`+closedAddr(t)+`"]`, &down)
	if down.Up != 0 || down.Error == "" {
		t.Fatalf("a broker that is not there: %+v", down)
	}
}
