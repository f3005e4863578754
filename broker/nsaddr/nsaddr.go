// Package nsaddr serves the name-server address list over HTTP, the way
// RocketMQ clients poll it: Java's TopAddressing fetches
// http://<rocketmq.namesrv.domain>:8080/rocketmq/nsaddr and the Go
// client's HttpResolver (producer/consumer WithNameServerDomain) the URL
// it is given, both every two minutes, and both take the body as
// "ip:port;ip:port". Moving clients to other name servers — the switch of
// a blue-green upgrade — is rewriting one file.
//
// The list is read from its file on every request, so a rewrite is served
// at once and there is no state to lose. A file that is missing, empty or
// not an address list is answered with 503, never with a partial list:
// clients then keep the name servers they have.
package nsaddr

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// PathPrefix is where clients ask. Java appends the subgroup ("nsaddr" by
// default) and the Go client a unit suffix and query; every path under
// the prefix gets the same list.
const PathPrefix = "/rocketmq/"

// Read returns the address list in file path as "ip:port;ip:port". The
// file holds addresses split by ';' or newlines; blank lines and lines
// starting with '#' are ignored.
func Read(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read name-server list: %w", err)
	}
	var addrs []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, a := range strings.Split(line, ";") {
			if a = strings.TrimSpace(a); a == "" {
				continue
			}
			if err := checkAddr(a); err != nil {
				return "", fmt.Errorf("name-server list %s: %w", path, err)
			}
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("name-server list %s: no address", path)
	}
	return strings.Join(addrs, ";"), nil
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err == nil && host == "" {
		err = fmt.Errorf("no host")
	}
	if err == nil {
		var n int
		if n, err = strconv.Atoi(port); err == nil && (n < 1 || n > 65535) {
			err = fmt.Errorf("port out of range")
		}
	}
	if err != nil {
		return fmt.Errorf("address %q: want host:port (%v)", a, err)
	}
	return nil
}

// Handler answers GET and HEAD under PathPrefix with the list in File,
// and /healthz with 200 while the list is servable.
type Handler struct {
	File string
	Log  *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz" && !strings.HasPrefix(r.URL.Path, PathPrefix) {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	list, err := Read(h.File)
	if err != nil {
		h.Log.Error("cannot serve the name-server list", "err", err, "remote", r.RemoteAddr)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == "/healthz" {
		fmt.Fprintf(w, "ok %s\n", list)
		return
	}
	fmt.Fprint(w, list)
}
