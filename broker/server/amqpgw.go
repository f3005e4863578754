package server

import (
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/amqp/gateway"
	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
	"google.golang.org/grpc/test/bufconn"
)

// amqpCallTimeout bounds the embedded gateway's requests, as mqamqp's.
const amqpCallTimeout = 5 * time.Second

// localPipeSize is each direction's buffer on the in-process connection,
// about what the kernel gives a loopback TCP socket.
const localPipeSize = 4 << 20

// openAMQPGateway binds the embedded AMQP gateway's port
// (enableAmqpGateway). It is mqamqp's gateway with one difference: its
// requests to this broker go over an in-process connection
// to the same handlers, ACL gate and admission as TCP requests, so a
// publish and its confirm cost no socket calls between gateway and broker,
// only goroutine hand-offs (RocketMQ 5's proxy calls its broker in
// process the same way in its local mode). Vhosts homed on other
// brokers are reached over TCP through the name servers, as mqamqp does.
func (b *Broker) openAMQPGateway() error {
	cfg := b.cfg
	if !cfg.EnableAMQPGateway {
		return nil
	}
	gc, warnings, err := config.LoadAMQPGateway(cfg.AMQPGatewayConfig, map[string]string{
		"listenPort": strconv.Itoa(cfg.AMQPListenPort), "bindAddress": cfg.BindAddress, "namesrvAddr": cfg.NamesrvAddr,
	})
	if err != nil {
		return fmt.Errorf("amqpGatewayConfig: %w", err)
	}
	for _, w := range warnings {
		b.log.Warn("[CONFIG] amqpGatewayConfig: " + w)
	}
	// The gateway signs as mqamqp does: its own account if its config
	// names one, else the broker's inner credentials.
	creds := wire.Credentials{AccessKey: gc.AccessKey, SecretKey: gc.SecretKey}
	if creds.IsEmpty() {
		creds, _ = config.ParseCredentials(cfg.InnerClientAuthenticationCredentials)
	}
	if cfg.AclEnable && creds.IsEmpty() {
		b.log.Warn("[ACL] the embedded AMQP gateway has no account to sign with (amqpGatewayConfig's accessKey/secretKey or innerClientAuthenticationCredentials): with aclEnable its requests are refused")
	}
	// grpc-go's bufconn is an in-memory net.Conn pair with a socket's
	// semantics: buffered both ways (a writer does not wait for the
	// reader, as over TCP; net.Pipe's synchronous writes deadlocked the
	// two read loops answering each other), deadlines, EOF on close.
	b.localLn = &localListener{Listener: bufconn.Listen(localPipeSize)}
	b.local = remoting.NewServer(b.localLn, b, b.log)
	b.local.SetLimits(cfg.Conn.Remoting())
	backend := gateway.NewRemote(gc.NamesrvList(), creds, amqpCallTimeout, b.log)
	backend.SetLocal(b.addr, b.localLn.Dial)
	srv, err := gateway.ListenConfig(gc, embeddedBackend{Remote: backend, b: b}, b.log)
	if err != nil {
		backend.Close()
		b.local.Close()
		return fmt.Errorf("AMQP gateway (enableAmqpGateway): %w", err)
	}
	b.amqpgw, b.amqpBackend, b.amqpDrain = srv, backend, gc.DrainTimeoutDuration()
	return nil
}

// embeddedBackend is the embedded gateway's Backend: a publish to a vhost
// homed on this broker (its master) is served by a call (publishLocal),
// the rest as mqamqp sends it, over the in-process connection or TCP.
type embeddedBackend struct {
	*gateway.Remote
	b *Broker
}

func (e embeddedBackend) Call(vhost string, code int32, req, resp any) error {
	r, ok := req.(wire.AMQPPublishRequest)
	out, ok2 := resp.(*wire.AMQPPublishResponse)
	if !ok || !ok2 || code != wire.AMQPPublish || e.b.isSlave() || !e.IsLocal(vhost) {
		return e.Remote.Call(vhost, code, req, resp)
	}
	res, err := e.b.publishLocal(&r)
	if err != nil {
		return err
	}
	out.Results = append(out.Results[:0], res...)
	return nil
}

// localListener is bufconn's listener with the closed error
// remoting.Server.Serve stops on: bufconn's own Accept after Close fails
// with an error of its own, which Serve would retry for ever.
type localListener struct {
	*bufconn.Listener
	closed atomic.Bool
}

func (l *localListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && l.closed.Load() {
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *localListener) Close() error {
	l.closed.Store(true)
	return l.Listener.Close()
}

// AMQPGatewayAddr is the embedded AMQP gateway's address as clients reach
// it (brokerIP1:port), "" without enableAmqpGateway.
func (b *Broker) AMQPGatewayAddr() string {
	if b.amqpgw == nil {
		return ""
	}
	return net.JoinHostPort(b.cfg.BrokerIP1, strconv.Itoa(b.amqpgw.Addr().(*net.TCPAddr).Port))
}

func (b *Broker) startAMQPGateway() {
	if b.amqpgw == nil {
		return
	}
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		if err := b.local.Serve(b.onAccept); err != nil {
			b.log.Error("[SERVE] in-process accept loop stopped", "err", err)
		}
	}()
	go func() {
		defer b.wg.Done()
		b.amqpgw.Serve()
	}()
	b.log.Info("serving the AMQP 0-9-1 gateway (enableAmqpGateway)", "addr", b.AMQPGatewayAddr())
	if a := b.amqpgw.TLSAddr(); a != nil {
		b.log.Info("serving AMQP over TLS (amqpGatewayConfig tlsListenAddr)", "addr", a.String())
	}
}

// closeAMQPGateway closes the gateway's connections first, then the
// in-process connection they used.
func (b *Broker) closeAMQPGateway() {
	if b.amqpgw == nil {
		return
	}
	// The broker still serves: the connections' last publishes are
	// stored and confirmed before their 320.
	b.amqpgw.Shutdown(b.amqpDrain)
	b.amqpBackend.Close()
	b.local.Close()
}
