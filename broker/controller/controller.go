package controller

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/broker/config"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/tlsconf"
	"github.com/mqops/mqops/wire"
)

// Peer is one member of controllerDLegerPeers.
type Peer = config.ControllerPeer

// Security is what a node checks and proves on its remoting side.
type Security struct {
	// ACL checks brokers' and tools' requests (aclEnable; nil: off) with
	// acl.ControllerTable: reads open, changes for admin accounts.
	ACL *acl.Gate
	// TLSMode (tlsServerMode) and TLS, the certificate: remoting
	// connections are sniffed as on the other daemons' ports, and Raft
	// streams between nodes use TLS too unless the mode is disabled
	// (raftTLS).
	TLSMode string
	TLS     *tls.Config
	// Credentials (innerClientAuthenticationCredentials) sign what the
	// node sends to brokers: NOTIFY_BROKER_ROLE_CHANGED.
	Credentials wire.Credentials
}

// Start runs a node from its configuration keys: TCP on the node's peer
// address, BoltDB and snapshot files under controllerStorePath.
func Start(s *config.ControllerSettings, scanNotActiveBroker time.Duration, sec Security, log *slog.Logger) (*Controller, error) {
	peers, err := config.ParseControllerPeers(s.Peers)
	if err != nil {
		return nil, fmt.Errorf("controllerDLegerPeers: %w", err)
	}
	// controllerType=DLedger only says which keys configure the group
	// (config refuses jRaft); the consensus is hashicorp/raft either way.
	log.Info("[CONTROLLER] starting", "controllerType", s.Type, "group", s.Group, "self", s.SelfID, "peers", s.Peers, "storePath", s.StorePath)
	c, err := New(Options{
		Group: s.Group, SelfID: s.SelfID, Peers: peers, StorePath: s.StorePath,
		EnableElectUncleanMaster: s.EnableElectUncleanMaster, NotifyBrokerRoleChanged: s.NotifyBrokerRoleChanged,
		ScanNotActiveBroker: scanNotActiveBroker, ScanInactiveMaster: time.Duration(s.ScanInactiveMasterInterval) * time.Millisecond,
		ElectMaxRetry: int(s.ElectMasterMaxRetryCount), Security: sec, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	c.Serve()
	return c, nil
}

// Options configure one controller node.
type Options struct {
	Group     string // controllerDLegerGroup
	SelfID    string // controllerDLegerSelfId
	Peers     []Peer // controllerDLegerPeers
	StorePath string // controllerStorePath: Raft log, stable store, snapshots

	EnableElectUncleanMaster bool
	NotifyBrokerRoleChanged  bool
	// ScanNotActiveBroker expires silent replicas; ScanInactiveMaster
	// re-elects sets whose master is gone while a replica lives.
	ScanNotActiveBroker time.Duration
	ScanInactiveMaster  time.Duration
	ElectMaxRetry       int
	// LeaderGrace suppresses elections triggered by inactivity right after
	// this node becomes leader, while its heartbeat table fills; a closed
	// connection still triggers one. Zero means 10 s, the brokers' default
	// controllerHeartBeatTimeoutMills.
	LeaderGrace time.Duration

	Security
	Logger *slog.Logger

	// Tests run nodes on hashicorp's in-memory transport and stores;
	// production leaves these nil and gets TCP, BoltDB and files.
	Transport raft.Transport
	LogStore  raft.LogStore
	Stable    raft.StableStore
	Snapshots raft.SnapshotStore
	// Clock drives heartbeat liveness and the leader grace period; tests
	// move it instead of sleeping. Nil is the wall clock.
	Clock func() time.Time
}

// applyTimeout bounds one write (Java's ControllerRequestProcessor waits 5 s).
const applyTimeout = 5 * time.Second

// electRetryDelay spaces controller-triggered election retries.
const electRetryDelay = 3 * time.Second

// Controller is one node of the controller group.
type Controller struct {
	opts Options
	log  *slog.Logger
	fsm  *fsm
	live *liveTable
	raft *raft.Raft

	mux    *muxListener
	trans  io.Closer // the TCP transport, nil in memory
	server *remoting.Server
	closer []io.Closer

	unclean     atomic.Bool  // enableElectUncleanMaster, changeable at run time
	notify      atomic.Bool  // notifyBrokerRoleChanged, likewise
	ready       atomic.Bool  // leader and caught up (Barrier done)
	leaderSince atomic.Int64 // unix nanos when this node last became ready
	stop        chan struct{}
	wg          sync.WaitGroup
	electing    sync.Map // brokerName -> struct{}: one trigger at a time
}

// New builds a node and starts Raft; Serve starts the network side.
func New(opts Options) (*Controller, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.ScanNotActiveBroker <= 0 {
		opts.ScanNotActiveBroker = 5 * time.Second
	}
	if opts.ScanInactiveMaster <= 0 {
		opts.ScanInactiveMaster = 5 * time.Second
	}
	if opts.ElectMaxRetry <= 0 {
		opts.ElectMaxRetry = 3
	}
	if opts.LeaderGrace <= 0 {
		opts.LeaderGrace = 10 * time.Second
	}
	c := &Controller{opts: opts, log: opts.Logger, fsm: newFSM(), live: newLiveTable(), stop: make(chan struct{})}
	if opts.Clock != nil {
		c.live.now = opts.Clock
	}
	c.unclean.Store(opts.EnableElectUncleanMaster)
	c.notify.Store(opts.NotifyBrokerRoleChanged)
	var self *Peer
	for i := range opts.Peers {
		if opts.Peers[i].ID == opts.SelfID {
			self = &opts.Peers[i]
		}
	}
	if self == nil {
		return nil, fmt.Errorf("controllerDLegerSelfId %q is not in controllerDLegerPeers", opts.SelfID)
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Info, Output: &slogWriter{log: c.log}, DisableTime: true})

	if opts.Transport == nil {
		// Every interface on the peer's port, as DLedger's server binds:
		// the peer address may name an interface or a NAT'd address.
		_, port, err := net.SplitHostPort(self.Addr)
		if err != nil {
			return nil, fmt.Errorf("controller peer address %q: %w", self.Addr, err)
		}
		ln, err := net.Listen("tcp", ":"+port)
		if err != nil {
			return nil, fmt.Errorf("controller listen on port %s: %w", port, err)
		}
		rt := newRaftTLS(tlsMode(opts.TLSMode), opts.TLS)
		c.mux = newMux(ln, rt, c.log)
		nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: &streamLayer{chanListener: c.mux.raft, advertise: tcpAddr(self.Addr), tls: rt.client}, MaxPool: 3,
			Timeout: 10 * time.Second, Logger: hlog,
		})
		c.trans, opts.Transport = nt, nt
		remote, err := remoting.TLSListener(c.mux.remote, tlsMode(opts.TLSMode), opts.TLS, firstByteTimeout, c.log)
		if err != nil {
			c.closeNet()
			return nil, fmt.Errorf("controller: %w", err)
		}
		c.server = remoting.NewServer(remote, c, c.log)
	}
	if opts.LogStore == nil {
		if err := os.MkdirAll(opts.StorePath, 0o755); err != nil {
			c.closeNet()
			return nil, fmt.Errorf("controller store %s: %w", opts.StorePath, err)
		}
		// bbolt waits forever for the file lock by default: a second node
		// started on the same store must fail, not hang.
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(opts.StorePath, "raft.db"), BoltOptions: &bbolt.Options{Timeout: 3 * time.Second}})
		if err != nil {
			c.closeNet()
			return nil, fmt.Errorf("controller raft log %s: %w", opts.StorePath, err)
		}
		c.closer = append(c.closer, bolt)
		opts.LogStore, opts.Stable = bolt, bolt
		snaps, err := raft.NewFileSnapshotStoreWithLogger(opts.StorePath, 2, hlog)
		if err != nil {
			c.closeNet()
			return nil, fmt.Errorf("controller snapshots %s: %w", opts.StorePath, err)
		}
		opts.Snapshots = snaps
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(opts.SelfID)
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 250 * time.Millisecond
	rc.SnapshotThreshold = 1024
	rc.TrailingLogs = 1024
	rc.Logger = hlog

	existing, err := raft.HasExistingState(opts.LogStore, opts.Stable, opts.Snapshots)
	if err != nil {
		c.closeNet()
		return nil, fmt.Errorf("controller raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, c.fsm, opts.LogStore, opts.Stable, opts.Snapshots, opts.Transport)
	if err != nil {
		c.closeNet()
		return nil, fmt.Errorf("controller raft: %w", err)
	}
	c.raft = r
	if !existing {
		var cfg raft.Configuration
		for _, p := range opts.Peers {
			cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		// Every node bootstraps with the same list; once any state exists
		// this is refused, which is the point.
		if err := r.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			c.Close()
			return nil, fmt.Errorf("controller bootstrap: %w", err)
		}
	}
	c.opts = opts
	c.wg.Add(2)
	go c.watchLeadership()
	go c.scanLoop()
	return c, nil
}

// newRaftTLS is the Raft streams' TLS for a node in mode with server, its
// certificate (nil when disabled). Dialling does not verify the peer's
// certificate, as Java's TLS clients by default (tls.client.authServer
// false, apache/rocketmq
// remoting/src/main/java/org/apache/rocketmq/remoting/netty/TlsSystemConfig.java):
// the self-signed certificates of tlsTestModeEnable differ on every node.
// The streams are encrypted, not authenticated: keep the peer addresses
// on a private network.
func newRaftTLS(mode string, server *tls.Config) *raftTLS {
	rt := &raftTLS{plainRaft: mode != tlsconf.Enforcing}
	if mode != tlsconf.Disabled && server != nil {
		rt.server = server
		rt.client = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	}
	return rt
}

// tlsMode is mode, "" (tests, in memory) being disabled.
func tlsMode(mode string) string {
	if mode == "" {
		return tlsconf.Disabled
	}
	return mode
}

// Serve starts accepting controller connections on the peer address.
// It returns at once; Close stops it.
func (c *Controller) Serve() {
	if c.mux == nil {
		return
	}
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.mux.serve() }()
	go func() {
		defer c.wg.Done()
		_ = c.server.Serve(func(conn *remoting.Conn) {
			conn.OnClose(c.onConnClose)
		})
	}()
}

