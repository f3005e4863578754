package namesrv

import (
	"context"
	"slices"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/mqops/mqops/wire"
)

// TestOfficialGoClient drives the server with rocketmq-client-go v2.1.2
// itself: the admin's topic list, and FetchPublishMessageQueues, which runs
// the client's own route decoding (internal/route.go) and publish-queue
// selection on our route JSON.
func TestOfficialGoClient(t *testing.T) {
	rlog.SetLogLevel("fatal")
	s := startServer(t, Options{})
	c := newClient(t, s.addr)
	a0, a1, b0 := threeBrokers()
	for _, b := range []*broker{a0, a1, b0} {
		c.register(b)
	}

	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{s.addr})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	ctx := context.Background()

	tl, err := adm.FetchAllTopicList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tl.TopicList)
	if want := []string{"OnlyA", "TBW102", "TopicTest"}; !slices.Equal(tl.TopicList, want) {
		t.Fatalf("FetchAllTopicList: %v, want %v", tl.TopicList, want)
	}

	mqs, err := adm.FetchPublishMessageQueues(ctx, "TopicTest")
	if err != nil {
		t.Fatal(err)
	}
	perBroker := map[string]int{}
	for _, mq := range mqs {
		if mq.Topic != "TopicTest" {
			t.Fatalf("queue of topic %q", mq.Topic)
		}
		perBroker[mq.BrokerName]++
	}
	if perBroker["broker-a"] != 4 || perBroker["broker-b"] != 8 || len(perBroker) != 2 {
		t.Fatalf("publish queues per broker: %v", perBroker)
	}

	// A topic whose only group lost its master has no publish queues.
	c.ok(wire.UnregisterBroker, a0.unregisterFields(), nil)
	if mqs, err := adm.FetchPublishMessageQueues(ctx, "OnlyA"); err != nil || len(mqs) != 0 {
		t.Fatalf("OnlyA with slave only: %v queues, err %v", mqs, err)
	}
	if _, err := adm.FetchPublishMessageQueues(ctx, "NoSuchTopic"); err == nil {
		t.Fatal("FetchPublishMessageQueues of an unknown topic succeeded")
	}

	// admin.DeleteTopic sends 215 to a broker (here the name server itself,
	// which answers REQUEST_CODE_NOT_SUPPORTED; the admin ignores codes),
	// then 216 with only "topic" to every name server.
	if err := adm.DeleteTopic(ctx, admin.WithTopicDelete("TopicTest"), admin.WithBrokerAddrDelete(s.addr)); err != nil {
		t.Fatal(err)
	}
	tl, err = adm.FetchAllTopicList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(tl.TopicList, "TopicTest") {
		t.Fatalf("TopicTest still listed after admin.DeleteTopic: %v", tl.TopicList)
	}
}
