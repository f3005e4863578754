package hosts

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/wire"
)

// Role is what a result row checks on its host.
type Role string

// Roles.
const (
	RoleNamesrv Role = "namesrv"
	RoleBroker  Role = "broker"
)

// Check names, as failures report them.
const (
	CheckSSH          = "ssh"
	CheckService      = "service"
	CheckVersion      = "version"
	CheckDisk         = "disk"
	CheckStoreErrors  = "store-errors"
	CheckRegistration = "registration"
	CheckClusterInfo  = "cluster-info"
)

// Options tune a check run.
type Options struct {
	// Forks is how many hosts are checked at once.
	Forks int
	// MaxDiskUse is the store disk usage, in percent, above which the
	// disk check fails.
	MaxDiskUse int
	// TailLines is how many last lines of storeerror.log to return.
	TailLines int
	// NamesrvTimeout bounds each request to a name server.
	NamesrvTimeout time.Duration
	// NamesrvTLS, if set, is how name servers are dialled (mqadmin --tls).
	NamesrvTLS *tls.Config
	// Progress, if set, is called after each host, from any goroutine
	// but never concurrently.
	Progress func(done, total int)
}

// Result is one host in one role: a host in both groups gives two.
type Result struct {
	Host string `json:"host"`
	Role Role   `json:"role"`
	// SSH is the user@host:port the checks logged in as.
	SSH string `json:"ssh"`
	// Addr is the service's address: mqops_broker_ip:listen port for a
	// broker (what it registers), ansible_host:listen port for a name
	// server (what this machine asks).
	Addr        string       `json:"addr"`
	Service     *Service     `json:"service,omitempty"`
	Version     *Version     `json:"version,omitempty"`
	Disk        *Disk        `json:"disk,omitempty"`
	StoreErrors *StoreErrors `json:"storeErrors,omitempty"`
	// Registration is, for a broker, each name server's view of it.
	Registration []Registration `json:"registration,omitzero"`
	// Brokers are, for a name server, the broker addresses it lists.
	Brokers  []string  `json:"brokers,omitzero"`
	Failures []Failure `json:"failures"`
	OK       bool      `json:"ok"`
}