// Addr is this node's address in controllerDLegerPeers, where brokers
// and peers reach it.
func (c *Controller) Addr() string {
	for _, p := range c.opts.Peers {
		if p.ID == c.opts.SelfID {
			return p.Addr
		}
	}
	return ""
}

func (c *Controller) closeNet() {
	if c.trans != nil {
		_ = c.trans.Close()
	}
	if c.mux != nil {
		c.mux.close()
	}
	for _, cl := range c.closer {
		_ = cl.Close()
	}
}

// Close stops the node.
func (c *Controller) Close() {
	select {
	case <-c.stop:
		return
	default:
		close(c.stop)
	}
	if c.raft != nil {
		_ = c.raft.Shutdown().Error()
	}
	// The TCP transport first, so that its accept loop sees a shutdown
	// rather than a failing listener.
	if c.trans != nil {
		_ = c.trans.Close()
	}
	if c.server != nil {
		c.server.Close()
	}
	if c.mux != nil {
		c.mux.close()
	}
	c.wg.Wait()
	for _, cl := range c.closer {
		_ = cl.Close()
	}
}

// IsLeader reports whether this node leads and has applied everything
// committed before it took over.
func (c *Controller) IsLeader() bool { return c.ready.Load() }

// watchLeadership marks the node ready once, as a new leader, it has
// applied every earlier entry (Barrier), which DLedgerController does by
// committing an empty entry first.
func (c *Controller) watchLeadership() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case leader := <-c.raft.LeaderCh():
			c.ready.Store(false)
			if !leader {
				c.log.Info("[CONTROLLER] no longer the controller leader", "self", c.opts.SelfID)
				continue
			}
			if err := c.raft.Barrier(applyTimeout).Error(); err != nil {
				c.log.Warn("[CONTROLLER] barrier after election failed", "err", err)
				continue
			}
			if c.raft.State() == raft.Leader {
				c.leaderSince.Store(c.live.now().UnixNano())
				c.ready.Store(true)
				c.log.Info("[CONTROLLER] this node is the controller leader", "self", c.opts.SelfID, "group", c.opts.Group)
			}
		}
	}
}

