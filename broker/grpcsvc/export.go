package grpcsvc

import v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"

// What the HTTP/JSON gateway (broker/httpgw) shares with this service: it
// serves the same send and POP backends with the same limits and codes.

// Receive limits (see consumer.go).
const (
	MaxReceiveBatch = maxReceiveBatch
	MaxInvisible    = maxInvisible
	MaxLongPolling  = maxLongPolling
)

// SendCode maps a Backend.Send answer to a RocketMQ 5 code and text.
func SendCode(r SendResult) (v2.Code, string) { return sendCode(r) }

// ReservedProperty reports whether the broker itself uses a property
// name, so a user property may not take it.
func ReservedProperty(name string) bool { return reserved[name] }

// PropMessageGroup is the stored property that carries a FIFO message's
// group.
const PropMessageGroup = propShardingKey

// RocketMQCode is the RocketMQ 5 code of a POP failure.
func (e *PopError) RocketMQCode() v2.Code { return e.status().Code }
