package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
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
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request %d: %w", code, err)
	}
	addr, err := r.home(vhost)
	if err != nil {
		return fmt.Errorf("home broker of vhost '%s': %w", vhost, err)
	}
	timeout := r.timeout
	if f, ok := req.(wire.AMQPFetchRequest); ok {
		// A fetch answer dropped after the timeout leaves its messages
		// in flight until the consume timeout: wait well past the long
		// poll for a busy broker.
		timeout = 3*r.timeout + time.Duration(f.WaitMillis)*time.Millisecond
	}
	ans, err := r.client.Invoke(addr, wire.NewRequest(code, nil, body), timeout)
	if err != nil {
		r.forget(vhost)
		return fmt.Errorf("broker %s: %w", addr, err)
	}
	switch ans.Code {
	case wire.Success:
		if resp != nil && len(ans.Body) > 0 {
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
	default:
		// A slave answering after a failover, or a broker error: ask the
		// name servers again next time.
		r.forget(vhost)
		return fmt.Errorf("broker %s: code %d %s", addr, ans.Code, ans.Remark)
	}
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
