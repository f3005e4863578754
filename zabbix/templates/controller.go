package templates

import "strings"

// Controller is the template of one mqcontroller.
const Controller = "RocketMQ controller by Zabbix agent"

// ControllerACLReasons are the refusal reasons a controller's ACL can
// give (acl.ControllerTable checks signatures and admin codes, no topics,
// groups or ACL bodies); each gets an item.
var ControllerACLReasons = []string{"no_access_key", "unknown_account", "signature", "admin"}

func controllerTemplate() *tpl {
	t := newTemplate(Controller, "One mqops controller (mqcontroller), from its own host: whether it answers and leads, and "+
		"with aclEnable the requests its ACL refused (by reason) and the admin requests it granted. Link one host per "+
		"controller; the cluster template watches the group's leader and the replication it decides.")
	t.macro("{$RMQ.CONTROLLER.NODE.ADDR}", "127.0.0.1:9878", "Address the agent reaches the controller on (its controllerDLegerPeers address).")
	t.macro("{$RMQ.ACL.DENIED.MAX}", "10", "ACL denials in 5 minutes worth a warning (wrong credentials, a broker without its inner credential, probing).")
	t.valueMap("Service state", "0", "Down", "1", "Up")
	t.valueMap("Yes/No", "0", "No", "1", "Yes")
	const (
		ctl       = `rocketmq.controller.get["{$RMQ.CONTROLLER.NODE.ADDR}"]`
		up        = "rocketmq.controller.up"
		aclDenied = "rocketmq.controller.acl.denied"
		aclReload = "rocketmq.controller.acl.reload_failed"
	)
	notUp := t.trigger("RocketMQ controller: does not answer", t.fn("max", up, "3m")+"=0", "HIGH", "availability",
		"The controller refused or timed out CONTROLLER_GET_METADATA_INFO for 3 minutes.")
	aclBurst := t.trigger("RocketMQ controller: burst of ACL denials", t.fn("sum", aclDenied, "5m")+">{$RMQ.ACL.DENIED.MAX}", "WARNING", "security",
		"More than {$RMQ.ACL.DENIED.MAX} requests refused by the controller's ACL in 5 minutes: a broker without its "+
			"innerClientAuthenticationCredentials (its heartbeats and registrations are refused, so it cannot fail over), "+
			"an mqadmin with wrong keys, or someone probing. The items by reason and the controller's acl.log name the "+
			"access key and address.", notUp)
	aclBurst.Opdata = "Denied in the last check: {ITEM.LASTVALUE1}"
	reloadFailed := t.trigger("RocketMQ controller: ACL rules reload failed, previous rules in force", t.fn("sum", aclReload, "1h")+">0", "AVERAGE", "security",
		"The controller re-read plain_acl.yml after a change and refused it in the last hour: the previous rules stay in force. "+
			"acl.log says why, with file and line.")
	reloadFailed.ManualClose = "YES"
	t.Items = []Item{
		withTriggers(t.master("RocketMQ controller: get data", ctl, "1m", "mqops-zbx controller: metadata and runtime info (ACL counters)."),
			t.trigger("RocketMQ controller: failed to fetch data", t.fn("nodata", ctl, "5m")+"=1", "WARNING", "availability", "")),
		withTriggers(withMap(t.dep(ctl, "RocketMQ controller: up", up, "$.up", vtUint, "", "availability", "0"), "Service state"), notUp),
		withMap(t.dep(ctl, "RocketMQ controller: leader", "rocketmq.controller.is_leader", "$.isLeader", vtUint, "", "availability", "0"), "Yes/No"),
		withMap(t.dep(ctl, "RocketMQ controller: ACL enabled", "rocketmq.controller.acl.enabled", "$.aclEnabled", vtUint, "", "security", "0"), "Yes/No"),
		withTriggers(withDesc(t.dep(ctl, "RocketMQ controller: ACL denials", aclDenied, "$.aclDenied", vtUint, "", "security", "", simpleChange),
			"Requests refused by the controller's ACL since the last check (aclEnable), every reason."), aclBurst),
	}
	for _, r := range ControllerACLReasons {
		t.Items = append(t.Items, t.dep(ctl, "RocketMQ controller: ACL denials, "+strings.ReplaceAll(r, "_", " "), aclDenied+"["+r+"]",
			"$.aclDeniedByReason."+r, vtUint, "", "security", "0", simpleChange))
	}
	t.Items = append(t.Items,
		withDesc(t.dep(ctl, "RocketMQ controller: ACL admin requests allowed", "rocketmq.controller.acl.admin_allowed", "$.aclAllowedAdmin", vtUint, "", "security", "", simpleChange),
			"Admin requests (brokers' heartbeats and registrations, elections, SyncStateSet changes, config updates) granted since the last check."),
		withTriggers(t.dep(ctl, "RocketMQ controller: ACL reload failures", aclReload, "$.aclReloadFailures", vtUint, "", "security", "", simpleChange), reloadFailed),
	)
	t.graph("RocketMQ controller: ACL denials and admin grants", aclDenied, "rocketmq.controller.acl.admin_allowed")
	return t
}
