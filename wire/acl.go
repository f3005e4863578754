package wire

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
