package amqpengine

import "time"

// Dead-letter reasons (RabbitMQ's x-death reason values).
const (
	ReasonRejected      = "rejected"
	ReasonExpired       = "expired"
	ReasonMaxLen        = "maxlen"
	ReasonDeliveryLimit = "delivery_limit"
)

// defaultDeliveryLimit is a quorum queue's x-delivery-limit when it sets
// none: RocketMQ's retryMaxTimes.
const defaultDeliveryLimit = 16

// features are the per-queue behaviours its declare arguments ask for,
// parsed once when the queue is declared or loaded (checkQueueArgs has
// validated the types).
type features struct {
	queue          string
	dlx            string // dead-letter exchange, when hasDLX
	hasDLX         bool
	dlrk           string // dead-letter routing key, when hasDLRK
	hasDLRK        bool
	ttl            int64 // x-message-ttl in ms; -1: none
	maxLen         int64 // x-max-length; -1: none
	rejectPublish  bool  // x-overflow reject-publish or reject-publish-dlx
	rejectDLX      bool  // reject-publish-dlx: the refused message is dead-lettered too
	deliveryLimit  int64 // requeues before dead-lettering; -1: unlimited
	consumeTimeout time.Duration
}

func newFeatures(name string, args Args) *features {
	f := &features{queue: name, ttl: -1, maxLen: -1, deliveryLimit: -1}
	if s, ok := args["x-dead-letter-exchange"].(string); ok {
		f.dlx, f.hasDLX = s, true
	}
	if s, ok := args["x-dead-letter-routing-key"].(string); ok {
		f.dlrk, f.hasDLRK = s, true
	}
	if n, ok := asInt(args["x-message-ttl"]); ok && n >= 0 {
		f.ttl = n
	}
	if n, ok := asInt(args["x-max-length"]); ok && n >= 0 {
		f.maxLen = n
	}
	switch args["x-overflow"] {
	case "reject-publish":
		f.rejectPublish = true
	case "reject-publish-dlx":
		f.rejectPublish, f.rejectDLX = true, true
	}
	if t, _ := args["x-queue-type"].(string); t == "quorum" {
		f.deliveryLimit = defaultDeliveryLimit
	}
	if n, ok := asInt(args["x-delivery-limit"]); ok && n >= 0 {
		f.deliveryLimit = n
	}
	if n, ok := asInt(args["x-consumer-timeout"]); ok && n > 0 {
		f.consumeTimeout = time.Duration(n) * time.Millisecond
	}
	return f
}

// expires reports whether a message needs a deadline check at all.
func (f *features) expires() bool { return f != nil && f.ttl >= 0 }
