package meta

import (
	"strings"
	"testing"
)

func TestValidateTopicName(t *testing.T) {
	for _, ok := range []string{"T", "%RETRY%group", "a|b", "Topic_1-x", strings.Repeat("t", 127)} {
		if err := ValidateTopicName(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "topic!", "tópico", "a/b", strings.Repeat("t", 128)} {
		if err := ValidateTopicName([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	name := []byte("TopicTest")
	if n := testing.AllocsPerRun(100, func() { _ = ValidateTopicName(name) }); n != 0 {
		t.Fatalf("valid names allocate %v times", n)
	}
}
