package root

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// acl check decides offline with the broker's checker and exits 1 when
// the request would be refused.
func TestACLCheckOffline(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "plain_acl.yml")
	yml := "accounts:\n- accessKey: appUser1\n  secretKey: appSecret1\n  defaultTopicPerm: DENY\n  topicPerms: [Orders=PUB]\n  groupPerms: [billing=SUB]\n"
	if err := os.WriteFile(rules, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args   []string
		code   int
		stdout string
	}{
		{[]string{"--code", "10", "--topic", "Orders"}, 0, "appUser1    10     SEND_MESSAGE  PUB topic  ALLOWED    -"},
		{[]string{"--code", "310", "--topic", "Other"}, 1, "DENIED     No default permission for topic:Other"},
		{[]string{"--code", "11", "--topic", "Orders", "--group", "billing"}, 1, "No default permission for topic:Orders"},
		{[]string{"--code", "35", "--group", "billing"}, 0, "ALLOWED"},
		{[]string{"--code", "17", "--topic", "Orders"}, 1, "Need admin permission for request code=17, but accessKey=appUser1 is not"},
	} {
		stdout, stderr, code := runArgs(append([]string{"acl", "check", "--ak", "appUser1", "--acl-file", rules}, c.args...)...)
		if code != c.code || !strings.Contains(stdout, c.stdout) || (code != 0) != strings.HasPrefix(stderr, "mqadmin: accessKey appUser1 is refused code") {
			t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", c.args, code, stdout, stderr)
		}
	}
	if _, stderr, code := runArgs("acl", "check", "--ak", "appUser1", "--code", "10", "--acl-file", rules+".missing"); code == 0 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d %s", code, stderr)
	}
}

// The ACL commands refuse bad input before contacting anything, and Java's
// names (and its other spellings) are there.
func TestACLCommandsInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"updateAclConfig", "-b", "127.0.0.1:1", "-a", "short", "-s", "appSecret1"}, `mqadmin: accessKey "short" must be longer than 6 characters` + "\n"},
		{[]string{"updateAclConfig", "-b", "127.0.0.1:1", "-a", "appUser1", "-t", "Orders=WRITE"}, `mqadmin: topicPerms entry "Orders=WRITE": permission "WRITE" is not DENY, PUB, SUB or PUB|SUB` + "\n"},
		{[]string{"acl", "user", "create", "--ak", "appUser1", "-b", "127.0.0.1:1"}, "mqadmin: acl user create: --sk (the new account's secret key) is required\n"},
		{[]string{"acl", "user", "update", "--ak", "appUser1", "--produce-tps", "-5", "-c", "C"}, "mqadmin: produceTps: -5 is below 0\n"},
		{[]string{"deleteAccessConfig", "-a", "appUser1", "-n", "127.0.0.1:1"}, "mqadmin: give exactly one of a broker (-b) or a cluster (-c)\n"},
		{[]string{"getAccessConfigSubCommand", "-n", "127.0.0.1:1"}, "mqadmin: give exactly one of a broker (-b) or a cluster (-c)\n"},
	} {
		stdout, stderr, code := runArgs(c.args...)
		if code == 0 || stdout != "" || stderr != c.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", c.args, code, stdout, stderr, c.want)
		}
	}
}
