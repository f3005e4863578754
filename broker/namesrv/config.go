package namesrv

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqops/mqops/wire"
)

// Runtime configuration keys (GET_NAMESRV_CONFIG / UPDATE_NAMESRV_CONFIG),
// named as in Java's NamesrvConfig / NettyServerConfig.
const (
	keyBrokerExpiry       = "brokerChannelExpiredTime"
	keyConfigBlackList    = "configBlackList"
	keyKVConfigPath       = "kvConfigPath"
	keyListenPort         = "listenPort"
	keyOrderMessageEnable = "orderMessageEnable"
	keyScanInterval       = "scanNotActiveBrokerInterval"
)

// configBlackList is Java's default: keys no remote request may change,
// because changing them could redirect file writes.
const configBlackList = "configBlackList;configStorePath;kvConfigPath"

// configProperties renders the current configuration as Java's
// properties2String does: "key=value\n" per key (sorted here).
func (s *Server) configProperties() []byte {
	port := portOf(s.opts.ListenAddr)
	if a := s.Addr(); a != nil {
		port = portOf(a.String())
	}
	props := map[string]string{
		keyBrokerExpiry:       strconv.FormatInt(time.Duration(s.brokerExpiry.Load()).Milliseconds(), 10),
		keyConfigBlackList:    configBlackList,
		keyKVConfigPath:       s.kv.path,
		keyListenPort:         port,
		keyOrderMessageEnable: strconv.FormatBool(s.orderMessageEnable.Load()),
		keyScanInterval:       strconv.FormatInt(time.Duration(s.scanInterval.Load()).Milliseconds(), 10),
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		b.WriteString(k + "=" + props[k] + "\n")
	}
	return []byte(b.String())
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// errBlackListed marks an update touching a black-listed key.
type errBlackListed struct{ key string }

func (e errBlackListed) Error() string {
	return fmt.Sprintf("Can not update config in black list: %s", e.key)
}

// updateConfig applies a properties-text update. Every value is validated
// before any is applied; keys that are unknown or only read at start-up are
// ignored like Java ignores them, and returned so the caller can log them.
func (s *Server) updateConfig(text string) (ignored []string, err error) {
	props, err := wire.ParseJavaProperties(text)
	if err != nil {
		return nil, fmt.Errorf("parse properties: %w", err)
	}
	black := strings.Split(configBlackList, ";")
	for k := range props {
		if slices.Contains(black, k) {
			return nil, errBlackListed{key: k}
		}
	}
	var (
		order            *bool
		expiry, interval time.Duration
	)
	for _, k := range slices.Sorted(maps.Keys(props)) {
		v := props[k]
		switch k {
		case keyOrderMessageEnable:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("invalid %s=%q: want true or false", k, v)
			}
			order = &b
		case keyBrokerExpiry, keyScanInterval:
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms <= 0 {
				return nil, fmt.Errorf("invalid %s=%q: want a positive number of milliseconds", k, v)
			}
			if k == keyBrokerExpiry {
				expiry = time.Duration(ms) * time.Millisecond
			} else {
				interval = time.Duration(ms) * time.Millisecond
			}
		default:
			ignored = append(ignored, k)
		}
	}
	if order != nil {
		s.orderMessageEnable.Store(*order)
	}
	if expiry > 0 {
		s.brokerExpiry.Store(int64(expiry))
	}
	if interval > 0 {
		s.scanInterval.Store(int64(interval)) // picked up when the scan timer next fires
	}
	return ignored, nil
}
