// Package acl implements "mqadmin acl …": plain-ACL accounts and the
// global white list, written through the brokers (request codes 50-54) so
// that every master of a cluster gets the same rules, and an offline check
// of what an account may do under a rules file.
package acl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	brokeracl "github.com/mqops/mqops/broker/acl"
	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
	"github.com/mqops/mqops/wire"
)

// NewCmd returns the acl command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Plain-ACL accounts, white list and rule versions on the brokers; offline permission check",
		Long: `Plain-ACL accounts, white list and rule versions on the brokers.

Changes go through the brokers (RocketMQ's request codes 50-54), which
check them, rewrite their rules file atomically and bump its dataVersion;
with -c every master of the cluster gets the change and each broker's
outcome is printed. The command fails if any broker did. Changing the
rules needs an admin account (--access-key/--secret-key, the environment,
the context or tools.yml).`,
	}
	user := &cobra.Command{Use: "user", Short: "Create, change, delete and show accounts"}
	user.AddCommand(newUserCmd(f, "create"), newUserCmd(f, "update"), newUserDeleteCmd(f), newUserListCmd(f), newUserGetCmd(f))
	white := &cobra.Command{Use: "whitelist", Short: "The global white list of addresses that need no signature"}
	white.AddCommand(newWhitelistSetCmd(f))
	cmd.AddCommand(user, white, newVersionCmd(f), newCheckCmd(f))
	return cmd
}

// UserOptions are an account change and where it goes.
type UserOptions struct {
	Target  admin.Target
	Account wire.ACLAccount
	// Admin, TPS and BPS are the optional fields as flags: set only when
	// the flag is given.
	Admin    cmdutil.JavaBool
	TPS, BPS int64
	// Set reports whether a flag was given.
	Set func(name string) bool
}

