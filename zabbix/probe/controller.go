package probe

// ControllerNode is one controller (mqcontroller) as seen from its own
// host: whether it answers and leads (CONTROLLER_GET_METADATA_INFO, which
// Java's controllers serve too), and, from mqops controllers, the ACL
// counters of its runtime info (GET_BROKER_RUNTIME_INFO, the keys the
// broker reports).
type ControllerNode struct {
	Up       int    `json:"up"` // 1: the controller answered its metadata
	Error    string `json:"error,omitempty"`
	Addr     string `json:"addr"`
	Group    string `json:"group"`
	IsLeader int    `json:"isLeader"`
	// ACLEnabled is 1 when the controller checks signatures (aclEnable);
	// the counters are those since it started, as BrokerStatus's.
	ACLEnabled        int              `json:"aclEnabled"`
	ACLDenied         int64            `json:"aclDenied"`
	ACLDeniedByReason map[string]int64 `json:"aclDeniedByReason"`
	ACLAllowedAdmin   int64            `json:"aclAllowedAdmin"`
	ACLReloadFailures int64            `json:"aclReloadFailures"`
	// RuntimeError says why the runtime info is missing (a controller
	// that does not serve it, such as Java's): the counters then stay 0.
	RuntimeError string `json:"runtimeError,omitempty"`
}

// Controller asks the controller at addr for its metadata and runtime info.
func Controller(addr string) *ControllerNode {
	st := &ControllerNode{Addr: addr, ACLDeniedByReason: map[string]int64{}}
	a := newDirect()
	defer a.Close()
	m, err := a.ControllerMetadata(addr)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Up, st.Group = 1, m.Group
	if m.IsLeader {
		st.IsLeader = 1
	}
	rt, err := a.RuntimeInfo(addr)
	if err != nil {
		st.RuntimeError = err.Error()
		return st
	}
	if rt["aclEnable"] == "true" {
		st.ACLEnabled = 1
	}
	st.ACLDenied, st.ACLDeniedByReason = num(rt, "acl_denied_total"), byPrefix(rt, "acl_denied_total.")
	st.ACLAllowedAdmin, st.ACLReloadFailures = num(rt, "acl_allowed_admin_total"), num(rt, "acl_reload_failures")
	return st
}
