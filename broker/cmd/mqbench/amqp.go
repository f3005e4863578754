package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// The AMQP modes drive any AMQP 0-9-1 server (the mqamqp gateway or
// RabbitMQ) with RabbitMQ's own Go client, amqp091-go v1.17.0, the way
// applications use it: persistent messages (delivery-mode 2) through the
// default exchange to one durable queue, publisher confirms, consumers
// with a prefetch window and manual multiple acks.

// amqpQueue declares o.queue durable, with x-queue-type o.queueType when
// one is given (RabbitMQ's classic or quorum), and returns the
// connection and channel it used.
func amqpQueue(o options) (*rmq.Connection, *rmq.Channel, error) {
	conn, err := rmq.Dial(o.url)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", o.url, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("open channel: %w", err)
	}
	var args rmq.Table
	if o.queueType != "" {
		args = rmq.Table{"x-queue-type": o.queueType}
	}
	if _, err := ch.QueueDeclare(o.queue, true, false, false, false, args); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("declare queue %s: %w", o.queue, err)
	}
	return conn, ch, nil
}

// runAMQPPublish runs o.conc publishers, each on its own connection and
// channel in confirm mode with at most o.window unconfirmed messages
// (1: wait for each confirm). Each publishes until o.duration has passed,
// at least one message, then waits for its outstanding confirms, so
// every message counted is confirmed. The queue is deleted at the end
// unless o.keep.
func runAMQPPublish(o options) error {
	if o.window < 1 {
		return fmt.Errorf("-window %d: want at least 1", o.window)
	}
	setup, setupCh, err := amqpQueue(o)
	if err != nil {
		return err
	}
	defer setup.Close()
	body := make([]byte, o.size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	var acked, nacked atomic.Int64
	lat := &latencies{}
	errs := make(chan error, o.conc)
	chans := make([]*rmq.Channel, o.conc)
	for i := range chans {
		conn, err := rmq.Dial(o.url)
		if err != nil {
			return fmt.Errorf("publisher %d: %w", i, err)
		}
		defer conn.Close()
		if chans[i], err = conn.Channel(); err == nil {
			err = chans[i].Confirm(false)
		}
		if err != nil {
			return fmt.Errorf("publisher %d: %w", i, err)
		}
	}
	deadline := time.Now().Add(o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, bad, ds, err := publishConfirmed(ch, o, body, deadline)
			acked.Add(n)
			nacked.Add(bad)
			lat.add(ds)
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("mode=amqp-publish publishers=%d window=%d queue-type=%s size=%dB: %d msgs in %v = %.0f msgs/s, %d nacked; confirm latency %s\n",
		o.conc, o.window, queueTypeName(o), o.size, acked.Load(), el.Round(time.Millisecond), float64(acked.Load())/el.Seconds(), nacked.Load(), lat.report())
	if !o.keep {
		if _, err := setupCh.QueueDelete(o.queue, false, false, false); err != nil {
			return fmt.Errorf("delete queue %s: %w", o.queue, err)
		}
	}
	return nil
}

// publishConfirmed is one publisher's loop. amqp091-go hands confirms to
// the NotifyPublish channel one tag at a time in tag order (it splits a
// multiple ack), so the send time of tag t sits at sent[t % window]
// until t is confirmed: at most window tags are outstanding.
func publishConfirmed(ch *rmq.Channel, o options, body []byte, deadline time.Time) (acked, nacked int64, ds []time.Duration, err error) {
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, o.window))
	sent := make([]time.Time, o.window)
	ds = make([]time.Duration, 0, 1<<16)
	msg := rmq.Publishing{DeliveryMode: rmq.Persistent, ContentType: "application/octet-stream", Body: body}
	next := uint64(1) // amqp091-go numbers a channel's publishes from 1
	outstanding := 0
	wait := func() error {
		c, ok := <-confirms
		if !ok {
			return errors.New("channel closed while waiting for confirms")
		}
		if c.Ack {
			acked++
		} else {
			nacked++
		}
		ds = append(ds, time.Since(sent[c.DeliveryTag%uint64(o.window)]))
		outstanding--
		return nil
	}
	ctx := context.Background()
	for first := true; first || time.Now().Before(deadline); first = false {
		for outstanding >= o.window {
			if err := wait(); err != nil {
				return acked, nacked, ds, err
			}
		}
		sent[next%uint64(o.window)] = time.Now()
		if err := ch.PublishWithContext(ctx, "", o.queue, false, false, msg); err != nil {
			return acked, nacked, ds, fmt.Errorf("publish: %w", err)
		}
		next++
		outstanding++
	}
	for outstanding > 0 {
		if err := wait(); err != nil {
			return acked, nacked, ds, err
		}
	}
	return acked, nacked, ds, nil
}

// runAMQPConsume consumes o.count messages (a backlog an amqp-publish
// run left) with one consumer, prefetch o.prefetch, acking every
// o.ackBatch deliveries with one multiple ack, then deletes the queue.
// Going o.idle without a delivery before the count is reached fails.
func runAMQPConsume(o options) error {
	if o.count < 1 || o.prefetch < 1 || o.ackBatch < 1 {
		return fmt.Errorf("-count %d, -prefetch %d, -ackbatch %d: want each at least 1", o.count, o.prefetch, o.ackBatch)
	}
	conn, ch, err := amqpQueue(o)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := ch.Qos(o.prefetch, 0, false); err != nil {
		return fmt.Errorf("qos: %w", err)
	}
	start := time.Now()
	ds, err := ch.Consume(o.queue, "mqbench", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", o.queue, err)
	}
	idle := time.NewTimer(o.idle)
	defer idle.Stop()
	var n, unacked int64
	redelivered := 0
	for n < o.count {
		select {
		case d, ok := <-ds:
			if !ok {
				return fmt.Errorf("consumer closed after %d of %d messages", n, o.count)
			}
			n++
			unacked++
			if d.Redelivered {
				redelivered++
			}
			if unacked >= int64(o.ackBatch) || n == o.count {
				if err := d.Ack(true); err != nil {
					return fmt.Errorf("ack: %w", err)
				}
				unacked = 0
			}
			idle.Reset(o.idle)
		case <-idle.C:
			return fmt.Errorf("no delivery for %v after %d of %d messages", o.idle, n, o.count)
		}
	}
	el := time.Since(start)
	fmt.Printf("mode=amqp-consume prefetch=%d ackbatch=%d queue-type=%s: %d msgs in %v = %.0f msgs/s, %d redelivered\n",
		o.prefetch, o.ackBatch, queueTypeName(o), n, el.Round(time.Millisecond), float64(n)/el.Seconds(), redelivered)
	if err := ch.Cancel("mqbench", false); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	if _, err := ch.QueueDelete(o.queue, false, false, false); err != nil {
		return fmt.Errorf("delete queue %s: %w", o.queue, err)
	}
	return nil
}

func queueTypeName(o options) string {
	if o.queueType == "" {
		return "default"
	}
	return o.queueType
}
