package gateway

import (
	"fmt"
	"sync"
	"testing"

	"github.com/mqops/mqops/broker/amqpengine"
	"github.com/mqops/mqops/wire/amqp"
)

// Under -race: connections consume and cancel while the broker "restarts"
// (forgets every consumer and answers leases with a new epoch) and the
// gateway registers its consumers again. Once the churn is over, one more
// restart and renewal leave the broker knowing exactly the consumers the
// gateway still has: none lost, none left behind by a cancel that crossed
// a re-registration.
func TestConsumersRegisteredAgain(t *testing.T) {
	s, b := startGateway(t)
	b.epoch.Store(1)
	restart := func() {
		if _, err := b.e.CancelOwners(func(amqpengine.Owner) bool { return true }); err != nil {
			t.Error(err)
		}
		b.epoch.Add(1)
		s.renew("/")
	}
	setup := dial(t, s)
	setup.send(1, &amqp.ChannelOpen{})
	setup.want(1, "channel.open-ok")
	setup.send(1, &amqp.QueueDeclare{Queue: "rq"})
	setup.want(1, "queue.declare-ok")
	setup.nc.Close()
	v, _ := b.e.Vhost("/")
	qi, _ := v.Queue("rq")

	const conns, rounds = 4, 30
	var wg sync.WaitGroup
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
				restart()
			}
		}
	}()
	for g := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, s)
			c.send(1, &amqp.ChannelOpen{})
			c.want(1, "channel.open-ok")
			for i := range rounds {
				tag := fmt.Sprintf("c%d-%d", g, i)
				c.send(1, &amqp.BasicConsume{Queue: "rq", ConsumerTag: tag, NoAck: true})
				c.want(1, "basic.consume-ok")
				if i%3 != 0 { // a third of them stay
					c.send(1, &amqp.BasicCancel{ConsumerTag: tag})
					c.want(1, "basic.cancel-ok")
				}
			}
			// The connection stays open: its consumers are live.
			t.Cleanup(func() { c.nc.Close() })
		}()
	}
	wg.Wait()
	close(stop)
	<-stopped
	want := uint32(conns * ((rounds + 2) / 3))
	// A consume answered by the broker before a restart but recorded
	// after that restart's renewal is caught up by the next renewal.
	s.renew("/")
	if n := b.e.ConsumerCount("/", qi.ID); n != want {
		t.Fatalf("the broker knows %d consumers after the churn, the gateway has %d", n, want)
	}
	restart()
	if n := b.e.ConsumerCount("/", qi.ID); n != want {
		t.Fatalf("the broker knows %d consumers after the last restart, the gateway has %d", n, want)
	}
}
