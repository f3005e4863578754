package acl

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/wire"
)

// Golden vectors: RocketMQ's sample credentials (apache/rocketmq
// distribution/conf/plain_acl.yml, rocketmq-client-go
// examples/producer/acl/main.go), signatures as v2.1.2's ACLInterceptor
// computes them.
const (
	goldenAK = "RocketMQ"
	goldenSK = "12345678"
)

func cmd(code int32, body string, kv ...string) *wire.Command {
	c := &wire.Command{Code: code, Version: wire.Version}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Ext = append(c.Ext, wire.KV{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	if body != "" {
		c.Body = []byte(body)
	}
	return c
}

func goldenAccount(t testing.TB) *Account {
	t.Helper()
	s := mustParse(t, "accounts:\n- accessKey: RocketMQ\n  secretKey: 12345678\n  admin: true\n")
	return s.Accounts[goldenAK]
}

func mustParse(t testing.TB, yml string) *Snapshot {
	t.Helper()
	s := &Snapshot{Accounts: map[string]*Account{}}
	if err := parseFile("plain_acl.yml", []byte(yml), s, map[string]string{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGoldenSignatures(t *testing.T) {
	a := goldenAccount(t)
	props := "UNIQ_KEY\x01AC1100010001000000000000000000AB\x02"
	cases := []struct {
		name string
		req  *wire.Command
		sig  string
		ok   bool
	}{
		{"route", cmd(105, "", "topic", "TopicTest", "AccessKey", goldenAK), "0jiwhsaYp5ObE5GObbZH1I8/FT4=", true},
		{"queryOffset", cmd(14, "", "consumerGroup", "GroupA", "topic", "TopicTest", "queueId", "0", "AccessKey", goldenAK), "mg4Opz+9B+5jwoQfckobdiE2ZLg=", true},
		{"send", cmd(10, "Hello", "producerGroup", "ProducerGroupA", "topic", "TopicTest", "defaultTopic", "TBW102",
			"defaultTopicQueueNums", "4", "queueId", "1", "sysFlag", "0", "bornTimestamp", "1700000000000", "flag", "0",
			"properties", props, "reconsumeTimes", "0", "unitMode", "false", "maxReconsumeTimes", "0", "batch", "false",
			"AccessKey", goldenAK), "tSdT4Ge95k64rnTfYGnOktZiG8g=", true},
		// (4) v2.1.2 leaves the token out of the signed bytes...
		{"tokenGo", cmd(105, "", "topic", "TopicTest", "AccessKey", goldenAK, "SecurityToken", "tok123"), "0jiwhsaYp5ObE5GObbZH1I8/FT4=", true},
		// ...Java signs it.
		{"tokenJava", cmd(105, "", "topic", "TopicTest", "AccessKey", goldenAK, "SecurityToken", "tok123"), "WQF9rEGPzRK3sncYyfnjSU8Z/No=", true},
		// (5) signed twice: the signature over the old Signature is refused.
		{"signedTwice", cmd(105, "", "topic", "TopicTest", "AccessKey", goldenAK), "EuVDq7oeaFLqiJ6i4DIQdZpZxS0=", false},
		{"wrong", cmd(105, "", "topic", "TopicTesu", "AccessKey", goldenAK), "0jiwhsaYp5ObE5GObbZH1I8/FT4=", false},
		{"short", cmd(105, "", "topic", "TopicTest", "AccessKey", goldenAK), "0jiwhsaYp5ObE5GObbZH1I8/FT4", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Ext = append(tc.req.Ext, wire.KV{Key: []byte("Signature"), Value: []byte(tc.sig)})
			if got := a.verifySignature(wire.NewSignState(), tc.req, []byte(tc.sig)); got != tc.ok {
				t.Fatalf("verify = %v, want %v", got, tc.ok)
			}
		})
	}
}

// wire.Sign, our clients' signer, produces the golden bytes too.
func TestSignerMatchesGolden(t *testing.T) {
	c := cmd(105, "", "topic", "TopicTest")
	wire.Sign(c, goldenAK, goldenSK, "")
	if got := c.GetString("Signature"); got != "0jiwhsaYp5ObE5GObbZH1I8/FT4=" {
		t.Fatalf("signature %s", got)
	}
	c = cmd(105, "", "topic", "TopicTest")
	wire.Sign(c, goldenAK, goldenSK, "tok123")
	if got := c.GetString("Signature"); got != "WQF9rEGPzRK3sncYyfnjSU8Z/No=" {
		t.Fatalf("token signature %s", got)
	}
	wire.Sign(c, goldenAK, goldenSK, "tok123") // twice: same fields, same signature
	if got := c.GetString("Signature"); got != "WQF9rEGPzRK3sncYyfnjSU8Z/No=" || len(c.Ext) != 4 {
		t.Fatalf("re-signed: %s %d fields", got, len(c.Ext))
	}
	if !goldenAccount(t).verifySignature(wire.NewSignState(), c, c.Get("Signature")) {
		t.Fatal("own signature refused")
	}
}

func TestUniqueKeyQueryVersionRule(t *testing.T) {
	a := goldenAccount(t)
	signed := cmd(33, "", "topic", "TopicTest")
	wire.Sign(signed, goldenAK, goldenSK, "") // signed without the flag
	withFlag := func(version int32) *wire.Command {
		c := signed.Clone()
		c.Version = version
		c.Ext = append(c.Ext, wire.KV{Key: []byte("_UNIQUE_KEY_QUERY"), Value: []byte("true")})
		return c
	}
	if !a.verifySignature(wire.NewSignState(), withFlag(399), signed.Get("Signature")) {
		t.Fatal("version 399: the flag must be left out")
	}
	if a.verifySignature(wire.NewSignState(), withFlag(400), signed.Get("Signature")) {
		t.Fatal("version 400: the flag is signed")
	}
}

func TestDuplicateFieldRefused(t *testing.T) {
	a := goldenAccount(t)
	c := cmd(105, "", "topic", "TopicTest")
	wire.Sign(c, goldenAK, goldenSK, "")
	c.Ext = append(c.Ext, wire.KV{Key: []byte("topic"), Value: []byte("")})
	if a.verifySignature(wire.NewSignState(), c, c.Get("Signature")) {
		t.Fatal("duplicate key accepted")
	}
}

const rules = `globalWhiteRemoteAddresses:
accounts:
- accessKey: producerA
  secretKey: secretA1
  topicPerms:
  - TopicA=PUB
- accessKey: consumerA
  secretKey: secretC1
  defaultTopicPerm: DENY
  topicPerms:
  - TopicA=SUB
  groupPerms:
  - GroupA=SUB
- accessKey: adminXXX
  secretKey: secretX1
  admin: true
  topicPerms:
  - TopicZ=DENY
- accessKey: whiteAcc
  secretKey: secretW1
  whiteRemoteAddress: 10.0.0.*
  topicPerms:
  - TopicA=PUB
`

var local = netip.MustParseAddr("127.0.0.1")

func signed(c *wire.Command, ak, sk string) *wire.Command {
	wire.Sign(c, ak, sk, "")
	return c
}

func TestCheckSemantics(t *testing.T) {
	ch := NewChecker(BrokerTable, mustParse(t, rules))
	hb := `{"clientID":"c","consumerDataSet":[{"groupName":"GroupA","subscriptionDataSet":[{"topic":"TopicA"},{"topic":"%RETRY%GroupA"}]}],"producerDataSet":[]}`
	hbB := `{"clientID":"c","consumerDataSet":[{"groupName":"GroupA","subscriptionDataSet":[{"topic":"TopicB"}]}]}`
	cases := []struct {
		name   string
		ip     netip.Addr
		req    *wire.Command
		remark string // "" = allowed
	}{
		{"pub ok", local, signed(cmd(10, "x", "topic", "TopicA"), "producerA", "secretA1"), ""},
		{"pub v2 ok", local, signed(cmd(310, "x", "b", "TopicA", "a", "pg"), "producerA", "secretA1"), ""},
		{"batch checked", local, signed(cmd(320, "x", "b", "TopicB", "a", "pg"), "producerA", "secretA1"), "No default permission for topic:TopicB"},
		{"pub other topic", local, signed(cmd(10, "x", "topic", "TopicB"), "producerA", "secretA1"), "No default permission for topic:TopicB"},
		{"trace topic", local, signed(cmd(10, "x", "topic", TraceTopic), "producerA", "secretA1"), ""},
		{"wrong secret", local, signed(cmd(10, "x", "topic", "TopicA"), "producerA", "secretA2"), "Check signature failed for accessKey=producerA"},
		{"unsigned", local, cmd(10, "x", "topic", "TopicA"), "No accessKey is configured"},
		{"unknown", local, signed(cmd(10, "x", "topic", "TopicA"), "nobodyXX", "secretA1"), "No acl config for nobodyXX"},
		{"admin code", local, signed(cmd(17, "", "topic", "T"), "producerA", "secretA1"), "Need admin permission for request code=17, but accessKey=producerA is not"},
		{"acl code", local, signed(cmd(50, "", "accessKey", "x"), "consumerA", "secretC1"), "Need admin permission for request code=50, but accessKey=consumerA is not"},
		{"admin ok", local, signed(cmd(17, "", "topic", "T"), "adminXXX", "secretX1"), ""},
		// admin: every resource, its explicit entries notwithstanding (deviation from 4.9).
		{"admin all", local, signed(cmd(10, "x", "topic", "TopicZ"), "adminXXX", "secretX1"), ""},
		{"pull ok", local, signed(cmd(11, "", "topic", "TopicA", "consumerGroup", "GroupA"), "consumerA", "secretC1"), ""},
		{"pull retry", local, signed(cmd(11, "", "topic", "%RETRY%GroupA", "consumerGroup", "GroupA"), "consumerA", "secretC1"), ""},
		{"pull group", local, signed(cmd(11, "", "topic", "TopicA", "consumerGroup", "GroupB"), "consumerA", "secretC1"), "No default permission for group:GroupB"},
		{"pub by consumer", local, signed(cmd(10, "x", "topic", "TopicA"), "consumerA", "secretC1"), "No default permission for topic:TopicA"},
		{"sendback", local, signed(cmd(36, "", "group", "GroupA", "offset", "1"), "consumerA", "secretC1"), ""},
		{"retry send", local, signed(cmd(10, "x", "topic", "%RETRY%GroupB"), "consumerA", "secretC1"), "No default permission for group:GroupB"},
		{"offset query", local, signed(cmd(14, "", "topic", "TopicB", "consumerGroup", "GroupA"), "consumerA", "secretC1"), "No default permission for topic:TopicB"},
		{"heartbeat ok", local, signed(cmd(34, hb), "consumerA", "secretC1"), ""},
		{"heartbeat topic", local, signed(cmd(34, hbB), "consumerA", "secretC1"), "No default permission for topic:TopicB"},
		{"lock", local, signed(cmd(41, `{"consumerGroup":"GroupA","mqSet":[{"topic":"TopicB"}]}`), "consumerA", "secretC1"), "No default permission for topic:TopicB"},
		{"unknown code auth only", local, signed(cmd(9999, ""), "consumerA", "secretC1"), ""},
		{"view after lookup", local, signed(cmd(33, "", "offset", "1"), "consumerA", "secretC1"), ""},
		// whiteRemoteAddress replaces the signature, not the permissions (deviation from 4.9).
		{"white unsigned", netip.MustParseAddr("10.0.0.7"), cmd(10, "x", "topic", "TopicA", "AccessKey", "whiteAcc"), ""},
		{"white keeps perms", netip.MustParseAddr("10.0.0.7"), cmd(10, "x", "topic", "TopicB", "AccessKey", "whiteAcc"), "No default permission for topic:TopicB"},
		{"white elsewhere", netip.MustParseAddr("10.0.1.7"), cmd(10, "x", "topic", "TopicA", "AccessKey", "whiteAcc"), "Check signature failed for accessKey=whiteAcc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := ch.Check(tc.ip, tc.req)
			if tc.remark == "" && !d.OK {
				t.Fatalf("refused: %s", d.Remark)
			}
			if tc.remark != "" && (d.OK || d.Remark != tc.remark) {
				t.Fatalf("got ok=%v %q, want %q", d.OK, d.Remark, tc.remark)
			}
		})
	}
	// The handler's check after the lookup.
	v := signed(cmd(33, "", "offset", "1"), "consumerA", "secretC1")
	if d := ch.Authorize(local, v, "TopicA", Sub); !d.OK {
		t.Fatal(d.Remark)
	}
	if d := ch.Authorize(local, v, "TopicB", Sub); d.OK || d.Remark != "No default permission for topic:TopicB" {
		t.Fatalf("%+v", d)
	}
}

func TestNamesrvTable(t *testing.T) {
	ch := NewChecker(NamesrvTable, mustParse(t, rules))
	if d := ch.Check(local, cmd(105, "", "topic", "TopicA")); !d.OK {
		t.Fatal("unsigned route read refused")
	}
	if d := ch.Check(local, cmd(100, "", "namespace", "n", "key", "k", "value", "v")); d.OK || d.Remark != "No accessKey is configured" {
		t.Fatalf("%+v", d)
	}
	if d := ch.Check(local, signed(cmd(103, "body"), "producerA", "secretA1")); d.OK || !strings.HasPrefix(d.Remark, "Need admin permission for request code=103") {
		t.Fatalf("%+v", d)
	}
	if d := ch.Check(local, signed(cmd(103, "body"), "adminXXX", "secretX1")); !d.OK || !d.Admin {
		t.Fatalf("%+v", d)
	}
	var buf bytes.Buffer
	NamesrvTable.Print(&buf)
	if !strings.Contains(strings.Join(strings.Fields(buf.String()), " "), "103 REGISTER_BROKER admin") {
		t.Fatalf("table:\n%s", buf.String())
	}
}

func TestGlobalWhiteList(t *testing.T) {
	ch := NewChecker(BrokerTable, mustParse(t, "globalWhiteRemoteAddresses:\n- 192.168.0.{1,2}\n- 10.1.*.*\n"))
	for ip, ok := range map[string]bool{"192.168.0.2": true, "192.168.0.3": false, "10.1.200.3": true, "10.2.0.1": false, "::ffff:10.1.0.1": true} {
		if d := ch.Check(netip.MustParseAddr(ip).Unmap(), cmd(17, "")); d.OK != ok {
			t.Errorf("%s: ok=%v", ip, d.OK)
		}
	}
}

func TestAddrPatterns(t *testing.T) {
	cases := []struct {
		pat string
		yes []string
		no  []string
	}{
		{"*", []string{"1.2.3.4", "::1"}, nil},
		{"*.*.*.*", []string{"1.2.3.4"}, nil},
		{"192.168.1.1-200", []string{"192.168.1.1", "192.168.1.200"}, []string{"192.168.1.201", "192.168.2.1"}},
		{"192.168.*.*", []string{"192.168.9.9"}, []string{"192.169.0.1"}},
		{"192.10-20.*.*", []string{"192.15.1.1"}, []string{"192.21.1.1"}},
		{"1.1.1.1,2.2.2.2", []string{"2.2.2.2"}, []string{"3.3.3.3"}},
		{"127.0.0.1", []string{"127.0.0.1"}, []string{"127.0.0.2"}},
		{"::1", []string{"::1"}, []string{"127.0.0.1"}},
		{"10.0.0.0/8", []string{"10.9.9.9"}, []string{"11.0.0.1"}},
		{"fe80::{1,2}", []string{"fe80::2"}, []string{"fe80::3"}},
	}
	for _, tc := range cases {
		p, err := parseAddrPattern(tc.pat)
		if err != nil {
			t.Fatalf("%s: %v", tc.pat, err)
		}
		for _, a := range tc.yes {
			if !p.match(netip.MustParseAddr(a)) {
				t.Errorf("%s should match %s", tc.pat, a)
			}
		}
		for _, a := range tc.no {
			if p.match(netip.MustParseAddr(a)) {
				t.Errorf("%s should not match %s", tc.pat, a)
			}
		}
	}
	for _, bad := range []string{"192.168.1", "192.*.1.1", "1.2.3.300", "300-1.1.1.1", "a.b.c.d", "1.2.3.{x}", "1.2.3.5-4", "10.0.0.0/40"} {
		if _, err := parseAddrPattern(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if p, _ := parseAddrPattern(""); p.match(local) {
		t.Error("blank matched")
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	cases := map[string]string{
		"accounts:\n- accessKey: producerA\n  secretKey: secretA1\n  topicPerm:\n  - A=PUB\n":       `plain_acl.yml:4: unknown account key "topicPerm"`,
		"accounts:\n- accessKey: producerA\n  secretKey: secretA1\n  topicPerms:\n  - A=PUBB\n":     `plain_acl.yml:5: permission "PUBB"`,
		"accounts:\n- accessKey: producerA\n  secretKey: secretA1\n  topicPerms:\n  - A\n":          `plain_acl.yml:5: topicPerms entry "A" is not name=PERM`,
		"accounts:\n- accessKey: short\n  secretKey: secretA1\n":                                    `plain_acl.yml:2: accessKey "short" must be longer than 6`,
		"accounts:\n- accessKey: producerA\n  secretKey: 123\n":                                     `plain_acl.yml:2: secretKey of accessKey producerA must be longer than 6`,
		"globalWhiteRemoteAddresses:\n- 1.2.3\n":                                                    `plain_acl.yml:2: address pattern "1.2.3"`,
		"accounts:\n- accessKey: producerA\n  secretKey: secretA1\n  whiteRemoteAddress: 1.2.3.x\n": `plain_acl.yml:4: address pattern`,
		"accounts:\n- accessKey: producerA\n  secretKey: secretA1\n   bad: [\n":                     `plain_acl.yml:4: `,
		"acounts: []\n": `plain_acl.yml:1: unknown key "acounts"`,
		"accounts:\n- accessKey: producerA\n  secretKey: secretA1\n- accessKey: producerA\n  secretKey: secretA2\n": `plain_acl.yml:4: accessKey producerA is already defined at plain_acl.yml:2`,
	}
	for yml, want := range cases {
		s := &Snapshot{Accounts: map[string]*Account{}}
		err := parseFile("plain_acl.yml", []byte(yml), s, map[string]string{})
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: got %v, want prefix %q", yml, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secretA") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
	// The sample's integer secret is taken as its text.
	s := mustParse(t, "accounts:\n- accessKey: RocketMQ\n  secretKey: 12345678\n  defaultTopicPerm: PUB|SUB\n")
	if a := s.Accounts["RocketMQ"]; string(a.secret) != "12345678" || a.DefaultTopic != Pub|Sub || a.DefaultGroup != Deny {
		t.Fatalf("%+v", a)
	}
}

func TestFilesAndDuplicatesAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "plain_acl.yml"), "accounts:\n- accessKey: producerA\n  secretKey: secretA1\n")
	write(t, filepath.Join(dir, "acl", "team", "b.yaml"), "accounts:\n- accessKey: teamBBBB\n  secretKey: secretB1\n")
	write(t, filepath.Join(dir, "acl", "tools.yml"), "accessKey: x\n")
	files, err := Files("", dir)
	if err != nil || len(files) != 2 || !strings.HasSuffix(files[1], "b.yaml") {
		t.Fatalf("%v %v", files, err)
	}
	w, err := Load(Source{ConfDir: dir}, BrokerTable, nil, nil)
	if err != nil || len(w.Checker().Rules().Accounts) != 2 {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "acl", "dup.yml"), "accounts:\n- accessKey: producerA\n  secretKey: secretA9\n")
	if _, err := Load(Source{ConfDir: dir}, BrokerTable, nil, nil); err == nil || !strings.Contains(err.Error(), "dup.yml:2: accessKey producerA is already defined at "+filepath.Join(dir, "plain_acl.yml")+":2") {
		t.Fatalf("duplicate across files: %v", err)
	}
	// A missing default file is no rules; a missing aclFile is an error.
	if w, err := Load(Source{ConfDir: t.TempDir()}, BrokerTable, nil, nil); err != nil || len(w.Checker().Rules().Accounts) != 0 {
		t.Fatal(err)
	}
	if _, err := Load(Source{AclFile: filepath.Join(dir, "nope.yml")}, BrokerTable, nil, nil); err == nil {
		t.Fatal("missing aclFile accepted")
	}
}

func write(t testing.TB, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "plain_acl.yml")
	write(t, f, "accounts:\n- accessKey: producerA\n  secretKey: secretA1\n")
	var logBuf bytes.Buffer
	audit := NewAudit(slog.New(slog.NewTextHandler(&logBuf, nil)), 10*time.Second)
	w, err := Load(Source{AclFile: f}, BrokerTable, audit, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := w.Checker()
	ctl := w.Follow(ControllerTable)
	send := func() Decision {
		return ch.Check(local, signed(cmd(10, "x", "topic", "TopicB"), "producerA", "secretA1"))
	}
	elect := func() Decision {
		return ctl.Check(local, signed(cmd(1002, "x", "brokerName", "broker-a"), "producerA", "secretA1"))
	}
	if send().OK || w.Poll() {
		t.Fatal("before the edit")
	}
	if d := elect(); d.OK || d.Reason != ReasonAdmin {
		t.Fatalf("non-admin election on the following checker: %+v", d)
	}
	// Same size and, likely, the same mtime: the content hash notices.
	write(t, f, "accounts:\n- accessKey: producerA\n  secretKey: secretA1\n  topicPerms: [TopicB=PUB]\n  admin: true\n")
	if !w.Poll() || !send().OK || ch.Rules().Version != 2 {
		t.Fatal("edit not applied")
	}
	// The following checker (another table) got the new rules too.
	if d := elect(); !d.OK || !d.Admin || ctl.Rules().Version != 2 {
		t.Fatalf("reload not applied to the controller table's checker: %+v", d)
	}
	// Atomic rename.
	tmp := f + ".tmp"
	write(t, tmp, "accounts:\n- accessKey: producerA\n  secretKey: secretA1\n  topicPerms: [TopicB=DENY]\n")
	if err := os.Rename(tmp, f); err != nil {
		t.Fatal(err)
	}
	if !w.Poll() || send().OK {
		t.Fatal("rename not applied")
	}
	// Broken file: old rules stay, one ERROR with file:line, one failure counted.
	write(t, f, "accounts:\n- accessKey: producerA\n  secretKey: secretA1\n  topicPerms: [TopicB=PUB\n")
	for range 2 { // the second poll must not report the same error again
		if w.Poll() {
			t.Fatal("broken file applied")
		}
	}
	if send().OK || ch.Rules().Version != 3 {
		t.Fatal("old rules lost")
	}
	if n := ch.Stats.reloadFail.Load(); n != 1 {
		t.Fatalf("reload failures %d", n)
	}
	if !strings.Contains(logBuf.String(), "level=ERROR") || !strings.Contains(logBuf.String(), f+":") {
		t.Fatalf("log: %s", logBuf.String())
	}
	write(t, f, "accounts: []\n")
	if !w.Poll() || send().Remark != "No acl config for producerA" {
		t.Fatal("account removal")
	}
}

func TestAuditRateLimit(t *testing.T) {
	var buf bytes.Buffer
	a := NewAudit(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second)
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	d := Decision{Reason: ReasonSignature, Remark: "Check signature failed for accessKey=producerA"}
	req := signed(cmd(10, "x", "topic", "TopicA"), "producerA", "secretA1")
	for i := 0; i < 4; i++ {
		a.deny(BrokerTable, "127.0.0.1:5000", local, req, d)
	}
	now = now.Add(11 * time.Second)
	a.deny(BrokerTable, "127.0.0.1:5000", local, req, d)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "suppressed=3") || !strings.Contains(lines[0], "code=10(SEND_MESSAGE)") {
		t.Fatalf("lines:\n%s", buf.String())
	}
	sig := req.GetString("Signature")
	if strings.Contains(buf.String(), sig) || !strings.Contains(buf.String(), "sig="+sig[:6]) {
		t.Fatalf("signature not truncated:\n%s", buf.String())
	}
}

// TestProduceQuotaKeys: produceTps and produceBps (mqops keys) are read
// into the account; a bad value is refused with file and line; an allowed
// request's decision names the account it was authenticated as.
func TestProduceQuotaKeys(t *testing.T) {
	s := mustParse(t, "accounts:\n- accessKey: producerA\n  secretKey: secretA1\n  defaultTopicPerm: PUB\n  produceTps: 200\n  produceBps: 8388608\n- accessKey: producerB\n  secretKey: secretB1\n")
	if a := s.Accounts["producerA"]; a.ProduceTPS != 200 || a.ProduceBPS != 8388608 {
		t.Fatalf("producerA: tps %d bps %d", a.ProduceTPS, a.ProduceBPS)
	}
	if a := s.Accounts["producerB"]; a.ProduceTPS != 0 || a.ProduceBPS != 0 {
		t.Fatalf("producerB: tps %d bps %d", a.ProduceTPS, a.ProduceBPS)
	}
	for yml, want := range map[string]string{
		"accounts:\n- accessKey: producerA\n  secretKey: secretA1\n  produceTps: -1\n":  `plain_acl.yml:4: produceTps: "-1" is not a whole number >= 0`,
		"accounts:\n- accessKey: producerA\n  secretKey: secretA1\n  produceBps: 1.5\n": `plain_acl.yml:4: produceBps: "1.5" is not a whole number >= 0`,
	} {
		err := parseFile("plain_acl.yml", []byte(yml), &Snapshot{Accounts: map[string]*Account{}}, map[string]string{})
		if err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %q", yml, err, want)
		}
	}
	ch := NewChecker(BrokerTable, s)
	if d := ch.Check(local, signed(cmd(10, "x", "topic", "TopicA"), "producerA", "secretA1")); !d.OK || d.Account != s.Accounts["producerA"] {
		t.Fatalf("allowed send: %+v", d)
	}
	if d := ch.Check(local, signed(cmd(10, "x", "topic", "TopicA"), "producerA", "wrongSec")); d.OK || d.Account != nil {
		t.Fatalf("refused send: %+v", d)
	}
}

