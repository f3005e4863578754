package wire

import (
	"reflect"
	"strings"
	"testing"
)

// Code 50's header: only what is set, admin and quotas only when given;
// decoding it gives the account back.
func TestACLAccountFields(t *testing.T) {
	f, tps := false, int64(0)
	acc := ACLAccount{AccessKey: "appUser1", TopicPerms: []string{"A=PUB", "B=SUB"}, Admin: &f, ProduceTPS: &tps}
	got := acc.Fields()
	want := map[string]string{"accessKey": "appUser1", "topicPerms": "A=PUB,B=SUB", "admin": "false", "produceTps": "0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fields %v, want %v", got, want)
	}
	back, err := DecodeACLAccount(NewRequest(UpdateAndCreateACLConfig, got, nil))
	if err != nil || !reflect.DeepEqual(back, acc) {
		t.Fatalf("decoded %+v (%v), want %+v", back, err, acc)
	}
}

// Java's lists drop blank entries; a bad admin flag or quota names its
// field.
func TestDecodeACLAccount(t *testing.T) {
	acc, err := DecodeACLAccount(NewRequest(UpdateAndCreateACLConfig, map[string]string{"accessKey": "appUser1",
		"groupPerms": " g1=SUB, ,g2=DENY,", "produceBps": "1024"}, nil))
	if err != nil || !reflect.DeepEqual(acc.GroupPerms, []string{"g1=SUB", "g2=DENY"}) || acc.TopicPerms != nil ||
		acc.ProduceBPS == nil || *acc.ProduceBPS != 1024 || acc.ProduceTPS != nil || acc.Admin != nil {
		t.Fatalf("decoded %+v (%v)", acc, err)
	}
	for k, v := range map[string]string{"admin": "yes", "produceTps": "-1", "produceBps": "1k"} {
		_, err := DecodeACLAccount(NewRequest(UpdateAndCreateACLConfig, map[string]string{"accessKey": "appUser1", k: v}, nil))
		if err == nil || !strings.HasPrefix(err.Error(), k+": ") {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}
