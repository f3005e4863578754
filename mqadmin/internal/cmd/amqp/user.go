package amqp

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/wire"
)

// Users and permissions, as rabbitmqctl's add_user, change_password,
// set_user_tags, delete_user, list_users, set_permissions,
// clear_permissions and list_permissions manage them.
func newUserCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "AMQP users (logins of the gateways) and their vhost permissions",
		Long: `AMQP users live in the AMQP engine of the default vhost's home broker;
every gateway checks each login there. Without any change the database holds
RabbitMQ's default guest/guest (gateways let it in from loopback only:
loopbackUsers). Passwords are stored as RabbitMQ's salted SHA-256 hashes, so a
password_hash from a RabbitMQ definitions export can be imported as it is.`,
	}
	cmd.AddCommand(newUserListCmd(f), newUserPutCmd(f, true), newUserPutCmd(f, false), newUserDeleteCmd(f),
		newPermissionsCmd(f, false), newPermissionsCmd(f, true))
	return cmd
}

func userFlags(f *cmdutil.Factory, cmd *cobra.Command, broker *string) {
	cmd.Flags().StringVarP(broker, "broker", "b", "", "broker (address or name) instead of the default vhost's home")
	f.AddOutputFlag(cmd, true)
}

func newUserListCmd(f *cmdutil.Factory) *cobra.Command {
	var broker string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"list-permissions"},
		Short:   "List users with their tags and permissions per vhost",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			a, err := f.Admin()
			if err != nil {
				return err
			}
			us, err := a.AMQPUsers(broker)
			if err != nil {
				return err
			}
			p := f.Printer()
			if p.IsJSON() {
				return p.JSON(us)
			}
			var rows [][]string
			for _, u := range us {
				tags := strings.Join(u.Tags, ",")
				if tags == "" {
					tags = "-"
				}
				vhosts := make([]string, 0, len(u.Permissions))
				for v := range u.Permissions {
					vhosts = append(vhosts, v)
				}
				sort.Strings(vhosts)
				if len(vhosts) == 0 {
					rows = append(rows, []string{u.User, tags, "-", "", "", ""})
				}
				for _, v := range vhosts {
					pm := u.Permissions[v]
					rows = append(rows, []string{u.User, tags, v, pm.Configure, pm.Write, pm.Read})
				}
			}
			return p.Table([]string{"#User", "#Tags", "#Vhost", "#Configure", "#Write", "#Read"}, rows)
		},
	}
	userFlags(f, cmd, &broker)
	return cmd
}

func newUserPutCmd(f *cmdutil.Factory, add bool) *cobra.Command {
	var broker, password, hash string
	var fromStdin bool
	var tags []string
	use, short := "set USER [--password P | --password-stdin | --password-hash H] [--tags T,...]",
		"Change a user's password or tags"
	if add {
		use, short = "add USER (--password P | --password-stdin | --password-hash H) [--tags T,...]", "Add a user"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if fromStdin {
				line, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("--password-stdin: %w", err)
				}
				password = strings.TrimRight(line, "\r\n")
			}
			given := 0
			for _, s := range []string{password, hash} {
				if s != "" {
					given++
				}
			}
			if given > 1 {
				return errors.New("give one of --password, --password-stdin and --password-hash")
			}
			if add && given == 0 {
				return errors.New("a new user needs --password, --password-stdin or --password-hash")
			}
			u := wire.AMQPUserPut{User: args[0], Password: password, PasswordHash: hash}
			if c.Flags().Changed("tags") {
				u.Tags = append([]string{}, tags...)
			}
			a, err := f.Admin()
			if err != nil {
				return err
			}
			if err := a.AMQPPutUser(broker, u); err != nil {
				return err
			}
			verb := "changed"
			if add {
				verb = "added"
			}
			return done(f, struct {
				User   string `json:"user"`
				Result string `json:"result"`
			}{args[0], verb}, "user "+args[0]+" "+verb)
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "password (visible to other local users in ps; prefer --password-stdin)")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	cmd.Flags().StringVar(&hash, "password-hash", "", "RabbitMQ password_hash (base64 salted SHA-256) instead of a password")
	cmd.Flags().StringSliceVar(&tags, "tags", nil, "user tags, replacing the current ones (e.g. administrator,monitoring)")
	userFlags(f, cmd, &broker)
	return cmd
}

func newUserDeleteCmd(f *cmdutil.Factory) *cobra.Command {
	var broker string
	cmd := &cobra.Command{
		Use:   "delete USER",
		Short: "Delete a user (e.g. guest, once applications have their own)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			a, err := f.Admin()
			if err != nil {
				return err
			}
			if err := a.AMQPDeleteUser(broker, args[0]); err != nil {
				return err
			}
			return done(f, struct {
				User   string `json:"user"`
				Result string `json:"result"`
			}{args[0], "deleted"}, "user "+args[0]+" deleted")
		},
	}
	userFlags(f, cmd, &broker)
	return cmd
}

func newPermissionsCmd(f *cmdutil.Factory, clear bool) *cobra.Command {
	var broker string
	var p wire.AMQPPermissionSet
	use, short := "set-permissions USER --vhost V --configure RE --write RE --read RE",
		"Set a user's configure, write and read expressions in a vhost (\"\" matches nothing)"
	if clear {
		use, short = "clear-permissions USER --vhost V", "Remove a user's access to a vhost"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			p.User = args[0]
			a, err := f.Admin()
			if err != nil {
				return err
			}
			if err := a.AMQPSetPermissions(broker, p, clear); err != nil {
				return err
			}
			verb := "set"
			if clear {
				verb = "cleared"
			}
			return done(f, struct {
				User   string `json:"user"`
				Vhost  string `json:"vhost"`
				Result string `json:"result"`
			}{p.User, p.Vhost, verb}, fmt.Sprintf("permissions of %s in vhost %s %s", p.User, p.Vhost, verb))
		},
	}
	cmd.Flags().StringVar(&p.Vhost, "vhost", "/", "virtual host")
	if !clear {
		cmd.Flags().StringVar(&p.Configure, "configure", "", "regular expression of the queues and exchanges the user may declare and delete")
		cmd.Flags().StringVar(&p.Write, "write", "", "… may publish to (exchanges) and bind to (queues, exchanges)")
		cmd.Flags().StringVar(&p.Read, "read", "", "… may consume from and bind from")
	}
	userFlags(f, cmd, &broker)
	return cmd
}
