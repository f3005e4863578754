package hosts

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHOptions says how to log in to the hosts.
type SSHOptions struct {
	// User logs in to hosts without ansible_user.
	User string
	// KeyFile is a private key without passphrase; "" for none.
	KeyFile string
	// AgentSocket is ssh-agent's socket ($SSH_AUTH_SOCK); "" for none.
	AgentSocket string
	// KnownHosts are OpenSSH known_hosts files that must hold every host key.
	KnownHosts []string
	// InsecureIgnoreHostKey accepts any host key, giving up the protection
	// against a man in the middle.
	InsecureIgnoreHostKey bool
	// ConnectTimeout bounds the TCP connect, the handshake and the login;
	// CommandTimeout bounds each remote command. Both must be positive.
	ConnectTimeout time.Duration
	CommandTimeout time.Duration
}

// SSH logs in to inventory hosts; one SSH serves a whole run, from
// several goroutines.
type SSH struct {
	o     SSHOptions
	auth  []ssh.AuthMethod
	known ssh.HostKeyCallback // nil with InsecureIgnoreHostKey
	// probe is a key no host has: offering it to known learns which key
	// types are known for a host (see knownAlgorithms).
	probe ssh.PublicKey
	agent net.Conn
}

// NewSSH loads the credentials and known_hosts files. Close releases the
// agent connection.
func NewSSH(o SSHOptions) (*SSH, error) {
	if o.User == "" {
		return nil, errors.New("no SSH user")
	}
	if o.ConnectTimeout <= 0 || o.CommandTimeout <= 0 {
		return nil, errors.New("SSH connect and command timeouts must be positive")
	}
	s := &SSH{o: o}
	if o.KeyFile != "" {
		pem, err := os.ReadFile(o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("read SSH key: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			// Prompting would hang scripts and CI; the agent is the
			// standard place for a decrypted key.
			return nil, fmt.Errorf("SSH key %s has a passphrase: add it to ssh-agent (ssh-add %s) instead", o.KeyFile, o.KeyFile)
		}
		if err != nil {
			return nil, fmt.Errorf("SSH key %s: %w", o.KeyFile, err)
		}
		s.auth = append(s.auth, ssh.PublicKeys(signer))
	}
	var agentErr error
	if o.AgentSocket != "" {
		// A stale SSH_AUTH_SOCK is common and harmless when a key file
		// is given, so it only matters if nothing else can log in.
		if s.agent, agentErr = net.DialTimeout("unix", o.AgentSocket, o.ConnectTimeout); agentErr == nil {
			s.auth = append(s.auth, ssh.PublicKeysCallback(agent.NewClient(s.agent).Signers))
		}
	}
	if len(s.auth) == 0 {
		if agentErr != nil {
			return nil, fmt.Errorf("no SSH credentials: ssh-agent: %w", agentErr)
		}
		return nil, errors.New("no SSH credentials: no ssh-agent (SSH_AUTH_SOCK) and no key file")
	}
	if o.InsecureIgnoreHostKey {
		return s, nil
	}
	if len(o.KnownHosts) == 0 {
		s.Close()
		return nil, errors.New("no known_hosts file to check host keys against")
	}
	var err error
	if s.known, err = knownhosts.New(o.KnownHosts...); err != nil {
		s.Close()
		return nil, fmt.Errorf("read known_hosts: %w", err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("generate probe key: %w", err)
	}
	if s.probe, err = ssh.NewPublicKey(pub); err != nil {
		s.Close()
		return nil, fmt.Errorf("probe key: %w", err)
	}
	return s, nil
}

// Close releases the agent connection.
func (s *SSH) Close() {
	if s.agent != nil {
		s.agent.Close()
	}
}

// login returns "user@host:port" for h.
func (s *SSH) login(h *Host) (user, addr string) {
	return cmp.Or(h.User, s.o.User), net.JoinHostPort(h.Addr, strconv.Itoa(h.Port))
}

// dial logs in to h; the caller closes the remote.
func (s *SSH) dial(ctx context.Context, h *Host) (*remote, error) {
	user, addr := s.login(h)
	cfg := &ssh.ClientConfig{User: user, Auth: s.auth, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	if s.known != nil {
		cfg.HostKeyCallback = s.checkHostKey
		cfg.HostKeyAlgorithms = s.knownAlgorithms(addr)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.ConnectTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The handshake takes no context; the deadline bounds it instead.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("no SSH handshake within %v", s.o.ConnectTimeout)
		}
		return nil, fmt.Errorf("log in as %s: %w", user, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return &remote{c: ssh.NewClient(c, chans, reqs), timeout: s.o.CommandTimeout}, nil
}

// checkHostKey is the known_hosts check with messages that say what to do.
func (s *SSH) checkHostKey(host string, remote net.Addr, key ssh.PublicKey) error {
	err := s.known(host, remote, key)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return err
	}
	fp := key.Type() + " " + ssh.FingerprintSHA256(key)
	if len(ke.Want) == 0 {
		return fmt.Errorf("host key %s is not in %s; check it and add it (ssh-keyscan)", fp, strings.Join(s.o.KnownHosts, ", "))
	}
	return fmt.Errorf("host key %s does not match %s:%d: the host was reinstalled, or someone is in the middle",
		fp, ke.Want[0].Filename, ke.Want[0].Line)
}

// knownAlgorithms returns the host key algorithms of the keys known for
// addr. Without them the server may present a key of another type than
// the one known_hosts has, and a known host would fail as a mismatch.
func (s *SSH) knownAlgorithms(addr string) []string {
	var ke *knownhosts.KeyError
	if err := s.known(addr, &net.TCPAddr{}, s.probe); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		add := []string{k.Key.Type()}
		if add[0] == ssh.KeyAlgoRSA {
			add = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, a := range add {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// remote is one logged-in SSH connection.
type remote struct {
	c       *ssh.Client
	timeout time.Duration
}

func (r *remote) Close() error { return r.c.Close() }

// output is what a remote command printed and its exit status.
type output struct {
	stdout, stderr string
	code           int
}

// run runs a POSIX sh script. A non-zero exit status is not an error:
// the checks read it. Not getting one, in time, is.
func (r *remote) run(ctx context.Context, script string) (output, error) {
	sess, err := r.c.NewSession()
	if err != nil {
		return output{}, fmt.Errorf("open SSH session: %w", err)
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	done := make(chan error, 1)
	// The login shell may be csh or fish; sh -c runs the script in the
	// shell it is written for.
	go func() { done <- sess.Run("sh -c " + shQuote(script)) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL) // a hung df on a dead NFS mount must not linger
		sess.Close()
		<-done
		return output{}, fmt.Errorf("no answer within %v", r.timeout)
	}
	o := output{stdout: stdout.String(), stderr: stderr.String()}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		o.code, err = ee.ExitStatus(), nil
	}
	return o, err
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
