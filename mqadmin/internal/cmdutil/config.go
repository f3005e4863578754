package cmdutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/viper"
)

// The config file holds named clusters ("contexts") like a kubeconfig:
//
//	current-context: prod
//	contexts:
//	  prod:
//	    namesrv: "10.0.0.1:9876;10.0.0.2:9876"
//	  staging:
//	    namesrv: "10.1.0.1:9876"
//
// Context names are case-insensitive (viper folds keys to lower case).

// DefaultConfigFile is ~/.mqadmin.yaml.
func DefaultConfigFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".mqadmin.yaml"
	}
	return filepath.Join(home, ".mqadmin.yaml")
}

// configPath is --config or the default file.
func (f *Factory) configPath() string {
	if f.ConfigFile != "" {
		return f.ConfigFile
	}
	return DefaultConfigFile()
}

// LoadConfig reads the config file; a missing default file is an empty
// config, a missing --config file is an error.
func (f *Factory) LoadConfig() (*viper.Viper, error) {
	v := viper.New()
	v.SetConfigFile(f.configPath())
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		if errors.Is(err, fs.ErrNotExist) && f.ConfigFile == "" {
			return v, nil
		}
		return nil, fmt.Errorf("read config %s: %w", f.configPath(), err)
	}
	return v, nil
}

// SaveConfig writes v back to the config file.
func (f *Factory) SaveConfig(v *viper.Viper) error {
	if err := v.WriteConfigAs(f.configPath()); err != nil {
		return fmt.Errorf("write config %s: %w", f.configPath(), err)
	}
	return nil
}

// Contexts returns the context names of a config, sorted.
func Contexts(v *viper.Viper) []string {
	m := v.GetStringMap("contexts")
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// ResolveNamesrv finds the name-server list: -n/--namesrv, then
// NAMESRV_ADDR, then the namesrv of the context chosen by
// --cluster-context or the file's current-context. There is deliberately
// no fallback address: a wrong cluster is worse than an error.
func (f *Factory) ResolveNamesrv() (string, error) {
	if f.Namesrv != "" {
		return f.Namesrv, nil
	}
	if f.Context == "" {
		if ns := f.Getenv("NAMESRV_ADDR"); ns != "" {
			return ns, nil
		}
	}
	v, err := f.LoadConfig()
	if err != nil {
		return "", err
	}
	ctx := f.Context
	if ctx == "" {
		ctx = v.GetString("current-context")
	}
	if ctx == "" {
		return "", fmt.Errorf("no name server: use -n/--namesrv, NAMESRV_ADDR or a context in %s", f.configPath())
	}
	ctx = strings.ToLower(ctx)
	if !v.IsSet("contexts." + ctx) {
		return "", fmt.Errorf("context %q not found in %s (have: %s)", ctx, f.configPath(), strings.Join(Contexts(v), ", "))
	}
	ns := v.GetString("contexts." + ctx + ".namesrv")
	if ns == "" {
		return "", fmt.Errorf("context %q in %s has no namesrv", ctx, f.configPath())
	}
	return ns, nil
}

// ResolveCredentials finds the ACL keys requests are signed with, the
// first source that has them: --access-key/--secret-key, then
// $MQADMIN_ACCESS_KEY/$MQADMIN_SECRET_KEY, then accessKey/secretKey of the
// chosen context, then $ROCKETMQ_HOME/conf/tools.yml as Java's mqadmin
// reads it (AclUtils.getAclRPCHook). None: requests go unsigned.
func (f *Factory) ResolveCredentials() (ak, sk string, err error) {
	pair := func(where, ak, sk string) (string, string, bool, error) {
		switch {
		case ak == "" && sk == "":
			return "", "", false, nil
		case ak == "" || sk == "":
			return "", "", false, fmt.Errorf("%s: both the access key and the secret key are needed", where)
		}
		return ak, sk, true, nil
	}
	if ak, sk, ok, err := pair("--access-key/--secret-key", f.AccessKey, f.SecretKey); ok || err != nil {
		return ak, sk, err
	}
	if ak, sk, ok, err := pair("MQADMIN_ACCESS_KEY/MQADMIN_SECRET_KEY", f.Getenv("MQADMIN_ACCESS_KEY"), f.Getenv("MQADMIN_SECRET_KEY")); ok || err != nil {
		return ak, sk, err
	}
	if v, err := f.LoadConfig(); err == nil {
		ctx := f.Context
		if ctx == "" {
			ctx = v.GetString("current-context")
		}
		if ctx != "" {
			base := "contexts." + strings.ToLower(ctx) + "."
			if ak, sk, ok, err := pair(f.configPath()+" context "+ctx, v.GetString(base+"accesskey"), v.GetString(base+"secretkey")); ok || err != nil {
				return ak, sk, err
			}
		}
	}
	if home := f.Getenv("ROCKETMQ_HOME"); home != "" {
		path := filepath.Join(home, "conf", "tools.yml")
		v := viper.New()
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err == nil {
			// Java ignores a tools.yml with blank keys: unsigned.
			if ak, sk := v.GetString("accessKey"), v.GetString("secretKey"); ak != "" && sk != "" {
				return ak, sk, nil
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("read %s: %w", path, err)
		}
	}
	return "", "", nil
}
