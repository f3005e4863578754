package root

import (
	"bytes"
	"strings"
	"testing"
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
