package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mqops/mqops/wire"
)

// A RabbitMQ 3.10 export (tags as a list, integer arguments) and a 3.8 one
// (tags as a comma-separated string) both parse; integers stay integers.
func TestParseAMQPDefinitions(t *testing.T) {
	const hash = "Yl3rqXhGqIjtkcU9rBLwdgV4hxN4Nzge3uVP7EC1p1RVjn3Q" // base64 of 36 bytes
	d, err := ParseAMQPDefinitions([]byte(`{"rabbit_version":"3.10.8",
	  "users":[{"name":"app","password_hash":"` + hash + `","hashing_algorithm":"rabbit_password_hashing_sha256","tags":["monitoring","management"],"limits":{}},
	           {"name":"old","password_hash":"` + hash + `","tags":"administrator, policymaker"}],
	  "vhosts":[{"name":"/"},{"name":"v1","limits":[],"metadata":{"description":"","tags":[]}}],
	  "permissions":[{"user":"app","vhost":"v1","configure":".*","write":".*","read":".*"}],
	  "policies":[{"vhost":"v1","name":"ttl","pattern":".*","apply-to":"queues","definition":{"message-ttl":1},"priority":0}],
	  "queues":[{"name":"q","vhost":"v1","durable":true,"auto_delete":false,"arguments":{"x-message-ttl":60000,"x-queue-type":"quorum","x-ratio":0.5,"x-list":[1,"a"]}}],
	  "exchanges":[{"name":"e","vhost":"v1","type":"topic","durable":true,"auto_delete":false,"internal":false,"arguments":{}}],
	  "bindings":[{"source":"e","vhost":"v1","destination":"q","destination_type":"queue","routing_key":"k.*","arguments":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.Users[0].Tags, ","); got != "monitoring,management" {
		t.Errorf("list tags %q", got)
	}
	if got := strings.Join(d.Users[1].Tags, ","); got != "administrator,policymaker" {
		t.Errorf("string tags %q", got)
	}
	args, err := defTable(d.Queues[0].Arguments)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := args["x-message-ttl"].(int64); !ok || v != 60000 {
		t.Errorf("x-message-ttl %T %v, want int64 60000", args["x-message-ttl"], args["x-message-ttl"])
	}
	if v, ok := args["x-ratio"].(float64); !ok || v != 0.5 {
		t.Errorf("x-ratio %T %v", args["x-ratio"], args["x-ratio"])
	}
	if l, ok := args["x-list"].([]any); !ok || l[0] != int64(1) || l[1] != "a" {
		t.Errorf("x-list %#v", args["x-list"])
	}
	if len(d.Policies) != 1 {
		t.Errorf("policies %d", len(d.Policies))
	}
	// Back to JSON as RabbitMQ writes it.
	b, err := json.Marshal(jsonArgs(wire.AMQPTable{"x-message-ttl": int64(60000), "b": []byte("x")}))
	if err != nil || string(b) != `{"b":"x","x-message-ttl":60000}` {
		t.Errorf("jsonArgs: %s %v", b, err)
	}
}

// Everything an import could refuse halfway is found before it starts,
// all at once, each naming its object.
func TestParseAMQPDefinitionsRefusals(t *testing.T) {
	_, err := ParseAMQPDefinitions([]byte(`{
	  "users":[{"name":"md5user","password_hash":"abc","hashing_algorithm":"rabbit_password_hashing_md5","tags":""},
	           {"name":"badhash","password_hash":"bm90IGEgaGFzaA==","tags":[]}],
	  "vhosts":[{"name":""}],
	  "exchanges":[{"name":"delayed","vhost":"/","type":"x-delayed-message","durable":true,"arguments":{}}],
	  "bindings":[{"source":"e","vhost":"/","destination":"q","destination_type":"stream","routing_key":""}]}`))
	if err == nil {
		t.Fatal("refusals accepted")
	}
	for _, want := range []string{`user "md5user": hashing_algorithm rabbit_password_hashing_md5`, `user "badhash": password_hash is not`,
		"a vhost without a name", `exchange "delayed" in vhost "/": type "x-delayed-message" is not supported`, `destination_type "stream"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := ParseAMQPDefinitions([]byte(`{"users":[`)); err == nil || !strings.HasPrefix(err.Error(), "definitions: ") {
		t.Errorf("truncated file: %v", err)
	}
}
