package config

import "github.com/mqops/mqops/remoting"

// ConnLimits bound what peers can make a daemon's remoting port hold
// (mqops keys: Java RocketMQ has no equivalent). Zero means the default
// (remoting.Limits.WithDefaults): limits derived from RLIMIT_NOFILE, a
// 256 MiB frame budget, 8 MiB / 4 MiB output water marks.
type ConnLimits struct {
	MaxConnections           int   // maxConnections: connections of the port; default RLIMIT_NOFILE − connectionFdReserve
	MaxConnectionsPerAddress int   // maxConnectionsPerAddress: connections from one IP address; default maxConnections/4
	ConnectionFdReserve      int   // connectionFdReserve: descriptors kept free of connections for the store; default max(256, RLIMIT_NOFILE/8)
	FrameMemoryBudget        int64 // frameMemoryBudget, bytes: frames over 64 KiB being read at once, all connections together
	OutputHighWaterMark      int   // outputHighWaterMark, bytes of unread output past which a connection is no longer read
	OutputLowWaterMark       int   // outputLowWaterMark, bytes below which it is read again
}

func (l *ConnLimits) keys() []key {
	return []key{
		integer("maxConnections", &l.MaxConnections, javaInt, atLeast(0)),
		integer("maxConnectionsPerAddress", &l.MaxConnectionsPerAddress, javaInt, atLeast(0)),
		integer("connectionFdReserve", &l.ConnectionFdReserve, javaInt, atLeast(0)),
		integer("frameMemoryBudget", &l.FrameMemoryBudget, javaLong, atLeast(0)),
		integer("outputHighWaterMark", &l.OutputHighWaterMark, javaInt, atLeast(0)),
		integer("outputLowWaterMark", &l.OutputLowWaterMark, javaInt, atLeast(0)),
	}
}

// Remoting is l as the remoting server takes it.
func (l *ConnLimits) Remoting() remoting.Limits {
	return remoting.Limits{
		MaxConns: l.MaxConnections, MaxConnsPerAddr: l.MaxConnectionsPerAddress, FDReserve: l.ConnectionFdReserve,
		FrameBudget: l.FrameMemoryBudget, HighWater: l.OutputHighWaterMark, LowWater: l.OutputLowWaterMark,
	}
}
