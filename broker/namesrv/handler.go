package namesrv

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// Unit-topic list codes, served by the name server only (apache/rocketmq
// namesrv/src/main/java/org/apache/rocketmq/namesrv/processor/DefaultRequestProcessor.java).
const (
	getUnitTopicList             int32 = 311
	getHasUnitSubTopicList       int32 = 312
	getHasUnitSubUnUnitTopicList int32 = 313
)

// Remarks, worded as Java's so that tools and operators see the same text.
const (
	noTopicRouteRemarkFormat        = "No topic route info in name server for the topic: %s\nSee http://rocketmq.apache.org/docs/faq/ for further details."
	notSupportedRemarkFormat        = " request type %d not supported"
	crcMismatchRemark               = "crc32 not match"
	kvNotFoundRemarkFormat          = "No config item, Namespace: %s Key: %s"
	kvNamespaceNotFoundRemarkFormat = "No config item, Namespace: %s"
	missingFieldRemarkFormat        = "the custom field <%s> is null"
	invalidFieldRemarkFormat        = "the custom field <%s> is not a number: %q"
)

// codeError is a handler failure answered with a specific response code.
type codeError struct {
	code int32
	msg  string
}

func (e *codeError) Error() string { return e.msg }

func fail(code int32, format string, args ...any) error {
	return &codeError{code: code, msg: fmt.Sprintf(format, args...)}
}

type handlerFunc func(s *Server, c *remoting.Conn, req *wire.Command) (*wire.Command, error)

// handlers maps every request code the name server serves (Java's
// DefaultRequestProcessor.processRequest).
var handlers = map[int32]handlerFunc{
	wire.PutKVConfig:                (*Server).putKVConfig,
	wire.GetKVConfig:                (*Server).getKVConfig,
	wire.DeleteKVConfig:             (*Server).deleteKVConfig,
	wire.GetKVListByNamespace:       (*Server).getKVListByNamespace,
	wire.QueryDataVersion:           (*Server).queryDataVersion,
	wire.RegisterBroker:             (*Server).registerBroker,
	wire.UnregisterBroker:           (*Server).unregisterBroker,
	wire.GetRouteInfoByTopic:        (*Server).getRouteInfoByTopic,
	wire.GetBrokerClusterInfo:       (*Server).getBrokerClusterInfo,
	wire.WipeWritePermOfBroker:      (*Server).wipeWritePermOfBroker,
	wire.AddWritePermOfBroker:       (*Server).addWritePermOfBroker,
	wire.GetAllTopicListFromNamesrv: (*Server).getAllTopicList,
	wire.DeleteTopicInNamesrv:       (*Server).deleteTopicInNamesrv,
	wire.GetTopicsByCluster:         (*Server).getTopicsByCluster,
	wire.GetSystemTopicListFromNs:   (*Server).getSystemTopicList,
	getUnitTopicList:                (*Server).getUnitTopicList,
	getHasUnitSubTopicList:          (*Server).getHasUnitSubTopicList,
	getHasUnitSubUnUnitTopicList:    (*Server).getHasUnitSubUnUnitTopicList,
	wire.UpdateNamesrvConfig:        (*Server).updateNamesrvConfig,
	wire.GetNamesrvConfig:           (*Server).getNamesrvConfig,
}

// ServeRequest implements remoting.Handler. Every handler is short and
// non-blocking except KV writes, which fsync: they delay only the requesting
// connection.
func (s *Server) ServeRequest(c *remoting.Conn, req *wire.Command) {
	if s.opts.ACL != nil && !s.opts.ACL.Allow(c, req) {
		return
	}
	h, ok := handlers[req.Code]
	if !ok {
		c.ReplyCode(req, wire.RequestCodeNotSupported, fmt.Sprintf(notSupportedRemarkFormat, req.Code))
		return
	}
	resp, err := h(s, c, req)
	if err != nil {
		code := wire.SystemError
		var ce *codeError
		if errors.As(err, &ce) {
			code = ce.code
		}
		if code == wire.SystemError {
			s.log.Warn("request failed", "code", req.Code, "remote", c.RemoteAddr().String(), "err", err)
		}
		c.ReplyCode(req, code, err.Error())
		return
	}
	c.Reply(req, resp)
}

func success(req *wire.Command, body []byte) *wire.Command {
	r := wire.ResponseTo(req, wire.Success, "")
	r.Body = body
	return &r
}

// required returns the named extFields in order. A missing one fails like
// Java's @CFNotNull check; an empty value is accepted, as Java does.
func required(req *wire.Command, names ...string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		if !req.Has(n) {
			return nil, fail(wire.SystemError, missingFieldRemarkFormat, n)
		}
		out[i] = req.GetString(n)
	}
	return out, nil
}

