package gateway

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/mqops/mqops/broker/config"
)

// ListenConfig binds a gateway as an amqp.conf configures it (mqamqp's,
// or the broker's amqpGatewayConfig for its embedded gateway), serving
// through backend, and its stats endpoint when statsListenAddr is set.
func ListenConfig(gc *config.AMQPGateway, backend Backend, log *slog.Logger) (*Server, error) {
	host, _ := os.Hostname()
	tc, err := gc.TLSConfig()
	if err != nil {
		return nil, err
	}
	s, err := Listen(net.JoinHostPort(gc.BindAddress, strconv.Itoa(gc.ListenPort)), Config{
		Heartbeat:           uint16(gc.Heartbeat),
		FrameMax:            uint32(gc.FrameMax),
		ChannelMax:          uint16(gc.ChannelMax),
		HandshakeTimeout:    gc.HandshakeTimeoutDuration(),
		MaxMessageSize:      uint64(gc.MaxMessageSize),
		MaxConnections:      gc.MaxConnections,
		LoopbackUsers:       gc.LoopbackUserList(),
		ConsumeTimeout:      time.Duration(gc.ConsumeTimeout) * time.Millisecond,
		MemoryHighWatermark: gc.MemoryHighWatermark,
		GatewayID:           fmt.Sprintf("%s:%d:%d", host, os.Getpid(), time.Now().UnixNano()),
		ImmediateRequeue:    gc.RequeueMode == "immediate",
		PerConsumerQos:      !gc.GlobalQos,
		TLSAddr:             gc.TLSListenAddr,
		TLS:                 tc,
		Backend:             backend,
		Log:                 log,
	})
	if err != nil || gc.StatsListenAddr == "" {
		return s, err
	}
	if err := s.ServeStats(gc.StatsListenAddr); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
