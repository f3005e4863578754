package e2e

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// TestPopOffsetResetSurvivesKill9: a POP consumer (here over the HTTP
// gateway) acked every message and the broker saved its POP state; an
// admin resets the group's offset to the start (INVOKE_BROKER_TO_RESET_OFFSET)
// and the broker is killed (-9) right after the answer, before its
// periodic POP state save (every 5 s). After the restart the messages are
// delivered again: the reset was on disk before it was answered, and the
// saved state's committed offset does not raise it back.
func TestPopOffsetResetSurvivesKill9(t *testing.T) {
	c, g := startGatewayCluster(t)
	const topic, group = "PopResetKill", "PopResetKillG"
	createTopic(t, c, topic, 1)
	const n = 5
	for range n {
		g.send(topic, map[string]any{"body": "m"})
	}
	got := g.receiveUntil(group, topic, n, 30*time.Second, nil)
	var handles []string
	for _, m := range got {
		handles = append(handles, m.ReceiptHandle)
	}
	if st, ans := g.ack(group, topic, handles...); st != http.StatusOK || ans.CodeName != "OK" {
		t.Fatalf("ack: %d %+v", st, ans)
	}
	// The bug needs popState.json to hold the acked position.
	state := filepath.Join(string(c.dir), "store", "config", "popState.json")
	waitFor(t, 30*time.Second, "popState.json saved with committed offset 5", func() bool {
		return savedCommitted(state, group, topic) == n
	})

	cl := remoting.NewClient(nil, slog.New(slog.DiscardHandler))
	defer cl.Close()
	resp, err := cl.Invoke(c.broker.addr, wire.NewRequest(wire.InvokeBrokerToResetOffset,
		map[string]string{"topic": topic, "group": group, "timestamp": "0", "isForce": "true"}, nil), 10*time.Second)
	if err != nil || resp.Code != wire.Success {
		t.Fatalf("reset offset: %v %v", resp, err)
	}
	c.broker.kill()

	c.broker = restartBroker(t, c, "enableHttpGateway=true")
	g = gatewayOf(t, c.broker)
	again := g.receiveUntil(group, topic, n, 30*time.Second, nil)
	for id := range got {
		if _, ok := again[id]; !ok {
			t.Errorf("message %s not delivered again after the reset and the kill", id)
		}
	}
}

// savedCommitted is the committed offset popState.json holds for queue 0
// of group and topic, or -1.
func savedCommitted(path, group, topic string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	var snap struct {
		Queues []struct {
			Group     string `json:"group"`
			Topic     string `json:"topic"`
			Queue     int32  `json:"queue"`
			Committed int64  `json:"committed"`
		} `json:"queues"`
	}
	if json.Unmarshal(b, &snap) != nil {
		return -1
	}
	for _, q := range snap.Queues {
		if q.Group == group && q.Topic == topic && q.Queue == 0 {
			return q.Committed
		}
	}
	return -1
}
