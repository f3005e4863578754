package root

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

func runArgs(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// Help lists the noun-verb groups first, then Java's names.
func TestHelpGroups(t *testing.T) {
	out, _, code := runArgs("help")
	core, classic := strings.Index(out, "\nCommands:\n"), strings.Index(out, "\nClassic RocketMQ commands:\n")
	if code != 0 || core < 0 || classic < core {
		t.Fatalf("help (exit %d):\n%s", code, out)
	}
	for _, name := range []string{"topic", "message", "group", "producer", "broker", "cluster", "namesrv", "stats", "config"} {
		if i := strings.Index(out, "\n  "+name+" "); i < core || i > classic {
			t.Errorf("%s not among the noun-verb commands", name)
		}
	}
	for _, name := range []string{"updateTopic", "deleteTopic", "topicList", "topicRoute", "topicStatus", "queryMsgById",
		"queryMsgByKey", "queryMsgByUniqueKey", "queryMsgByOffset", "consumerProgress", "consumerConnection",
		"producerConnection", "updateSubGroup", "deleteSubGroup", "resetOffsetByTime", "clusterList", "brokerStatus",
		"getBrokerConfig", "updateBrokerConfig", "wipeWritePerm", "addWritePerm", "statsAll", "sendMessage", "queryMsgTraceById",
		"consumerStatus"} {
		if i := strings.Index(out, "\n  "+name+" "); i < classic {
			t.Errorf("%s not among the classic commands", name)
		}
	}
}

// Java's names match in any case; errors are one line and exit non-zero.
func TestClassicNamesAndErrors(t *testing.T) {
	out, _, code := runArgs("UPDATETOPIC", "--help")
	if code != 0 || !strings.Contains(out, "-w, --writeQueueNums") {
		t.Fatalf("UPDATETOPIC --help (exit %d):\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "list", "--bogus"}, "mqadmin: unknown flag: --bogus (see 'mqadmin topic list --help')\n"},
		{[]string{"updateTopic", "-t", "T", "-o", "maybe"}, `mqadmin: invalid argument "maybe" for "-o, --order" flag: want true or false, got "maybe" (see 'mqadmin updateTopic --help')` + "\n"},
		{[]string{"topic", "create", "-t", "T", "-n", "127.0.0.1:1"}, "mqadmin: give exactly one of a broker (-b) or a cluster (-c)\n"},
		{[]string{"cluster", "list", "-n", "127.0.0.1:1", "--parallel", "0"}, "mqadmin: --parallel must be 1 or more, got 0\n"},
	} {
		stdout, stderr, code := runArgs(c.args...)
		if code == 0 || stdout != "" || stderr != c.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", c.args, code, stdout, stderr, c.want)
		}
	}
}

// Every classic command takes -o json as the output format, except those
// whose Java original gives -o a meaning of its own (apache/rocketmq
// tools/src/main/java/org/apache/rocketmq/tools/command/**): there -o
// keeps it, or is refused where mqops lacks the feature, and --output
// still sets the format.
func TestClassicShortOutput(t *testing.T) {
	javaO := map[string]struct{ flag, value string }{
		"updateTopic":        {"order", "true"},                 // topic/UpdateTopicSubCommand
		"brokerConsumeStats": {"order", "true"},                 // broker/BrokerConsumeStatsSubCommad
		"queryMsgByOffset":   {"offset", "42"},                  // message/QueryMsgByOffsetSubCommand
		"updateSubGroup":     {"consumeMessageOrderly", "true"}, // 5.x consumer/UpdateSubGroupSubCommand
		"resetOffsetByTime":  {"offset", ""},                    // 5.x offset/ResetOffsetByTimeCommand
	}
	f := &cmdutil.Factory{}
	seen := map[string]bool{}
	for _, c := range New(f).Commands() {
		if c.GroupID != groupClassic {
			continue
		}
		name := c.Name()
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			f.Format = ""
			err := c.ParseFlags([]string{"-o", "json"})
			j, ok := javaO[name]
			switch {
			case !ok:
				if err != nil || f.Format != output.JSON {
					t.Fatalf("-o json: %v, format %q", err, f.Format)
				}
				return
			case err == nil || f.Format != "":
				t.Fatalf("-o json taken as the output format (error %v, format %q)", err, f.Format)
			case j.value == "":
				if !strings.Contains(err.Error(), "-o/--"+j.flag+" (") || !strings.Contains(err.Error(), "is not supported; the output format is --output") {
					t.Fatalf("-o json: %v", err)
				}
			default:
				if err := c.ParseFlags([]string{"-o", j.value}); err != nil || c.Flags().Lookup(j.flag).Value.String() != j.value {
					t.Fatalf("-o %s: %v, --%s %s", j.value, err, j.flag, c.Flags().Lookup(j.flag).Value)
				}
			}
			if err := c.ParseFlags([]string{"--output", "json"}); err != nil || f.Format != output.JSON {
				t.Fatalf("--output json: %v, format %q", err, f.Format)
			}
		})
	}
	for name := range javaO {
		if !seen[name] {
			t.Errorf("%s is not a classic command", name)
		}
	}
	if len(seen) == 0 {
		t.Error("no classic commands")
	}
}

// The global TLS flags reach the client: a CA file that does not exist
// fails before any connection, naming the flag.
func TestTLSFlags(t *testing.T) {
	_, stderr, code := runArgs("clusterList", "-n", "127.0.0.1:1", "--tls", "--tls-ca-file", "/nonexistent/ca.pem")
	if code != 1 || !strings.Contains(stderr, "--tls-ca-file: open /nonexistent/ca.pem") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// set-context saves the TLS flags given with it, and commands using the
// context dial with them.
func TestSetContextTLS(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "mqadmin.yaml")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runArgs("config", "set-context", "prod", "--namesrv-addr", "127.0.0.1:1", "--tls", "--tls-ca-file", "/nonexistent/ca.pem", "--config", conf); code != 0 {
		t.Fatalf("set-context: %s", stderr)
	}
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tls: true", "tls-ca-file: /nonexistent/ca.pem"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("config lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "tls-server-name") {
		t.Errorf("a TLS flag not given was saved:\n%s", data)
	}
	if _, stderr, code := runArgs("clusterList", "--config", conf); code != 1 || !strings.Contains(stderr, "--tls-ca-file: open /nonexistent/ca.pem") {
		t.Errorf("clusterList with the context: exit %d, %q", code, stderr)
	}
}
