package cmdutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each TLS setting comes from its flag, else the environment, else the
// context the name server comes from.
func TestResolveTLSPrecedence(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "mqadmin.yaml")
	yaml := "current-context: prod\ncontexts:\n  prod:\n    namesrv: \"10.0.0.1:9876\"\n    tls: true\n    tls-insecure-skip-verify: true\n    tls-server-name: ctx.example\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		namesrv  string
		flags    map[string]bool
		tls      TLSFlags
		env      map[string]string
		want     bool   // TLS on
		wantName string // server name
		wantErr  string
	}{
		{name: "context", want: true, wantName: "ctx.example"},
		{name: "env beats context", env: map[string]string{EnvTLS: "false"}},
		{name: "env server name", env: map[string]string{EnvTLSServerName: "env.example"}, want: true, wantName: "env.example"},
		{name: "flag beats env", flags: map[string]bool{"tls": true}, env: map[string]string{EnvTLS: "true"}},
		{name: "flag on", flags: map[string]bool{"tls": true, "tls-server-name": true}, tls: TLSFlags{Enable: true, ServerName: "flag.example"}, want: true, wantName: "flag.example"},
		{name: "-n skips the context", namesrv: "127.0.0.1:9876"},
		{name: "bad env", env: map[string]string{EnvTLS: "yes please"}, wantErr: EnvTLS + ` = "yes please"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &Factory{ConfigFile: conf, Namesrv: c.namesrv, TLS: c.tls,
				Getenv:     func(k string) string { return c.env[k] },
				TLSFlagSet: func(name string) bool { return c.flags[name] }}
			cfg, err := f.ClientTLS()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (cfg != nil) != c.want {
				t.Fatalf("TLS %v, want %v", cfg != nil, c.want)
			}
			if cfg != nil && cfg.ServerName != c.wantName {
				t.Errorf("server name %q, want %q", cfg.ServerName, c.wantName)
			}
		})
	}
}
