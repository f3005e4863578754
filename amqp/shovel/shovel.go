// Package shovel moves the messages of a queue on one AMQP 0-9-1 server to
// another, as RabbitMQ's shovel plugin does with ack-mode on-confirm: a
// message is acknowledged at the source only after the destination
// confirmed it. A crash of either server or of the shovel therefore loses
// nothing; a message confirmed but not yet acknowledged when that happens
// is moved again (at least once, like the plugin).
//
// It is how the messages of a RabbitMQ queue come over to mqops after
// mqadmin amqp definitions import, and how an mqops queue's backlog moves
// between clusters: both ends are any AMQP 0-9-1 server, spoken to with
// the official client (amqp091-go).
package shovel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultWindow is how many messages may be on their way when Config.Window
// is 0: the source's prefetch, and so the destination's unconfirmed
// publishes.
const DefaultWindow = 256

// consumerTag names the shovel's consumer at the source, where RabbitMQ's
// management UI and mqadmin amqp queue list show it.
const consumerTag = "mqops-shovel"

// Config says what to move where.
type Config struct {
	SrcURI   string // amqp:// or amqps:// URI of the source, with its vhost
	SrcQueue string
	DestURI  string
	// The destination, as the plugin's dest-queue and dest-exchange /
	// dest-exchange-key: DestQueue, through the default exchange; or
	// DestExchange with DestKey, or with each message's own routing key
	// when DestKey is empty. With neither, the queue with the source
	// queue's name (a migration after importing definitions).
	DestQueue    string
	DestExchange string
	DestKey      string
	// Window bounds the messages taken from the source and not yet
	// confirmed by the destination (DefaultWindow when 0).
	Window int
	// Count is how many messages to move: 0 moves as many as the source
	// queue held when the shovel started (the plugin's src-delete-after
	// queue-length); a negative Count moves until ctx is done.
	Count int64
	// TLS is used for amqps URIs (nil: the system's roots).
	TLS *tls.Config
	// Progress, if set, is called with the number moved so far after each
	// group of acknowledgements at the source.
	Progress func(moved int64)
	// StopTimeout bounds the wait, once ctx is done, for the confirms of
	// messages already published (default 30 s); what is not confirmed by
	// then stays at the source.
	StopTimeout time.Duration
}

// Result is what a run moved.
type Result struct {
	Source      string        `json:"source"`      // the source queue
	Destination string        `json:"destination"` // "exchange/key", or "queue NAME"
	Moved       int64         `json:"moved"`       // confirmed by the destination and acknowledged at the source
	Wanted      int64         `json:"wanted"`      // the count to move; -1 when moving until stopped
	Elapsed     time.Duration `json:"elapsedNanos"`
	// UserIDDropped counts messages whose user-id property named another
	// user than the destination's login: a server refuses such a publish
	// (RabbitMQ's validated user-id), so the property was left out.
	UserIDDropped int64 `json:"userIdDropped"`
}

// target is where one message goes.
type target struct {
	exchange string
	key      string // "" with keepKey: the message's own
	keepKey  bool
}

func (c *Config) target() (target, error) {
	switch {
	case c.DestQueue != "" && (c.DestExchange != "" || c.DestKey != ""):
		return target{}, errors.New("a destination queue and a destination exchange or routing key exclude each other")
	case c.DestExchange != "":
		return target{exchange: c.DestExchange, key: c.DestKey, keepKey: c.DestKey == ""}, nil
	case c.DestKey != "":
		return target{}, errors.New("a destination routing key needs a destination exchange")
	}
	t := target{key: c.SrcQueue}
	if c.DestQueue != "" {
		t.key = c.DestQueue
	}
	if t.key == c.SrcQueue && sameServer(c.SrcURI, c.DestURI) {
		return target{}, fmt.Errorf("the destination is the source queue %q itself", c.SrcQueue)
	}
	return t, nil
}

// sameServer reports whether two URIs name one vhost of one server (as
// written: another name for the same host is not recognised).
func sameServer(a, b string) bool {
	ua, err := amqp.ParseURI(a)
	if err != nil {
		return false
	}
	ub, err := amqp.ParseURI(b)
	return err == nil && ua.Host == ub.Host && ua.Port == ub.Port && ua.Vhost == ub.Vhost
}