func newUserCmd(f *cmdutil.Factory, verb string) *cobra.Command {
	o := &UserOptions{}
	short := "Create an account (or update it if it exists) on the brokers"
	if verb == "update" {
		short = "Change an account on the brokers; what is not given is kept"
	}
	cmd := &cobra.Command{
		Use:   verb + " --ak KEY (-b BROKER | -c CLUSTER) [--sk SECRET] [flags]",
		Short: short,
		Long: short + `.

--topic-perm and --group-perm, when given, replace the account's whole
list. --produce-tps/--produce-bps are mqops' per-account produce quotas
(0 removes one).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if verb == "create" && o.Account.SecretKey == "" {
				return errors.New("acl user create: --sk (the new account's secret key) is required")
			}
			return RunUserUpdate(f, o)
		},
	}
	fl := cmd.Flags()
	cmdutil.AddTargetFlags(cmd, &o.Target)
	fl.StringVar(&o.Account.AccessKey, "ak", "", "the account's access key (longer than 6 characters)")
	fl.StringVar(&o.Account.SecretKey, "sk", "", "the account's secret key (longer than 6 characters)")
	fl.StringVar(&o.Account.WhiteRemoteAddress, "white", "", "addresses that may skip the signature, e.g. 192.168.0.*")
	fl.Var(&o.Admin, "admin", "admin account (true|false)")
	fl.StringVar(&o.Account.DefaultTopicPerm, "default-topic-perm", "", "DENY, PUB, SUB or PUB|SUB for topics not listed")
	fl.StringVar(&o.Account.DefaultGroupPerm, "default-group-perm", "", "DENY, PUB, SUB or PUB|SUB for groups not listed")
	fl.StringSliceVar(&o.Account.TopicPerms, "topic-perm", nil, "TOPIC=PERM, repeatable or comma-separated")
	fl.StringSliceVar(&o.Account.GroupPerms, "group-perm", nil, "GROUP=PERM, repeatable or comma-separated")
	fl.Int64Var(&o.TPS, "produce-tps", 0, "produce quota in messages per second per broker (0 removes it)")
	fl.Int64Var(&o.BPS, "produce-bps", 0, "produce quota in bytes per second per broker (0 removes it)")
	_ = cmd.MarkFlagRequired("ak")
	o.Set = func(name string) bool { return fl.Changed(name) }
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunUserUpdate creates or updates an account on every selected broker.
func RunUserUpdate(f *cmdutil.Factory, o *UserOptions) error {
	acc := o.Account
	if o.Set("admin") {
		v := bool(o.Admin)
		acc.Admin = &v
	}
	if o.Set("produce-tps") {
		acc.ProduceTPS = &o.TPS
	}
	if o.Set("produce-bps") {
		acc.ProduceBPS = &o.BPS
	}
	// Refuse here what every broker would refuse, before writing anywhere.
	if err := brokeracl.CheckAccount(&acc); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), brokeracl.ErrInvalid.Error()+": "))
	}
	return onEach(f, o.Target, "update ACL account "+acc.AccessKey, func(a *admin.Admin, addr string) error {
		return a.UpdateACLAccount(addr, acc)
	})
}

func newUserDeleteCmd(f *cmdutil.Factory) *cobra.Command {
	var t admin.Target
	var ak string
	cmd := &cobra.Command{
		Use:   "delete --ak KEY (-b BROKER | -c CLUSTER)",
		Short: "Delete an account on the brokers",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunUserDelete(f, t, ak) },
	}
	cmdutil.AddTargetFlags(cmd, &t)
	cmd.Flags().StringVar(&ak, "ak", "", "the account's access key")
	_ = cmd.MarkFlagRequired("ak")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunUserDelete deletes an account on every selected broker.
func RunUserDelete(f *cmdutil.Factory, t admin.Target, ak string) error {
	if ak == "" {
		return errors.New("the access key is empty")
	}
	return onEach(f, t, "delete ACL account "+ak, func(a *admin.Admin, addr string) error {
		return a.DeleteACLAccount(addr, ak)
	})
}

func newWhitelistSetCmd(f *cmdutil.Factory) *cobra.Command {
	var t admin.Target
	var addrs []string
	var file string
	cmd := &cobra.Command{
		Use:   "set ADDR[,ADDR...] (-b BROKER | -c CLUSTER) [--file PATH]",
		Short: "Replace the global white list (no address: clear it)",
		Long: `Replace the global white list of the brokers' default rules file, or of
--file, one of the rules files the brokers load. Addresses in it need no
signature. Patterns: *, 10.1.1.1, 10.1.1.{1,2}, 10.1.1.1-100, 10.1.*.*,
10.0.0.0/8; several separated by commas.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 1 {
				addrs = wire.SplitACLList(args[0])
			}
			return RunWhitelistSet(f, t, addrs, file)
		},
	}
	cmdutil.AddTargetFlags(cmd, &t)
	cmd.Flags().StringVar(&file, "file", "", "the rules file to change (default: the broker's plain_acl.yml or aclFile)")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunWhitelistSet replaces the global white list on every selected broker.
func RunWhitelistSet(f *cmdutil.Factory, t admin.Target, addrs []string, file string) error {
	return onEach(f, t, "update global white list", func(a *admin.Admin, addr string) error {
		return a.SetGlobalWhiteAddrs(addr, addrs, file)
	})
}

// onEach writes on every selected broker and prints one row per broker;
// it fails if any broker did.
func onEach(f *cmdutil.Factory, t admin.Target, what string, write func(*admin.Admin, string) error) error {
	if err := cmdutil.RequireTarget(t); err != nil {
		return err
	}
	a, err := f.Admin()
	if err != nil {
		return err
	}
	res, err := a.OnEachBroker(t, func(addr string) error { return write(a, addr) })
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var failed []string
	rows := make([][]string, len(res))
	for i, r := range res {
		result := "OK"
		if r.Err != nil {
			result = "FAILED: " + unwrapRemark(r.Err)
			failed = append(failed, r.Addr)
		}
		rows[i] = []string{r.Name, r.Addr, result}
	}
	p := f.Printer()
	if p.IsJSON() {
		err = p.JSON(res)
	} else {
		err = p.Table([]string{"#Broker Name", "#Broker Addr", "#Result"}, rows)
	}
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		first := res[0].Err
		for _, r := range res {
			if r.Err != nil {
				first = r.Err
				break
			}
		}
		return fmt.Errorf("%s failed on %d of %d brokers (%s): %w", what, len(failed), len(res), strings.Join(failed, ", "), first)
	}
	return nil
}

