package cmdutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveCredentials(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "conf", "tools.yml"), []byte("accessKey: rocketmq2\nsecretKey: 12345678\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "mqadmin.yaml")
	if err := os.WriteFile(cfg, []byte("current-context: prod\ncontexts:\n  prod:\n    namesrv: 10.0.0.1:9876\n    accessKey: ctxKey12\n    secretKey: ctxSecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	f := &Factory{Getenv: func(k string) string { return env[k] }}
	check := func(wantAK, wantSK string) {
		t.Helper()
		ak, sk, err := f.ResolveCredentials()
		if err != nil || ak != wantAK || sk != wantSK {
			t.Fatalf("got %q %q %v, want %q %q", ak, sk, err, wantAK, wantSK)
		}
	}
	check("", "") // nothing anywhere: unsigned
	env["ROCKETMQ_HOME"] = home
	check("rocketmq2", "12345678") // tools.yml
	f.ConfigFile = cfg
	check("ctxKey12", "ctxSecret") // the context beats tools.yml
	env["MQADMIN_ACCESS_KEY"], env["MQADMIN_SECRET_KEY"] = "envKey12", "envSecret"
	check("envKey12", "envSecret")
	f.AccessKey, f.SecretKey = "flagKey1", "flagSecret"
	check("flagKey1", "flagSecret")
	f.SecretKey = ""
	if _, _, err := f.ResolveCredentials(); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("half a pair: %v", err)
	}
}