// Registration is whether one name server lists a broker, and as what.
type Registration struct {
	Namesrv    string `json:"namesrv"`
	Listed     bool   `json:"listed"`
	BrokerName string `json:"brokerName,omitempty"`
	BrokerID   *int64 `json:"brokerId,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Failure is one failed check and why, in one line.
type Failure struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
}

func (r *Result) fail(check, reason string) {
	r.Failures = append(r.Failures, Failure{Check: check, Reason: strings.Join(strings.Fields(reason), " ")})
}

// Check checks every host of inv in mqops_namesrv or mqops_broker, up to
// o.Forks at a time, and asks every name server of the inventory, from
// this machine, which brokers it lists. Results follow inventory order.
func Check(ctx context.Context, inv *Inventory, s *SSH, o Options) ([]Result, error) {
	var targets, namesrvs []*Host
	for _, h := range inv.Hosts {
		if h.IsNamesrv() || h.IsBroker() {
			targets = append(targets, h)
		}
		if h.IsNamesrv() {
			namesrvs = append(namesrvs, h)
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("inventory %s has no hosts in %s or %s", inv.Path, GroupNamesrv, GroupBroker)
	}

	// The name servers are asked while the hosts are checked; neither
	// fails as a whole (every failure is reported on its host).
	var wg sync.WaitGroup
	views := make([]namesrvView, len(namesrvs))
	wg.Go(func() {
		_ = admin.FanOut(len(namesrvs), admin.DefaultParallel, func(i int) error {
			views[i] = askNamesrv(namesrvs[i].NamesrvAddr(), o.NamesrvTimeout, o.NamesrvTLS)
			return nil
		})
	})
	perHost := make([][]Result, len(targets))
	var mu sync.Mutex
	done := 0
	_ = admin.FanOut(len(targets), max(o.Forks, 1), func(i int) error {
		perHost[i] = checkHost(ctx, s, targets[i], o)
		mu.Lock()
		defer mu.Unlock()
		done++
		if o.Progress != nil {
			o.Progress(done, len(targets))
		}
		return nil
	})
	wg.Wait()

	var out []Result
	for i, h := range targets {
		for _, r := range perHost[i] {
			switch r.Role {
			case RoleBroker:
				r.registration(h, views)
			case RoleNamesrv:
				v := views[slices.Index(namesrvs, h)]
				if v.err != nil {
					r.fail(CheckClusterInfo, v.err.Error())
				} else {
					r.Brokers = v.brokerAddrs()
				}
			}
			if r.Failures == nil {
				r.Failures = []Failure{}
			}
			r.OK = len(r.Failures) == 0
			out = append(out, r)
		}
	}
	return out, nil
}

// checkHost logs in once and runs the checks of each of h's roles.
func checkHost(ctx context.Context, s *SSH, h *Host, o Options) []Result {
	user, sshAddr := s.login(h)
	var rs []Result
	if h.IsNamesrv() {
		rs = append(rs, Result{Host: h.Name, Role: RoleNamesrv, SSH: user + "@" + sshAddr, Addr: h.NamesrvAddr()})
	}
	if h.IsBroker() {
		rs = append(rs, Result{Host: h.Name, Role: RoleBroker, SSH: user + "@" + sshAddr, Addr: h.BrokerAddr()})
	}
	conn, err := s.dial(ctx, h)
	if err != nil {
		for i := range rs {
			rs[i].fail(CheckSSH, err.Error())
		}
		return rs
	}
	defer conn.Close()
	for i := range rs {
		rs[i].checkRemote(ctx, conn, h, o)
	}
	return rs
}

// checkRemote runs the checks that need the host itself.
func (r *Result) checkRemote(ctx context.Context, conn *remote, h *Host, o Options) {
	program, port := "mqnamesrv", h.NamesrvPort
	if r.Role == RoleBroker {
		program, port = "mqbroker", h.BrokerPort
	}
	binary := path.Join(h.BinDir, program)
	try := func(check, script string, read func(output) error) {
		out, err := conn.run(ctx, script)
		if err == nil {
			err = read(out)
		}
		if err != nil {
			r.fail(check, err.Error())
		}
	}
	try(CheckService, serviceScript(binary), func(out output) error {
		r.Service = parseService(out.stdout, binary, port)
		if p := r.Service.problem(); p != "" {
			return errors.New(p)
		}
		return nil
	})
	try(CheckVersion, versionScript(binary), func(out output) (err error) {
		r.Version, err = parseVersion(out, binary, program)
		return err
	})
	if r.Role != RoleBroker {
		return
	}
	try(CheckDisk, diskScript(h.StoreDir), func(out output) (err error) {
		if r.Disk, err = parseDF(out, h.StoreDir); err != nil {
			return err
		}
		if r.Disk.UsePercent > o.MaxDiskUse {
			return fmt.Errorf("%s is on %s, %d%% full (limit %d%%)", h.StoreDir, r.Disk.MountedOn, r.Disk.UsePercent, o.MaxDiskUse)
		}
		return nil
	})
	try(CheckStoreErrors, storeErrorsScript(h.LogDir, o.TailLines), func(out output) (err error) {
		if r.StoreErrors, err = parseStoreErrors(out, h.LogDir); err != nil {
			return err
		}
		if n := r.StoreErrors.ErrorLines; n > 0 {
			noun := "lines"
			if n == 1 {
				noun = "line"
			}
			return fmt.Errorf("%d ERROR %s in %s, the last: %s", n, noun, r.StoreErrors.Path, r.StoreErrors.LastError)
		}
		return nil
	})
}

// namesrvView is one name server's GET_BROKER_CLUSTER_INFO answer.
type namesrvView struct {
	addr string
	ci   *wire.ClusterInfo
	err  error
}

func askNamesrv(addr string, timeout time.Duration, tcfg *tls.Config) namesrvView {
	v := namesrvView{addr: addr}
	a, err := admin.New(addr, timeout)
	if err != nil {
		v.err = err
		return v
	}
	defer a.Close()
	a.UseTLS(tcfg)
	v.ci, v.err = a.ClusterInfo()
	return v
}

func (v namesrvView) brokerAddrs() []string {
	out := []string{}
	for _, bd := range v.ci.BrokerAddrTable {
		for _, a := range bd.BrokerAddrs {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// registration checks that every name server lists the broker at its
// registered address, under the inventory's broker name and id if set.
func (r *Result) registration(h *Host, views []namesrvView) {
	var problems []string
	for _, v := range views {
		reg := Registration{Namesrv: v.addr}
		if v.err != nil {
			reg.Error = v.err.Error()
			problems = append(problems, fmt.Sprintf("name server %s did not answer (%v)", v.addr, v.err))
			r.Registration = append(r.Registration, reg)
			continue
		}
		for name, bd := range v.ci.BrokerAddrTable {
			for id, a := range bd.BrokerAddrs {
				if a == r.Addr {
					reg.Listed, reg.BrokerName, reg.BrokerID = true, name, &id
				}
			}
		}
		switch {
		case !reg.Listed:
			problems = append(problems, "not listed by name server "+v.addr)
		case h.BrokerName != "" && reg.BrokerName != h.BrokerName, h.BrokerID >= 0 && *reg.BrokerID != int64(h.BrokerID):
			problems = append(problems, fmt.Sprintf("name server %s lists %s as %s id %d, the inventory says %s",
				v.addr, r.Addr, reg.BrokerName, *reg.BrokerID, describeBroker(h)))
		}
		r.Registration = append(r.Registration, reg)
	}
	if len(problems) > 0 {
		r.fail(CheckRegistration, strings.Join(problems, "; "))
	}
}

func describeBroker(h *Host) string {
	var parts []string
	if h.BrokerName != "" {
		parts = append(parts, h.BrokerName)
	}
	if h.BrokerID >= 0 {
		parts = append(parts, "id "+strconv.Itoa(h.BrokerID))
	}
	return strings.Join(parts, " ")
}
