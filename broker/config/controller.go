package config

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mqops/mqops/wire"
)

// ControllerSettings are RocketMQ 5's controller keys (apache/rocketmq 5.x
// common/src/main/java/org/apache/rocketmq/common/ControllerConfig.java),
// read by mqcontroller and by a name server with enableControllerInNamesrv.
// scanNotActiveBrokerInterval is not here: the name server has its own key
// of that name, which Java's NamesrvStartup also feeds to the controller.
type ControllerSettings struct {
	Group  string // controllerDLegerGroup
	Peers  string // controllerDLegerPeers: n0-127.0.0.1:9878;n1-127.0.0.1:9868;...
	SelfID string // controllerDLegerSelfId
	// controllerStorePath, default $HOME/DLedgerController: Raft log,
	// stable store and snapshots.
	StorePath                  string
	EnableElectUncleanMaster   bool   // enableElectUncleanMaster
	NotifyBrokerRoleChanged    bool   // notifyBrokerRoleChanged, default true
	ScanInactiveMasterInterval int64  // scanInactiveMasterInterval, ms, default 5000
	ElectMasterMaxRetryCount   int64  // electMasterMaxRetryCount, default 3
	Type                       string // controllerType: DLedger only (jRaft is refused)
	// innerClientAuthenticationCredentials (the broker's key): JSON
	// {"accessKey","secretKey"} the controller signs what it sends to
	// brokers with (NOTIFY_BROKER_ROLE_CHANGED), so that brokers with
	// aclEnable need not white-list controllers.
	InnerClientAuthenticationCredentials string
}

func defaultControllerSettings(home string) ControllerSettings {
	return ControllerSettings{
		StorePath:                  underHome(home, "DLedgerController"),
		NotifyBrokerRoleChanged:    true,
		ScanInactiveMasterInterval: 5000,
		ElectMasterMaxRetryCount:   3,
		Type:                       "DLedger",
	}
}

func (c *ControllerSettings) keys() []key {
	return []key{
		str("controllerDLegerGroup", &c.Group, nil),
		str("controllerDLegerPeers", &c.Peers, nil),
		str("controllerDLegerSelfId", &c.SelfID, nil),
		str("controllerStorePath", &c.StorePath, nil),
		boolean("enableElectUncleanMaster", &c.EnableElectUncleanMaster),
		boolean("notifyBrokerRoleChanged", &c.NotifyBrokerRoleChanged),
		integer("scanInactiveMasterInterval", &c.ScanInactiveMasterInterval, javaLong, positive),
		integer("electMasterMaxRetryCount", &c.ElectMasterMaxRetryCount, javaInt, positive),
		str("controllerType", &c.Type, controllerType),
		credentials("innerClientAuthenticationCredentials", &c.InnerClientAuthenticationCredentials),
	}
}

// controllerType accepts DLedger, whose keys this controller reads; the
// jRaft controller has other keys and a Hessian state this one cannot use.
func controllerType(s string) error {
	if strings.EqualFold(s, "DLedger") {
		return nil
	}
	if strings.EqualFold(s, "jRaft") {
		return errors.New("the jRaft controller is not supported: mqops's controller reads the DLedger keys (controllerDLegerGroup, controllerDLegerPeers, controllerDLegerSelfId); use controllerType=DLedger")
	}
	return errors.New("want DLedger")
}

// check validates the keys a running controller needs.
func (c *ControllerSettings) check() error {
	if c.Group == "" {
		return errors.New("controllerDLegerGroup must be set")
	}
	if c.StorePath == "" {
		return errors.New("controllerStorePath must be set (no home directory for the default)")
	}
	peers, err := ParseControllerPeers(c.Peers)
	if err != nil {
		return fmt.Errorf("controllerDLegerPeers = %q: %w", c.Peers, err)
	}
	for _, p := range peers {
		if p.ID == c.SelfID {
			return nil
		}
	}
	return fmt.Errorf("controllerDLegerSelfId = %q is not one of the ids in controllerDLegerPeers", c.SelfID)
}

// ControllerPeer is one member of controllerDLegerPeers.
type ControllerPeer struct {
	ID   string // n0
	Addr string // 127.0.0.1:9878
}

