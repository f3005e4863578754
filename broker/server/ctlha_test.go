package server

import (
	"testing"

	"github.com/mqops/mqops/wire"
)

// A broker turned slave learns its master's HA address from the answer to
// the registration becomeSlave triggers. That answer can come before the
// replicas manager creates the HA client (the role hook runs first), or
// after it reset the client to no address: either way the client must end
// up following the master, not nobody.
func TestSlaveFollowsMasterHALearnedBeforeItsClient(t *testing.T) {
	s := startBroker(t, map[string]string{"enableControllerMode": "true", "controllerAddr": "127.0.0.1:1", "haListenPort": "0"})
	const master, masterHA = "127.0.0.1:1", "127.0.0.1:2"
	answer := wire.NewRequest(wire.RegisterBroker, map[string]string{"masterAddr": master, "haServerAddr": masterHA}, nil)
	following := func() string {
		st, ok := s.ctl.ha.ClientStatus()
		if !ok {
			return ""
		}
		return st.Master
	}

	// The answer first, then the client (replicas.Manager.changeRole's
	// order: hooks.ToSlave, then ha.ChangeToSlave with hooks.MasterHA).
	if err := s.becomeSlave(master, 2, 2); err != nil {
		t.Fatal(err)
	}
	s.ctlRegistered(answer)
	s.ctl.ha.ChangeToSlave(s.ctl.knownHA(master), 2, 2)
	if got := following(); got != masterHA {
		t.Fatalf("the HA client follows %q, want %q", got, masterHA)
	}

	// A client reset to no address picks it up again from the next answer.
	s.ctl.ha.ChangeToSlave("", 2, 2)
	s.ctlRegistered(answer)
	if got := following(); got != masterHA {
		t.Fatalf("after a reset the HA client follows %q, want %q", got, masterHA)
	}

	// Another master: the address learned for the old one is not used.
	if err := s.becomeSlave("127.0.0.1:3", 2, 3); err != nil {
		t.Fatal(err)
	}
	if got := s.ctl.knownHA("127.0.0.1:3"); got != "" {
		t.Fatalf("HA address %q for a master no name server named", got)
	}
}
