#!/usr/bin/env bash
# Runs mqnamesrv and mqbroker in the foreground for local use (make run).
# Data and logs go under the data dir; Ctrl-C stops the broker first (it
# flushes and unregisters), then the name server.
set -euo pipefail
bin=${1:-bin}
data=${2:-data}
mkdir -p "$data/logs" "$data/store"
root=$(cd "$(dirname "$0")/.." && pwd)

"$bin/mqnamesrv" -c "$root/conf/namesrv.conf" \
	-p "kvConfigPath=$data/namesrv/kvConfig.json" -p "logDir=$data/logs" &
ns=$!
sleep 0.5
"$bin/mqbroker" -c "$root/conf/broker.conf" -n 127.0.0.1:9876 \
	-p "storePathRootDir=$data/store" -p "storePathCommitLog=$data/store/commitlog" -p "logDir=$data/logs" &
br=$!

stop() {
	trap - INT TERM
	kill -TERM "$br" 2>/dev/null || true
	wait "$br" 2>/dev/null || true
	kill -TERM "$ns" 2>/dev/null || true
	wait "$ns" 2>/dev/null || true
	echo "stopped; data in $data"
}
trap stop INT TERM

echo
echo "mqops is running:"
echo "  name server  127.0.0.1:9876   (clients: producer.WithNameServer([]string{\"127.0.0.1:9876\"}))"
echo "  broker       127.0.0.1:10911  (cluster DefaultCluster, broker-a, id 0)"
echo "  data, logs   $data/"
echo "Press Ctrl-C to stop."
wait -n "$ns" "$br" || true
stop
