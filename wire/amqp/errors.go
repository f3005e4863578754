package amqp

import (
	"errors"
	"fmt"
)

// Error is an AMQP exception: the reply code and text a peer puts in
// connection.close (Hard) or channel.close, with the class and method of
// the offending method when one is known.
type Error struct {
	Code     uint16
	Text     string
	ClassID  uint16
	MethodID uint16
	Hard     bool
}

func (e *Error) Error() string {
	kind := "channel"
	if e.Hard {
		kind = "connection"
	}
	if e.ClassID != 0 || e.MethodID != 0 {
		return fmt.Sprintf("amqp %s exception %d (%d,%d): %s", kind, e.Code, e.ClassID, e.MethodID, e.Text)
	}
	return fmt.Sprintf("amqp %s exception %d: %s", kind, e.Code, e.Text)
}

// Errorf builds an Error whose text starts with the code's upper-case name,
// as RabbitMQ's do ("NOT_FOUND - no queue 'q' in vhost '/'"): applications
// match on those texts.
func Errorf(code uint16, format string, args ...any) *Error {
	return &Error{Code: code, Text: ReplyName(code) + " - " + fmt.Sprintf(format, args...), Hard: IsHard(code)}
}

// ReplyText fits an exception's text into the reply-text short string
// as RabbitMQ does (rabbitmq-server deps/rabbit_common/src/
// rabbit_binary_generator.erl, amqp_exception_explanation): over 255
// bytes, the first 252 and "...". Texts name queues and vhosts of up to
// 255 bytes each, so they can outgrow the field.
func ReplyText(s string) string {
	if len(s) <= 255 {
		return s
	}
	return s[:252] + "..."
}

// AsError reports the AMQP exception err carries, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Decoding failures below the method layer; Read methods and ReadTable turn
// them into 502 SYNTAX_ERROR exceptions.
var (
	errTruncated = errors.New("truncated")
	errTrailing  = errors.New("trailing bytes")
	errDepth     = errors.New("field values nested too deep")
)

// syntaxError wraps a decoding failure of a method's arguments.
func syntaxError(classID, methodID uint16, name string, err error) error {
	e := Errorf(SyntaxError, "%s: %v", name, err)
	e.ClassID, e.MethodID = classID, methodID
	return e
}
