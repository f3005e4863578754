package wire

// The AMQP engine's message path (codes 9110–9114). Bodies are JSON;
// []byte fields travel as base64 strings (encoding/json). Refusals come
// back as AMQPException (reply code in extField replyCode), like the
// metadata codes in amqpmeta.go; a request the broker cannot serve at all
// (bad body, no store) is SYSTEM_ERROR with a remark.
const (
	// AMQP_PUBLISH: AMQPPublishRequest → AMQPPublishResponse. The
	// messages of one channel in channel order; the answer has one result
	// per message, in the same order. A missing exchange (404) or an
	// internal one (403) fails every message of the request, as the
	// gateway closes the channel on the first.
	AMQPPublish int32 = 9110
	// AMQP_FETCH: AMQPFetchRequest → AMQPFetchResponse. Long-polls up to
	// WaitMillis (at most 20 000) for the first message; answers with at
	// most Max deliveries, possibly none.
	AMQPFetch int32 = 9111
	// AMQP_SETTLE: AMQPSettleRequest → AMQPSettleResponse.
	AMQPSettle int32 = 9112
	// AMQP_RELEASE: AMQPReleaseRequest → AMQPReleaseResponse.
	AMQPRelease int32 = 9113
	// AMQP_PURGE: AMQPPurgeRequest → AMQPPurgeResponse (queue.purge-ok).
	AMQPPurge int32 = 9114
)

// AMQPPublishRequest carries basic.publish frames of one channel.
type AMQPPublishRequest struct {
	Vhost    string               `json:"vhost"`
	Exchange string               `json:"exchange"`
	Messages []AMQPPublishMessage `json:"messages"`
}

// AMQPPublishMessage is one basic.publish with its content.
// Properties is the content header's property flags (2 bytes, big
// endian) followed by the property list, byte for byte as received; it is
// stored as is (base64 in property AMQP_P) and handed back on delivery.
// Persistent (delivery-mode 2) makes the stored result wait for the
// broker's flush and replication; a transient message does not wait.
type AMQPPublishMessage struct {
	RoutingKey string `json:"routingKey"`
	Mandatory  bool   `json:"mandatory,omitempty"`
	Properties []byte `json:"properties,omitempty"`
	Body       []byte `json:"body"`
	Persistent bool   `json:"persistent,omitempty"`
}

// Publish result statuses.
const (
	AMQPStored     = "stored"     // written (and durable if persistent): confirm with basic.ack
	AMQPUnroutable = "unroutable" // no queue matched, nothing written: basic.return if mandatory, then ack
	AMQPFailed     = "failed"     // not written: basic.nack, or close the channel with Code/Text
)

// AMQPPublishResult is the fate of one published message.
type AMQPPublishResult struct {
	Status string `json:"status"`
	Code   uint16 `json:"code,omitempty"` // AMQP reply code when failed
	Text   string `json:"text,omitempty"`
}

// AMQPPublishResponse answers AMQP_PUBLISH.
type AMQPPublishResponse struct {
	Results []AMQPPublishResult `json:"results"`
}

// AMQPFetchRequest asks queue Queue for up to Max messages for consumer
// session Session (the gateway's connection/channel/consumer; releases
// name it). NoAck settles the messages as they are handed out
// (basic.consume no-ack, basic.get no-ack). Peek takes nothing: it waits
// up to WaitMillis for the queue to have a ready message and answers only
// Ready (a gateway whose shared prefetch window is full waits so without
// holding credit).
type AMQPFetchRequest struct {
	Vhost      string `json:"vhost"`
	Queue      string `json:"queue"`
	Session    string `json:"session"`
	Max        int    `json:"max"`
	WaitMillis int    `json:"waitMillis,omitempty"`
	NoAck      bool   `json:"noAck,omitempty"`
	// TimeoutMillis is the gateway's consume timeout (consumeTimeout):
	// the deliveries' deadline unless the queue sets x-consumer-timeout;
	// 0 leaves the broker's default.
	TimeoutMillis int64 `json:"timeoutMillis,omitempty"`
	// Peek: wait (up to WaitMillis) for a ready message and take none;
	// the answer's Ready says whether one is there.
	Peek bool `json:"peek,omitempty"`
}

// AMQPDelivery is one message handed out. Handle names it in
// AMQP_SETTLE/AMQP_RELEASE (0 for a no-ack delivery); Properties is the
// raw flags + list as published.
type AMQPDelivery struct {
	Handle      uint64 `json:"handle,omitempty"`
	Redelivered bool   `json:"redelivered,omitempty"`
	Exchange    string `json:"exchange"`
	RoutingKey  string `json:"routingKey"`
	Properties  []byte `json:"properties,omitempty"`
	Body        []byte `json:"body"`
}

// AMQPFetchResponse answers AMQP_FETCH; Ready is the queue's ready count
// after the fetch (basic.get-ok message-count).
type AMQPFetchResponse struct {
	Deliveries []AMQPDelivery `json:"deliveries"`
	Ready      uint32         `json:"ready"`
	// TimeoutMillis is the consume timeout the deliveries got: past it
	// the broker puts them back and ignores their settles.
	TimeoutMillis int64 `json:"timeoutMillis,omitempty"`
}

// Settle operations.
const (
	AMQPAck     = "ack"     // basic.ack
	AMQPRequeue = "requeue" // basic.nack/reject requeue=true: graded-delay redelivery
	AMQPReject  = "reject"  // basic.nack/reject requeue=false: dropped (dead-lettering comes later)
)

// AMQPSettleItem settles one handle.
type AMQPSettleItem struct {
	Handle uint64 `json:"handle"`
	Op     string `json:"op"`
}

// AMQPSettleRequest settles handles of one vhost, in order.
type AMQPSettleRequest struct {
	Vhost string           `json:"vhost"`
	Items []AMQPSettleItem `json:"items"`
}

// AMQPSettleResponse counts the handles settled; unknown handles (already
// settled, released, or from before a broker restart) are ignored, as a
// late ack of a timed-out delivery is.
type AMQPSettleResponse struct {
	Settled int `json:"settled"`
}

// AMQPReleaseRequest puts in-flight messages back at the head of their
// queues at once, redelivered: those of Session (channel close, connection
// loss, basic.recover), or only Handles when given.
type AMQPReleaseRequest struct {
	Vhost   string   `json:"vhost"`
	Session string   `json:"session,omitempty"`
	Handles []uint64 `json:"handles,omitempty"`
}

// AMQPReleaseResponse counts the messages released.
type AMQPReleaseResponse struct {
	Released int `json:"released"`
}

// AMQPPurgeRequest is queue.purge from connection Owner.
type AMQPPurgeRequest struct {
	Vhost string    `json:"vhost"`
	Queue string    `json:"queue"`
	Owner AMQPOwner `json:"owner"`
}

// AMQPPurgeResponse answers AMQP_PURGE with the ready messages dropped.
type AMQPPurgeResponse struct {
	MessageCount uint32 `json:"messageCount"`
}
