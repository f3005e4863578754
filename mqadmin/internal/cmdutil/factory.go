// Package cmdutil holds what every mqadmin command shares: global flags,
// finding the name server, the admin client, output and flag helpers.
package cmdutil

import (
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

// Factory carries the global options and lazily built clients of one run.
type Factory struct {
	Out    io.Writer
	ErrOut io.Writer

	// Global flags.
	Namesrv    string
	ConfigFile string
	Context    string
	Timeout    time.Duration
	// Parallel is how many brokers or name servers a command asks at once.
	Parallel int
	// ACL keys (--access-key/--secret-key); see ResolveCredentials.
	AccessKey, SecretKey string
	TLS                  TLSFlags
	// TLSFlagSet reports whether a TLS flag was given on the command line
	// (nil: none was).
	TLSFlagSet func(name string) bool

	// Format is bound to every command's --output flag; one command runs
	// per process, so they can share it.
	Format output.Format

	// Getenv reads the environment (os.Getenv outside tests).
	Getenv func(string) string

	admin *admin.Admin
}

// Admin returns the admin client for the resolved name server.
func (f *Factory) Admin() (*admin.Admin, error) {
	if f.admin != nil {
		return f.admin, nil
	}
	if f.Parallel < 1 {
		return nil, fmt.Errorf("--parallel must be 1 or more, got %d", f.Parallel)
	}
	ns, err := f.ResolveNamesrv()
	if err != nil {
		return nil, err
	}
	ak, sk, err := f.ResolveCredentials()
	if err != nil {
		return nil, err
	}
	tcfg, err := f.ClientTLS()
	if err != nil {
		return nil, err
	}
	a, err := admin.New(ns, f.Timeout)
	if err != nil {
		return nil, err
	}
	a.UseTLS(tcfg)
	a.SetParallel(f.Parallel)
	a.SetCredentials(ak, sk)
	f.admin = a
	return a, nil
}

// DirectAdmin returns the admin client for commands that reach
// controllers or brokers by address: the name server is used if one is
// configured, and only needed for what names resolve through it
// (a cluster's brokers).
func (f *Factory) DirectAdmin() (*admin.Admin, error) {
	if f.admin != nil {
		return f.admin, nil
	}
	if _, err := f.ResolveNamesrv(); err == nil {
		return f.Admin()
	}
	if f.Parallel < 1 {
		return nil, fmt.Errorf("--parallel must be 1 or more, got %d", f.Parallel)
	}
	ak, sk, err := f.ResolveCredentials()
	if err != nil {
		return nil, err
	}
	tcfg, err := f.ClientTLS()
	if err != nil {
		return nil, err
	}
	f.admin = admin.NewDirect(f.Timeout)
	f.admin.UseTLS(tcfg)
	f.admin.SetParallel(f.Parallel)
	f.admin.SetCredentials(ak, sk)
	return f.admin, nil
}

// ClientTLS is the TLS configuration the flags, environment and context
// ask for, nil for plaintext.
func (f *Factory) ClientTLS() (*tls.Config, error) {
	set := f.TLSFlagSet
	if set == nil {
		set = func(string) bool { return false }
	}
	return f.ResolveTLS(set)
}

// Close releases the admin client's connections.
func (f *Factory) Close() {
	if f.admin != nil {
		f.admin.Close()
	}
}

// Printer returns a printer in the chosen output format.
func (f *Factory) Printer() *output.Printer { return output.New(f.Out, f.Format) }

// Progress starts a progress indicator on stderr (inert when piped).
func (f *Factory) Progress(status string) *output.Progress {
	return output.StartProgress(f.ErrOut, status)
}

// AddOutputFlag adds -o/--output (short is false where a Java command
// already uses -o for something else).
func (f *Factory) AddOutputFlag(cmd *cobra.Command, short bool) {
	sh := ""
	if short {
		sh = "o"
	}
	cmd.Flags().VarP(&f.Format, "output", sh, "output format: table or json")
}
