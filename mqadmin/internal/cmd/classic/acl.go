package classic

import (
	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	aclcmd "github.com/mqops/mqops/mqadmin/internal/cmd/acl"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

// aclCmds are Java 4.9's ACL commands (apache/rocketmq rocketmq-all-4.9.7
// tools/src/main/java/org/apache/rocketmq/tools/command/acl/), with their
// option letters. Java names two of them deleteAccessConfig and
// getAccessConfigSubCommand; deleteAclConfig and getAclConfig, the names
// users expect next to updateAclConfig, are aliases. Unlike Java, -c
// carries on past a broker that fails, reports each, and exits 1.
func aclCmds(f *cmdutil.Factory) []*cobra.Command {
	uo := &aclcmd.UserOptions{}
	var topicPerms, groupPerms string
	update := cmd(f, "updateAclConfig", "Update acl config yaml file in broker", "acl user update", func() error {
		uo.Account.TopicPerms = wire.SplitACLList(topicPerms)
		uo.Account.GroupPerms = wire.SplitACLList(groupPerms)
		return aclcmd.RunUserUpdate(f, uo)
	})
	fl := update.Flags()
	targetFlags(update, &uo.Target)
	fl.StringVarP(&uo.Account.AccessKey, "accessKey", "a", "", "set accessKey in acl config file")
	fl.StringVarP(&uo.Account.SecretKey, "secretKey", "s", "", "set secretKey in acl config file")
	fl.StringVarP(&uo.Account.WhiteRemoteAddress, "whiteRemoteAddress", "w", "", "set white ip Address for account in acl config file")
	fl.StringVarP(&uo.Account.DefaultTopicPerm, "defaultTopicPerm", "i", "", "set default topicPerm in acl config file")
	fl.StringVarP(&uo.Account.DefaultGroupPerm, "defaultGroupPerm", "u", "", "set default GroupPerm in acl config file")
	fl.StringVarP(&topicPerms, "topicPerms", "t", "", "set topicPerms list,eg: topicA=DENY,topicD=SUB")
	fl.StringVarP(&groupPerms, "groupPerms", "g", "", "set groupPerms list,eg: groupD=DENY,groupD=SUB")
	fl.VarP(&uo.Admin, "admin", "m", "set admin flag in acl config file (true|false)")
	fl.Int64Var(&uo.TPS, "produceTps", 0, "mqops: produce quota in messages per second per broker (0 removes it)")
	fl.Int64Var(&uo.BPS, "produceBps", 0, "mqops: produce quota in bytes per second per broker (0 removes it)")
	required(update, "accessKey")
	uo.Set = func(name string) bool {
		switch name {
		case "produce-tps":
			name = "produceTps"
		case "produce-bps":
			name = "produceBps"
		}
		return fl.Changed(name)
	}

	var dt admin.Target
	var dak string
	del := cmd(f, "deleteAclConfig", "Delete Acl Config Account in broker", "acl user delete", func() error { return aclcmd.RunUserDelete(f, dt, dak) })
	del.Aliases = []string{"deleteAccessConfig"}
	targetFlags(del, &dt)
	del.Flags().StringVarP(&dak, "accessKey", "a", "", "set accessKey in acl config file for deleting which account")
	required(del, "accessKey")

	var wt admin.Target
	var white string
	wl := cmd(f, "updateGlobalWhiteAddr", "Update global white address for acl Config File in broker", "acl whitelist set", func() error {
		return aclcmd.RunWhitelistSet(f, wt, wire.SplitACLList(white), "")
	})
	targetFlags(wl, &wt)
	wl.Flags().StringVarP(&white, "globalWhiteRemoteAddresses", "g", "", "set globalWhiteRemoteAddress list,eg: 10.10.103.*,192.168.0.*")
	required(wl, "globalWhiteRemoteAddresses")

	var vt admin.Target
	ver := cmd(f, "clusterAclConfigVersion", "List all of acl config version information in cluster", "acl version", func() error { return aclcmd.RunVersion(f, vt) })
	targetFlags(ver, &vt)

	lo := &aclcmd.ListOptions{}
	get := cmd(f, "getAclConfig", "List all of acl config information in cluster", "acl user list", func() error { return aclcmd.RunUserList(f, lo) })
	get.Aliases = []string{"getAccessConfigSubCommand"}
	targetFlags(get, &lo.Target)
	get.Flags().BoolVar(&lo.ShowSecret, "show-secret", false, "print secret keys instead of ******")
	return []*cobra.Command{update, del, wl, ver, get}
}