// unwrapRemark is the broker's answer without the call's context, which
// the row already shows.
func unwrapRemark(err error) string {
	var re *admin.ResponseError
	if errors.As(err, &re) {
		return re.Error()
	}
	return err.Error()
}

func newVersionCmd(f *cmdutil.Factory) *cobra.Command {
	var t admin.Target
	cmd := &cobra.Command{
		Use:   "version (-b BROKER | -c CLUSTER)",
		Short: "Each broker's ACL rules version (dataVersion counter and time of the last change)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunVersion(f, t) },
	}
	cmdutil.AddTargetFlags(cmd, &t)
	f.AddOutputFlag(cmd, true)
	return cmd
}

// RunVersion prints GET_BROKER_CLUSTER_ACL_INFO of every selected broker,
// in Java's clusterAclConfigVersion columns.
func RunVersion(f *cmdutil.Factory, t admin.Target) error {
	_, vs, err := askEach(f, t, (*admin.Admin).ACLVersionOf)
	if err != nil {
		return err
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(vs)
	}
	rows := make([][]string, len(vs))
	for i, v := range vs {
		rows[i] = []string{v.Cluster, v.BrokerName, v.BrokerAddr, strconv.FormatInt(v.Version.Counter, 10), output.Time(v.Version.Timestamp)}
	}
	return p.Table([]string{"#Cluster Name", "#Broker Name", "#Broker Addr", "#AclConfigVersionNum", "#AclLastUpdateTime"}, rows)
}

// askEach reads from every selected broker at once; the first failure (in
// broker order) fails the command.
func askEach[T any](f *cmdutil.Factory, t admin.Target, get func(*admin.Admin, string) (T, error)) ([]admin.Broker, []T, error) {
	if err := cmdutil.RequireTarget(t); err != nil {
		return nil, nil, err
	}
	a, err := f.Admin()
	if err != nil {
		return nil, nil, err
	}
	brokers, err := a.Brokers(t)
	if err != nil {
		return nil, nil, err
	}
	out := make([]T, len(brokers))
	err = admin.FanOut(len(brokers), a.Parallel(), func(i int) (err error) {
		out[i], err = get(a, brokers[i].Addr)
		return err
	})
	return brokers, out, err
}

// ListOptions select the brokers and accounts to show.
type ListOptions struct {
	Target     admin.Target
	AccessKey  string // get: one account
	ShowSecret bool
}

func newUserListCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ListOptions{}
	cmd := &cobra.Command{
		Use:   "list (-b BROKER | -c CLUSTER) [--show-secret]",
		Short: "Every account and the global white list of the brokers (secrets masked)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return RunUserList(f, o) },
	}
	cmdutil.AddTargetFlags(cmd, &o.Target)
	cmd.Flags().BoolVar(&o.ShowSecret, "show-secret", false, "print secret keys instead of ******")
	f.AddOutputFlag(cmd, true)
	return cmd
}

func newUserGetCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ListOptions{}
	cmd := &cobra.Command{
		Use:   "get --ak KEY (-b BROKER | -c CLUSTER) [--show-secret]",
		Short: "One account as each broker has it (secret masked)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.AccessKey == "" {
				return errors.New("acl user get: --ak is required")
			}
			return RunUserList(f, o)
		},
	}
	cmdutil.AddTargetFlags(cmd, &o.Target)
	cmd.Flags().StringVar(&o.AccessKey, "ak", "", "the account's access key")
	cmd.Flags().BoolVar(&o.ShowSecret, "show-secret", false, "print the secret key instead of ******")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// BrokerACL is one broker's rules as printed.
