// Package amqp is the AMQP 0-9-1 codec: frames, field tables, content
// headers and every method of RabbitMQ's extended 0-9-1 (connection,
// channel, exchange incl. exchange.bind/unbind, queue, basic incl.
// basic.nack, confirm, tx). It is shared by the AMQP gateway, mqadmin and
// tests, and holds no connection state.
//
// Reading: a FrameReader bounds every frame before it allocates (body frames
// by the negotiated frame_max, method and header frames by
// MaxControlFrameSize) and reuses one buffer. MethodIDs splits a method
// payload so a caller can decode into structs it keeps (zero allocations
// when names repeat); ReadMethod decodes into a new struct. ContentHeader
// validates a header and keeps its property list as raw bytes, since the
// broker stores properties byte-exact; Properties and Lookup decode them.
//
// Writing: every Append* function appends to a caller's buffer, so a writer
// that reuses its buffer does not allocate per frame. Tables encode with
// sorted keys, so equal tables give equal bytes.
//
// Errors: protocol violations are *Error values carrying the reply code the
// peer should get (501 FRAME_ERROR, 502 SYNTAX_ERROR, 503 COMMAND_INVALID,
// 505 UNEXPECTED_FRAME ...) and whether it is a connection (Hard) or channel
// exception. Decoding never panics on input; the frame reader and table
// decoder are fuzzed.
//
// spec_gen.go is generated from the AMQP 0-9-1 XML specification shipped in
// the github.com/rabbitmq/amqp091-go module
// (spec/amqp0-9-1.stripped.extended.xml) by internal/gen.
package amqp

//go:generate go run ./internal/gen