// TestAMQPCodes: the AMQP engine's codes need the account's permission on
// the store topic of the vhost named in the signed extField: PUB to
// publish, SUB to fetch, settle, release and list, both to change the
// topology; no vhost field is refused.
func TestAMQPCodes(t *testing.T) {
	ch := NewChecker(BrokerTable, mustParse(t, `accounts:
- accessKey: amqpPubSub
  secretKey: secretPS1
  topicPerms:
  - AMQP_STORE=PUB|SUB
  - orders%AMQP_STORE=SUB
- accessKey: amqpWriter
  secretKey: secretW1
  topicPerms:
  - AMQP_STORE=PUB
`))
	cases := []struct {
		name   string
		req    *wire.Command
		remark string
	}{
		{"publish", signed(cmd(wire.AMQPPublish, "{}", "vhost", "/"), "amqpPubSub", "secretPS1"), ""},
		{"declare", signed(cmd(wire.AMQPDeclareQueue, "{}", "vhost", "/"), "amqpPubSub", "secretPS1"), ""},
		{"fetch other vhost", signed(cmd(wire.AMQPFetch, "{}", "vhost", "orders"), "amqpPubSub", "secretPS1"), ""},
		{"publish other vhost", signed(cmd(wire.AMQPPublish, "{}", "vhost", "orders"), "amqpPubSub", "secretPS1"), "No default permission for topic:orders%AMQP_STORE"},
		{"bind needs PUB too", signed(cmd(wire.AMQPBind, "{}", "vhost", "orders"), "amqpPubSub", "secretPS1"), "No default permission for topic:orders%AMQP_STORE"},
		{"writer publishes", signed(cmd(wire.AMQPPublish, "{}", "vhost", "/"), "amqpWriter", "secretW1"), ""},
		{"writer fetch", signed(cmd(wire.AMQPFetch, "{}", "vhost", "/"), "amqpWriter", "secretW1"), "No default permission for topic:AMQP_STORE"},
		{"writer settle", signed(cmd(wire.AMQPSettle, "{}", "vhost", "/"), "amqpWriter", "secretW1"), "No default permission for topic:AMQP_STORE"},
		{"writer declares", signed(cmd(wire.AMQPDeclareExchange, "{}", "vhost", "/"), "amqpWriter", "secretW1"), "No default permission for topic:AMQP_STORE"},
		{"no vhost", signed(cmd(wire.AMQPPublish, "{}"), "amqpPubSub", "secretPS1"), "request code=9110 names no vhost (extField vhost)"},
		{"unsigned", cmd(wire.AMQPPublish, "{}", "vhost", "/"), "No accessKey is configured"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := ch.Check(local, tc.req)
			if tc.remark == "" && !d.OK {
				t.Fatalf("refused: %s", d.Remark)
			}
			if tc.remark != "" && (d.OK || d.Remark != tc.remark) {
				t.Fatalf("got ok=%v %q, want %q", d.OK, d.Remark, tc.remark)
			}
		})
	}
}
