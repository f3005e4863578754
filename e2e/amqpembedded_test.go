package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/zabbix/probe"
)

// The AMQP gateway inside the broker (enableAmqpGateway): the same
// tutorials and semantics the mqamqp gateway passes, with amqp091-go
// v1.17.0 against a real mqnamesrv + mqbroker and no mqamqp process.

// The broker's log line (its stdout has "The broker's AMQP 0-9-1 gateway
// listens on ..." as well).
var amqpEmbeddedLine = regexp.MustCompile(`serving the AMQP 0-9-1 gateway \(enableAmqpGateway\) addr=(\S+)`)

// embeddedFlags turn the broker's gateway on, on port (0: any free one).
func embeddedFlags(port int) []string {
	return append([]string{"enableAmqpGateway=true", fmt.Sprintf("amqpListenPort=%d", port)}, amqpLMQ...)
}

// embeddedAddr is the address the broker logged for its AMQP gateway. The
// log line may reach the captured output after the ready line the start
// waited for (stdout and the log are separate streams).
func embeddedAddr(t *testing.T, broker *proc) string {
	t.Helper()
	var m []string
	waitFor(t, 15*time.Second, "the broker's AMQP gateway address in its log", func() bool {
		m = amqpEmbeddedLine.FindStringSubmatch(broker.out.String())
		return m != nil
	})
	return m[1]
}

func TestAMQPEmbeddedGateway(t *testing.T) {
	for _, tu := range amqpTutorials {
		t.Run(tu.name, func(t *testing.T) {
			c := startCluster(t, embeddedFlags(0)...)
			tu.run(t, amqpTarget{addr: embeddedAddr(t, c.broker), vhost: "/", embedded: true})
		})
	}
	t.Run("ConsumeSemantics", func(t *testing.T) {
		c := startCluster(t, embeddedFlags(0)...)
		consumeSemantics(t, amqpTarget{addr: embeddedAddr(t, c.broker), vhost: "/", embedded: true})
		// Ctrl-C with AMQP connections open: the gateway and its
		// in-process connection close, the broker exits cleanly.
		c.broker.stop()
		if !strings.Contains(c.broker.out.String(), "The broker shut down cleanly.") {
			t.Fatalf("no clean shutdown:\n%s", c.broker.out.String())
		}
	})
	t.Run("Transactions", func(t *testing.T) {
		c := startCluster(t, embeddedFlags(0)...)
		txSemantics(t, amqpTarget{addr: embeddedAddr(t, c.broker), vhost: "/", embedded: true})
	})
	t.Run("Stats", func(t *testing.T) {
		// statsListenAddr in amqpGatewayConfig serves the broker's own
		// gateway's figures, as mqamqp serves its own.
		stats := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
		conf := filepath.Join(t.TempDir(), "amqp.conf")
		if err := os.WriteFile(conf, []byte("statsListenAddr="+stats+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c := startCluster(t, append(embeddedFlags(0), "amqpGatewayConfig="+conf)...)
		_, ch := dialURL(t, "amqp://guest:guest@"+embeddedAddr(t, c.broker)+"/")
		if _, err := ch.QueueDeclare("emb.stats", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		confirmed(t, ch, "", keysN("emb.stats", 3), func(int) string { return "s" })
		st := probe.AMQPGateway(stats)
		if st.Up != 1 || st.Connections != 1 || st.Channels != 1 || st.Published != 3 || st.ConnectionsAccepted != 1 {
			t.Fatalf("the broker's gateway stats: %+v", st)
		}
	})
	t.Run("PortTaken", func(t *testing.T) {
		// A port the broker cannot bind fails its start-up, naming it.
		c := startCluster(t, embeddedFlags(0)...)
		_, port, err := net.SplitHostPort(embeddedAddr(t, c.broker))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args := brokerArgs(newBrokerDir(t), c.ns.addr, append([]string{"listenPort=0", "enableAmqpGateway=true", "amqpListenPort=" + port}, amqpLMQ...)...)
		out, err := exec.CommandContext(ctx, filepath.Join(binDir, "mqbroker"), args...).CombinedOutput()
		if err == nil || brokerReady.Match(out) {
			t.Fatalf("a second broker on the same AMQP port started:\n%s", out)
		}
		if !regexp.MustCompile(`enableAmqpGateway.*:` + port).Match(out) {
			t.Fatalf("start-up failure does not name the gateway and its port:\n%s", out)
		}
	})
}

// kill -9 of a SYNC_FLUSH broker while a client publishes persistent
// messages with confirms through the broker's own gateway: after the
// broker restarts (same ports), every confirmed message is in the queue.
// The in-process hop must not confirm earlier than the TCP one does.
func TestAMQPEmbeddedBrokerKillConfirms(t *testing.T) {
	port := freePorts(t, 1)[0]
	flags := append([]string{"flushDiskType=SYNC_FLUSH"}, embeddedFlags(port)...)
	c := startCluster(t, flags...)
	a := amqpTarget{addr: embeddedAddr(t, c.broker), vhost: "/", embedded: true}
	conn, ch := a.dial(t)
	if _, err := ch.QueueDeclare("embkill", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	res := make(chan []string, 1)
	go func() { res <- publishUntilStopped(ch, "embkill", 64, stop) }()
	time.Sleep(1500 * time.Millisecond)
	c.broker.kill()
	close(stop)
	acked := <-res
	conn.Close()
	if len(acked) == 0 {
		t.Fatal("nothing confirmed before the kill")
	}
	c.broker = restartBroker(t, c, flags...)
	got := drainWhenUp(t, a.url(), "embkill")
	for _, b := range acked {
		if len(got[b]) == 0 {
			t.Errorf("confirmed %s lost", b)
		}
	}
	t.Logf("%d confirmed before the broker's kill -9, %d drained after", len(acked), len(got))
}
