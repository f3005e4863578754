package probe

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/mqops/mqops/wire"
)

// AMQPGatewayStatus is one AMQP gateway (mqamqp, or the gateway in a
// broker) as the "mqops AMQP gateway" template reads it: up, and the
// gateway's own figures from its stats endpoint (statsListenAddr).
type AMQPGatewayStatus struct {
	Up    int    `json:"up"` // 1: the stats endpoint answered
	Error string `json:"error,omitempty"`
	Addr  string `json:"addr"`
	wire.AMQPGatewayStats
}

// gatewayTimeout bounds the request: the agent's Timeout is a few seconds.
const gatewayTimeout = 3 * time.Second

// AMQPGateway asks the gateway whose stats endpoint is at addr
// (host:port) for its figures.
func AMQPGateway(addr string) *AMQPGatewayStatus {
	st := &AMQPGatewayStatus{Addr: addr}
	if err := getGatewayStats(addr, &st.AMQPGatewayStats); err != nil {
		st.Error = err.Error()
		return st
	}
	st.Up = 1
	return st
}

func getGatewayStats(addr string, out *wire.AMQPGatewayStats) error {
	hc := http.Client{Timeout: gatewayTimeout}
	resp, err := hc.Get("http://" + addr + "/stats")
	if err != nil {
		return fmt.Errorf("AMQP gateway stats at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("AMQP gateway stats at %s: %s", addr, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("AMQP gateway stats at %s: %w", addr, err)
	}
	return nil
}
