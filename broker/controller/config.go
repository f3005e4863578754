package controller

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/mqops/mqops/wire"
)

// configBlackList are the keys UPDATE_CONTROLLER_CONFIG refuses, as Java's
// ControllerRequestProcessor does: they would redirect files.
var configBlackList = []string{"configBlackList", "configStorePath", "rocketmqHome", "controllerStorePath"}

// configText is GET_CONTROLLER_CONFIG (1010): this node's settings as
// properties text, keys sorted.
func (c *Controller) configText() []byte {
	var peers []string
	for _, p := range c.opts.Peers {
		peers = append(peers, p.ID+"-"+p.Addr)
	}
	props := []wire.JavaProperty{
		{Key: "controllerDLegerGroup", Value: c.opts.Group},
		{Key: "controllerDLegerPeers", Value: strings.Join(peers, ";")},
		{Key: "controllerDLegerSelfId", Value: c.opts.SelfID},
		{Key: "controllerStorePath", Value: c.opts.StorePath},
		{Key: "controllerType", Value: "DLedger"},
		{Key: "electMasterMaxRetryCount", Value: strconv.Itoa(c.opts.ElectMaxRetry)},
		{Key: "enableElectUncleanMaster", Value: strconv.FormatBool(c.unclean.Load())},
		{Key: "notifyBrokerRoleChanged", Value: strconv.FormatBool(c.notify.Load())},
		{Key: "scanInactiveMasterInterval", Value: strconv.FormatInt(c.opts.ScanInactiveMaster.Milliseconds(), 10)},
		{Key: "scanNotActiveBrokerInterval", Value: strconv.FormatInt(c.opts.ScanNotActiveBroker.Milliseconds(), 10)},
	}
	return wire.FormatJavaProperties(props)
}

// updateConfig is UPDATE_CONTROLLER_CONFIG (1009). Like Java it changes
// this node only, in memory. The two switches take effect at once; every
// other key needs a restart and is ignored (and logged). Values are all
// checked before any is applied.
func (c *Controller) updateConfig(body []byte) *result {
	props, err := wire.ParseJavaProperties(string(body))
	if err != nil {
		return fail(wire.SystemError, "string2Properties error: %v", err)
	}
	for _, k := range configBlackList {
		if _, ok := props[k]; ok {
			return fail(wire.NoPermission, "Can not update config in black list.")
		}
	}
	set := map[string]bool{}
	var ignored []string
	for _, k := range slices.Sorted(maps.Keys(props)) {
		switch k {
		case "enableElectUncleanMaster", "notifyBrokerRoleChanged":
			v, err := strconv.ParseBool(strings.TrimSpace(props[k]))
			if err != nil {
				return fail(wire.SystemError, "invalid %s=%q: want true or false", k, props[k])
			}
			set[k] = v
		default:
			ignored = append(ignored, k)
		}
	}
	if v, ok := set["enableElectUncleanMaster"]; ok {
		c.unclean.Store(v)
	}
	if v, ok := set["notifyBrokerRoleChanged"]; ok {
		c.notify.Store(v)
	}
	if len(ignored) > 0 {
		c.log.Warn("[CONTROLLER] config keys ignored: unknown or read only at start", "keys", ignored)
	}
	return &result{}
}
