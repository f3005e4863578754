package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

var nsaddrReady = regexp.MustCompile(`The mqnsaddr boot success\. serializeType=TEXT, listening on (\S+),`)

func httpGet(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// keepClientSnapshot removes, after the test, the name-server snapshot the
// Go client's HttpResolver writes under the user's home, unless it was
// there before.
func keepClientSnapshot(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		return
	}
	dir := filepath.Join(u.HomeDir, "logs", "rocketmq-go")
	if _, err := os.Stat(dir); err == nil {
		return
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
}

// TestNsaddrEndpoint: the official client finds the name servers through
// mqnsaddr (WithNameServerDomain, as Java's rocketmq.namesrv.domain) and
// sends; a broken list file is refused with 503 and loses the client
// nothing.
func TestNsaddrEndpoint(t *testing.T) {
	c := startCluster(t)
	cli(t, c.ns.addr, "topic", "create", "-t", "ViaNsaddr", "-c", "DefaultCluster")
	waitRoute(t, c.ns.addr, "ViaNsaddr", 1)

	file := filepath.Join(t.TempDir(), "nsaddr")
	if err := os.WriteFile(file, []byte("# the live cluster\n"+c.ns.addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := start(t, nsaddrReady, "mqnsaddr", "-f", file, "-listen", "127.0.0.1:0")
	base := "http://" + srv.addr
	if code, body := httpGet(t, "GET", base+"/rocketmq/nsaddr"); code != 200 || body != c.ns.addr {
		t.Fatalf("GET /rocketmq/nsaddr: %d %q, want 200 %q", code, body, c.ns.addr)
	}
	// The Go client's unit form and Java's subgroups get the same list.
	if code, body := httpGet(t, "GET", base+"/rocketmq/nsaddr-unit1?nofix=1"); code != 200 || body != c.ns.addr {
		t.Fatalf("GET with a unit: %d %q", code, body)
	}
	if code, body := httpGet(t, "GET", base+"/healthz"); code != 200 || !strings.Contains(body, c.ns.addr) {
		t.Fatalf("GET /healthz: %d %q", code, body)
	}
	if code, _ := httpGet(t, "POST", base+"/rocketmq/nsaddr"); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", code)
	}
	if code, _ := httpGet(t, "GET", base+"/other"); code != http.StatusNotFound {
		t.Fatalf("GET /other: %d", code)
	}

	keepClientSnapshot(t)
	p := newProducer(t, "unused:1", producer.WithNameServerDomain(base+"/rocketmq/nsaddr"))
	sendN(t, p, "ViaNsaddr", "domain", 5)

	// Two name servers, one per line or ';'-separated: both served.
	two := c.ns.addr + ";127.0.0.1:9"
	if err := os.WriteFile(file, []byte(c.ns.addr+"\n127.0.0.1:9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := httpGet(t, "GET", base+"/rocketmq/nsaddr"); code != 200 || body != two {
		t.Fatalf("two lines: %d %q, want %q", code, body, two)
	}
	for _, bad := range []string{"", "# nothing\n", "10.0.0.1:9876;not-an-address\n", "10.0.0.1:99999"} {
		if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _ := httpGet(t, "GET", base+"/rocketmq/nsaddr"); code != http.StatusServiceUnavailable {
			t.Fatalf("list %q answered %d, want 503", bad, code)
		}
		if code, _ := httpGet(t, "GET", base+"/healthz"); code != http.StatusServiceUnavailable {
			t.Fatalf("healthz with list %q answered %d, want 503", bad, code)
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if code, body := httpGet(t, "GET", base+"/rocketmq/nsaddr"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no such file") {
		t.Fatalf("missing file: %d %q", code, body)
	}
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("ViaNsaddr", []byte("still"))); err != nil {
		t.Fatalf("send after the list broke: %v", err)
	}
	srv.stop()
}
