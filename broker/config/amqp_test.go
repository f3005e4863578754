package config

import (
	"strings"
	"testing"
)

func TestAMQPGateway(t *testing.T) {
	setup(t)
	g, warnings, err := LoadAMQPGateway("", nil)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("defaults: %v %q", err, warnings)
	}
	if g.ListenPort != 5672 || g.Heartbeat != 60 || g.FrameMax != 131072 || g.ChannelMax != 2047 ||
		g.HandshakeTimeout != 10000 || g.MaxMessageSize != 4<<20 || g.MaxConnections != 0 || g.ConsumeTimeout != 900000 {
		t.Fatalf("defaults %+v", g)
	}
	g, warnings, err = LoadAMQPGateway("", map[string]string{"heartbeat": "2", "namesrvAddr": "127.0.0.1:9876",
		"consumeTimeout": "2000", "globalQos": "false", "drainTimeout": "500", "listenport": "1"})
	if err != nil || g.Heartbeat != 2 || g.NamesrvAddr != "127.0.0.1:9876" || g.ConsumeTimeout != 2000 || g.DrainTimeout != 500 ||
		g.GlobalQos || g.RequeueMode != "graded" {
		t.Fatalf("overrides: %+v %v", g, err)
	}
	if g, _, err := LoadAMQPGateway("", map[string]string{"statsListenAddr": "127.0.0.1:0"}); err != nil || g.StatsListenAddr != "127.0.0.1:0" {
		t.Fatalf("statsListenAddr: %+v %v", g, err)
	}
	// amqps: the listener needs its certificate and key; the files
	// without the listener are reported as having no effect.
	if _, _, err := LoadAMQPGateway("", map[string]string{"tlsListenAddr": "0.0.0.0:5671"}); err == nil ||
		!strings.Contains(err.Error(), "tlsListenAddr needs tlsCertPath and tlsKeyPath") {
		t.Fatalf("tlsListenAddr alone: %v", err)
	}
	if _, w, err := LoadAMQPGateway("", map[string]string{"tlsCertPath": "/c.pem", "tlsKeyPath": "/k.pem"}); err != nil ||
		!strings.Contains(strings.Join(w, "\n"), "no effect without tlsListenAddr") {
		t.Fatalf("files without the listener: %q %v", w, err)
	}
	g, _, err = LoadAMQPGateway("", map[string]string{"tlsListenAddr": "0.0.0.0:5671", "tlsCertPath": "/nonexistent/c.pem", "tlsKeyPath": "/nonexistent/k.pem"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.TLSConfig(); err == nil || !strings.Contains(err.Error(), "tlsCertPath = /nonexistent/c.pem") {
		t.Fatalf("missing files: %v", err)
	}
	for _, bad := range []string{"127.0.0.1:99999", "bad host:1"} {
		if _, _, err := LoadAMQPGateway("", map[string]string{"statsListenAddr": bad}); err == nil || !strings.Contains(err.Error(), "statsListenAddr") {
			t.Fatalf("statsListenAddr=%s: %v", bad, err)
		}
	}
	all := strings.Join(warnings, "\n")
	if len(warnings) != 1 || !strings.Contains(all, `unknown key "listenport"`) {
		t.Fatalf("warnings %q", warnings)
	}
	for k, v := range map[string]string{"consumeTimeout": "0", "frameMax": "1024", "channelMax": "0", "heartbeat": "70000", "namesrvAddr": "nohost",
		"statsListenAddr": "15680", "requeueMode": "later", "globalQos": "maybe", "drainTimeout": "-1"} {
		if _, _, err := LoadAMQPGateway("", map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), k) {
			t.Fatalf("%s=%s: %v", k, v, err)
		}
	}
}
