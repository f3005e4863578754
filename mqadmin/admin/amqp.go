package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/mqops/mqops/wire"
)

// AMQP gateway metadata: vhosts, exchanges, queues and bindings live in
// the AMQP engine of each vhost's home broker (the codes of
// wire/amqpmeta.go), and a queue's consumption is gated by its consumer
// group's consumeEnable and consumeRateLimit.

// AMQPError is the engine's refusal: RabbitMQ's reply code and text.
type AMQPError struct {
	Code uint16
	Text string
}

func (e *AMQPError) Error() string { return fmt.Sprintf("%s (AMQP %d)", e.Text, e.Code) }

// AMQPVhost is where a vhost lives.
type AMQPVhost struct {
	Vhost  string `json:"vhost"`
	Broker Broker `json:"broker"`
}

// AMQPHome returns the address of vhost's home broker: the master of the
// first broker set routing its store topic, or, while the vhost has no
// store topic yet, the master whose broker name sorts first (the rule the
// gateways follow, amqp/gateway/backend.go). broker, if set, overrides it.
func (a *Admin) AMQPHome(vhost, broker string) (string, error) {
	if broker != "" {
		bs, err := a.Brokers(Target{Broker: broker})
		if err != nil {
			return "", err
		}
		if len(bs) == 0 {
			return "", fmt.Errorf("no master broker %s", broker)
		}
		return bs[0].Addr, nil
	}
	rd, err := a.TopicRoute(wire.AMQPStoreTopic(vhost))
	if err == nil {
		for _, bd := range rd.BrokerDatas {
			if addr := bd.BrokerAddrs[0]; addr != "" {
				return addr, nil
			}
		}
		return "", fmt.Errorf("store topic of vhost '%s' has no master", vhost)
	}
	if !IsCode(err, wire.TopicNotExist) {
		return "", fmt.Errorf("home broker of vhost '%s': %w", vhost, err)
	}
	masters, err := a.Brokers(Target{})
	if err != nil {
		return "", fmt.Errorf("home broker of vhost '%s': %w", vhost, err)
	}
	if len(masters) == 0 {
		return "", errors.New("the name servers know no master broker")
	}
	sort.Slice(masters, func(i, j int) bool { return masters[i].Name < masters[j].Name })
	return masters[0].Addr, nil
}

// amqpCall sends one AMQP_* request to addr; the engine's refusals come
// back as *AMQPError.
func (a *Admin) amqpCall(addr string, code int32, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ans, err := a.cl.Invoke(addr, wire.NewRequest(code, nil, body), a.timeout)
	if err != nil {
		return fmt.Errorf("broker %s: %w", addr, err)
	}
	switch ans.Code {
	case wire.Success:
		if resp != nil && len(ans.Body) > 0 {
			if err := json.Unmarshal(ans.Body, resp); err != nil {
				return fmt.Errorf("decode answer of broker %s: %w", addr, err)
			}
		}
		return nil
	case wire.AMQPException:
		rc, _ := strconv.ParseUint(ans.GetString(wire.AMQPReplyCodeField), 10, 16)
		return &AMQPError{Code: uint16(rc), Text: string(ans.Remark)}
	default:
		return &ResponseError{Code: ans.Code, Remark: string(ans.Remark)}
	}
}

// AMQPCall sends an AMQP_* request for vhost to its home broker (or to
// broker when set).
func (a *Admin) AMQPCall(vhost, broker string, code int32, req, resp any) error {
	addr, err := a.AMQPHome(vhost, broker)
	if err != nil {
		return err
	}
	return a.amqpCall(addr, code, req, resp)
}

// AMQPVhosts lists the vhosts of every master (or of broker), sorted by
// name.
func (a *Admin) AMQPVhosts(broker string) ([]AMQPVhost, error) {
	brokers, err := a.Brokers(Target{Broker: broker})
	if err != nil {
		return nil, err
	}
	lists := make([]wire.AMQPListing, len(brokers))
	err = FanOut(len(brokers), a.parallel, func(i int) error {
		return a.amqpCall(brokers[i].Addr, wire.AMQPList, wire.AMQPListRequest{}, &lists[i])
	})
	if err != nil {
		return nil, fmt.Errorf("list vhosts: %w", err)
	}
	var out []AMQPVhost
	for i, l := range lists {
		for _, v := range l.Vhosts {
			out = append(out, AMQPVhost{Vhost: v, Broker: brokers[i]})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Vhost < out[j].Vhost })
	return out, nil
}

// AMQPList returns one vhost's exchanges, queues (with their state) and
// bindings.
func (a *Admin) AMQPList(vhost, broker string) (*wire.AMQPListing, error) {
	var l wire.AMQPListing
	if err := a.AMQPCall(vhost, broker, wire.AMQPList, wire.AMQPListRequest{Vhost: vhost}, &l); err != nil {
		return nil, fmt.Errorf("list vhost '%s': %w", vhost, err)
	}
	return &l, nil
}

