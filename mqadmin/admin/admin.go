// Package admin is the library behind mqadmin: typed calls to RocketMQ name
// servers and brokers over the remoting protocol (the requests served by
// apache/rocketmq
// namesrv/src/main/java/org/apache/rocketmq/namesrv/processor/DefaultRequestProcessor.java
// and broker/src/main/java/org/apache/rocketmq/broker/processor/AdminBrokerProcessor.java),
// plus the multi-step operations the commands are made of (fan-out to every
// master of a cluster, message look-ups, offset resets, backlog overviews).
// It knows nothing about flags or output formats.
package admin

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mqops/mqops/remoting"
	"github.com/mqops/mqops/wire"
)

// DefaultTimeout bounds one request when New is given none.
const DefaultTimeout = 10 * time.Second

// Admin talks to one set of name servers and to the brokers they know.
type Admin struct {
	cl       *remoting.Client
	namesrvs []string
	timeout  time.Duration
	parallel int // see SetParallel
}

// New returns an Admin for a ";"-separated name-server list such as
// "10.0.0.1:9876;10.0.0.2:9876". No connection is made until the first call.
func New(namesrv string, timeout time.Duration) (*Admin, error) {
	var addrs []string
	for _, a := range strings.Split(namesrv, ";") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("empty name server address list")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Admin{
		// Admin calls never get requests from the peer, hence no handler;
		// connection-level noise is not the user's business.
		cl:       remoting.NewClient(nil, slog.New(slog.DiscardHandler)),
		namesrvs: addrs,
		timeout:  timeout,
		parallel: DefaultParallel,
	}, nil
}

// NewDirect returns an Admin without name servers, for calls that go to
// controllers and brokers by address; calls that need a name server fail
// with errNoNamesrv.
func NewDirect(timeout time.Duration) *Admin {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Admin{cl: remoting.NewClient(nil, slog.New(slog.DiscardHandler)), timeout: timeout, parallel: DefaultParallel}
}

var errNoNamesrv = errors.New("no name server: use -n/--namesrv, NAMESRV_ADDR or a config context")

// SetCredentials signs every request with RocketMQ's plain-ACL signature
// (brokers and name servers with aclEnable); empty keys send unsigned.
func (a *Admin) SetCredentials(accessKey, secretKey string) {
	a.cl.SetCredentials(wire.Credentials{AccessKey: accessKey, SecretKey: secretKey})
}

// UseTLS makes every connection opened from now on TLS with cfg (nil:
// plaintext).
func (a *Admin) UseTLS(cfg *tls.Config) { a.cl.UseTLS(cfg) }

// Close drops every connection.
func (a *Admin) Close() { a.cl.Close() }

// NameServers returns the name-server addresses in use.
func (a *Admin) NameServers() []string { return append([]string(nil), a.namesrvs...) }

// ResponseError is a non-success answer. Its text is the Java ResponseCode
// name and the peer's remark, e.g. "SYSTEM_ERROR: topic[T] not exist".
type ResponseError struct {
	Code   int32
	Remark string
}

func (e *ResponseError) Error() string {
	name := wire.ResponseName(e.Code)
	if r := strings.TrimSpace(e.Remark); r != "" {
		return name + ": " + r
	}
	return name
}

// IsCode reports whether err carries a ResponseError with code.
func IsCode(err error, code int32) bool {
	var re *ResponseError
	return errors.As(err, &re) && re.Code == code
}

// call sends one request to addr and turns a non-success code into a
// ResponseError; the response is returned in both cases.
func (a *Admin) call(addr string, code int32, fields map[string]string, body []byte) (*wire.Command, error) {
	return a.callTimeout(addr, code, fields, body, a.timeout)
}

// callTimeout is call with its own timeout, for requests the broker
// relays to a client and answers only once the client has.
func (a *Admin) callTimeout(addr string, code int32, fields map[string]string, body []byte, timeout time.Duration) (*wire.Command, error) {
	resp, err := a.cl.Invoke(addr, wire.NewRequest(code, fields, body), timeout)
	if err != nil {
		return nil, err
	}
	if resp.Code != wire.Success {
		return resp, &ResponseError{Code: resp.Code, Remark: string(resp.Remark)}
	}
	return resp, nil
}

// callNamesrv asks the name servers in order until one answers: a network
// failure moves on to the next, an answer (success or not) is final.
func (a *Admin) callNamesrv(code int32, fields map[string]string, body []byte) (*wire.Command, error) {
	if len(a.namesrvs) == 0 {
		return nil, errNoNamesrv
	}
	var errs []string
	for _, ns := range a.namesrvs {
		resp, err := a.call(ns, code, fields, body)
		var re *ResponseError
		if err == nil || errors.As(err, &re) {
			return resp, err
		}
		errs = append(errs, err.Error())
	}
	return nil, fmt.Errorf("no name server reachable: %s", strings.Join(errs, "; "))
}

// decode unmarshals a response body, naming what it was on failure.
func decode(resp *wire.Command, what string, v any) error {
	if err := wire.UnmarshalLenient(resp.Body, v); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}