type BrokerACL struct {
	BrokerAddr string `json:"brokerAddr"`
	wire.ACLConfigBody
}

// RunUserList prints the accounts (or one, o.AccessKey) of every selected
// broker (GET_BROKER_CLUSTER_ACL_CONFIG); secrets are masked unless
// o.ShowSecret. It fails if o.AccessKey is on none of them.
func RunUserList(f *cmdutil.Factory, o *ListOptions) error {
	bs, bodies, err := askEach(f, o.Target, (*admin.Admin).ACLConfigOf)
	if err != nil {
		return err
	}
	brokers := make([]BrokerACL, len(bodies))
	found := false
	for i, b := range bodies {
		cfg := BrokerACL{BrokerAddr: bs[i].Addr, ACLConfigBody: wire.ACLConfigBody{GlobalWhiteAddrs: b.GlobalWhiteAddrs, PlainAccessConfigs: []wire.PlainAccessConfig{}}}
		for _, acc := range b.PlainAccessConfigs {
			if o.AccessKey != "" && acc.AccessKey != o.AccessKey {
				continue
			}
			found = true
			if !o.ShowSecret && acc.SecretKey != "" {
				acc.SecretKey = "******"
			}
			cfg.PlainAccessConfigs = append(cfg.PlainAccessConfigs, acc)
		}
		brokers[i] = cfg
	}
	if o.AccessKey != "" && !found {
		return fmt.Errorf("no account with accessKey %s on %s", o.AccessKey, describe(o.Target))
	}
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(brokers)
	}
	var rows [][]string
	quota := func(v int64) string {
		if v == 0 {
			return "-"
		}
		return strconv.FormatInt(v, 10)
	}
	for _, b := range brokers {
		for _, acc := range b.PlainAccessConfigs {
			rows = append(rows, []string{b.BrokerAddr, acc.AccessKey, acc.SecretKey, strconv.FormatBool(acc.Admin), acc.DefaultTopicPerm, acc.DefaultGroupPerm,
				strings.Join(acc.TopicPerms, ","), strings.Join(acc.GroupPerms, ","), acc.WhiteRemoteAddress, quota(acc.ProduceTPS), quota(acc.ProduceBPS)})
		}
	}
	if err := p.Table([]string{"#Broker Addr", "#AccessKey", "#SecretKey", "#Admin", "#DefaultTopicPerm", "#DefaultGroupPerm", "#TopicPerms", "#GroupPerms", "#WhiteRemoteAddress", "#ProduceTps", "#ProduceBps"}, rows); err != nil {
		return err
	}
	if o.AccessKey == "" {
		p.Printf("\n")
		for _, b := range brokers {
			p.Printf("globalWhiteRemoteAddresses of %s: %s\n", b.BrokerAddr, strings.Join(b.GlobalWhiteAddrs, ","))
		}
	}
	return nil
}

func describe(t admin.Target) string {
	if t.Cluster != "" {
		return "cluster " + t.Cluster
	}
	return "broker " + t.Broker
}

// CheckOptions are an offline permission check.
type CheckOptions struct {
	AccessKey string
	Code      int32
	Topic     string
	Group     string
	AclFile   string // a rules file; default: the set a broker loads
	ConfDir   string // default: $ROCKETMQ_HOME/conf
	Namesrv   bool   // the name server's table instead of the broker's
}

