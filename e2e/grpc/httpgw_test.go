package grpc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

var httpGatewayLine = regexp.MustCompile(`The broker's HTTP/JSON gateway listens on (\S+)`)

// httpPost posts v as JSON to the broker's HTTP gateway and decodes the
// answer into out.
func httpPost(t *testing.T, base, path string, v, out any) int {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Post(base+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ans, out); err != nil {
		t.Fatalf("POST %s: %d %q: %v", path, resp.StatusCode, ans, err)
	}
	return resp.StatusCode
}

type httpMessage struct {
	MessageID       string            `json:"messageId"`
	Body            *string           `json:"body"`
	BodyBase64      []byte            `json:"bodyBase64"`
	Tag             string            `json:"tag"`
	Keys            []string          `json:"keys"`
	Properties      map[string]string `json:"properties"`
	ReceiptHandle   string            `json:"receiptHandle"`
	DeliveryAttempt int32             `json:"deliveryAttempt"`
}

type httpAck struct {
	Code     int    `json:"code"`
	CodeName string `json:"codeName"`
}

// TestHTTPGatewayInterop: the HTTP gateway and the gRPC service share one
// send path and one POP engine. Messages from the official v5 producer
// are received over HTTP and the reverse; a handle from an HTTP receive
// acks and changes over gRPC, a handle from the official SimpleConsumer
// acks over HTTP, and once acked either way it is spent for both.
func TestHTTPGatewayInterop(t *testing.T) {
	c := startCluster(t, "enableHttpGateway=true")
	var m []string
	waitFor(t, 10*time.Second, "the broker's HTTP gateway address line", func() bool {
		m = httpGatewayLine.FindStringSubmatch(c.broker.out.String())
		return m != nil
	})
	base := "http://" + m[1]
	const topic = "HttpInterop"
	createTopic(t, c, topic, 4)
	cl, _ := dial(t, c.grpcAddr, true)

	// v5 producer → HTTP receive; the HTTP handles ack and change over gRPC.
	p := newV5Producer(t, c, topic)
	sent := sendV5(t, p, topic, 3, "TagV5")
	const g1 = "HttpInteropG1"
	got := map[string]httpMessage{}
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < len(sent) && time.Now().Before(deadline) {
		var ans struct{ Messages []httpMessage }
		if st := httpPost(t, base, "/v1/groups/"+g1+"/topics/"+topic+"/receive", map[string]any{"waitMs": 2000}, &ans); st != http.StatusOK {
			t.Fatalf("receive: %d", st)
		}
		for _, hm := range ans.Messages {
			got[hm.MessageID] = hm
		}
	}
	if len(got) != len(sent) {
		t.Fatalf("HTTP received %d of %d v5 messages", len(got), len(sent))
	}
	var hms []httpMessage
	for id, hm := range got {
		body, ok := sent[id]
		if !ok || hm.Body == nil || *hm.Body != body || hm.Tag != "TagV5" || len(hm.Keys) != 2 || hm.Keys[1] != "common" ||
			hm.Properties["seq"] == "" || hm.DeliveryAttempt != 1 {
			t.Fatalf("v5 message %s came over HTTP as %+v (sent %q)", id, hm, body)
		}
		hms = append(hms, hm)
	}
	ackPath := "/v1/groups/" + g1 + "/topics/" + topic + "/ack"
	// 0: acked over gRPC, then spent for HTTP.
	if code := rawAck(t, cl, g1, topic, hms[0].ReceiptHandle); code != v2.Code_OK {
		t.Fatalf("gRPC ack of an HTTP handle: %v", code)
	}
	var a httpAck
	if st := httpPost(t, base, ackPath, map[string]any{"receiptHandles": []string{hms[0].ReceiptHandle}}, &a); st != http.StatusBadRequest || a.CodeName != "INVALID_RECEIPT_HANDLE" {
		t.Fatalf("HTTP ack after the gRPC ack: %d %+v", st, a)
	}
	// 1: its lease changed over gRPC; the new handle acks over HTTP.
	code, h := rawChange(t, cl, g1, topic, hms[1].ReceiptHandle, time.Minute)
	if code != v2.Code_OK {
		t.Fatalf("gRPC change of an HTTP handle: %v", code)
	}
	if st := httpPost(t, base, ackPath, map[string]any{"receiptHandles": []string{h}}, &a); st != http.StatusOK || a.CodeName != "OK" {
		t.Fatalf("HTTP ack of the gRPC-changed handle: %d %+v", st, a)
	}
	// 2: acked over HTTP, then spent for gRPC.
	if st := httpPost(t, base, ackPath, map[string]any{"receiptHandles": []string{hms[2].ReceiptHandle}}, &a); st != http.StatusOK {
		t.Fatalf("HTTP ack: %d %+v", st, a)
	}
	if code := rawAck(t, cl, g1, topic, hms[2].ReceiptHandle); code != v2.Code_INVALID_RECEIPT_HANDLE {
		t.Fatalf("gRPC ack after the HTTP ack: %v", code)
	}

	// HTTP send → official SimpleConsumer; its handles ack over HTTP.
	const g2 = "HttpInteropG2"
	sc := newV5Consumer(t, c.grpcAddr, g2, map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL})
	want := map[string][]byte{}
	for i := range 3 {
		body := []byte(fmt.Sprintf("from http %d", i))
		req := map[string]any{"tag": "TagHTTP", "keys": []string{"hk" + strconv.Itoa(i)}, "properties": map[string]string{"seq": strconv.Itoa(i)}}
		if i == 0 {
			body = []byte{0, 1, 2, 0xff}
			req["bodyBase64"] = base64.StdEncoding.EncodeToString(body)
		} else {
			req["body"] = string(body)
		}
		var s struct {
			MessageID string `json:"messageId"`
		}
		if st := httpPost(t, base, "/v1/topics/"+topic+"/messages", req, &s); st != http.StatusCreated {
			t.Fatalf("HTTP send: %d", st)
		}
		want[s.MessageID] = body
	}
	// g2 is new: it starts at the queues' beginning and sees the v5 messages too.
	var mvs []*rmq.MessageView
	for _, mv := range receiveUntil(t, sc, len(want)+len(sent), 20*time.Second, 30*time.Second) {
		if _, ok := sent[mv.GetMessageId()]; !ok {
			mvs = append(mvs, mv)
		}
	}
	if len(mvs) != len(want) {
		t.Fatalf("the v5 consumer received %d HTTP messages, want %d", len(mvs), len(want))
	}
	for _, mv := range mvs {
		body, ok := want[mv.GetMessageId()]
		if !ok || !bytes.Equal(mv.GetBody(), body) || mv.GetTag() == nil || *mv.GetTag() != "TagHTTP" || len(mv.GetKeys()) != 1 ||
			mv.GetProperties()["seq"] == "" || mv.GetDeliveryAttempt() != 1 {
			t.Fatalf("HTTP message came to the v5 consumer as id %s body %q tag %v keys %v props %v", mv.GetMessageId(), mv.GetBody(), mv.GetTag(), mv.GetKeys(), mv.GetProperties())
		}
		if st := httpPost(t, base, "/v1/groups/"+g2+"/topics/"+topic+"/ack", map[string]any{"receiptHandles": []string{mv.GetReceiptHandle()}}, &a); st != http.StatusOK {
			t.Fatalf("HTTP ack of a v5 consumer's handle: %d %+v", st, a)
		}
		if code := rawAck(t, cl, g2, topic, mv.GetReceiptHandle()); code != v2.Code_INVALID_RECEIPT_HANDLE {
			t.Fatalf("gRPC ack after the HTTP ack: %v", code)
		}
	}
}
