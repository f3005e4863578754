package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/mqops/mqops/wire"
)

// The broker's protections on the AMQP path: ACL on the engine's codes,
// and flow control (a full disk) turned into connection.blocked.

const amqpACLRules = `accounts:
- accessKey: amqpGateway
  secretKey: secretAmqpGw
  topicPerms:
  - AMQP_STORE=PUB|SUB
- accessKey: amqpReader
  secretKey: secretAmqpRd
  topicPerms:
  - AMQP_STORE=SUB
- accessKey: brokerInner
  secretKey: secretInner
  admin: true
`

// With aclEnable on the broker: a gateway signing as an account with
// PUB|SUB on the vhost's store topic works end to end; one whose account
// has SUB only reads but its publish closes the channel with 403 naming
// the broker's reason; one without keys cannot open the vhost (530).
func TestAMQPGatewayBrokerACL(t *testing.T) {
	c := startACLCluster(t, amqpACLRules, amqpLMQ...)
	gw := startAMQP(t, c.cluster, "accessKey=amqpGateway", "secretKey=secretAmqpGw")
	_, ch := dialAMQP(t, gw)
	if _, err := ch.QueueDeclare("acl-q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	confirmed(t, ch, "", []string{"acl-q", "acl-q"}, func(i int) string { return []string{"one", "two"}[i] })
	if d, ok, err := ch.Get("acl-q", true); err != nil || !ok || string(d.Body) != "one" {
		t.Fatalf("get as the PUB|SUB account: %q %v %v", d.Body, ok, err)
	}

	ro := startAMQP(t, c.cluster, "accessKey=amqpReader", "secretKey=secretAmqpRd")
	_, rch := dialAMQP(t, ro)
	if d, ok, err := rch.Get("acl-q", true); err != nil || !ok || string(d.Body) != "two" {
		t.Fatalf("get as the SUB account: %q %v %v", d.Body, ok, err)
	}
	closed := rch.NotifyClose(make(chan *rmq.Error, 1))
	if err := rch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := rch.PublishWithDeferredConfirmWithContext(ctx15(t), "", "acl-q", false, false, rmq.Publishing{Body: []byte("refused")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != 403 || !strings.Contains(e.Reason, "ACCESS_REFUSED - broker ACL refused publish in vhost '/': No default permission for topic:AMQP_STORE") {
			t.Fatalf("publish as the SUB account: channel closed with %v", e)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("publish as the SUB account: the channel stayed open")
	}
	if dc.Acked() {
		t.Fatal("a refused publish was acked")
	}
	// Nothing was stored.
	if d, ok, err := ch.Get("acl-q", true); err != nil || ok {
		t.Fatalf("after the refused publish: %q %v %v", d.Body, ok, err)
	}
	// Declaring needs PUB and SUB.
	_, rch2 := dialAMQP(t, ro)
	_, err = rch2.QueueDeclare("acl-q2", false, false, false, false, nil)
	wantAMQPErrorContains(t, "declare as the SUB account", err, 403, "No default permission for topic:AMQP_STORE")

	none := startAMQP(t, c.cluster)
	_, err = rmq.Dial(amqpURL(none, "guest:guest", ""))
	wantAMQPErrorContains(t, "connection.open through a gateway without keys", err, 530, "No accessKey is configured")

	// The body's vhost must be the signed one the gate authorized.
	body, _ := json.Marshal(wire.AMQPQueueDeclare{Vhost: "other", Queue: "x"})
	resp := aclCall(t, c.broker.addr, primitive.Credentials{AccessKey: "amqpGateway", SecretKey: "secretAmqpGw"},
		wire.AMQPDeclareQueue, map[string]string{wire.AMQPVhostField: "/"}, body)
	if resp.Code != wire.SystemError || string(resp.Remark) != "AMQP_DECLARE_QUEUE for vhost 'other' signed for vhost '/'" {
		t.Fatalf("declare in another vhost than signed: %d %s", resp.Code, resp.Remark)
	}

	log, _ := os.ReadFile(c.aclLog)
	if !strings.Contains(string(log), "code=9110(AMQP_PUBLISH) ak=amqpReader") {
		t.Errorf("acl.log has no refused AMQP_PUBLISH of amqpReader:\n%s", log)
	}
}

func wantAMQPErrorContains(t *testing.T, what string, err error, code int, text string) {
	t.Helper()
	e, ok := err.(*rmq.Error)
	if !ok || e.Code != code || !strings.Contains(e.Reason, text) {
		t.Fatalf("%s: want %d …%q…, got %v", what, code, text, err)
	}
}

// A full broker disk: the publish the broker refuses is nacked, the
// publishing connection gets connection.blocked with the broker's reason
// and is not read until the disk is below the clean level again, then gets
// connection.unblocked and its publish made meanwhile is stored; a
// consuming connection keeps receiving while publishers are blocked. The
// same through the broker's own gateway (enableAmqpGateway), whose
// publishes are served in process.
func TestAMQPConnectionBlockedOnDiskFull(t *testing.T) {
	t.Run("mqamqp", func(t *testing.T) { blockedOnDiskFull(t, false) })
	t.Run("embedded", func(t *testing.T) { blockedOnDiskFull(t, true) })
}

func blockedOnDiskFull(t *testing.T, embedded bool) {
	mnt := mountTmpfs(t, "96m")
	flags := amqpLMQ
	if embedded {
		flags = embeddedFlags(0)
	}
	c := startCluster(t, append([]string{"storePathRootDir=" + filepath.Join(mnt, "store"),
		"mappedFileSizeCommitLog=1048576", "mappedFileSizeConsumeQueue=20000",
		"maxHashSlotNum=1000", "maxIndexNum=20000", "diskMaxUsedSpaceRatio=95",
		"cleanResourceInterval=200"}, flags...)...)
	var a amqpTarget
	if embedded {
		a = amqpTarget{addr: embeddedAddr(t, c.broker), vhost: "/", embedded: true}
	} else {
		gw := startAMQP(t, c)
		a = amqpTarget{addr: gw.addr, vhost: "/", gw: gw}
	}
	conn, ch := a.dial(t)
	blocked := conn.NotifyBlocked(make(chan rmq.Blocking, 4))
	if _, err := ch.QueueDeclare("blk", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	confirmed(t, ch, "", []string{"blk"}, func(int) string { return "before" })
	_, cch := a.dial(t)
	ds := mustConsume(t, cch, "blk", true)
	if d := recv(t, "before the disk filled", ds); string(d.Body) != "before" {
		t.Fatalf("got %q", d.Body)
	}

	b := &ballast{t: t, path: filepath.Join(mnt, "ballast")}
	b.fill(92, 0)
	waitFor(t, 30*time.Second, "a publish nacked on the full disk", func() bool {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx15(t), "", "blk", false, false, rmq.Publishing{Body: []byte("nacked")})
		if err != nil {
			t.Fatal(err)
		}
		ok, err := dc.WaitContext(ctx15(t))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			// Stored before the broker marked the disk full.
			if d := recv(t, "a publish acked before the disk was marked full", ds); string(d.Body) != "nacked" {
				t.Fatalf("got %q", d.Body)
			}
		}
		return !ok
	})
	select {
	case bl := <-blocked:
		if !bl.Active || !strings.Contains(bl.Reason, "the broker's disk is full") {
			t.Fatalf("first notification: %+v", bl)
		}
		t.Logf("connection.blocked: %s", bl.Reason)
	case <-time.After(15 * time.Second):
		t.Fatal("no connection.blocked")
	}

	// Published while blocked: the gateway does not read it yet.
	dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", "blk", false, false, rmq.Publishing{Body: []byte("during")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-ds:
		t.Fatalf("delivered while the publisher is blocked: %q", d.Body)
	case bl := <-blocked:
		t.Fatalf("notification while the disk is full: %+v", bl)
	case <-time.After(time.Second):
	}

	b.fill(80, 0)
	select {
	case bl := <-blocked:
		if bl.Active {
			t.Fatalf("second notification: %+v", bl)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no connection.unblocked after the disk was freed")
	}
	if ok, err := dc.WaitContext(ctx15(t)); !ok || err != nil {
		t.Fatalf("the publish made while blocked: acked=%v %v", ok, err)
	}
	if d := recv(t, "the publish made while blocked", ds); string(d.Body) != "during" {
		t.Fatalf("got %q", d.Body)
	}
}

// Exclusive access as RabbitMQ: consuming another connection's exclusive
// queue is 405; an exclusive consumer refuses every other consumer and is
// refused while others consume (403 "in exclusive use"), across
// connections; queue.declare-ok counts the consumers; an auto-delete
// queue goes with its last consumer's cancel; a closed connection's
// consumers stop counting.
func TestAMQPExclusiveConsumers(t *testing.T) {
	_, gw := amqpStack(t)
	connA, chA := dialAMQP(t, gw)
	connB, chB := dialAMQP(t, gw)
	_ = connA

	priv, err := chA.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = chB.Consume(priv.Name, "", true, false, false, false, nil)
	wantAMQPError(t, "consume another connection's exclusive queue", err, 405,
		"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '"+priv.Name+"' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.")

	if _, err := chA.QueueDeclare("shared", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := chA.Consume("shared", "owner", false, true, false, false, nil); err != nil {
		t.Fatalf("exclusive consume: %v", err)
	}
	_, chB = dialAMQPChannel(t, connB)
	if q, err := chB.QueueDeclarePassive("shared", true, false, false, false, nil); err != nil || q.Consumers != 1 {
		t.Fatalf("declare-ok with one consumer: %+v %v", q, err)
	}
	_, err = chB.Consume("shared", "", false, false, false, false, nil)
	wantAMQPError(t, "consume beside an exclusive consumer", err, 403, "ACCESS_REFUSED - queue 'shared' in vhost '/' in exclusive use")

	if err := chA.Cancel("owner", false); err != nil {
		t.Fatal(err)
	}
	_, chB = dialAMQPChannel(t, connB)
	if _, err := chB.Consume("shared", "b1", false, false, false, false, nil); err != nil {
		t.Fatalf("consume after the exclusive consumer's cancel: %v", err)
	}
	_, err = chA.Consume("shared", "", false, true, false, false, nil)
	wantAMQPError(t, "exclusive consume beside a consumer", err, 403, "ACCESS_REFUSED - queue 'shared' in vhost '/' in exclusive use")

	// Closing B's connection ends its consumer.
	if err := connB.Close(); err != nil {
		t.Fatal(err)
	}
	_, chA = dialAMQPChannel(t, connA)
	if q, err := chA.QueueDeclarePassive("shared", true, false, false, false, nil); err != nil || q.Consumers != 0 {
		t.Fatalf("declare-ok after the consumer's connection closed: %+v %v", q, err)
	}

	if _, err := chA.QueueDeclare("ad", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := chA.Consume("ad", "last", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := chA.Cancel("last", false); err != nil {
		t.Fatal(err)
	}
	_, err = chA.QueueDeclarePassive("ad", false, true, false, false, nil)
	wantAMQPError(t, "passive declare of an auto-delete queue after its last consumer", err, 404, "NOT_FOUND - no queue 'ad' in vhost '/'")
}

func dialAMQPChannel(t *testing.T, conn *rmq.Connection) (*rmq.Connection, *rmq.Channel) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return conn, ch
}

// A gateway killed with SIGKILL stops renewing its lease; after it runs
// out (15 s) the broker ends what its connections held: another gateway
// finds its exclusive queue gone (404, 405 before), the auto-delete queue
// its consumer held gone, and the messages it had delivered unacked
// delivered again, redelivered.
func TestAMQPGatewayLeaseExpiry(t *testing.T) {
	c, gw1 := amqpStack(t)
	gw2 := startAMQP(t, c)
	_, ch1 := dialAMQP(t, gw1)
	priv, err := ch1.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare("lease-ad", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	mustConsume(t, ch1, "lease-ad", true)
	if _, err := ch1.QueueDeclare("lease-q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	bodies := []string{"a", "b", "c"}
	confirmed(t, ch1, "", []string{"lease-q", "lease-q", "lease-q"}, func(i int) string { return bodies[i] })
	ds := mustConsume(t, ch1, "lease-q", false)
	for i := range bodies {
		if d := recv(t, "before the kill", ds); d.Redelivered {
			t.Fatalf("delivery %d redelivered before the kill", i)
		}
	}

	conn2, _ := dialAMQP(t, gw2)
	passive := func(q string) error {
		ch, err := conn2.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		_, err = ch.QueueDeclarePassive(q, false, false, true, false, nil)
		return err
	}
	wantAMQPErrorContains(t, "passive declare of gw1's exclusive queue", passive(priv.Name), 405, "RESOURCE_LOCKED")

	gw1.kill()
	var last error
	waitFor(t, 30*time.Second, "gw1's exclusive queue gone after its lease", func() bool {
		last = passive(priv.Name)
		e, ok := last.(*rmq.Error)
		return ok && e.Code == 404
	})
	wantAMQPErrorContains(t, "passive declare of the auto-delete queue", passive("lease-ad"), 404, "NOT_FOUND - no queue 'lease-ad' in vhost '/'")
	ch2, err := conn2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ds2 := mustConsume(t, ch2, "lease-q", false)
	got := map[string]bool{}
	for range bodies {
		d := recv(t, "redelivery after the lease", ds2)
		if !d.Redelivered {
			t.Errorf("%q not marked redelivered", d.Body)
		}
		got[string(d.Body)] = true
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(bodies) {
		t.Fatalf("redelivered %v, want %v", got, bodies)
	}
}
