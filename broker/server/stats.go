package server

// Statistics the broker keeps for mqadmin, stats.log and runtime info.

// addStatsRuntime adds the traffic keys of GET_BROKER_RUNTIME_INFO.
func (b *Broker) addStatsRuntime(kv map[string]string) {}

// groupTps is a group's consume rate on a topic over the last minute.
func (b *Broker) groupTps(topic, group string) float64 { return 0 }
