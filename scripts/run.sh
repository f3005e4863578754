#!/usr/bin/env bash
# Runs mqnamesrv and mqbroker in the foreground for local use (make run).
# Data and logs go under the data dir; Ctrl-C stops the broker first (it
# flushes and unregisters), then the name server.
set -euo pipefail
bin=${1:-bin}
data=${2:-data}
mkdir -p "$data/logs" "$data/store"
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
br= brokers=br

# Each daemon gets its own session so that Ctrl-C reaches only this script,
# which then stops them in order.
setsid "$bin/mqnamesrv" -c "$root/conf/namesrv.conf" \
	-p "kvConfigPath=$data/namesrv/kvConfig.json" -p "logDir=$data/logs" &
ns=$!
trap stop INT TERM EXIT
wait_port 9876
setsid "$bin/mqbroker" -c "$root/conf/broker.conf" -n 127.0.0.1:9876 \
	-p "storePathRootDir=$data/store" -p "storePathCommitLog=$data/store/commitlog" -p "logDir=$data/logs" &
br=$!
wait_port 10911

echo
echo "mqops is running:"
echo "  name server  127.0.0.1:9876   (clients: producer.WithNameServer([]string{\"127.0.0.1:9876\"}))"
echo "  broker       127.0.0.1:10911  (cluster DefaultCluster, broker-a, id 0)"
echo "  data, logs   $data/"
echo "Press Ctrl-C to stop."
wait -n "$ns" "$br" || true