func (t target) String() string {
	if t.exchange == "" {
		return "queue " + t.key
	}
	if t.keepKey {
		return "exchange " + t.exchange + " (each message's routing key)"
	}
	return "exchange " + t.exchange + " key " + t.key
}

// publishing is d as the destination gets it: body and properties as they
// were, except a user-id other than destUser's (see Result.UserIDDropped).
func publishing(d *amqp.Delivery, destUser string) (p amqp.Publishing, droppedUserID bool) {
	p = amqp.Publishing{
		Headers:         d.Headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    d.DeliveryMode,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		Expiration:      d.Expiration,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
	if d.UserId != "" {
		if d.UserId != destUser {
			return p, true
		}
		p.UserId = d.UserId
	}
	return p, false
}

// side is one end: its connection and channel, and why it closed.
type side struct {
	conn   *amqp.Connection
	ch     *amqp.Channel
	closed chan *amqp.Error
}

func open(what, uri string, tc *tls.Config) (*side, error) {
	conn, err := amqp.DialConfig(uri, amqp.Config{TLSClientConfig: tc, Heartbeat: 10 * time.Second,
		Properties: amqp.Table{"connection_name": "mqops shovel (" + what + ")"}})
	if err != nil {
		return nil, fmt.Errorf("connect to the %s: %w", what, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open a channel on the %s: %w", what, err)
	}
	return &side{conn: conn, ch: ch, closed: ch.NotifyClose(make(chan *amqp.Error, 1))}, nil
}

func (s *side) close() {
	if s != nil {
		s.conn.Close()
	}
}

// inflight is a message published to the destination and not yet
// acknowledged at the source.
type inflight struct {
	tag uint64 // the source's delivery tag
	dc  *amqp.DeferredConfirmation
}

// Run moves messages until Count are moved, ctx is done or either end
// fails. Messages are acknowledged at the source in delivery order, each
// after the destination confirmed it and every one before it; a message
// the destination refuses (basic.nack) or returns as unroutable stops the
// run with an error, and it and every later one stay at the source (the
// source requeues them when the shovel's channel closes). The Result
// counts what was moved, also when an error is returned. When ctx is done
// Run stops taking messages, waits for the confirms of those published
// and returns ctx's error, unless Count was negative (moving until
// stopped), where the stop is the normal end.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	start := time.Now()
	tgt, err := cfg.target()
	if err != nil {
		return res, err
	}
	res = Result{Source: cfg.SrcQueue, Destination: tgt.String(), Wanted: cfg.Count}
	defer func() { res.Elapsed = time.Since(start) }()
	window := cfg.Window
	if window <= 0 {
		window = DefaultWindow
	}
	stopTimeout := cfg.StopTimeout
	if stopTimeout <= 0 {
		stopTimeout = 30 * time.Second
	}
	destURI, err := amqp.ParseURI(cfg.DestURI)
	if err != nil {
		return res, fmt.Errorf("destination URI: %w", err)
	}

	src, err := open("source", cfg.SrcURI, cfg.TLS)
	if err != nil {
		return res, err
	}
	defer src.close()
	q, err := src.ch.QueueDeclarePassive(cfg.SrcQueue, false, false, false, false, nil)
	if err != nil {
		return res, fmt.Errorf("source queue %q: %w", cfg.SrcQueue, err)
	}
	if cfg.Count == 0 {
		res.Wanted = int64(q.Messages)
		if res.Wanted == 0 {
			return res, nil
		}
	}

	dst, err := open("destination", cfg.DestURI, cfg.TLS)
	if err != nil {
		return res, err
	}
	defer dst.close()
	// Checked before anything moves: a missing destination is an error,
	// not a stream of returned messages.
	if tgt.exchange == "" {
		if _, err := dst.ch.QueueDeclarePassive(tgt.key, false, false, false, false, nil); err != nil {
			return res, fmt.Errorf("destination queue %q: %w", tgt.key, err)
		}
	} else if err := dst.ch.ExchangeDeclarePassive(tgt.exchange, amqp.ExchangeDirect, false, false, false, false, nil); err != nil {
		return res, fmt.Errorf("destination exchange %q: %w", tgt.exchange, err)
	}
	if err := dst.ch.Confirm(false); err != nil {
		return res, fmt.Errorf("destination confirm mode: %w", err)
	}
	// The client's reader blocks on a full returns channel; at most window
	// messages can be returned before the loop reads it.
	returns := dst.ch.NotifyReturn(make(chan amqp.Return, window))
	if err := src.ch.Qos(window, 0, false); err != nil {
		return res, fmt.Errorf("source prefetch: %w", err)
	}
	deliveries, err := src.ch.Consume(cfg.SrcQueue, consumerTag, false, false, false, false, nil)
	if err != nil {
		return res, fmt.Errorf("consume source queue %q: %w", cfg.SrcQueue, err)
	}

	pend := make([]inflight, 0, window)
	var taken int64
	consuming := true
	stopConsuming := func() error {
		if !consuming {
			return nil
		}
		consuming, deliveries = false, nil
		// Deliveries already sent past the cancel are never acknowledged:
		// the source requeues them when the channel closes.
		if err := src.ch.Cancel(consumerTag, false); err != nil {
			return fmt.Errorf("stop consuming the source: %w", err)
		}
		return nil
	}
	// settle acknowledges at the source the confirmed head of pend.
	settle := func() error {
		n := 0
		for ; n < len(pend) && confirmed(pend[n].dc); n++ {
			if !pend[n].dc.Acked() {
				return fmt.Errorf("the destination did not confirm a message (basic.nack or its channel closed%s); it and the messages after it stay at the source",
					closeReason(dst.closed))
			}
		}
		if n == 0 {
			return nil
		}
		// Every return of these n arrived before their confirms (the
		// client reads frames in order); a return of a later message may
		// be here too, so none of these is acknowledged then.
		select {
		case r := <-returns:
			return fmt.Errorf("the destination returned a message as unroutable (%d %s, exchange %q, routing key %q); it and the messages after it stay at the source",
				r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey)
		default:
		}
		if err := src.ch.Ack(pend[n-1].tag, true); err != nil {
			return fmt.Errorf("acknowledge at the source: %w", err)
		}
		res.Moved += int64(n)
		pend = append(pend[:0], pend[n:]...)
		if cfg.Progress != nil {
			cfg.Progress(res.Moved)
		}
		return nil
	}

	var stopDeadline <-chan time.Time
	done := ctx.Done()
	for {
		if consuming && res.Wanted > 0 && taken >= res.Wanted {
			if err := stopConsuming(); err != nil {
				return res, err
			}
		}
		if !consuming && len(pend) == 0 {
			break
		}
		var oldest <-chan struct{}
		if len(pend) > 0 {
			oldest = pend[0].dc.Done()
		}
		select {
		case d, ok := <-deliveries:
			if !ok {
				return res, fmt.Errorf("the source closed the channel%s", closeReason(src.closed))
			}
			taken++
			p, dropped := publishing(&d, destURI.Username)
			if dropped {
				res.UserIDDropped++
			}
			key := tgt.key
			if tgt.keepKey {
				key = d.RoutingKey
			}
			// Mandatory: an unroutable message comes back instead of
			// vanishing with a positive confirm.
			dc, err := dst.ch.PublishWithDeferredConfirm(tgt.exchange, key, true, false, p)
			if err != nil {
				return res, fmt.Errorf("publish to the destination%s: %w", closeReason(dst.closed), err)
			}
			pend = append(pend, inflight{tag: d.DeliveryTag, dc: dc})
		case <-oldest:
			if err := settle(); err != nil {
				return res, err
			}
		case <-done:
			done = nil
			if err := stopConsuming(); err != nil {
				return res, err
			}
			stopDeadline = time.After(stopTimeout)
		case <-stopDeadline:
			return res, fmt.Errorf("stopped: %d messages published were not confirmed within %s and stay at the source", len(pend), stopTimeout)
		case e := <-dst.closed:
			return res, fmt.Errorf("the destination closed the channel: %v", e)
		}
	}
	if ctx.Err() != nil && cfg.Count >= 0 {
		return res, fmt.Errorf("stopped after %d of %d messages: %w", res.Moved, res.Wanted, ctx.Err())
	}
	return res, nil
}

// confirmed reports whether dc's confirm (positive or not) arrived.
func confirmed(dc *amqp.DeferredConfirmation) bool {
	select {
	case <-dc.Done():
		return true
	default:
		return false
	}
}

// closeReason is ": <the server's exception>" when c holds one.
func closeReason(c chan *amqp.Error) string {
	select {
	case e, ok := <-c:
		if ok && e != nil {
			return ": " + e.Error()
		}
	default:
	}
	return ""
}
