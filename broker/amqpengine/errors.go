// Package amqpengine is the AMQP 0-9-1 engine that lives inside mqbroker:
// per-vhost metadata (exchanges, queues, bindings), the router that turns a
// publish into a set of target queues, and the metadata's persistence. The
// gateway (mqamqp) owns connections and frames; it calls the engine for
// every declare, bind, delete and publish, so concurrent gateways see one
// consistent view and equivalence checks are exact.
//
// Behaviour and reply texts follow RabbitMQ (rabbitmq/rabbitmq-server
// deps/rabbit/src/rabbit_channel.erl, rabbit_amqqueue.erl, rabbit_exchange.erl,
// rabbit_misc.erl) because applications match on them.
package amqpengine

import "fmt"

// AMQP reply codes (AMQP 0-9-1 specification, constants).
const (
	AccessRefused      uint16 = 403
	NotFound           uint16 = 404
	ResourceLocked     uint16 = 405
	PreconditionFailed uint16 = 406
	CommandInvalid     uint16 = 503
	NotAllowed         uint16 = 530
	InternalError      uint16 = 541
)

var codeNames = map[uint16]string{
	AccessRefused: "ACCESS_REFUSED", NotFound: "NOT_FOUND", ResourceLocked: "RESOURCE_LOCKED",
	PreconditionFailed: "PRECONDITION_FAILED", CommandInvalid: "COMMAND_INVALID",
	NotAllowed: "NOT_ALLOWED", InternalError: "INTERNAL_ERROR",
}

// Error is an AMQP exception: the reply code and RabbitMQ's reply text,
// which starts with the code's upper-case name
// (`NOT_FOUND - no queue 'q' in vhost '/'`). The gateway sends it as
// channel.close, or connection.close when Hard.
type Error struct {
	Code  uint16
	Text  string
	Cause error // set for internal errors (a failed metadata write)
}

func (e *Error) Error() string { return e.Text }
func (e *Error) Unwrap() error { return e.Cause }

// Hard reports a connection exception (AMQP 0-9-1 §1.7: 503, 530 and 541
// close the connection; 403–406 only the channel).
func (e *Error) Hard() bool { return e.Code >= 500 }

func errorf(code uint16, format string, a ...any) *Error {
	return &Error{Code: code, Text: codeNames[code] + " - " + fmt.Sprintf(format, a...)}
}

// rs names a resource as RabbitMQ's rabbit_misc:rs/1 does.
func rs(kind, name, vhost string) string {
	return fmt.Sprintf("%s '%s' in vhost '%s'", kind, name, vhost)
}

func notFound(kind, name, vhost string) *Error {
	return errorf(NotFound, "no %s", rs(kind, name, vhost))
}

func locked(name, vhost string) *Error {
	return errorf(ResourceLocked, "cannot obtain exclusive access to locked %s. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", rs("queue", name, vhost))
}

func defaultExchangeRefused() *Error {
	return errorf(AccessRefused, "operation not permitted on the default exchange")
}

func internalError(cause error) *Error {
	return &Error{Code: InternalError, Text: codeNames[InternalError] + " - " + cause.Error(), Cause: cause}
}
