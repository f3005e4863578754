package server

// Version is mqops' own version, reported in runtime info beside the
// RocketMQ protocol version it speaks.
const Version = "0.1.0"
