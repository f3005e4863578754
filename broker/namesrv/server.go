// Package namesrv is mqops's name server: the directory brokers register
// with and clients ask for topic routes, speaking RocketMQ's remoting
// protocol as the Java 4.9.8 name server does (apache/rocketmq
// rocketmq-all-4.9.8 namesrv/src/main/java/org/apache/rocketmq/namesrv).
package namesrv

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/tlsconf"
)

// Defaults of Java's name server.
const (
	DefaultListenAddr   = ":9876"
	DefaultScanInterval = 10 * time.Second
	DefaultBrokerExpiry = 120 * time.Second
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	ListenAddr         string        // default ":9876"
	KVConfigPath       string        // default ~/namesrv/kvConfig.json
	OrderMessageEnable bool          // add orderTopicConf to routes
	ScanInterval       time.Duration // how often expired brokers are looked for
	BrokerExpiry       time.Duration // a broker silent this long is removed
	Logger             *slog.Logger  // default slog.Default()
	ACL                *acl.Gate     // checks requests before dispatch (aclEnable); nil serves everyone
	// TLSMode is tlsServerMode (default disabled); TLS its certificate,
	// needed unless disabled.
	TLSMode string
	TLS     *tls.Config
	Limits  remoting.Limits
}

// Server is a running name server.
type Server struct {
	opts   Options
	log    *slog.Logger
	routes *routeTable
	kv     *kvStore

	// Runtime-updatable settings (UPDATE_NAMESRV_CONFIG).
	orderMessageEnable atomic.Bool
	scanInterval       atomic.Int64 // time.Duration
	brokerExpiry       atomic.Int64 // time.Duration

	rs        *remoting.Server
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New builds a server and loads the KV config; it does not listen yet.
func New(o Options) (*Server, error) {
	if o.ListenAddr == "" {
		o.ListenAddr = DefaultListenAddr
	}
	if o.ScanInterval <= 0 {
		o.ScanInterval = DefaultScanInterval
	}
	if o.BrokerExpiry <= 0 {
		o.BrokerExpiry = DefaultBrokerExpiry
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.KVConfigPath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("namesrv: default kvConfigPath: %w", err)
		}
		o.KVConfigPath = filepath.Join(home, "namesrv", "kvConfig.json")
	}
	kv, err := loadKV(o.KVConfigPath)
	if err != nil {
		return nil, fmt.Errorf("namesrv: %w", err)
	}
	s := &Server{
		opts:   o,
		log:    o.Logger,
		routes: newRouteTable(),
		kv:     kv,
		stop:   make(chan struct{}),
	}
	s.orderMessageEnable.Store(o.OrderMessageEnable)
	s.scanInterval.Store(int64(o.ScanInterval))
	s.brokerExpiry.Store(int64(o.BrokerExpiry))
	return s, nil
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	if s.rs != nil {
		return errors.New("namesrv: already started")
	}
	mode := s.opts.TLSMode
	if mode == "" {
		mode = tlsconf.Disabled
	}
	rs, err := remoting.ListenTLS(s.opts.ListenAddr, mode, s.opts.TLS, s, s.log)
	if err != nil {
		return fmt.Errorf("namesrv: %w", err)
	}
	rs.SetLimits(s.opts.Limits)
	s.rs = rs
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := rs.Serve(s.onAccept); err != nil {
			s.log.Error("name server stopped accepting", "err", err)
		}
	}()
	go s.scanLoop()
	s.log.Info("name server started", "addr", rs.Addr().String(), "kvConfigPath", s.kv.path)
	return nil
}

// Addr is the bound address, nil before Start.
func (s *Server) Addr() net.Addr {
	if s.rs == nil {
		return nil
	}
	return s.rs.Addr()
}

// Close stops the scan loop, closes the listener and every connection, and
// waits for them.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		if s.rs != nil {
			s.rs.Close()
		}
		s.wg.Wait()
		s.log.Info("name server stopped")
	})
}

// onAccept tracks, per connection, which brokers registered over it so that
// they can be dropped as soon as it closes.
func (s *Server) onAccept(c *remoting.Conn) {
	c.Attachment.Store(&connBrokers{addrs: make(map[string]struct{})})
	c.OnClose(s.connClosed)
}

func connBrokersOf(c *remoting.Conn) *connBrokers {
	cb, _ := c.Attachment.Load().(*connBrokers)
	return cb
}

func (s *Server) connClosed(c *remoting.Conn) {
	cb := connBrokersOf(c)
	if cb == nil {
		return
	}
	for _, rm := range s.routes.connClosed(c, cb) {
		s.log.Warn("[BROKER_CHANNEL_CLOSED] broker connection closed, removed",
			"brokerAddr", rm.addr, "brokerName", rm.brokerName, "groupRemoved", rm.groupGone,
			"remote", c.RemoteAddr().String())
	}
}

// scanLoop removes expired brokers. The timer is re-armed from the current
// setting so that UPDATE_NAMESRV_CONFIG can change the period.
func (s *Server) scanLoop() {
	defer s.wg.Done()
	t := time.NewTimer(time.Duration(s.scanInterval.Load()))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.expireBrokers(time.Now())
		t.Reset(time.Duration(s.scanInterval.Load()))
	}
}

// expireBrokers drops brokers silent for longer than the expiry and closes
// connections no live broker uses any more: a broker that stopped
// registering but kept its connection is likely wedged, and Java closes it.
func (s *Server) expireBrokers(now time.Time) {
	expiry := time.Duration(s.brokerExpiry.Load())
	removed, conns := s.routes.expire(now, expiry)
	for _, rm := range removed {
		s.log.Warn("[BROKER_EXPIRED] broker registration expired, removed",
			"brokerAddr", rm.addr, "brokerName", rm.brokerName, "groupRemoved", rm.groupGone, "expiry", expiry)
	}
	for _, c := range conns {
		c.Close()
	}
}