// leader returns the current leader's id and address, empty if unknown.
func (c *Controller) leader() (string, string) {
	addr, id := c.raft.LeaderWithID()
	return string(id), string(addr)
}

// propose appends cmd to the log and returns Apply's answer.
func (c *Controller) propose(cmd *command) *result {
	if !c.ready.Load() {
		return c.notLeader()
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return fail(wire.SystemError, "encode controller command: %v", err)
	}
	f := c.raft.Apply(b, applyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return c.notLeader()
		}
		return fail(wire.SystemError, "controller log append failed: %v", err)
	}
	res, ok := f.Response().(*result)
	if !ok {
		return fail(wire.SystemError, "controller log entry has no result")
	}
	return res
}

func (c *Controller) notLeader() *result {
	id, addr := c.leader()
	return fail(wire.ControllerNotLeader, "The controller is not in leader state, leader is %s (%s)", id, addr)
}

// slogWriter carries hashicorp's log lines ("[WARN]  raft: ...") into the
// process log at their own level.
type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	for line := range strings.Lines(string(p)) {
		line = strings.TrimSpace(line)
		level := slog.LevelInfo
		for tag, l := range map[string]slog.Level{"[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelInfo, "[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug} {
			if rest, ok := strings.CutPrefix(line, tag); ok {
				level, line = l, strings.TrimSpace(rest)
				break
			}
		}
		if line != "" {
			w.log.Log(context.Background(), level, "[RAFT] "+line)
		}
	}
	return len(p), nil
}
