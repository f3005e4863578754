package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqops/mqops/e2e/e2ed"
)

const sshdBin = "/usr/sbin/sshd"

// sshServer is a real OpenSSH daemon on a random loopback port that lets
// the test's user in with one throwaway key.
type sshServer struct {
	port int
	// key is the client's private key file (no passphrase).
	key string
	// knownHosts holds the server's ed25519 key only, although the
	// server also offers an ECDSA key, which clients prefer by default.
	knownHosts string
}

// sshKeygen makes an unencrypted key pair at path and path.pub.
func sshKeygen(t *testing.T, typ, path string) {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", "", "-C", "mqops-e2e", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
}

// fileText returns a file's content.
func fileText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unusedPort returns a TCP port that was free a moment ago.
func unusedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSSHD runs sshd -D -e in the foreground until the test ends.
func startSSHD(t *testing.T) *sshServer {
	t.Helper()
	if _, err := os.Stat(sshdBin); err != nil {
		t.Skipf("%s is not installed (make test installs openssh-server): %v", sshdBin, err)
	}
	dir := t.TempDir()
	s := &sshServer{key: filepath.Join(dir, "id_ed25519"), knownHosts: filepath.Join(dir, "known_hosts")}
	sshKeygen(t, "ed25519", s.key)
	for _, typ := range []string{"ed25519", "ecdsa"} {
		sshKeygen(t, typ, filepath.Join(dir, "host_"+typ))
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, []byte(fileText(t, s.key+".pub")), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd refuses to start without its privilege separation directory,
	// which Debian creates only when the service is started by systemd.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "sshd_config")
	// Another test's process may take the port between unusedPort and
	// sshd's bind; a few tries make that harmless. SHLVL=1 keeps bash, the
	// login shell running each command, from reading the user's ~/.bashrc
	// (bash reads it for ssh commands only at level 1): a developer's
	// shell set-up costs seconds per command and is no part of the test.
	for try := 0; ; try++ {
		s.port = unusedPort(t)
		text := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 100
LogLevel VERBOSE
SetEnv SHLVL=1
`, s.port, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "host_ecdsa"), filepath.Join(dir, "sshd.pid"), authorized)
		// OpenSSH 9.8+ shuts out an address after failed logins, which the
		// tests make on purpose; older versions reject the option.
		if exec.Command(sshdBin, "-t", "-f", writeSSHDConf(t, conf, text), "-o", "PerSourcePenalties=no").Run() == nil {
			text += "PerSourcePenalties no\n"
		}
		if startSSHDProcess(t, writeSSHDConf(t, conf, text), s.port) {
			break
		}
		if try == 2 {
			t.Fatal("sshd: three random ports were taken")
		}
	}
	line := fmt.Sprintf("[127.0.0.1]:%d %s", s.port, fileText(t, filepath.Join(dir, "host_ed25519.pub")))
	if err := os.WriteFile(s.knownHosts, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func writeSSHDConf(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startSSHDProcess starts sshd and waits for it to listen. It returns
// false if the port was taken, and fails the test on any other problem.
func startSSHDProcess(t *testing.T, conf string, port int) bool {
	t.Helper()
	out := &lockedBuf{}
	cmd := exec.Command(sshdBin, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := e2ed.StartCmd(cmd); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	ready := fmt.Sprintf("Server listening on 127.0.0.1 port %d.", port)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), ready) {
		select {
		case <-done:
			if strings.Contains(out.String(), "Address already in use") {
				return false
			}
			t.Fatalf("sshd exited:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("sshd not listening after 10s:\n%s", out.String())
		}
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("sshd log:\n%s", out.String())
		}
	})
	return true
}

// startSSHAgent runs a real ssh-agent holding key and returns its socket.
func startSSHAgent(t *testing.T, key string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	out := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := e2ed.StartCmd(cmd); err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	waitFor(t, 10*time.Second, "ssh-agent socket", func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if b, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s\nagent: %s", err, b, out.String())
	}
	return sock
}
