package server

import (
	"net"
	"strconv"
	"time"

	"github.com/mqops/mqops/broker/httpgw"
)

// openHTTPGateway binds the HTTP/JSON gateway's port (enableHttpGateway).
// It serves the POP engine and send path the gRPC service serves.
func (b *Broker) openHTTPGateway() error {
	if !b.cfg.EnableHTTPGateway {
		return nil
	}
	if err := b.openPop(); err != nil {
		return err
	}
	cfg := b.cfg
	srv, err := httpgw.Listen(httpgw.Config{
		Addr:           net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HTTPGatewayPort)),
		MaxMessageSize: cfg.MaxMessageSize,
		MaxDelay:       time.Duration(cfg.TimerMaxDelaySec) * time.Second,
		NoTypeCheck:    !cfg.EnableTopicMessageTypeCheck,
		MinInvisible:   time.Duration(cfg.MinInvisibleTimeMillsForRecv) * time.Millisecond,
		ACL:            b.acl,
		TLSMode:        cfg.TLSServerMode,
		TLS:            b.tlsServer,
		Log:            b.log,
	}, grpcBackend{b})
	if err != nil {
		return err
	}
	b.httpgw = srv
	return nil
}

// HTTPGatewayAddr is the gateway's address as clients reach it
// (brokerIP1:port), "" without enableHttpGateway.
func (b *Broker) HTTPGatewayAddr() string {
	if b.httpgw == nil {
		return ""
	}
	return net.JoinHostPort(b.cfg.BrokerIP1, strconv.Itoa(b.httpgw.Addr().(*net.TCPAddr).Port))
}

func (b *Broker) startHTTPGateway() {
	if b.httpgw == nil {
		return
	}
	b.log.Info("serving the HTTP/JSON gateway", "addr", b.HTTPGatewayAddr(), "tlsServerMode", b.cfg.TLSServerMode, "aclEnable", b.acl != nil)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.httpgw.Serve(); err != nil {
			b.log.Error("[SERVE] HTTP gateway stopped", "err", err)
		}
	}()
}

func (b *Broker) closeHTTPGateway() {
	if b.httpgw != nil {
		b.httpgw.Stop()
	}
}
