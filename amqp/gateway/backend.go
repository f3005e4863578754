package gateway

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
	"github.com/mqops/mqops/wire/amqp"
)

// Backend carries the metadata methods to a vhost's home broker. Call
// returns an *amqp.Error for the engine's refusals (RabbitMQ's code and
// text) and a plain error when the broker cannot be reached, which the
// connection answers with 541 INTERNAL_ERROR.
type Backend interface {
	Call(vhost string, code int32, req, resp any) error
	// VhostExists reports whether connection.open may enter vhost.
	VhostExists(vhost string) (bool, error)
}

// Remote is the Backend over remoting: it finds a vhost's home broker
// through the name servers and sends the AMQP_* requests of
// wire/amqpmeta.go there.
//
// The home is the master (brokerId 0) of the first broker in the route
// of the vhost's store topic (wire.AMQPStoreTopic). While no such topic
// exists (vhost creation with its store topic is not built yet) it is the
// master of the broker whose name sorts first in the cluster info: with one
// broker set, that broker; with several, a fixed and shared choice, so all
// gateways agree.
type Remote struct {
	client   *remoting.Client
	namesrvs []string
	timeout  time.Duration
	log      *slog.Logger

	// local is the address of the broker the gateway runs in (SetLocal),
	// "" for mqamqp.
	local string

	mu    sync.Mutex
	homes map[string]home
}

type home struct {
	addr    string
	expires time.Time
}

// homeTTL bounds how long a looked-up home is used before the name servers
// are asked again; any failed call forgets it at once.
const homeTTL = 30 * time.Second

// NewRemote returns a Backend asking namesrvs; creds (may be empty) sign
// every request for the broker ACL.
func NewRemote(namesrvs []string, creds wire.Credentials, timeout time.Duration, log *slog.Logger) *Remote {
	cl := remoting.NewClient(nil, log)
	cl.SetCredentials(creds)
	return &Remote{client: cl, namesrvs: namesrvs, timeout: timeout, log: log, homes: map[string]home{}}
}

// SetLocal is for a gateway running inside a broker (enableAmqpGateway):
// its requests to addr, that broker's address, go through dial instead of
// TCP, and addr is every vhost's home when no name server is configured.
// Call it before the first request.
func (r *Remote) SetLocal(addr string, dial func() (net.Conn, error)) {
	r.local = addr
	r.client.SetDial(func(a string) (net.Conn, error) {
		if a == addr {
			return dial()
		}
		return net.DialTimeout("tcp", a, remoting.DialTimeout)
	})
}

// IsLocal reports whether vhost's home is the broker given to SetLocal.
func (r *Remote) IsLocal(vhost string) bool {
	if r.local == "" {
		return false
	}
	addr, err := r.home(vhost)
	return err == nil && addr == r.local
}

// Close closes the broker and name server connections.
func (r *Remote) Close() { r.client.Close() }

func (r *Remote) home(vhost string) (string, error) {
	r.mu.Lock()
	h, ok := r.homes[vhost]
	r.mu.Unlock()
	if ok && time.Now().Before(h.expires) {
		return h.addr, nil
	}
	addr, err := r.lookup(vhost)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.homes[vhost] = home{addr: addr, expires: time.Now().Add(homeTTL)}
	r.mu.Unlock()
	return addr, nil
}

func (r *Remote) forget(vhost string) {
	r.mu.Lock()
	delete(r.homes, vhost)
	r.mu.Unlock()
}

func (r *Remote) lookup(vhost string) (string, error) {
	if len(r.namesrvs) == 0 {
		if r.local != "" {
			return r.local, nil
		}
		return "", errors.New("no namesrvAddr configured")
	}
	topic := wire.AMQPStoreTopic(vhost)
	var errs []error
	for _, ns := range r.namesrvs {
		resp, err := r.client.Invoke(ns, wire.NewRequest(wire.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil), r.timeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("name server %s: %w", ns, err))
			continue
		}
		if resp.Code == wire.Success {
			var rd wire.TopicRouteData
			if err := wire.UnmarshalLenient(resp.Body, &rd); err != nil {
				return "", fmt.Errorf("route of %s from %s: %w", topic, ns, err)
			}
			for _, bd := range rd.BrokerDatas {
				if a := bd.BrokerAddrs[0]; a != "" {
					return a, nil
				}
			}
			return "", fmt.Errorf("route of %s has no master", topic)
		}
		return r.firstMaster(ns)
	}
	return "", fmt.Errorf("no name server answered: %w", errors.Join(errs...))
}

func (r *Remote) firstMaster(ns string) (string, error) {
	resp, err := r.client.Invoke(ns, wire.NewRequest(wire.GetBrokerClusterInfo, nil, nil), r.timeout)
	if err != nil {
		return "", fmt.Errorf("cluster info from %s: %w", ns, err)
	}
	if resp.Code != wire.Success {
		return "", fmt.Errorf("cluster info from %s: code %d %s", ns, resp.Code, resp.Remark)
	}
	var ci wire.ClusterInfo
	if err := wire.UnmarshalLenient(resp.Body, &ci); err != nil {
		return "", fmt.Errorf("cluster info from %s: %w", ns, err)
	}
	names := make([]string, 0, len(ci.BrokerAddrTable))
	for name, bd := range ci.BrokerAddrTable {
		if bd != nil && bd.BrokerAddrs[0] != "" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("name server %s knows no master broker", ns)
	}
	sort.Strings(names)
	return ci.BrokerAddrTable[names[0]].BrokerAddrs[0], nil
}

