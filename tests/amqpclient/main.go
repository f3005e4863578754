// Command amqpclient is the RabbitMQ application the Ansible scenarios
// run against a deployed AMQP gateway: the official Go client amqp091-go,
// unchanged, declaring a durable quorum queue, publishing -n persistent
// messages with publisher confirms and consuming them back with manual
// acks.
//
//	amqpclient -url amqp://user:pass@host:5672/ -queue Q [-n 100]
//	amqpclient -url amqps://user:pass@host:5671/ -ca ca.pem [-server-name NAME] ...
//
// It prints one line of JSON ({"confirmed":N,"received":N}) and exits 0
// when every confirmed message came back, 1 otherwise (the reason on
// stderr).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

func main() {
	url := flag.String("url", "amqp://guest:guest@127.0.0.1:5672/", "the gateway's AMQP URL")
	queue := flag.String("queue", "mqops-ansible-check", "queue to declare, publish to and drain")
	n := flag.Int("n", 100, "messages to publish")
	timeout := flag.Duration("timeout", 60*time.Second, "how long the whole run may take")
	caFile := flag.String("ca", "", "PEM CA that signed the gateway's certificate, for amqps:// URLs")
	serverName := flag.String("server-name", "", "name to verify the gateway's certificate against (default: the URL's host)")
	flag.Parse()
	var tc *tls.Config
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "amqpclient:", err)
			os.Exit(2)
		}
		tc = &tls.Config{RootCAs: x509.NewCertPool(), ServerName: *serverName}
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			fmt.Fprintln(os.Stderr, "amqpclient: no certificate in", *caFile)
			os.Exit(2)
		}
	}
	confirmed, received, err := run(*url, tc, *queue, *n, *timeout)
	out, _ := json.Marshal(map[string]int{"confirmed": confirmed, "received": received})
	fmt.Println(string(out))
	if err != nil {
		fmt.Fprintln(os.Stderr, "amqpclient:", err)
		os.Exit(1)
	}
}

func run(url string, tc *tls.Config, queue string, n int, timeout time.Duration) (confirmed, received int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dial := rmq.Dial
	if tc != nil {
		dial = func(url string) (*rmq.Connection, error) { return rmq.DialTLS(url, tc) }
	}
	conn, err := dial(url)
	if err != nil {
		return 0, 0, fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, 0, fmt.Errorf("channel: %w", err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, rmq.Table{"x-queue-type": "quorum"}); err != nil {
		return 0, 0, fmt.Errorf("declare %s: %w", queue, err)
	}
	if _, err := ch.QueuePurge(queue, false); err != nil {
		return 0, 0, fmt.Errorf("purge %s: %w", queue, err)
	}
	if err := ch.Confirm(false); err != nil {
		return 0, 0, fmt.Errorf("confirm mode: %w", err)
	}
	want := make(map[string]bool, n)
	for i := range n {
		id := strconv.Itoa(i)
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
			rmq.Publishing{DeliveryMode: rmq.Persistent, MessageId: id, Body: []byte("ansible check " + id)})
		if err != nil {
			return confirmed, 0, fmt.Errorf("publish %d: %w", i, err)
		}
		ok, err := dc.WaitContext(ctx)
		if err != nil || !ok {
			return confirmed, 0, fmt.Errorf("publish %d not confirmed (ack %v): %v", i, ok, err)
		}
		confirmed++
		want[id] = true
	}
	if err := ch.Qos(50, 0, false); err != nil {
		return confirmed, 0, fmt.Errorf("qos: %w", err)
	}
	ds, err := ch.ConsumeWithContext(ctx, queue, "", false, false, false, false, nil)
	if err != nil {
		return confirmed, 0, fmt.Errorf("consume: %w", err)
	}
	for len(want) > 0 {
		select {
		case d, ok := <-ds:
			if !ok {
				return confirmed, received, fmt.Errorf("the gateway closed the consumer after %d messages", received)
			}
			if want[d.MessageId] {
				delete(want, d.MessageId)
				received++
			}
			if err := d.Ack(false); err != nil {
				return confirmed, received, fmt.Errorf("ack: %w", err)
			}
		case <-ctx.Done():
			return confirmed, received, fmt.Errorf("%d confirmed messages not received within %v", len(want), timeout)
		}
	}
	return confirmed, received, nil
}
