package config

import (
	"time"

	"github.com/mqops/mqops/wire"
)

// Namesrv is a name server's configuration. Each field's comment starts with
// its RocketMQ key. Fields are plain data: Set is not safe to call while
// other goroutines read them.
type Namesrv struct {
	ListenPort         int    // listenPort; 0 binds any free port
	BindAddress        string // bindAddress (RocketMQ 5): the address to listen on; default 0.0.0.0, every interface
	KVConfigPath       string // kvConfigPath, default $HOME/namesrv/kvConfig.json
	OrderMessageEnable bool   // orderMessageEnable
	// scanNotActiveBrokerInterval, ms. Java 4.9 fixes it at 10s; tests
	// lower it.
	ScanNotActiveBrokerInterval int64
	// brokerChannelExpiredTime, ms: a broker silent this long is dropped.
	// A constant in Java; tests lower it.
	BrokerChannelExpiredTime int64
	LogDir                   string // logDir (ours, not Java's), default $HOME/logs/rocketmqlogs
	// aclEnable (the broker's key; RocketMQ's name server has no ACL):
	// registrations, KV and permission changes need an admin account.
	AclEnable bool
	AclFile   string // aclFile, as the broker's
	// enableControllerInNamesrv runs a controller in the name server
	// process, configured by the controller keys of the same file.
	EnableControllerInNamesrv bool
	Controller                ControllerSettings
	// TLS of the remoting port, as the broker's.
	ServerTLS
	Conn ConnLimits

	kept
}

// LoadNamesrv reads path (may be "" for defaults only), then applies
// overrides (RocketMQ key names), and validates. Warnings name unknown keys
// and keys accepted with no effect; they are not errors.
func LoadNamesrv(path string, overrides map[string]string) (*Namesrv, []string, error) {
	home := homeDir()
	n := &Namesrv{
		ListenPort:                  9876,
		BindAddress:                 "0.0.0.0",
		KVConfigPath:                underHome(home, "namesrv", "kvConfig.json"),
		ScanNotActiveBrokerInterval: 10000,
		BrokerChannelExpiredTime:    120000,
		LogDir:                      underHome(home, "logs", "rocketmqlogs"),
		Controller:                  defaultControllerSettings(home),
		ServerTLS:                   defaultServerTLS(),
	}
	warnings, err := load(n, path, overrides)
	if err != nil {
		return nil, warnings, err
	}
	return n, warnings, nil
}

// Properties returns every key and its current value, sorted by key, as
// GET_NAMESRV_CONFIG reports them.
func (n *Namesrv) Properties() []wire.JavaProperty { return properties(n, false) }

// Set applies one key, as UPDATE_NAMESRV_CONFIG does, with the same checks
// as LoadNamesrv. On error n is unchanged.
func (n *Namesrv) Set(key, value string) error {
	c := *n
	c.kept = n.kept.clone()
	if err := set(&c, key, value); err != nil {
		return err
	}
	*n = c
	return nil
}

// ControllerScanInterval is the embedded controller's heartbeat expiry
// scan: scanNotActiveBrokerInterval when the file sets it (Java's
// NamesrvStartup feeds the same key to both), else the controller's own
// default of 5 s rather than the name server's 10 s.
func (n *Namesrv) ControllerScanInterval() time.Duration {
	ms := int64(5000)
	if n.explicit["scanNotActiveBrokerInterval"] {
		ms = n.ScanNotActiveBrokerInterval
	}
	return time.Duration(ms) * time.Millisecond
}

// Save writes n to path atomically, keys sorted.
func (n *Namesrv) Save(path string) error { return save(n, path) }

func (n *Namesrv) keys() []key {
	return append([]key{
		integer("listenPort", &n.ListenPort, javaInt, listenPort),
		str("bindAddress", &n.BindAddress, hostOrIP),
		str("kvConfigPath", &n.KVConfigPath, nonEmpty),
		boolean("aclEnable", &n.AclEnable),
		str("aclFile", &n.AclFile, nil),
		boolean("orderMessageEnable", &n.OrderMessageEnable),
		integer("scanNotActiveBrokerInterval", &n.ScanNotActiveBrokerInterval, javaLong, positive),
		integer("brokerChannelExpiredTime", &n.BrokerChannelExpiredTime, javaLong, positive),
		str("logDir", &n.LogDir, nonEmpty),
		boolean("enableControllerInNamesrv", &n.EnableControllerInNamesrv),
	}, append(append(n.Controller.keys(), n.ServerTLS.keys()...), n.Conn.keys()...)...)
}

func (n *Namesrv) schema() schema { return namesrvSchema }
func (n *Namesrv) state() *kept   { return &n.kept }

func (n *Namesrv) finish() ([]string, error) {
	if err := validate(n.keys()); err != nil {
		return nil, err
	}
	if err := n.ServerTLS.check(n.compat); err != nil {
		return nil, err
	}
	if n.EnableControllerInNamesrv {
		return nil, n.Controller.check()
	}
	return nil, nil
}
