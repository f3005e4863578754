// Package hosts implements "mqadmin hosts check": the health of every
// host of an Ansible inventory, over SSH.
package hosts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	mqhosts "github.com/mqops/mqops/mqadmin/hosts"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
)

// NewCmd returns the hosts command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "Check the hosts of an Ansible inventory over SSH",
	}
	cmd.AddCommand(newCheckCmd(f))
	return cmd
}

// CheckOptions are the inputs of hosts check.
type CheckOptions struct {
	Inventory      string
	User           string
	Key            string
	KnownHosts     []string
	Insecure       bool
	Forks          int
	ConnectTimeout time.Duration
	CommandTimeout time.Duration
	MaxDiskUse     int
	Tail           int
}

func newCheckCmd(f *cmdutil.Factory) *cobra.Command {
	o := &CheckOptions{}
	cmd := &cobra.Command{
		Use:   "check -i INVENTORY [--key FILE] [--user USER]",
		Short: "Service, version, store disk, store errors and registration of every host",
		Long: `Logs in to every host of the inventory's mqops_namesrv and mqops_broker groups
(mqops_broker_master and mqops_broker_slave are children of mqops_broker) and
checks, one table row per host and role:

  service       a process runs <mqops_bin_dir>/mqbroker (mqnamesrv) and its
                listen port is open (pgrep; ss, netstat or /proc/net/tcp)
  version       <mqops_bin_dir>/mqbroker -version (the installed binary)
  disk          df of mqops_broker_store_dir, at most --max-disk-use percent
  store-errors  no ERROR line in <mqops_log_dir>/storeerror.log (today's file);
                the last --tail lines are in the JSON output
  registration  every name server of the inventory, asked from this machine,
                lists the broker at mqops_broker_ip:mqops_broker_listen_port

The inventory is a directory (hosts.yml or hosts.ini, group_vars/, host_vars/)
or one file, in Ansible's INI or YAML format; the variables are ansible_host,
ansible_port, ansible_user, mqops_bin_dir, mqops_log_dir,
mqops_broker_store_dir, mqops_broker_listen_port, mqops_namesrv_listen_port,
mqops_broker_ip, mqops_broker_name and mqops_broker_id.

SSH keys come from ssh-agent ($SSH_AUTH_SOCK) and --key; host keys must be in
known_hosts unless --insecure-ignore-host-key. Every failed check prints one
line on stderr ("HOST ROLE CHECK: reason") and the exit status is non-zero.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if !c.Flags().Changed("known-hosts") {
				o.KnownHosts = defaultKnownHosts()
			}
			return RunCheck(c.Context(), f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Inventory, "inventory", "i", "", "Ansible inventory: a directory such as inventory/prod, or a file")
	fl.StringVarP(&o.User, "user", "u", "", "SSH user for hosts without ansible_user (default: the current user)")
	fl.StringVar(&o.Key, "key", "", "private key file without passphrase, e.g. ~/.ssh/id_ed25519 (used with ssh-agent's keys)")
	fl.StringArrayVar(&o.KnownHosts, "known-hosts", nil, "known_hosts file, repeatable (default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)")
	fl.BoolVar(&o.Insecure, "insecure-ignore-host-key", false, "accept any host key: no protection against a man in the middle")
	fl.IntVarP(&o.Forks, "forks", "f", 10, "hosts checked at once")
	fl.DurationVar(&o.ConnectTimeout, "connect-timeout", 10*time.Second, "bound on connecting and logging in to one host")
	fl.DurationVar(&o.CommandTimeout, "command-timeout", 30*time.Second, "bound on each remote command")
	fl.IntVar(&o.MaxDiskUse, "max-disk-use", 85, "store disk usage in percent above which the disk check fails")
	fl.IntVar(&o.Tail, "tail", 3, "last lines of storeerror.log to report")
	_ = cmd.MarkFlagRequired("inventory")
	f.AddOutputFlag(cmd, true)
	return cmd
}

// defaultKnownHosts are OpenSSH's user and global files, those that exist.
func defaultKnownHosts() []string {
	var files []string
	if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".ssh", "known_hosts"))
	}
	files = append(files, "/etc/ssh/ssh_known_hosts")
	var out []string
	for _, p := range files {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// RunCheck checks the inventory's hosts and prints one row per host and
// role; it fails when any check fails.
func RunCheck(ctx context.Context, f *cmdutil.Factory, o *CheckOptions) error {
	switch {
	case o.Forks < 1:
		return errors.New("--forks must be at least 1")
	case o.MaxDiskUse < 1 || o.MaxDiskUse > 100:
		return errors.New("--max-disk-use must be a percentage from 1 to 100")
	case o.Tail < 0:
		return errors.New("--tail must not be negative")
	}
	inv, err := mqhosts.Load(o.Inventory)
	if err != nil {
		return err
	}
	sshOpts := mqhosts.SSHOptions{
		User:                  o.User,
		KeyFile:               expandHome(o.Key),
		AgentSocket:           f.Getenv("SSH_AUTH_SOCK"),
		InsecureIgnoreHostKey: o.Insecure,
		ConnectTimeout:        o.ConnectTimeout,
		CommandTimeout:        o.CommandTimeout,
	}
	for _, k := range o.KnownHosts {
		sshOpts.KnownHosts = append(sshOpts.KnownHosts, expandHome(k))
	}
	if sshOpts.User == "" {
		sshOpts.User = currentUser(f)
	}
	if len(sshOpts.KnownHosts) == 0 && !o.Insecure {
		return errors.New("no known_hosts file (~/.ssh/known_hosts): add the hosts' keys, pass --known-hosts, or --insecure-ignore-host-key")
	}
	s, err := mqhosts.NewSSH(sshOpts)
	if err != nil {
		return err
	}
	defer s.Close()

	tcfg, err := f.ClientTLS()
	if err != nil {
		return err
	}
	prog := f.Progress("checking hosts of " + o.Inventory)
	results, err := mqhosts.Check(ctx, inv, s, mqhosts.Options{
		NamesrvTLS:     tcfg,
		Forks:          o.Forks,
		MaxDiskUse:     o.MaxDiskUse,
		TailLines:      o.Tail,
		NamesrvTimeout: f.Timeout,
		Progress: func(done, total int) {
			prog.Update("checking hosts of %s: %d/%d done", o.Inventory, done, total)
		},
	})
	prog.Stop()
	if err != nil {
		return err
	}
	if err := printResults(f, results); err != nil {
		return err
	}
	failedHosts, hosts := map[string]bool{}, map[string]bool{}
	for _, r := range results {
		hosts[r.Host] = true
		for _, fail := range r.Failures {
			failedHosts[r.Host] = true
			fmt.Fprintf(f.ErrOut, "%s %s %s: %s\n", r.Host, r.Role, fail.Check, fail.Reason)
		}
	}
	if len(failedHosts) > 0 {
		return fmt.Errorf("%d of %d hosts failed checks", len(failedHosts), len(hosts))
	}
	return nil
}

// printResults prints the results as JSON or as a table, one row per
// host and role, "-" where a check did not run.
func printResults(f *cmdutil.Factory, results []mqhosts.Result) error {
	p := f.Printer()
	if p.IsJSON() {
		return p.JSON(results)
	}
	rows := make([][]string, len(results))
	for i, r := range results {
		row := []string{r.Host, string(r.Role), r.Addr, "", "", "", "", "", "OK"}
		if r.Service != nil {
			row[3] = r.Service.State()
		}
		if r.Version != nil {
			row[4] = r.Version.Version
		}
		if r.Disk != nil {
			row[5] = strconv.Itoa(r.Disk.UsePercent) + "%"
		}
		if r.StoreErrors != nil {
			row[6] = strconv.Itoa(r.StoreErrors.ErrorLines)
		}
		if len(r.Registration) > 0 {
			listed := 0
			for _, reg := range r.Registration {
				if reg.Listed {
					listed++
				}
			}
			row[7] = fmt.Sprintf("%d/%d", listed, len(r.Registration))
		}
		if !r.OK {
			row[8] = "FAIL"
		}
		rows[i] = row
	}
	return p.Table([]string{"#Host", "#Role", "#Addr", "#Service", "#Version", "#Disk", "#Store Errors", "#Registered", "#Status"}, rows)
}

// currentUser is whom ssh would log in as.
func currentUser(f *cmdutil.Factory) string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return f.Getenv("USER")
}

// expandHome turns a leading "~/" into the home directory, for values the
// shell did not expand (--key=~/.ssh/id_ed25519, quoted paths).
func expandHome(p string) string {
	rest, ok := strings.CutPrefix(p, "~/")
	if !ok {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, rest)
}
