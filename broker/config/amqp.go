package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mqops/mqops/tlsconf"
)

// AMQPGateway is the configuration of the AMQP 0-9-1 gateway mqamqp
// (amqp.conf). Each field's comment starts with its key.
type AMQPGateway struct {
	ListenPort  int    // listenPort, default 5672; 0 binds any free port
	BindAddress string // bindAddress, default 0.0.0.0
	NamesrvAddr string // namesrvAddr, "ip:port;ip:port": where vhosts' home brokers are found
	// heartbeat, seconds, proposed in connection.tune (RabbitMQ's 60); 0 off.
	Heartbeat int
	FrameMax  int64 // frameMax, bytes, proposed in connection.tune (131072)
	// channelMax proposed in connection.tune (2047, RabbitMQ's default).
	ChannelMax int
	// handshakeTimeout, ms: a socket that has not sent connection.open by
	// then is closed (RabbitMQ's 10 s).
	HandshakeTimeout int64
	// maxMessageSize, bytes: a larger body closes the channel with 406
	// (default 4 MiB, the broker's maxMessageSize).
	MaxMessageSize int64
	MaxConnections int // maxConnections, 0 unlimited
	// loopbackUsers, comma-separated: users that may log in only from a
	// loopback address (RabbitMQ's loopback_users); default guest, ""
	// none.
	LoopbackUsers string
	// consumeTimeout, ms: a delivery not acknowledged by then goes back to
	// its queue and the consumer is cancelled (or its channel closed),
	// unless the queue sets x-consumer-timeout (default 15 min).
	ConsumeTimeout int64
	// memoryHighWatermark, bytes: publish bodies buffered in the gateway
	// (read, not yet answered by a broker) above which publishing
	// connections are blocked (connection.blocked) until they drain;
	// default 256 MiB, 0 off.
	MemoryHighWatermark int64
	// requeueMode: graded (default) sends nack/reject with requeue
	// through the broker's graded retry delays; immediate puts the
	// message back at once, as RabbitMQ does.
	RequeueMode string
	// globalQos: true (default) gives basic.qos global=1 RabbitMQ 3.x's
	// meaning, one window shared by the channel's consumers; false treats
	// it as global=0, as RabbitMQ 4.3 does by default.
	GlobalQos bool
	// drainTimeout, ms: on SIGTERM the gateway stops accepting, lets each
	// connection's publishes be answered and closes it with 320
	// CONNECTION_FORCED (clients with recovery reconnect elsewhere); what
	// is left after this long is cut off (default 10 s, 0 at once).
	DrainTimeout int64
	// statsListenAddr, host:port: where the gateway serves its own
	// figures as JSON (GET /stats; connections, channels, publish and
	// delivery counters) for monitoring; "" (default) off.
	StatsListenAddr string
	// tlsListenAddr, host:port: a second listener speaking AMQP over TLS
	// (amqps, RabbitMQ's 5671), with the certificate and unencrypted key
	// of tlsCertPath and tlsKeyPath (PEM); "" (default) off. tlsCaPath,
	// PEM, makes it require client certificates signed by that CA
	// (RabbitMQ's verify_peer with fail_if_no_peer_cert).
	TLSListenAddr string
	TLSCertPath   string
	TLSKeyPath    string
	TLSCaPath     string
	AccessKey     string // accessKey of the broker ACL account the gateway signs with
	SecretKey     string // secretKey of that account
	LogDir        string // logDir, default $HOME/logs/rocketmqlogs

	kept
}

var amqpGatewaySchema = schema{}

// LoadAMQPGateway reads path (may be "") with overrides applied and
// validates. Warnings name unknown keys and keys accepted with no effect.
func LoadAMQPGateway(path string, overrides map[string]string) (*AMQPGateway, []string, error) {
	g := &AMQPGateway{
		ListenPort:          5672,
		BindAddress:         "0.0.0.0",
		Heartbeat:           60,
		FrameMax:            131072,
		ChannelMax:          2047,
		HandshakeTimeout:    10000,
		MaxMessageSize:      4 << 20,
		LoopbackUsers:       "guest",
		ConsumeTimeout:      900000,
		MemoryHighWatermark: 256 << 20,
		DrainTimeout:        10000,
		RequeueMode:         "graded",
		GlobalQos:           true,
		LogDir:              underHome(homeDir(), "logs", "rocketmqlogs"),
	}
	warnings, err := load(g, path, overrides)
	if err != nil {
		return nil, warnings, err
	}
	return g, warnings, nil
}

