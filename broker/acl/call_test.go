package acl

import (
	"encoding/hex"
	"net/netip"
	"testing"
)

// TestAuthenticateCallGolden: example 6 of the design notes, a RocketMQ 5
// client's HMAC-SHA1 of x-mq-date-time 20250101T120000Z under 12345678.
func TestAuthenticateCallGolden(t *testing.T) {
	ch := NewChecker(BrokerTable, mustParse(t, `globalWhiteRemoteAddresses:
- 10.9.9.*
accounts:
- accessKey: RocketMQ
  secretKey: 12345678
  whiteRemoteAddress: 10.1.1.1
  topicPerms:
  - TopicA=PUB
  groupPerms:
  - GroupA=SUB
`))
	mac, _ := hex.DecodeString("28F6197047A0B0CC33C05E4F75D7D5446262C710")
	k, d := ch.AuthenticateCall(local, "RocketMQ", "20250101T120000Z", mac)
	if !d.OK || k.AccessKey() != "RocketMQ" {
		t.Fatalf("golden refused: %+v", d)
	}
	if d := k.Topic("TopicA", Pub); !d.OK {
		t.Fatalf("PUB TopicA: %+v", d)
	}
	if d := k.Topic("TopicA", Sub); d.OK || d.Reason != ReasonTopic || d.Remark != "No default permission for topic:TopicA" {
		t.Fatalf("SUB TopicA: %+v", d)
	}
	if d := k.Group("GroupB"); d.OK || d.Reason != ReasonGroup {
		t.Fatalf("group B: %+v", d)
	}
	if d := k.Topic("%RETRY%GroupA", Sub); !d.OK {
		t.Fatalf("retry topic of GroupA: %+v", d)
	}
	if _, d := ch.AuthenticateCall(local, "RocketMQ", "20250101T120001Z", mac); d.OK || d.Reason != ReasonSignature {
		t.Fatalf("other date-time accepted: %+v", d)
	}
	if _, d := ch.AuthenticateCall(local, "RocketMQ", "20250101T120000Z", mac[:10]); d.OK {
		t.Fatal("short MAC accepted")
	}
	// The account's white list replaces the signature; the global one
	// lets anything in.
	if k, d := ch.AuthenticateCall(netip.MustParseAddr("10.1.1.1"), "RocketMQ", "", nil); !d.OK || k.Topic("TopicB", Pub).OK {
		t.Fatalf("account white list: %+v", d)
	}
	if k, d := ch.AuthenticateCall(netip.MustParseAddr("10.9.9.7"), "", "", nil); !d.OK || !k.Topic("TopicB", Pub).OK {
		t.Fatalf("global white list: %+v", d)
	}
	if _, d := ch.AuthenticateCall(local, "", "20250101T120000Z", mac); d.Reason != ReasonNoAccessKey {
		t.Fatalf("no AccessKey: %+v", d)
	}
}
