package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/mqops/mqops/wire"
)

// zbxQuotaRules: producerA may send 1 message a second, quotaB has a byte
// quota it never reaches, the other accounts have none.
const zbxQuotaRules = aclRulesHead + "  produceTps: 1\n" + `- accessKey: quotaB01
  secretKey: secretQuotaB
  defaultTopicPerm: PUB
  produceBps: 100000000
` + aclRulesTail

// TestZabbixAccountQuota: a real zabbix_agentd (signing as an admin, as
// the zabbix_agent role sets it up for brokers with ACL) discovers the ACL
// accounts that have a produce quota on this broker, and the broker item
// the account prototypes read counts each one's refusals: producerA's
// [ACCOUNT_QUOTA] refusals all, quotaB01's none. Removing quotaB01's quota
// from plain_acl.yml drops it from the discovery.
func TestZabbixAccountQuota(t *testing.T) {
	agentd := agentBinary(t, "zabbix_agentd")
	c := startACLCluster(t, zbxQuotaRules)
	aclCreateTopic(t, c, "TopicA")
	a := startAgent(t, agentd, "MQADMIN_ACCESS_KEY="+aclAdmin.AccessKey, "MQADMIN_SECRET_KEY="+aclAdmin.SecretKey)
	discovery := `rocketmq.account.discovery["` + c.broker.addr + `"]`
	accounts := func() []string {
		var rows []map[string]string
		a.get(t, discovery, &rows)
		var aks []string
		for _, r := range rows {
			aks = append(aks, r["{#ACCESSKEY}"])
		}
		slices.Sort(aks)
		return aks
	}
	if got := accounts(); !slices.Equal(got, []string{"producerA", "quotaB01"}) {
		t.Fatalf("accounts discovered: %v, want producerA and quotaB01 (those with a quota)", got)
	}

	// One token a second and at most 500 ms of delay: sends in a row are
	// refused after the first (a slow machine may let a token refill in
	// between; the loop only needs refusals).
	refused := 0
	for i := 0; i < 50 && refused < 3; i++ {
		r := aclCall(t, c.broker.addr, aclProducer, wire.SendMessage, sendFields("TopicA", "0"), []byte("quota"))
		switch {
		case r.Code == wire.SystemBusy && strings.Contains(string(r.Remark), "[ACCOUNT_QUOTA]accessKey producerA"):
			refused++
		case r.Code != wire.Success:
			t.Fatalf("send as producerA: %d %s", r.Code, r.Remark)
		}
	}
	if refused < 3 {
		t.Fatalf("%d [ACCOUNT_QUOTA] refusals in 50 sends at 1 msg/s", refused)
	}
	if r := aclCall(t, c.broker.addr, primitive.Credentials{AccessKey: "quotaB01", SecretKey: "secretQuotaB"}, wire.SendMessage,
		sendFields("TopicA", "0"), []byte("within the byte quota")); r.Code != wire.Success {
		t.Fatalf("send as quotaB01: %d %s", r.Code, r.Remark)
	}

	var st struct {
		Up                             int
		AccountQuotaRejectedByAccount  map[string]int64
		AccountQuotaThrottledByAccount map[string]int64
		AccountQuotaDelayMsByAccount   map[string]int64
	}
	a.get(t, `rocketmq.broker.get["`+c.broker.addr+`","`+c.ns.addr+`"]`, &st)
	for _, m := range []map[string]int64{st.AccountQuotaRejectedByAccount, st.AccountQuotaThrottledByAccount, st.AccountQuotaDelayMsByAccount} {
		if _, ok := m["producerA"]; !ok || len(m) != 2 {
			t.Fatalf("per-account figures lack producerA or hold other accounts: %+v", st)
		}
	}
	if st.Up != 1 || st.AccountQuotaRejectedByAccount["producerA"] != int64(refused) || st.AccountQuotaRejectedByAccount["quotaB01"] != 0 {
		t.Fatalf("after %d refusals of producerA: %+v", refused, st)
	}

	writeRules(t, c.rules, strings.Replace(zbxQuotaRules, "  produceBps: 100000000\n", "", 1))
	waitFor(t, 30*time.Second, "quotaB01 gone from the discovery after its quota was removed", func() bool {
		return slices.Equal(accounts(), []string{"producerA"})
	})
}