// Call sends one AMQP_* request to vhost's home broker.
func (r *Remote) Call(vhost string, code int32, req, resp any) error {
	var body []byte
	var err error
	// Requests with message bodies go in the binary form (wire/amqpbin.go).
	if m, ok := req.(encoding.BinaryMarshaler); ok {
		body, err = m.MarshalBinary()
	} else {
		body, err = json.Marshal(req)
	}
	if err != nil {
		return fmt.Errorf("encode request %d: %w", code, err)
	}
	addr, err := r.home(vhost)
	if err != nil {
		return fmt.Errorf("home broker of vhost '%s': %w", vhost, err)
	}
	// The vhost travels signed beside the body for the broker ACL.
	timeout := r.timeout
	if f, ok := req.(wire.AMQPFetchRequest); ok {
		// A fetch answer dropped after the timeout leaves its messages
		// in flight until the consume timeout: wait well past the long
		// poll for a busy broker.
		timeout = 3*r.timeout + time.Duration(f.WaitMillis)*time.Millisecond
	}
	// Built directly rather than with wire.NewRequest: its map and key
	// conversions were allocations per publish.
	cmd := &wire.Command{Code: code, Language: wire.LanguageGo, Version: wire.Version, Body: body, Ext: make([]wire.KV, 1, 4)}
	cmd.Ext[0] = wire.KV{Key: vhostKey, Value: []byte(vhost)}
	if _, ok := resp.(encoding.BinaryUnmarshaler); ok {
		cmd.Ext = append(cmd.Ext, wire.KV{Key: binaryKey, Value: binaryOn})
	}
	ans, err := r.client.Invoke(addr, cmd, timeout)
	if err != nil {
		r.forget(vhost)
		return fmt.Errorf("broker %s: %w", addr, err)
	}
	switch ans.Code {
	case wire.Success:
		if u, ok := resp.(encoding.BinaryUnmarshaler); ok && wire.IsAMQPBinary(ans.Body) {
			if err := u.UnmarshalBinary(ans.Body); err != nil {
				return fmt.Errorf("answer of broker %s to %d: %w", addr, code, err)
			}
		} else if resp != nil && len(ans.Body) > 0 {
			if err := json.Unmarshal(ans.Body, resp); err != nil {
				return fmt.Errorf("answer of broker %s to %d: %w", addr, code, err)
			}
		}
		return nil
	case wire.AMQPException:
		rc, err := strconv.ParseUint(ans.GetString(wire.AMQPReplyCodeField), 10, 16)
		if err != nil {
			return fmt.Errorf("broker %s: refusal without a reply code: %s", addr, ans.Remark)
		}
		return &amqp.Error{Code: uint16(rc), Text: string(ans.Remark), Hard: amqp.IsHard(uint16(rc))}
	case wire.NoPermission:
		if string(ans.Remark) == slaveRemark {
			r.forget(vhost) // a slave after a failover: ask the name servers again
			break
		}
		// The broker ACL refused the gateway's account: RabbitMQ's
		// access_refused, a channel exception naming the broker's reason.
		return &amqp.Error{Code: amqp.AccessRefused, Text: clipText("ACCESS_REFUSED - broker ACL refused " + codeName(code) + " in vhost '" + vhost + "': " + string(ans.Remark))}
	case wire.SystemBusy, wire.ServiceNotAvailable:
		// Flow control or a store that cannot write (disk full): the
		// broker is fine, the publish is refused.
		return &Refused{Addr: addr, Code: ans.Code, Remark: string(ans.Remark)}
	default:
		// A broker error: ask the name servers again next time.
		r.forget(vhost)
	}
	return fmt.Errorf("broker %s: code %d %s", addr, ans.Code, ans.Remark)
}

// The extFields of every AMQP request; never modified.
var (
	vhostKey  = []byte(wire.AMQPVhostField)
	binaryKey = []byte(wire.AMQPBinaryField)
	binaryOn  = []byte("1")
)

// slaveRemark is the broker's answer to AMQP requests on a slave
// (broker/server/amqp.go).
const slaveRemark = "the AMQP metadata is changed on the master only"

// Refused is a broker refusing a request for flow control (SYSTEM_BUSY)
// or because its store cannot write (SERVICE_NOT_AVAILABLE: disk full,
// write-disabled): publishes are nacked and publishing connections
// blocked until the broker admits publishes again.
type Refused struct {
	Addr   string
	Code   int32
	Remark string
}

func (e *Refused) Error() string {
	return fmt.Sprintf("broker %s: code %d %s", e.Addr, e.Code, e.Remark)
}

// Quota reports a produce quota refusal ([TOPIC_QUOTA], [ACCOUNT_QUOTA]):
// the publisher is over its rate, the broker is not short of anything, so
// nobody else is blocked.
func (e *Refused) Quota() bool {
	return strings.HasPrefix(e.Remark, "[TOPIC_QUOTA]") || strings.HasPrefix(e.Remark, "[ACCOUNT_QUOTA]")
}

// clipText bounds a reply text to a shortstr.
func clipText(s string) string {
	if len(s) > 255 {
		return s[:252] + "..."
	}
	return s
}

func codeName(code int32) string {
	switch code {
	case wire.AMQPPublish:
		return "publish"
	case wire.AMQPFetch, wire.AMQPSettle, wire.AMQPRelease:
		return "consume"
	case wire.AMQPList:
		return "access"
	}
	return "configure"
}

// VhostExists asks the home broker for its vhost list.
func (r *Remote) VhostExists(vhost string) (bool, error) {
	var l wire.AMQPListing
	if err := r.Call(vhost, wire.AMQPList, wire.AMQPListRequest{}, &l); err != nil {
		return false, err
	}
	for _, v := range l.Vhosts {
		if v == vhost {
			return true, nil
		}
	}
	return false, nil
}
