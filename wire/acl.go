package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// ACL admin requests (codes 50-54): header field names and bodies of
// apache/rocketmq rocketmq-all-4.9.7 common/src/main/java/org/apache/
// rocketmq/common/protocol/header/CreateAccessConfigRequestHeader.java,
// DeleteAccessConfigRequestHeader.java,
// UpdateGlobalWhiteAddrsConfigRequestHeader.java,
// GetBrokerAclConfigResponseHeader.java and
// GetBrokerClusterAclConfigResponseBody.java.

// CreateAccessConfigRequestHeader fields (code 50). The list fields are
// comma-separated name=PERM entries. ProduceTPS and ProduceBPS are
// mqops' per-account produce quotas, which Java brokers ignore.
const (
	ACLAccessKey          = "accessKey"
	ACLSecretKey          = "secretKey"
	ACLWhiteRemoteAddress = "whiteRemoteAddress"
	ACLAdmin              = "admin"
	ACLDefaultTopicPerm   = "defaultTopicPerm"
	ACLDefaultGroupPerm   = "defaultGroupPerm"
	ACLTopicPerms         = "topicPerms"
	ACLGroupPerms         = "groupPerms"
	ACLProduceTPS         = "produceTps"
	ACLProduceBPS         = "produceBps"
)

// ACLAccount is code 50's header: an account to create or update. As in
// Java, an empty string or list keeps the stored value (a list given
// replaces the whole list); Admin, ProduceTPS and ProduceBPS are sent, and
// change, only when set (a quota of 0 removes it).
type ACLAccount struct {
	AccessKey          string
	SecretKey          string
	WhiteRemoteAddress string
	Admin              *bool
	DefaultTopicPerm   string
	DefaultGroupPerm   string
	TopicPerms         []string
	GroupPerms         []string
	ProduceTPS         *int64
	ProduceBPS         *int64
}

// Fields encodes acc as code 50's header fields: only what is set.
func (acc *ACLAccount) Fields() map[string]string {
	f := map[string]string{ACLAccessKey: acc.AccessKey}
	set := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	set(ACLSecretKey, acc.SecretKey)
	set(ACLWhiteRemoteAddress, acc.WhiteRemoteAddress)
	set(ACLDefaultTopicPerm, acc.DefaultTopicPerm)
	set(ACLDefaultGroupPerm, acc.DefaultGroupPerm)
	set(ACLTopicPerms, strings.Join(acc.TopicPerms, ","))
	set(ACLGroupPerms, strings.Join(acc.GroupPerms, ","))
	if acc.Admin != nil {
		f[ACLAdmin] = strconv.FormatBool(*acc.Admin)
	}
	if acc.ProduceTPS != nil {
		f[ACLProduceTPS] = strconv.FormatInt(*acc.ProduceTPS, 10)
	}
	if acc.ProduceBPS != nil {
		f[ACLProduceBPS] = strconv.FormatInt(*acc.ProduceBPS, 10)
	}
	return f
}

// DecodeACLAccount reads code 50's header fields; the error names the
// field at fault. The values are checked no further (broker/acl does).
func DecodeACLAccount(req *Command) (ACLAccount, error) {
	acc := ACLAccount{
		AccessKey:          req.GetString(ACLAccessKey),
		SecretKey:          req.GetString(ACLSecretKey),
		WhiteRemoteAddress: req.GetString(ACLWhiteRemoteAddress),
		DefaultTopicPerm:   req.GetString(ACLDefaultTopicPerm),
		DefaultGroupPerm:   req.GetString(ACLDefaultGroupPerm),
		TopicPerms:         SplitACLList(req.GetString(ACLTopicPerms)),
		GroupPerms:         SplitACLList(req.GetString(ACLGroupPerms)),
	}
	if req.Has(ACLAdmin) {
		v, err := strconv.ParseBool(req.GetString(ACLAdmin))
		if err != nil {
			return ACLAccount{}, fmt.Errorf("%s: %q is not true or false", ACLAdmin, req.GetString(ACLAdmin))
		}
		acc.Admin = &v
	}
	for _, q := range []struct {
		key string
		dst **int64
	}{{ACLProduceTPS, &acc.ProduceTPS}, {ACLProduceBPS, &acc.ProduceBPS}} {
		if !req.Has(q.key) {
			continue
		}
		v, err := strconv.ParseInt(req.GetString(q.key), 10, 64)
		if err != nil || v < 0 {
			return ACLAccount{}, fmt.Errorf("%s: %q is not a whole number >= 0", q.key, req.GetString(q.key))
		}
		*q.dst = &v
	}
	return acc, nil
}

// SplitACLList splits a comma-separated header list as Java's UtilAll.split
// does, blank entries dropped.
func SplitACLList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// UpdateGlobalWhiteAddrsConfigRequestHeader fields (code 53):
// globalWhiteAddrs is comma-separated; aclFileFullPath (4.9.3+) picks the
// rules file, the default file when empty.
const (
	ACLGlobalWhiteAddrs = "globalWhiteAddrs"
	ACLFileFullPath     = "aclFileFullPath"
)

// GetBrokerAclConfigResponseHeader fields (code 52): version is the
// default file's DataVersion as JSON, allAclFileVersion (4.9.3+) a JSON
// object of file path to DataVersion.
const (
	ACLVersion           = "version"
	ACLAllAclFileVersion = "allAclFileVersion"
	ACLBrokerName        = "brokerName"
	ACLBrokerAddr        = "brokerAddr"
	ACLClusterName       = "clusterName"
)

// PlainAccessConfig is one account as code 54 reports it (apache/rocketmq
// common/src/main/java/org/apache/rocketmq/common/PlainAccessConfig.java),
// plus mqops' produce quotas.
type PlainAccessConfig struct {
	AccessKey          string   `json:"accessKey"`
	SecretKey          string   `json:"secretKey"`
	WhiteRemoteAddress string   `json:"whiteRemoteAddress"`
	Admin              bool     `json:"admin"`
	DefaultTopicPerm   string   `json:"defaultTopicPerm"`
	DefaultGroupPerm   string   `json:"defaultGroupPerm"`
	TopicPerms         []string `json:"topicPerms"`
	GroupPerms         []string `json:"groupPerms"`
	ProduceTPS         int64    `json:"produceTps,omitempty"`
	ProduceBPS         int64    `json:"produceBps,omitempty"`
}

// ACLConfigBody is GetBrokerClusterAclConfigResponseBody (code 54).
type ACLConfigBody struct {
	GlobalWhiteAddrs   []string            `json:"globalWhiteAddrs"`
	PlainAccessConfigs []PlainAccessConfig `json:"plainAccessConfigs"`
}