// ParseControllerPeers reads DLedger's "n0-127.0.0.1:9878;n1-127.0.0.1:9868"
// (id, '-', host:port; ';' between peers).
func ParseControllerPeers(s string) ([]ControllerPeer, error) {
	var out []ControllerPeer
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "-")
		if !ok || id == "" {
			return nil, fmt.Errorf("peer %q: want id-host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %q: %w", part, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("peer id %q listed twice", id)
		}
		seen[id] = true
		out = append(out, ControllerPeer{ID: id, Addr: addr})
	}
	if len(out) == 0 {
		return nil, errors.New("no peers")
	}
	return out, nil
}

// Controller is mqcontroller's configuration (controller.conf).
type Controller struct {
	ControllerSettings
	// scanNotActiveBrokerInterval, ms, default 5000: heartbeat expiry scan.
	ScanNotActiveBrokerInterval int64
	LogDir                      string // logDir (ours, not Java's), default $HOME/logs/rocketmqlogs
	// aclEnable and aclFile, as the broker's: brokers' and tools' requests
	// are checked with broker/acl's controller table (reads open, changes
	// for admin accounts).
	AclEnable bool
	AclFile   string
	// TLS of the controller port's remoting side, as the other daemons'.
	ServerTLS

	kept
}

// LoadController reads path (may be "" for defaults only), applies
// overrides and validates, like LoadNamesrv.
func LoadController(path string, overrides map[string]string) (*Controller, []string, error) {
	home := homeDir()
	c := &Controller{
		ControllerSettings:          defaultControllerSettings(home),
		ScanNotActiveBrokerInterval: 5000,
		LogDir:                      underHome(home, "logs", "rocketmqlogs"),
		ServerTLS:                   defaultServerTLS(),
	}
	warnings, err := load(c, path, overrides)
	if err != nil {
		return nil, warnings, err
	}
	return c, warnings, nil
}

// Properties returns every key and its value, sorted by key.
func (c *Controller) Properties() []wire.JavaProperty { return properties(c, false) }

func (c *Controller) keys() []key {
	return append(append(c.ControllerSettings.keys(),
		integer("scanNotActiveBrokerInterval", &c.ScanNotActiveBrokerInterval, javaLong, positive),
		str("logDir", &c.LogDir, nonEmpty),
		boolean("aclEnable", &c.AclEnable),
		str("aclFile", &c.AclFile, nil),
	), c.ServerTLS.keys()...)
}

func (c *Controller) schema() schema { return controllerSchema }
func (c *Controller) state() *kept   { return &c.kept }

func (c *Controller) finish() ([]string, error) {
	if err := validate(c.keys()); err != nil {
		return nil, err
	}
	if err := c.ServerTLS.check(c.compat); err != nil {
		return nil, err
	}
	return nil, c.ControllerSettings.check()
}

// Controller keys Java reads that change nothing here: thread pools (each
// connection is served on its own goroutine), DLedger's mappedFileSize
// (the Raft log is BoltDB), metrics exporters, jRaft's keys (refused via
// controllerType), and the remoting port, which is the peer address.
var controllerConfigKeys = []string{
	"controllerThreadPoolNums", "controllerRequestThreadPoolQueueCapacity", "mappedFileSize",
	"processReadEvent", "configBlackList", "configStorePath", "rocketmqHome", "deleteAfterMigrate",
	"jRaftGroupId", "jRaftServerId", "jRaftInitConf", "jRaftControllerRPCAddr", "jRaftSnapshotIntervalSecs",
	"metricsExporterType", "metricsGrpcExporterTarget", "metricsGrpcExporterHeader", "metricGrpcExporterTimeOutInMills",
	"metricGrpcExporterIntervalInMills", "metricLoggingExporterIntervalInMills", "metricsPromExporterPort",
	"metricsPromExporterHost", "metricsLabel", "metricsInDelta",
	"listenPort",
}

var controllerSchema = schema{accepted: setOf(controllerConfigKeys, nettyServerConfigKeys, nettyClientConfigKeys, tlsRefusedKeyNames()), aliases: tlsAliases}
