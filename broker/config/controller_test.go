package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadController(t *testing.T) {
	home := setup(t)
	path := write(t, "controller.conf", "controllerDLegerGroup=group1\n"+
		"controllerDLegerPeers=n0-127.0.0.1:9878;n1-127.0.0.1:9868;n2-127.0.0.1:9858\n"+
		"controllerDLegerSelfId=n1\ncontrollerType=DLedger\ncontrollerThreadPoolNums=16\nmappedFileSize=1048576\n"+
		"controllerRequestThreadPoolQueueCapacity=50000\nenableElectUncleanMaster=true\n")
	c, warnings, err := LoadController(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Group != "group1" || c.SelfID != "n1" || !c.EnableElectUncleanMaster || !c.NotifyBrokerRoleChanged ||
		c.ScanNotActiveBrokerInterval != 5000 || c.ScanInactiveMasterInterval != 5000 || c.ElectMasterMaxRetryCount != 3 ||
		c.StorePath != filepath.Join(home, "DLedgerController") {
		t.Errorf("loaded %+v", c)
	}
	for _, k := range []string{"controllerThreadPoolNums", "mappedFileSize", "controllerRequestThreadPoolQueueCapacity"} {
		if !hasWarning(warnings, `"`+k+`"`, "no effect") {
			t.Errorf("no warning for %s: %q", k, warnings)
		}
	}
	peers, err := ParseControllerPeers(c.Peers)
	if err != nil || len(peers) != 3 || peers[2] != (ControllerPeer{ID: "n2", Addr: "127.0.0.1:9858"}) {
		t.Fatalf("peers %+v %v", peers, err)
	}

	bad := map[string]map[string]string{
		"jRaft":        {"controllerType": "jRaft"},
		"want DLedger": {"controllerType": "Raft"},
		"not one of":   {"controllerDLegerSelfId": "n7"},
		"id-host:port": {"controllerDLegerPeers": "127.0.0.1:9878"},
		"listed twice": {"controllerDLegerPeers": "n1-127.0.0.1:1;n1-127.0.0.1:2"},
		"missing port": {"controllerDLegerPeers": "n1-127.0.0.1"},
		"must be > 0":  {"electMasterMaxRetryCount": "0"},
	}
	for want, o := range bad {
		if _, _, err := LoadController(path, o); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want %q", o, err, want)
		}
	}
}

// Appendix A's namesrv-n0.conf (a Java 5 controller-mode name server)
// starts unchanged, with the embedded controller configured from it.
func TestNamesrvWithEmbeddedController(t *testing.T) {
	setup(t)
	path := write(t, "namesrv-n0.conf", `listenPort=9876
enableControllerInNamesrv=true
controllerDLegerGroup=group1
controllerDLegerPeers=n0-127.0.0.1:9878;n1-127.0.0.1:9868;n2-127.0.0.1:9858
controllerDLegerSelfId=n0
controllerStorePath=/tmp/run/ctl-n0
enableElectUncleanMaster=false
notifyBrokerRoleChanged=true
`)
	n, warnings, err := LoadNamesrv(path, nil)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("%v %q", err, warnings)
	}
	if !n.EnableControllerInNamesrv || n.Controller.SelfID != "n0" || n.Controller.StorePath != "/tmp/run/ctl-n0" ||
		n.ControllerScanInterval() != 5*time.Second {
		t.Fatalf("loaded %+v", n)
	}
	// The name server's scan key feeds the controller when given.
	n, _, err = LoadNamesrv(path, map[string]string{"scanNotActiveBrokerInterval": "700"})
	if err != nil || n.ControllerScanInterval() != 700*time.Millisecond {
		t.Fatalf("%v %v", err, n.ControllerScanInterval())
	}
	// A broken controller section fails only when the controller is on.
	if _, _, err := LoadNamesrv(path, map[string]string{"controllerDLegerSelfId": "n9"}); err == nil {
		t.Fatal("unknown self id accepted")
	}
	if _, _, err := LoadNamesrv(path, map[string]string{"controllerDLegerSelfId": "n9", "enableControllerInNamesrv": "false"}); err != nil {
		t.Fatal(err)
	}
}
