package wire

// AMQPGatewayStats is what an AMQP gateway (mqamqp, or the gateway inside
// a broker) says of itself on its stats endpoint (statsListenAddr, GET
// /stats, JSON): the gauges as of the request and counters that grow from
// the gateway's start. mqops-zbx amqpgw reads it for the "mqops AMQP
// gateway" Zabbix template.
type AMQPGatewayStats struct {
	Gateway   string `json:"gateway"`   // the gateway's id (host:pid:start)
	StartTime int64  `json:"startTime"` // ms since the epoch
	// Gauges.
	Connections       int   `json:"connections"`       // open client connections
	Channels          int64 `json:"channels"`          // open channels
	Consumers         int   `json:"consumers"`         // basic.consume registrations
	BlockedPublishers int   `json:"blockedPublishers"` // publishing connections held by flow control
	BlockedVhosts     int   `json:"blockedVhosts"`     // vhosts whose broker refuses publishes
	MemoryAlarm       int   `json:"memoryAlarm"`       // 1: buffered publishes above memoryHighWatermark
	BufferedBytes     int64 `json:"bufferedBytes"`     // publish bodies read, not yet answered by a broker (0 with the watermark off)
	// Counters.
	ConnectionsAccepted uint64 `json:"connectionsAccepted"`
	ConnectionsRefused  uint64 `json:"connectionsRefused"` // over maxConnections
	LoginsRefused       uint64 `json:"loginsRefused"`      // wrong user or password, or not allowed from that address
	ConnectionErrors    uint64 `json:"connectionErrors"`   // connections closed by a connection exception
	ChannelErrors       uint64 `json:"channelErrors"`      // channels closed by a channel exception
	Published           uint64 `json:"published"`          // messages a broker took (stored, or unroutable)
	PublishFailed       uint64 `json:"publishFailed"`      // messages no broker stored (nacked)
	Returned            uint64 `json:"returned"`           // mandatory messages returned unroutable
	Delivered           uint64 `json:"delivered"`          // basic.deliver and basic.get-ok
	Redelivered         uint64 `json:"redelivered"`        // of those, marked redelivered
	Acked               uint64 `json:"acked"`              // messages settled by basic.ack
	Requeued            uint64 `json:"requeued"`           // by nack or reject with requeue
	Rejected            uint64 `json:"rejected"`           // by nack or reject without requeue (dead-lettered or dropped)
}
