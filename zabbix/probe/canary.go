package probe

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// CanaryResult is one broker group's round trip.
type CanaryResult struct {
	OK    int     `json:"ok"`
	RTTms float64 `json:"rttMs"`
	Error string  `json:"error,omitempty"`
}

// Canary is what `mqops-zbx canary` prints.
type Canary struct {
	Topic    string                   `json:"topic"`
	Brokers  map[string]*CanaryResult `json:"brokers"`
	OK       int                      `json:"ok"`     // broker groups that passed
	Failed   int                      `json:"failed"` // and that did not
	MaxRTTms float64                  `json:"maxRttMs"`
	Error    string                   `json:"error,omitempty"`
}

// quiet drops the client library's log lines: the helper's stdout is the
// item value.
type quiet struct{}

func (quiet) Debug(string, map[string]interface{})   {}
func (quiet) Info(string, map[string]interface{})    {}
func (quiet) Warning(string, map[string]interface{}) {}
func (quiet) Error(string, map[string]interface{})   {}
func (quiet) Fatal(string, map[string]interface{})   {}
func (quiet) Level(string)                           {}
func (quiet) OutputPath(string) error                { return nil }

// ClusterCanary sends one message to every master of cluster with the
// official Go client (producer group group), reads it back from the queue
// at the offset the send returned, checks it is the same message and
// commits that offset for group, so the canary group never shows backlog.
// The topic is created on every master (one queue) when missing.
func ClusterCanary(namesrv, cluster, topic, group string) *Canary {
	out := &Canary{Topic: topic, Brokers: map[string]*CanaryResult{}}
	a, err := newAdmin(namesrv)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer a.Close()
	masters, err := a.Brokers(admin.Target{Cluster: cluster})
	if err != nil {
		out.Error = err.Error()
		return out
	}
	if err := ensureTopic(a, masters, cluster, topic); err != nil {
		out.Error = err.Error()
		return out
	}
	rlog.SetLogger(quiet{})
	p, err := producer.NewDefaultProducer(
		producer.WithNameServer(splitList(namesrv)),
		producer.WithGroupName(group),
		producer.WithInstanceName("mqops-canary-"+strconv.Itoa(int(time.Now().UnixNano()%1e9))),
		producer.WithQueueSelector(producer.NewManualQueueSelector()),
		producer.WithRetry(0),
		producer.WithSendMsgTimeout(Timeout),
	)
	if err == nil {
		err = p.Start()
	}
	if err != nil {
		out.Error = fmt.Sprintf("start producer: %v", err)
		return out
	}
	defer p.Shutdown()
	results := make([]*CanaryResult, len(masters))
	_ = admin.FanOut(len(masters), a.Parallel(), func(i int) error {
		results[i] = roundTrip(a, p, masters[i], topic, group)
		return nil
	})
	for i, b := range masters {
		r := results[i]
		out.Brokers[b.Name] = r
		if r.OK == 1 {
			out.OK++
			out.MaxRTTms = max(out.MaxRTTms, r.RTTms)
		} else {
			out.Failed++
		}
	}
	return out
}

// ensureTopic creates topic on the masters that lack it.
func ensureTopic(a *admin.Admin, masters []admin.Broker, cluster, topic string) error {
	have := make([][]string, len(masters))
	err := admin.FanOut(len(masters), a.Parallel(), func(i int) (err error) {
		have[i], err = a.BrokerTopics(masters[i].Addr)
		return err
	})
	if err != nil {
		return err
	}
	var missing []admin.Broker
	for i, b := range masters {
		if !slices.Contains(have[i], topic) {
			missing = append(missing, b)
		}
	}
	for _, b := range missing {
		tc := wire.TopicConfig{TopicName: topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6, TopicFilterType: "SINGLE_TAG"}
		if _, err := a.CreateTopic(admin.Target{Broker: b.Addr}, tc, ""); err != nil {
			return fmt.Errorf("create canary topic %s on %s: %w", topic, b.Name, err)
		}
	}
	if len(missing) > 0 {
		// The brokers register the new topic with the name servers at
		// once; give the producer's first route look-up a moment.
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

func roundTrip(a *admin.Admin, p sender, b admin.Broker, topic, group string) *CanaryResult {
	r := &CanaryResult{}
	key := "canary-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	msg := primitive.NewMessage(topic, []byte(key))
	msg.WithKeys([]string{key})
	msg.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: b.Name, QueueId: 0}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	res, err := p.SendSync(ctx, msg)
	cancel()
	if err == nil && res.Status != primitive.SendOK {
		err = fmt.Errorf("send status %d", res.Status)
	}
	if err != nil {
		r.Error = fmt.Sprintf("send: %v", err)
		return r
	}
	// The broker acknowledges once the message is in its commit log; it
	// reaches the consume queue a moment later, as for any consumer.
	var got *admin.Message
	for deadline := start.Add(Timeout); ; {
		if got, err = a.MessageAt(topic, b.Name, 0, res.QueueOffset); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		r.Error = fmt.Sprintf("read back: %v", err)
		return r
	}
	if string(got.Body) != key {
		r.Error = fmt.Sprintf("read back offset %d: another message", res.QueueOffset)
		return r
	}
	r.RTTms = float64(time.Since(start).Microseconds()) / 1000
	r.OK = 1
	if err := a.UpdateConsumerOffset(b.Addr, group, topic, 0, res.QueueOffset+1); err != nil {
		r.Error = fmt.Sprintf("commit offset: %v", err)
	}
	return r
}

// sender is the part of the client's producer a round trip uses.
type sender interface {
	SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error)
}