// LoopbackUserList is loopbackUsers split at commas, blanks dropped.
func (g *AMQPGateway) LoopbackUserList() []string {
	var out []string
	for _, u := range strings.Split(g.LoopbackUsers, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// NamesrvList is namesrvAddr split at semicolons, blanks dropped.
func (g *AMQPGateway) NamesrvList() []string {
	var out []string
	for _, a := range strings.Split(g.NamesrvAddr, ";") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// DrainTimeoutDuration is drainTimeout as a duration.
func (g *AMQPGateway) DrainTimeoutDuration() time.Duration {
	return time.Duration(g.DrainTimeout) * time.Millisecond
}

// HandshakeTimeoutDuration is handshakeTimeout as a duration.
func (g *AMQPGateway) HandshakeTimeoutDuration() time.Duration {
	return time.Duration(g.HandshakeTimeout) * time.Millisecond
}

func (g *AMQPGateway) keys() []key {
	return []key{
		integer("listenPort", &g.ListenPort, javaInt, listenPort),
		str("bindAddress", &g.BindAddress, hostOrIP),
		str("namesrvAddr", &g.NamesrvAddr, addressList),
		integer("heartbeat", &g.Heartbeat, javaInt, between(0, 65535)),
		// AMQP's frame-min-size is 4096; a u32 on the wire.
		integer("frameMax", &g.FrameMax, javaLong, between(4096, 1<<31-1)),
		integer("channelMax", &g.ChannelMax, javaInt, between(1, 65535)),
		integer("handshakeTimeout", &g.HandshakeTimeout, javaLong, positive),
		integer("maxMessageSize", &g.MaxMessageSize, javaLong, between(1, 512<<20)),
		integer("maxConnections", &g.MaxConnections, javaInt, between(0, 1<<31-1)),
		str("loopbackUsers", &g.LoopbackUsers, nil),
		integer("consumeTimeout", &g.ConsumeTimeout, javaLong, positive),
		integer("memoryHighWatermark", &g.MemoryHighWatermark, javaLong, between(0, 1<<62)),
		integer("drainTimeout", &g.DrainTimeout, javaLong, between(0, 3600000)),
		str("requeueMode", &g.RequeueMode, oneOf("graded", "immediate")),
		boolean("globalQos", &g.GlobalQos),
		str("statsListenAddr", &g.StatsListenAddr, listenAddr),
		str("tlsListenAddr", &g.TLSListenAddr, listenAddr),
		str("tlsCertPath", &g.TLSCertPath, nil),
		str("tlsKeyPath", &g.TLSKeyPath, nil),
		str("tlsCaPath", &g.TLSCaPath, nil),
		str("accessKey", &g.AccessKey, nil),
		{name: "secretKey", secret: true, get: func() string { return g.SecretKey }, set: func(s string) error { g.SecretKey = s; return nil }},
		str("logDir", &g.LogDir, nonEmpty),
	}
}

func (g *AMQPGateway) schema() schema { return amqpGatewaySchema }
func (g *AMQPGateway) state() *kept   { return &g.kept }

func (g *AMQPGateway) finish() ([]string, error) {
	if err := validate(g.keys()); err != nil {
		return nil, err
	}
	var warnings []string
	switch {
	case g.TLSListenAddr != "" && (g.TLSCertPath == "" || g.TLSKeyPath == ""):
		return nil, errors.New("tlsListenAddr needs tlsCertPath and tlsKeyPath")
	case g.TLSListenAddr == "" && (g.TLSCertPath != "" || g.TLSKeyPath != "" || g.TLSCaPath != ""):
		warnings = append(warnings, "tlsCertPath, tlsKeyPath and tlsCaPath have no effect without tlsListenAddr (AMQP over TLS is off)")
	}
	return warnings, nil
}

// TLSConfig is the amqps listener's TLS configuration, nil when
// tlsListenAddr is off. Files that cannot be loaded are an error naming
// the keys.
func (g *AMQPGateway) TLSConfig() (*tls.Config, error) {
	if g.TLSListenAddr == "" {
		return nil, nil
	}
	cfg, err := tlsconf.Server(g.TLSCertPath, g.TLSKeyPath, false, nil) // errors name the keys
	if err != nil {
		return nil, err
	}
	if g.TLSCaPath != "" {
		pem, err := os.ReadFile(g.TLSCaPath)
		if err != nil {
			return nil, fmt.Errorf("tlsCaPath: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tlsCaPath = %s: no PEM certificate in it", g.TLSCaPath)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// listenAddr checks a host:port to bind ("" off; port 0 any free port).
func listenAddr(s string) error {
	if s == "" {
		return nil
	}
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port, e.g. 127.0.0.1:15680")
	}
	if err := hostOrIP(host); err != nil {
		return fmt.Errorf("host %q: %w", host, err)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want 0-65535", p)
	}
	return nil
}
