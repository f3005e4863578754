package probe

import (
	"fmt"

	"github.com/mqops/mqops/wire"
)

// AMQPStatus is the AMQP engine of one broker (the vhosts whose home it
// is), from AMQP_LIST: totals and, per vhost and queue, the figures the
// "mqops AMQP" template reads with $.queues['<vhost>']['<queue>'].
type AMQPStatus struct {
	Up     int    `json:"up"` // 1: the broker answered AMQP_LIST
	Error  string `json:"error,omitempty"`
	Addr   string `json:"addr"`
	Vhosts int    `json:"vhosts"`
	// Totals over every queue of every vhost.
	QueueCount   int   `json:"queueCount"`
	Ready        int64 `json:"ready"`
	Unacked      int64 `json:"unacked"`
	Consumers    int64 `json:"consumers"`
	PausedQueues int   `json:"pausedQueues"`
	// Queues: vhost → queue name → figures.
	Queues map[string]map[string]AMQPQueue `json:"queues"`
}

// AMQPQueue is one queue's figures; the counters only grow (Delivered
// and Acked restart from 0 with the broker), for per-second rates.
type AMQPQueue struct {
	Ready       uint32 `json:"ready"`
	Unacked     uint32 `json:"unacked"`
	Consumers   uint32 `json:"consumers"`
	Paused      int    `json:"paused"` // 1: consumeEnable=false
	RateLimit   int    `json:"rateLimit"`
	Published   uint64 `json:"published"`
	Delivered   uint64 `json:"delivered"`
	Redelivered uint64 `json:"redelivered"`
	Acked       uint64 `json:"acked"`
}

// AMQP asks the broker at addr for its vhosts and their queues.
func AMQP(addr string) *AMQPStatus {
	st := &AMQPStatus{Addr: addr, Queues: map[string]map[string]AMQPQueue{}}
	ls, err := amqpListings(addr)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Up, st.Vhosts = 1, len(ls)
	for _, l := range ls {
		qs := map[string]AMQPQueue{}
		for _, q := range l.Queues {
			aq := AMQPQueue{Ready: q.Ready, Unacked: q.Unacked, Consumers: q.Consumers, RateLimit: q.RateLimit,
				Published: q.Published, Delivered: q.Delivered, Redelivered: q.Redelivered, Acked: q.Acked}
			if q.Paused {
				aq.Paused = 1
				st.PausedQueues++
			}
			qs[q.Name] = aq
			st.QueueCount++
			st.Ready += int64(q.Ready)
			st.Unacked += int64(q.Unacked)
			st.Consumers += int64(q.Consumers)
		}
		st.Queues[l.Vhost] = qs
	}
	return st
}

func amqpListings(addr string) ([]*wire.AMQPListing, error) {
	a := newDirect()
	defer a.Close()
	vs, err := a.AMQPVhosts(addr)
	if err != nil {
		return nil, err
	}
	out := make([]*wire.AMQPListing, 0, len(vs))
	for _, v := range vs {
		l, err := a.AMQPList(v.Vhost, addr)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// AMQPQueues is the LLD of the AMQP queues whose home is the broker at
// addr: {#VHOST}, {#QUEUE}, {#AMQP.GROUP} (the group that pauses it).
func AMQPQueues(addr string) ([]Row, error) {
	if addr == "" {
		return nil, fmt.Errorf("AMQP queue discovery needs --broker")
	}
	ls, err := amqpListings(addr)
	if err != nil {
		return nil, err
	}
	rows := []Row{}
	for _, l := range ls {
		for _, q := range l.Queues {
			rows = append(rows, Row{"{#VHOST}": l.Vhost, "{#QUEUE}": q.Name, "{#AMQP.GROUP}": q.Group})
		}
	}
	return rows, nil
}