// AMQPQueue returns one queue of a listing.
func (a *Admin) AMQPQueue(vhost, broker, queue string) (*wire.AMQPQueueInfo, error) {
	l, err := a.AMQPList(vhost, broker)
	if err != nil {
		return nil, err
	}
	for i := range l.Queues {
		if l.Queues[i].Name == queue {
			return &l.Queues[i], nil
		}
	}
	return nil, &AMQPError{Code: 404, Text: fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '%s'", queue, vhost)}
}

// AMQPAddVhost creates a vhost and its store topic on its home broker.
func (a *Admin) AMQPAddVhost(vhost, broker string) (string, error) {
	addr, err := a.AMQPHome(vhost, broker)
	if err != nil {
		return "", err
	}
	if err := a.amqpCall(addr, wire.AMQPAddVhost, wire.AMQPVhostRequest{Vhost: vhost}, nil); err != nil {
		return "", fmt.Errorf("add vhost '%s' on %s: %w", vhost, addr, err)
	}
	return addr, nil
}

// AMQPDeleteVhost deletes a vhost with its queues and messages, and its
// store topic from the name servers.
func (a *Admin) AMQPDeleteVhost(vhost, broker string) (string, error) {
	addr, err := a.AMQPHome(vhost, broker)
	if err != nil {
		return "", err
	}
	if err := a.amqpCall(addr, wire.AMQPDeleteVhost, wire.AMQPVhostRequest{Vhost: vhost}, nil); err != nil {
		return "", fmt.Errorf("delete vhost '%s' on %s: %w", vhost, addr, err)
	}
	if err := a.DeleteTopicInNamesrv(wire.AMQPStoreTopic(vhost), ""); err != nil {
		return addr, err
	}
	return addr, a.amqpDropVhostPermissions(vhost)
}

// amqpDropVhostPermissions clears every user's permissions in a deleted
// vhost, as RabbitMQ's delete_vhost does. The vhost's broker drops them
// itself when it also holds the users (the default vhost's home); this
// covers a vhost that lived on another broker.
func (a *Admin) amqpDropVhostPermissions(vhost string) error {
	users, err := a.AMQPUsers("")
	if err != nil {
		return fmt.Errorf("vhost '%s' deleted; list users to clear their permissions there: %w", vhost, err)
	}
	for _, u := range users {
		if _, ok := u.Permissions[vhost]; !ok {
			continue
		}
		if err := a.AMQPSetPermissions("", wire.AMQPPermissionSet{User: u.User, Vhost: vhost}, true); err != nil {
			return fmt.Errorf("vhost '%s' deleted; clear the permissions of user '%s' there: %w", vhost, u.User, err)
		}
	}
	return nil
}

// AMQPSetQueueConsume pauses (enable false) or resumes an AMQP queue: its
// group's consumeEnable on the vhost's home broker.
func (a *Admin) AMQPSetQueueConsume(vhost, broker, queue string, enable bool) (*GroupChange, error) {
	return a.amqpChangeQueueGroup(vhost, broker, queue, func(c *wire.SubscriptionGroupConfig) { c.ConsumeEnable = enable })
}

// AMQPSetQueueRateLimit caps an AMQP queue's deliveries per second over
// all gateways (0: unlimited): its group's consumeRateLimit.
func (a *Admin) AMQPSetQueueRateLimit(vhost, broker, queue string, perSecond int) (*GroupChange, error) {
	if perSecond < 0 {
		return nil, fmt.Errorf("rate limit of queue '%s' must be 0 (unlimited) or more, got %d", queue, perSecond)
	}
	return a.amqpChangeQueueGroup(vhost, broker, queue, func(c *wire.SubscriptionGroupConfig) { c.ConsumeRateLimit = perSecond })
}

func (a *Admin) amqpChangeQueueGroup(vhost, broker, queue string, change func(*wire.SubscriptionGroupConfig)) (*GroupChange, error) {
	addr, err := a.AMQPHome(vhost, broker)
	if err != nil {
		return nil, err
	}
	q, err := a.AMQPQueue(vhost, addr, queue)
	if err != nil {
		return nil, err
	}
	cs, err := a.ChangeGroup(Target{Broker: addr}, q.Group, change)
	if err != nil {
		return nil, err
	}
	return &cs[0], nil
}

// AMQP users live in the engine of the default vhost's home broker, the
// one the gateways ask at every login.

// AMQPUsers lists the users with their tags and permissions.
func (a *Admin) AMQPUsers(broker string) ([]wire.AMQPUserAccess, error) {
	return a.amqpUsers(broker, false)
}

// amqpUsers lists the users, with their password hashes when asked (a
// definitions export).
func (a *Admin) amqpUsers(broker string, hashes bool) ([]wire.AMQPUserAccess, error) {
	var l wire.AMQPUserList
	if err := a.AMQPCall("/", broker, wire.AMQPListUsers, wire.AMQPUserListRequest{PasswordHashes: hashes}, &l); err != nil {
		return nil, err
	}
	return l.Users, nil
}

// AMQPPutUser adds a user or changes its password (or hash) and tags.
func (a *Admin) AMQPPutUser(broker string, u wire.AMQPUserPut) error {
	return a.AMQPCall("/", broker, wire.AMQPPutUser, u, nil)
}

// AMQPDeleteUser deletes a user.
func (a *Admin) AMQPDeleteUser(broker, user string) error {
	return a.AMQPCall("/", broker, wire.AMQPDeleteUser, wire.AMQPUserRef{User: user}, nil)
}

// AMQPSetPermissions sets (or, with clear, removes) a user's permissions
// in one vhost.
func (a *Admin) AMQPSetPermissions(broker string, p wire.AMQPPermissionSet, clear bool) error {
	code := wire.AMQPSetPermissions
	if clear {
		code = wire.AMQPClearPermission
	}
	return a.AMQPCall("/", broker, code, p, nil)
}