// requiredInt returns a required numeric extField.
func requiredInt(req *wire.Command, name string) (int64, error) {
	if !req.Has(name) {
		return 0, fail(wire.SystemError, missingFieldRemarkFormat, name)
	}
	v, ok := req.GetInt(name)
	if !ok {
		return 0, fail(wire.SystemError, invalidFieldRemarkFormat, name, req.GetString(name))
	}
	return v, nil
}

// --- broker registration ---

func (s *Server) registerBroker(c *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	f, err := required(req, "brokerName", "brokerAddr", "clusterName", "haServerAddr")
	if err != nil {
		return nil, err
	}
	id, err := requiredInt(req, "brokerId")
	if err != nil {
		return nil, err
	}
	if want, ok := req.GetInt("bodyCrc32"); ok && want != 0 && want != bodyCRC32(req.Body) {
		return nil, fail(wire.SystemError, "%s", crcMismatchRemark)
	}
	topics, filterServers, err := decodeRegisterBody(req.Body, req.Version, req.GetBool("compressed"))
	if err != nil {
		return nil, fail(wire.SystemError, "Failed to decode RegisterBrokerBody: %v", err)
	}
	reg := &registration{
		brokerName: f[0], brokerAddr: f[1], cluster: f[2], haServerAddr: f[3], brokerID: id,
		topics: topics, filterServers: filterServers,
	}
	res := s.routes.register(reg, c, connBrokersOf(c), time.Now())
	// The connection may have closed while this request was being handled,
	// after its close hook ran: clean up again so that the broker is not left
	// registered on a dead connection until it expires.
	select {
	case <-c.Done():
		s.connClosed(c)
	default:
	}
	if res.ignored {
		s.log.Warn("Registering Broker conflicts with the existed one, just ignore",
			"cluster", reg.cluster, "brokerName", reg.brokerName, "brokerId", reg.brokerID,
			"brokerAddr", reg.brokerAddr, "stateVersion", topics.DataVersion.StateVersion, "heldBy", res.heldBy)
	}
	if res.newAddr {
		s.log.Info("[BROKER_REGISTERED] new broker registered",
			"cluster", reg.cluster, "brokerName", reg.brokerName, "brokerId", reg.brokerID,
			"brokerAddr", reg.brokerAddr, "haServerAddr", reg.haServerAddr, "topics", len(topics.TopicConfigTable))
	}

	resp := success(req, nil)
	if res.masterAddr != "" {
		resp.Set("haServerAddr", res.haServerAddr)
		resp.Set("masterAddr", res.masterAddr)
	}
	if table, ok := s.kv.list(orderTopicNamespace); ok {
		resp.Body = wire.Marshal(wire.KVTable{Table: table})
	}
	return resp, nil
}

func (s *Server) unregisterBroker(c *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	f, err := required(req, "brokerName", "brokerAddr", "clusterName")
	if err != nil {
		return nil, err
	}
	id, err := requiredInt(req, "brokerId")
	if err != nil {
		return nil, err
	}
	removed, groupGone := s.routes.unregister(f[1], f[0], id)
	s.log.Info("[BROKER_UNREGISTERED] broker unregistered",
		"cluster", f[2], "brokerName", f[0], "brokerId", id, "brokerAddr", f[1],
		"found", removed, "groupRemoved", groupGone, "remote", c.RemoteAddr().String())
	return success(req, nil), nil
}

func (s *Server) queryDataVersion(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	f, err := required(req, "brokerName", "brokerAddr", "clusterName")
	if err != nil {
		return nil, err
	}
	if _, err := requiredInt(req, "brokerId"); err != nil {
		return nil, err
	}
	var dv *wire.DataVersion
	if len(req.Body) > 0 {
		dv = new(wire.DataVersion)
		if err := json.Unmarshal(req.Body, dv); err != nil {
			return nil, fail(wire.SystemError, "Failed to decode DataVersion: %v", err)
		}
	}
	changed, stored := s.routes.queryDataVersion(f[1], dv, time.Now())
	resp := success(req, nil)
	resp.SetBool("changed", changed)
	if stored != nil {
		resp.Body = wire.Marshal(stored)
	}
	return resp, nil
}

// --- routes and cluster ---

func (s *Server) getRouteInfoByTopic(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	f, err := required(req, "topic")
	if err != nil {
		return nil, err
	}
	topic := f[0]
	rd, ok := s.routes.route(topic)
	if !ok {
		return nil, fail(wire.TopicNotExist, noTopicRouteRemarkFormat, topic)
	}
	if s.orderMessageEnable.Load() {
		rd.OrderTopicConf, _ = s.kv.get(orderTopicNamespace, topic)
	}
	return success(req, wire.Marshal(rd)), nil
}

func (s *Server) getBrokerClusterInfo(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	return success(req, wire.Marshal(s.routes.clusterInfo())), nil
}

func (s *Server) wipeWritePermOfBroker(c *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	return s.setWritePerm(c, req, true, "wipeTopicCount")
}