func newCheckCmd(f *cmdutil.Factory) *cobra.Command {
	o := &CheckOptions{}
	cmd := &cobra.Command{
		Use:   "check --ak KEY --code N [--topic T] [--group G] [--acl-file FILE | --conf-dir DIR]",
		Short: "What a broker would decide for an account's request, from a local rules file",
		Long: `What a broker would decide for a request of code N by account KEY
naming topic T and group G, with a valid signature, from local rules
files: --acl-file, else the files a broker loads from --conf-dir
(default $ROCKETMQ_HOME/conf): plain_acl.yml and acl/*.yml. The decision
is the broker's own code's (white lists aside). Exits 1 when refused.

  mqadmin acl check --ak appUser1 --code 10 --topic Orders
  mqadmin acl check --ak appUser1 --code 11 --topic Orders --group billing`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return RunCheck(f, o) },
	}
	fl := cmd.Flags()
	fl.StringVar(&o.AccessKey, "ak", "", "the account's access key")
	fl.Int32Var(&o.Code, "code", 0, "the request code (10 SEND_MESSAGE, 310 SEND_MESSAGE_V2, 11 PULL_MESSAGE, 17 UPDATE_AND_CREATE_TOPIC, ...)")
	fl.StringVar(&o.Topic, "topic", "", "the topic the request names")
	fl.StringVar(&o.Group, "group", "", "the consumer group the request names")
	fl.StringVar(&o.AclFile, "acl-file", "", "one rules file (a broker's aclFile)")
	fl.StringVar(&o.ConfDir, "conf-dir", "", "the directory holding plain_acl.yml and acl/ (default $ROCKETMQ_HOME/conf)")
	fl.BoolVar(&o.Namesrv, "namesrv", false, "decide as a name server instead of a broker")
	_ = cmd.MarkFlagRequired("ak")
	_ = cmd.MarkFlagRequired("code")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// CheckResult is a decision as printed.
type CheckResult struct {
	AccessKey string `json:"accessKey"`
	Code      int32  `json:"code"`
	Request   string `json:"request"`
	Needs     string `json:"needs"`
	Allowed   bool   `json:"allowed"`
	Reason    string `json:"reason,omitempty"`
	Remark    string `json:"remark,omitempty"`
}

// RunCheck decides one request offline with the broker's checker.
func RunCheck(f *cmdutil.Factory, o *CheckOptions) error {
	src := brokeracl.Source{AclFile: o.AclFile, ConfDir: o.ConfDir}
	if src.AclFile == "" && src.ConfDir == "" {
		home := f.Getenv("ROCKETMQ_HOME")
		if home == "" {
			return errors.New("acl check: give --acl-file or --conf-dir, or set ROCKETMQ_HOME")
		}
		src.ConfDir = filepath.Join(home, "conf")
	}
	if src.AclFile != "" {
		if _, err := os.Stat(src.AclFile); err != nil {
			return fmt.Errorf("acl check: %w", err)
		}
	}
	rules, err := brokeracl.LoadRules(src)
	if err != nil {
		return fmt.Errorf("acl check: %w", err)
	}
	table := brokeracl.BrokerTable
	if o.Namesrv {
		table = brokeracl.NamesrvTable
	}
	d := brokeracl.NewChecker(table, rules).Decide(o.AccessKey, table.SampleRequest(o.Code, o.Topic, o.Group))
	res := CheckResult{AccessKey: o.AccessKey, Code: o.Code, Request: table.Name(o.Code), Needs: table.Needs(o.Code), Allowed: d.OK}
	if !d.OK {
		res.Reason, res.Remark = d.Reason.String(), d.Remark
	}
	p := f.Printer()
	if p.IsJSON() {
		err = p.JSON(res)
	} else {
		decision := "ALLOWED"
		if !d.OK {
			decision = "DENIED"
		}
		err = p.Table([]string{"#AccessKey", "#Code", "#Request", "#Needs", "#Decision", "#Remark"},
			[][]string{{res.AccessKey, strconv.Itoa(int(res.Code)), res.Request, res.Needs, decision, res.Remark}})
	}
	if err != nil {
		return err
	}
	if !d.OK {
		return fmt.Errorf("accessKey %s is refused code %d: %s", o.AccessKey, o.Code, d.Remark)
	}
	return nil
}
