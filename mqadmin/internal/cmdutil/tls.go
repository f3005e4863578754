package cmdutil

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"

	"github.com/mqops/mqops/tlsconf"
)

// TLSFlags are the global TLS options (Java's tls.enable and tls.client.*
// of mqadmin's JVM).
type TLSFlags struct {
	Enable             bool   // --tls
	CAFile             string // --tls-ca-file
	ServerName         string // --tls-server-name
	InsecureSkipVerify bool   // --tls-insecure-skip-verify
}

// TLS environment variables, read when the flag is not given.
const (
	EnvTLS           = "MQADMIN_TLS"
	EnvTLSCAFile     = "MQADMIN_TLS_CA_FILE"
	EnvTLSServerName = "MQADMIN_TLS_SERVER_NAME"
	EnvTLSInsecure   = "MQADMIN_TLS_INSECURE_SKIP_VERIFY"
)

// ResolveTLS is the client TLS configuration, nil for plaintext. Each
// setting comes from its flag, else its environment variable, else the
// context the name server comes from (keys tls, tls-ca-file,
// tls-server-name, tls-insecure-skip-verify). set says which flags the
// command line gave.
func (f *Factory) ResolveTLS(set func(flag string) bool) (*tls.Config, error) {
	o := f.TLS
	ctx, err := f.tlsContext()
	if err != nil {
		return nil, err
	}
	str := func(flag, env string, dst *string) {
		if set(flag) {
			return
		}
		if v := f.Getenv(env); v != "" {
			*dst = v
		} else if v := ctx[flag]; v != "" {
			*dst = v
		}
	}
	boolean := func(flag, env string, dst *bool) error {
		if set(flag) {
			return nil
		}
		src, v := env, f.Getenv(env)
		if v == "" {
			src, v = "context key "+flag, ctx[flag]
		}
		if v == "" {
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s = %q: want true or false", src, v)
		}
		*dst = b
		return nil
	}
	if err := boolean("tls", EnvTLS, &o.Enable); err != nil {
		return nil, err
	}
	if err := boolean("tls-insecure-skip-verify", EnvTLSInsecure, &o.InsecureSkipVerify); err != nil {
		return nil, err
	}
	str("tls-ca-file", EnvTLSCAFile, &o.CAFile)
	str("tls-server-name", EnvTLSServerName, &o.ServerName)
	if !o.Enable {
		return nil, nil
	}
	return tlsconf.Client(tlsconf.ClientOptions{ServerName: o.ServerName, CAFile: o.CAFile,
		InsecureSkipVerify: o.InsecureSkipVerify, CAFileKey: "--tls-ca-file"})
}

// tlsContext is the TLS keys of the context the name server comes from,
// none when -n or $NAMESRV_ADDR gives it.
func (f *Factory) tlsContext() (map[string]string, error) {
	if f.Namesrv != "" || f.Context == "" && f.Getenv("NAMESRV_ADDR") != "" {
		return nil, nil
	}
	v, err := f.LoadConfig()
	if err != nil {
		return nil, err
	}
	ctx := f.Context
	if ctx == "" {
		ctx = v.GetString("current-context")
	}
	if ctx == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, k := range []string{"tls", "tls-ca-file", "tls-server-name", "tls-insecure-skip-verify"} {
		out[k] = v.GetString("contexts." + strings.ToLower(ctx) + "." + k)
	}
	return out, nil
}
