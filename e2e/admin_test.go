package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/mqops/mqops/wire"
)

func setBrokerConfig(t *testing.T, broker, kv string) {
	t.Helper()
	resp := invoke(t, broker, wire.UpdateBrokerConfig, nil, []byte(kv))
	if resp.Code != wire.Success {
		t.Fatalf("update broker config %q: %s %s", kv, wire.ResponseName(resp.Code), resp.Remark)
	}
}

func brokerConfig(t *testing.T, broker string) map[string]string {
	t.Helper()
	resp := invoke(t, broker, wire.GetBrokerConfig, nil, nil)
	out := map[string]string{}
	for _, line := range strings.Split(string(resp.Body), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

// TestWriteDisable: brokerPermission 4 is enforced by the broker itself
// (sends refused with NO_PERMISSION, not only hidden in routes), persisted
// across a restart and registered with the name server; 6 restores writes.
func TestWriteDisable(t *testing.T) {
	c := startCluster(t)
	const topic = "ReadOnly"
	createTopic(t, c, topic, 2)
	p := newProducer(t, c.ns.addr, producer.WithRetry(0))
	sendN(t, p, topic, "before", 2)

	setBrokerConfig(t, c.broker.addr, "brokerPermission=4")
	if got := brokerConfig(t, c.broker.addr)["brokerPermission"]; got != "4" {
		t.Fatalf("brokerPermission reads %q after the update", got)
	}
	// The producer's cached route still says writable (until its 30 s
	// refresh): the broker itself refuses. After a refresh the client
	// finds no writable queue instead; either way nothing is stored.
	_, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("refused")))
	if err == nil || !strings.Contains(err.Error(), "forbidden") && !strings.Contains(err.Error(), "route info not found") {
		t.Fatalf("send to a write-disabled broker: %v", err)
	}
	resp := invoke(t, c.broker.addr, wire.SendMessage, sendFields(topic, "0"), []byte("raw"))
	if resp.Code != wire.NoPermission {
		t.Fatalf("raw send answered %s, want NO_PERMISSION", wire.ResponseName(resp.Code))
	}
	waitFor(t, 10*time.Second, "read-only route", func() bool {
		rd, code := route(t, c.ns.addr, topic)
		return code == wire.Success && rd.QueueDatas[0].Perm == 4
	})

	c.broker.stop()
	c.broker = restartBroker(t, c)
	if got := brokerConfig(t, c.broker.addr)["brokerPermission"]; got != "4" {
		t.Fatalf("brokerPermission after restart %q, want 4", got)
	}
	if resp := invoke(t, c.broker.addr, wire.SendMessage, sendFields(topic, "0"), []byte("raw")); resp.Code != wire.NoPermission {
		t.Fatalf("after restart a send answered %s, want NO_PERMISSION", wire.ResponseName(resp.Code))
	}

	setBrokerConfig(t, c.broker.addr, "brokerPermission=6")
	waitFor(t, 10*time.Second, "writable route", func() bool {
		rd, code := route(t, c.ns.addr, topic)
		return code == wire.Success && rd.QueueDatas[0].Perm == 6
	})
	// A producer that started now sees the writable route at once.
	p2 := newProducer(t, c.ns.addr, producer.WithRetry(0))
	if _, err := p2.SendSync(context.Background(), primitive.NewMessage(topic, []byte("after"))); err != nil {
		t.Fatalf("send after write-enable: %v", err)
	}
	if resp := invoke(t, c.broker.addr, wire.UpdateBrokerConfig, nil, []byte("brokerPermission=9")); resp.Code == wire.Success {
		t.Fatal("brokerPermission=9 accepted")
	}
	if resp := invoke(t, c.broker.addr, wire.UpdateBrokerConfig, nil, []byte("brokerConfigPath=/etc/x")); resp.Code != wire.NoPermission {
		t.Fatalf("black-listed key answered %s", wire.ResponseName(resp.Code))
	}
}
