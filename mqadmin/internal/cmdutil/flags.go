package cmdutil

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
)

// AddTargetFlags adds -b/--broker and -c/--cluster filling t.
func AddTargetFlags(cmd *cobra.Command, t *admin.Target) {
	cmd.Flags().StringVarP(&t.Broker, "broker", "b", "", "broker address (ip:port) or broker name")
	cmd.Flags().StringVarP(&t.Cluster, "cluster", "c", "", "cluster name: every master of the cluster")
}

// RequireTarget fails unless exactly one of broker and cluster is set.
func RequireTarget(t admin.Target) error {
	if (t.Broker == "") == (t.Cluster == "") {
		return errors.New("give exactly one of a broker (-b) or a cluster (-c)")
	}
	return nil
}

// JavaBool is a boolean option that takes its value as the next argument
// ("-o true"), as Java mqadmin's commons-cli options do; a plain pflag
// bool would read "true" as a stray positional argument.
type JavaBool bool

// String implements pflag.Value.
func (b *JavaBool) String() string { return strconv.FormatBool(bool(*b)) }

// Set implements pflag.Value.
func (b *JavaBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	*b = JavaBool(v)
	return nil
}

// Type implements pflag.Value.
func (b *JavaBool) Type() string { return "true|false" }

// ParseTime reads a point in time and returns epoch milliseconds. It takes
// "now", epoch milliseconds, Java mqadmin's yyyy-MM-dd#HH:mm:ss:SSS, RFC
// 3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02" (local
// time), "today" (local midnight), and a negative duration such as "-1h30m"
// for that long before now.
func ParseTime(in string, now time.Time) (int64, error) {
	s := strings.TrimSpace(in)
	switch s {
	case "now":
		return now.UnixMilli(), nil
	case "today":
		y, m, d := now.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, now.Location()).UnixMilli(), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	if strings.HasPrefix(s, "-") {
		if d, err := time.ParseDuration(s); err == nil {
			return now.Add(d).UnixMilli(), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	if strings.Count(s, "#") == 1 && strings.Count(s, ":") == 3 {
		// Java's ":SSS" milliseconds; Go layouts need a '.' before them.
		i := strings.LastIndexByte(s, ':')
		s = s[:i] + "." + s[i+1:]
	}
	for _, layout := range []string{"2006-01-02#15:04:05.000", "2006-01-02 15:04:05.000", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("cannot read time %q: use now, today, epoch ms, -1h, 2006-01-02 15:04:05, RFC 3339 or yyyy-MM-dd#HH:mm:ss:SSS", in)
}
