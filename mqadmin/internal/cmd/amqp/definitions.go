package amqp

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/version"
)

// Definitions in RabbitMQ's file format, as rabbitmqctl export_definitions
// and import_definitions (and the management UI) move them: a RabbitMQ
// broker's topology and users come over in one command, and one mqops
// cluster's go to another (a blue-green upgrade, a backup).
func newDefinitionsCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "definitions",
		Short: "Export and import vhosts, users, permissions, exchanges, queues and bindings in RabbitMQ's definitions format",
		Long: `A RabbitMQ definitions file (rabbitmqctl export_definitions FILE, or the
management UI's "Export definitions") holds vhosts, users with their password
hashes, permissions, exchanges, queues and bindings. "import" applies one to
this cluster; users keep their passwords (RabbitMQ's salted SHA-256 hashes are
what mqops checks logins with). "export" writes this cluster's in the same
format, which rabbitmqctl import_definitions and another cluster's "import"
take. Messages are not part of definitions.`,
	}
	cmd.AddCommand(newDefinitionsExportCmd(f), newDefinitionsImportCmd(f))
	return cmd
}

func newDefinitionsExportCmd(f *cmdutil.Factory) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "export [-f FILE]",
		Short: "Write the cluster's AMQP definitions (with password hashes) as RabbitMQ's JSON",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			a, err := f.Admin()
			if err != nil {
				return err
			}
			d, err := a.ExportAMQPDefinitions("mqops", version.Version)
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				return err
			}
			b = append(b, '\n')
			if file == "" || file == "-" {
				_, err = f.Out.Write(b)
				return err
			}
			// The file holds password hashes: readable by its owner only.
			if err := os.WriteFile(file, b, 0o600); err != nil {
				return fmt.Errorf("write definitions: %w", err)
			}
			p := f.Printer()
			p.Printf("%d vhosts, %d users, %d permissions, %d exchanges, %d queues, %d bindings written to %s\n",
				len(d.Vhosts), len(d.Users), len(d.Permissions), len(d.Exchanges), len(d.Queues), len(d.Bindings), file)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "write to FILE (mode 0600) instead of standard output")
	return cmd
}

func newDefinitionsImportCmd(f *cmdutil.Factory) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Apply a RabbitMQ definitions file: vhosts, users, permissions, exchanges, queues, bindings",
		Long: `Applies the file in RabbitMQ's order (vhosts, users, permissions, exchanges,
queues, bindings). The whole file is checked first: an unsupported password
hashing algorithm or exchange type stops the import before anything changes.
Each step is idempotent, so the import can be run again. Objects a broker
refuses (a queue argument mqops does not take, a queue that exists with other
properties) are listed and the command exits 1; policies, runtime parameters
and topic permissions have no counterpart in mqops and are reported as not
imported.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(os.Stdin)
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return fmt.Errorf("read definitions: %w", err)
			}
			d, err := admin.ParseAMQPDefinitions(data)
			if err != nil {
				return err
			}
			a, err := f.Admin()
			if err != nil {
				return err
			}
			r, ierr := a.ImportAMQPDefinitions(d, dryRun)
			if r == nil {
				return ierr
			}
			p := f.Printer()
			if p.IsJSON() {
				if err := p.JSON(r); err != nil {
					return err
				}
				return ierr
			}
			verb := "imported"
			if dryRun {
				verb = "to import (dry run)"
			}
			rows := [][]string{}
			for _, kv := range []struct {
				k string
				n int
			}{{"vhosts", r.Vhosts}, {"users", r.Users}, {"permissions", r.Permissions}, {"exchanges", r.Exchanges}, {"queues", r.Queues}, {"bindings", r.Bindings}} {
				rows = append(rows, []string{kv.k, strconv.Itoa(kv.n)})
			}
			if err := p.Table([]string{"#Kind", "#" + verb}, rows); err != nil {
				return err
			}
			for _, s := range r.Skipped {
				p.Printf("skipped: %s\n", s)
			}
			for _, s := range r.NotImported {
				p.Printf("not imported: %s\n", s)
			}
			return ierr
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the file and count what would be applied, change nothing")
	f.AddOutputFlag(cmd, true)
	return cmd
}
