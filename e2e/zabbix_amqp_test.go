package e2e

import (
	"fmt"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

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

// TestZabbixAMQPGateway: a real zabbix_agentd answers the "mqops AMQP
// gateway" key about an mqamqp serving its stats (statsListenAddr):
// connections and channels open, consumers, and the message counters
// match what amqp091-go applications did; a refused login counts; a
// gateway that is not there reads up 0 with the reason.
func TestZabbixAMQPGateway(t *testing.T) {
	agentd := agentBinary(t, "zabbix_agentd")
	c := startCluster(t, amqpLMQ...)
	stats := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	gw := startAMQP(t, c, "statsListenAddr="+stats)
	conn, ch := dialAMQP(t, gw)
	if _, err := conn.Channel(); err != nil { // a second channel
		t.Fatal(err)
	}
	const q = "zbxgw.q"
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	confirmed(t, ch, "", keysN(q, 5), func(i int) string { return "g" })
	_, cch := dialAMQP(t, gw)
	ds := mustConsume(t, cch, q, false)
	for i := range 5 {
		d := recv(t, "delivery", ds)
		var err error
		switch i {
		case 0:
			err = d.Nack(false, false) // rejected: dropped, no dead-letter exchange
		default:
			err = d.Ack(false)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rmq.Dial(amqpURL(gw, "guest:wrong", "")); err == nil {
		t.Fatal("a wrong password logged in")
	}

	a := startAgent(t, agentd)
	key := `mqops.amqpgw.get["` + stats + `"]`
	var st probe.AMQPGatewayStatus
	waitFor(t, 15*time.Second, "5 delivered, 4 acked, 1 rejected", func() bool {
		st = probe.AMQPGatewayStatus{}
		a.get(t, key, &st)
		return st.Delivered == 5 && st.Acked == 4 && st.Rejected == 1
	})
	if st.Up != 1 || st.Addr != stats || st.Connections != 2 || st.Channels != 3 || st.Consumers != 1 ||
		st.Published != 5 || st.PublishFailed != 0 || st.LoginsRefused != 1 || st.ConnectionsAccepted != 3 ||
		st.BlockedPublishers != 0 || st.MemoryAlarm != 0 || st.StartTime == 0 {
		t.Fatalf("gateway status %+v", st)
	}

	var down probe.AMQPGatewayStatus
	a.get(t, `mqops.amqpgw.get["`+closedAddr(t)+`"]`, &down)
	if down.Up != 0 || down.Error == "" {
		t.Fatalf("a gateway that is not there: %+v", down)
	}
}