func (s *Server) addWritePermOfBroker(c *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	return s.setWritePerm(c, req, false, "addTopicCount")
}

func (s *Server) setWritePerm(c *remoting.Conn, req *wire.Command, wipe bool, countKey string) (*wire.Command, error) {
	f, err := required(req, "brokerName")
	if err != nil {
		return nil, err
	}
	n := s.routes.setWritePerm(f[0], wipe)
	s.log.Info("write permission of broker changed", "brokerName", f[0], "wipe", wipe, "topics", n,
		"remote", c.RemoteAddr().String())
	resp := success(req, nil)
	resp.SetInt(countKey, int64(n))
	return resp, nil
}

// --- topic lists ---

func topicListBody(topics []string) []byte {
	return wire.Marshal(wire.TopicList{TopicList: topics})
}

func (s *Server) getAllTopicList(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	return success(req, topicListBody(s.routes.topics(nil))), nil
}

func (s *Server) deleteTopicInNamesrv(c *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	f, err := required(req, "topic")
	if err != nil {
		return nil, err
	}
	cluster := req.GetString("clusterName")
	s.routes.deleteTopic(f[0], cluster)
	s.log.Info("topic deleted", "topic", f[0], "cluster", cluster, "remote", c.RemoteAddr().String())
	return success(req, nil), nil
}

func (s *Server) getTopicsByCluster(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	f, err := required(req, "cluster")
	if err != nil {
		return nil, err
	}
	return success(req, topicListBody(s.routes.topicsOfCluster(f[0]))), nil
}

func (s *Server) getSystemTopicList(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	return success(req, wire.Marshal(s.routes.systemTopics())), nil
}

func (s *Server) getUnitTopicList(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	return success(req, topicListBody(s.routes.topics(func(qds map[string]*wire.QueueData) bool {
		return firstSysFlag(qds)&sysFlagUnit != 0
	}))), nil
}

func (s *Server) getHasUnitSubTopicList(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	return success(req, topicListBody(s.routes.topics(func(qds map[string]*wire.QueueData) bool {
		return firstSysFlag(qds)&sysFlagUnitSub != 0
	}))), nil
}

func (s *Server) getHasUnitSubUnUnitTopicList(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	return success(req, topicListBody(s.routes.topics(func(qds map[string]*wire.QueueData) bool {
		f := firstSysFlag(qds)
		return f&sysFlagUnit == 0 && f&sysFlagUnitSub != 0
	}))), nil
}

// --- KV config ---

func (s *Server) putKVConfig(c *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	f, err := required(req, "namespace", "key", "value")
	if err != nil {
		return nil, err
	}
	if err := s.kv.put(f[0], f[1], f[2]); err != nil {
		return nil, err
	}
	s.log.Info("kv config put", "namespace", f[0], "key", f[1], "value", f[2], "remote", c.RemoteAddr().String())
	return success(req, nil), nil
}

func (s *Server) getKVConfig(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	f, err := required(req, "namespace", "key")
	if err != nil {
		return nil, err
	}
	v, ok := s.kv.get(f[0], f[1])
	if !ok {
		return nil, fail(wire.QueryNotFound, kvNotFoundRemarkFormat, f[0], f[1])
	}
	resp := success(req, nil)
	resp.Set("value", v)
	return resp, nil
}

func (s *Server) deleteKVConfig(c *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	f, err := required(req, "namespace", "key")
	if err != nil {
		return nil, err
	}
	if err := s.kv.delete(f[0], f[1]); err != nil {
		return nil, err
	}
	s.log.Info("kv config deleted", "namespace", f[0], "key", f[1], "remote", c.RemoteAddr().String())
	return success(req, nil), nil
}

func (s *Server) getKVListByNamespace(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	f, err := required(req, "namespace")
	if err != nil {
		return nil, err
	}
	table, ok := s.kv.list(f[0])
	if !ok {
		return nil, fail(wire.QueryNotFound, kvNamespaceNotFoundRemarkFormat, f[0])
	}
	return success(req, wire.Marshal(wire.KVTable{Table: table})), nil
}

// --- name server config ---

func (s *Server) getNamesrvConfig(_ *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	return success(req, s.configProperties()), nil
}

func (s *Server) updateNamesrvConfig(c *remoting.Conn, req *wire.Command) (*wire.Command, error) {
	ignored, err := s.updateConfig(string(req.Body))
	var bl errBlackListed
	if errors.As(err, &bl) {
		return nil, fail(wire.NoPermission, "%v", err)
	}
	if err != nil {
		return nil, fail(wire.SystemError, "%v", err)
	}
	s.log.Info("name server config updated", "body", string(req.Body), "remote", c.RemoteAddr().String())
	if len(ignored) > 0 {
		s.log.Warn("name server config keys ignored: unknown or read only at start", "keys", ignored)
	}
	return success(req, nil), nil
}
