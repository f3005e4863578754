package server

import (
	"encoding/json"
	"errors"

	"github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// The ACL admin codes 50-54 (apache/rocketmq rocketmq-all-4.9.7 broker/src/
// main/java/org/apache/rocketmq/broker/processor/AdminBrokerProcessor.java
// updateAndCreateAccessConfig, deleteAccessConfig, getBrokerAclConfigVersion,
// updateGlobalWhiteAddrsConfig, getBrokerClusterAclConfig). The gate let
// only admin accounts through (Java 4.9 lets any signed account). Java
// answers a failed change with 209/210/211 and the exception text; so do
// these, with a remark that names the field at fault.

func (b *Broker) handleACLAdmin(c *remoting.Conn, req *wire.Command) {
	if b.acl == nil || b.acl.Edit == nil {
		failed := map[int32]int32{wire.UpdateAndCreateACLConfig: wire.UpdateAndCreateACLConfigFailed,
			wire.DeleteACLConfig: wire.DeleteACLConfigFailed, wire.UpdateGlobalWhiteAddrsConfig: wire.UpdateGlobalWhiteAddrsConfigFailed}
		code, ok := failed[req.Code]
		if !ok {
			code = wire.SystemError
		}
		c.ReplyCode(req, code, "ACL is off on this broker (aclEnable=false): there are no rules to read or change")
		return
	}
	switch req.Code {
	case wire.UpdateAndCreateACLConfig:
		b.handleUpdateACLAccount(c, req)
	case wire.DeleteACLConfig:
		ak := req.GetString(wire.ACLAccessKey)
		res, err := b.acl.Edit.DeleteAccount(ak)
		b.aclChanged(c, req, wire.DeleteACLConfigFailed, "[ACL_DELETE] account deleted", ak, res, err)
	case wire.UpdateGlobalWhiteAddrsConfig:
		if !req.Has(wire.ACLGlobalWhiteAddrs) {
			missing(c, req, wire.ACLGlobalWhiteAddrs)
			return
		}
		addrs := wire.SplitACLList(req.GetString(wire.ACLGlobalWhiteAddrs))
		res, err := b.acl.Edit.SetGlobalWhite(addrs, req.GetString(wire.ACLFileFullPath))
		b.aclChanged(c, req, wire.UpdateGlobalWhiteAddrsConfigFailed, "[ACL_WHITELIST] global white list replaced", "", res, err)
	case wire.GetBrokerClusterACLInfo:
		s := b.acl.Rules()
		all := map[string]wire.DataVersion{}
		for _, f := range s.Files {
			all[f] = s.DataVersions[f]
		}
		allJSON, _ := json.Marshal(all)
		resp := wire.ResponseTo(req, wire.Success, "")
		resp.Set(wire.ACLVersion, string(wire.Marshal(s.DataVersions[s.Files[0]])))
		resp.Set(wire.ACLAllAclFileVersion, string(allJSON))
		resp.Set(wire.ACLBrokerName, b.cfg.BrokerName)
		resp.Set(wire.ACLBrokerAddr, b.addr)
		resp.Set(wire.ACLClusterName, b.cfg.BrokerClusterName)
		c.Reply(req, &resp)
	case wire.GetBrokerClusterACLConfig:
		// Secrets included, as Java's body does: only admin accounts get here.
		body, err := json.Marshal(b.acl.Rules().Config(true))
		if err != nil {
			c.ReplyCode(req, wire.SystemError, "encode ACL config: "+err.Error())
			return
		}
		b.replyBody(c, req, body)
	}
}

func (b *Broker) handleUpdateACLAccount(c *remoting.Conn, req *wire.Command) {
	ch, err := wire.DecodeACLAccount(req)
	if err != nil {
		c.ReplyCode(req, wire.UpdateAndCreateACLConfigFailed, err.Error())
		return
	}
	res, err := b.acl.Edit.UpdateAccount(ch)
	what := "[ACL_UPDATE] account updated"
	if res.Created {
		what = "[ACL_UPDATE] account created"
	}
	b.aclChanged(c, req, wire.UpdateAndCreateACLConfigFailed, what, ch.AccessKey, res, err)
}

// aclChanged answers a change and logs it; the log never holds a secret.
func (b *Broker) aclChanged(c *remoting.Conn, req *wire.Command, failCode int32, what, ak string, res acl.Change, err error) {
	remote := c.RemoteAddr().String()
	if err != nil {
		if errors.Is(err, acl.ErrInvalid) {
			b.log.Warn("[ACL] change refused", "code", req.Code, "accessKey", ak, "remote", remote, "err", err)
		} else {
			b.log.Error("[ACL] change failed, rules in force unchanged", "code", req.Code, "accessKey", ak, "remote", remote, "err", err)
		}
		c.ReplyCode(req, failCode, err.Error())
		return
	}
	b.log.Info(what, "accessKey", ak, "file", res.File, "dataVersion", res.DataVersion.Counter, "by", req.GetString(wire.ExtAccessKey), "remote", remote)
	c.ReplyCode(req, wire.Success, "")
}
