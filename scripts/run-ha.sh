#!/usr/bin/env bash
# Runs, in the foreground for local use (make run-ha), a name server with an
# embedded single-peer controller and a two-replica controller-mode group
# (conf/ha). Data and logs go under the data dir; Ctrl-C stops the brokers
# first, then the name server.
set -euo pipefail
bin=${1:-bin}
data=${2:-data-ha}
mkdir -p "$data/logs"
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
b0= b1= brokers="b0 b1"

trap stop INT TERM EXIT

# Each daemon gets its own session so that Ctrl-C reaches only this script,
# which then stops them in order.
setsid "$bin/mqnamesrv" -c "$root/conf/ha/namesrv.conf" -p "controllerStorePath=$data/ctl-n0" \
	-p "kvConfigPath=$data/namesrv/kvConfig.json" -p "logDir=$data/logs/namesrv" &
ns=$!
wait_port 9886 30
wait_port 9878 30
start_broker() {
	setsid "$bin/mqbroker" -c "$root/conf/ha/broker-n$1.conf" \
		-p "storePathRootDir=$data/n$1" -p "storePathCommitLog=$data/n$1/commitlog" -p "logDir=$data/logs/n$1" &
}
start_broker 0
b0=$!
start_broker 1
b1=$!
wait_port 30911 30
wait_port 30921 30

echo
echo "mqops controller mode is running:"
echo "  name server  127.0.0.1:9886  (clients: producer.WithNameServer([]string{\"127.0.0.1:9886\"}))"
echo "  controller   127.0.0.1:9878  (embedded in the name server, one peer)"
echo "  broker-a     127.0.0.1:30911 (n0) and 127.0.0.1:30921 (n1); the controller elects the master"
echo "  see it:      $bin/mqadmin -n 127.0.0.1:9886 cluster list"
echo "               $bin/mqadmin ha sync-state -a 127.0.0.1:9878 -b broker-a"
echo "               $bin/mqadmin -n 127.0.0.1:9886 ha status -c DefaultCluster"
echo "  data, logs   $data/"
echo "  failover:    kill -9 the master's mqbroker; the controller elects the other"
echo "               replica, and this script restarts the killed one 5 s later"
echo "Press Ctrl-C to stop."
# A broker that dies (kill -9 for a failover drill) is restarted, as a
# service manager would: it comes back as a slave of the new master.
while [ -z "$stopped" ] && kill -0 "$ns" 2>/dev/null; do
	for i in 0 1; do
		pid=b$i
		if ! kill -0 "${!pid}" 2>/dev/null; then
			echo "broker n$i exited; restarting it in 5 s"
			sleep 5
			[ -n "$stopped" ] && break 2
			start_broker "$i"
			printf -v "$pid" %s "$!"
		fi
	done
	sleep 1
done
