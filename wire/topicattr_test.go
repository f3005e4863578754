package wire

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

func TestParseAndAlterTopicAttributes(t *testing.T) {
	ch, err := ParseAttributes(" +message.type=FIFO ")
	if err != nil || !maps.Equal(ch, map[string]string{"+message.type": "FIFO"}) {
		t.Fatalf("parse: %v %v", ch, err)
	}
	if s := FormatAttributes(map[string]string{"+message.type": "FIFO", "-x": ""}); s != "+message.type=FIFO,-x" {
		t.Errorf("format: %q", s)
	}
	for _, bad := range []string{"message.type=FIFO", "+message.type", "+=FIFO", "-", "-a=b", "+message.type="} {
		if _, err := ParseAttributes(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	got, err := AlterTopicAttributes(true, nil, ch)
	if err != nil || got[AttrMessageType] != "FIFO" {
		t.Fatalf("create: %v %v", got, err)
	}
	tc := TopicConfig{Attributes: got}
	if tc.MessageType() != "FIFO" || (&TopicConfig{}).MessageType() != "NORMAL" {
		t.Errorf("MessageType: %q", tc.MessageType())
	}
	if got, err := AlterTopicAttributes(false, got, map[string]string{"-message.type": ""}); err != nil || got != nil {
		t.Errorf("remove: %v %v", got, err)
	}
	for _, c := range []struct {
		create  bool
		cur     map[string]string
		changes map[string]string
		want    string
	}{
		{true, nil, map[string]string{"+queue.type": "BCQ"}, "unsupported"},
		{true, nil, map[string]string{"+message.type": "fifo"}, "not one of"},
		{true, nil, map[string]string{"-message.type": ""}, "only adding"},
		{false, nil, map[string]string{"-message.type": ""}, "nonexistent"},
	} {
		if _, err := AlterTopicAttributes(c.create, c.cur, c.changes); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.changes, err, c.want)
		}
	}
}

// TestTopicAttributesJSON: topics.json holds Java 5's "attributes" map, and
// a topic without attributes keeps the 4.x form.
func TestTopicAttributesJSON(t *testing.T) {
	tc := TopicConfig{TopicName: "T", Attributes: map[string]string{"message.type": "DELAY"}}
	if s := string(Marshal(tc)); !strings.Contains(s, `"attributes":{"message.type":"DELAY"}`) {
		t.Errorf("marshal: %s", s)
	}
	if s := string(Marshal(TopicConfig{TopicName: "T"})); strings.Contains(s, "attributes") {
		t.Errorf("marshal without attributes: %s", s)
	}
	var back TopicConfig
	if err := json.Unmarshal([]byte(`{"topicName":"T","attributes":{"message.type":"TRANSACTION"}}`), &back); err != nil || back.MessageType() != "TRANSACTION" {
		t.Errorf("unmarshal: %+v %v", back, err)
	}
	a, b := tc, tc
	b.Attributes = map[string]string{"message.type": "FIFO"}
	if a.Equal(&b) || !a.Equal(&tc) {
		t.Error("Equal ignores attributes")
	}
}

// TestProduceQuotaAttributes: +produce.tps/+produce.bps take positive
// whole numbers and can be removed again.
func TestProduceQuotaAttributes(t *testing.T) {
	got, err := AlterTopicAttributes(true, nil, map[string]string{"+produce.tps": "200", "+produce.bps": "8388608"})
	if err != nil || got[AttrProduceTPS] != "200" || got[AttrProduceBPS] != "8388608" {
		t.Fatalf("set: %v %v", got, err)
	}
	got, err = AlterTopicAttributes(false, got, map[string]string{"-produce.bps": ""})
	if err != nil || len(got) != 1 || got[AttrProduceTPS] != "200" {
		t.Fatalf("remove: %v %v", got, err)
	}
	for _, bad := range []string{"0", "-5", "1.5", "lots"} {
		if _, err := AlterTopicAttributes(true, nil, map[string]string{"+produce.tps": bad}); err == nil || !strings.Contains(err.Error(), "positive whole number") {
			t.Errorf("produce.tps=%s: %v", bad, err)
		}
	}
}
