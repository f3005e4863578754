package amqp

import "encoding/binary"

// Method is one AMQP method with its arguments. Read decodes the arguments
// that follow the class and method ids; Append writes the ids and the
// arguments. Reading into a struct that is reused keeps a string field's old
// value when the bytes are equal, so per-channel structs decode repeated
// names without allocating; tables are always fresh.
type Method interface {
	IDs() (classID, methodID uint16)
	Name() string
	HasContent() bool
	Read(args []byte) error
	Append(dst []byte) ([]byte, error)
}

// MethodIDs splits a method frame payload into its class id, method id and
// arguments, for callers that dispatch on the ids and decode into structs
// they keep.
func MethodIDs(payload []byte) (classID, methodID uint16, args []byte, err error) {
	if len(payload) < 4 {
		return 0, 0, nil, Errorf(SyntaxError, "method frame of %d bytes has no class and method id", len(payload))
	}
	return binary.BigEndian.Uint16(payload), binary.BigEndian.Uint16(payload[2:]), payload[4:], nil
}

// NewMethod returns a zero struct for the ids, or a 503 COMMAND_INVALID
// *Error for ids the protocol does not define (RabbitMQ's answer to an
// unknown method).
func NewMethod(classID, methodID uint16) (Method, error) {
	m := newMethod(classID, methodID)
	if m == nil {
		e := Errorf(CommandInvalid, "unknown method (%d,%d)", classID, methodID)
		e.ClassID, e.MethodID = classID, methodID
		return nil, e
	}
	return m, nil
}

// ReadMethod decodes a method frame payload into a new struct. Errors are
// *Error: 502 for malformed arguments, 503 for unknown ids.
func ReadMethod(payload []byte) (Method, error) {
	c, m, args, err := MethodIDs(payload)
	if err != nil {
		return nil, err
	}
	meth, err := NewMethod(c, m)
	if err != nil {
		return nil, err
	}
	if err := meth.Read(args); err != nil {
		return nil, err
	}
	return meth, nil
}
