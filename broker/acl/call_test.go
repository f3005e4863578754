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

// TestAuthenticateSecret: HTTP Basic credentials on the HTTP gateway go
// through the same white lists and accounts as a signature.
func TestAuthenticateSecret(t *testing.T) {
	ch := NewChecker(BrokerTable, mustParse(t, `globalWhiteRemoteAddresses:
- 10.9.9.*
accounts:
- accessKey: RocketMQ
  secretKey: 12345678
  whiteRemoteAddress: 10.1.1.1
  topicPerms:
  - TopicA=PUB
`))
	if k, d := ch.AuthenticateSecret(local, "RocketMQ", "12345678"); !d.OK || k.AccessKey() != "RocketMQ" || !k.Topic("TopicA", Pub).OK || k.Topic("TopicB", Pub).OK {
		t.Fatalf("right secret: %+v", d)
	}
	for _, sk := range []string{"1234567", "123456789", "", "12345679"} {
		if _, d := ch.AuthenticateSecret(local, "RocketMQ", sk); d.OK || d.Reason != ReasonSignature || d.Remark != "Check secret key failed for accessKey=RocketMQ" {
			t.Fatalf("secret %q: %+v", sk, d)
		}
	}
	if _, d := ch.AuthenticateSecret(local, "nobody", "12345678"); d.Reason != ReasonUnknownAccount {
		t.Fatalf("unknown account: %+v", d)
	}
	if _, d := ch.AuthenticateSecret(netip.MustParseAddr("10.1.1.1"), "RocketMQ", "wrong"); !d.OK {
		t.Fatalf("account white list: %+v", d)
	}
	if k, d := ch.AuthenticateSecret(netip.MustParseAddr("10.9.9.7"), "", ""); !d.OK || !k.Topic("TopicB", Pub).OK {
		t.Fatalf("global white list: %+v", d)
	}
}
