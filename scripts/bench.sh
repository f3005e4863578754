#!/usr/bin/env bash
# make bench: starts a name server and a broker per flush mode in a temp dir,
# runs mqbench against them on this machine and prints the figures: the
# remoting protocol and, on the same broker, the RocketMQ 5 gRPC service.
# BENCH_GRPC_ONLY=1 runs only the ASYNC_FLUSH broker's 64-sender remoting
# send and the gRPC runs next to it (the issue-13 figures);
# BENCH_PROFILE=DIR also writes CPU and allocation profiles of the broker
# (mqbroker -pprof) and of mqbench for the gRPC receive+ack run into DIR.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(cd "${1:-bin}" && pwd)
dur=${BENCH_DURATION:-10s}
grpc_only=${BENCH_GRPC_ONLY:-}
prof=${BENCH_PROFILE:-}
if [ -n "$prof" ]; then mkdir -p "$prof" && prof=$(cd "$prof" && pwd); fi
work=$(mktemp -d /tmp/mqops-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# run_cpu PID ARGS...: mqbench ARGS, then the CPU time broker PID and the
# generator each spent during the run per message counted (figures that
# depend less on what else this machine runs than msgs/s does: both
# share its CPUs).
hz=$(getconf CLK_TCK)
TIMEFORMAT='%3U %3S'
per_msg() { # broker-ticks generator-"user sys" count
	awk -v t="$1" -v g="$2" -v hz="$hz" -v n="${3:-0}" 'BEGIN { split(g, s, " ");
		if (n > 0) printf "   CPU per message: broker %.1f µs (%.2f s), generator %.1f µs (%.2f s)\n",
			t / hz * 1e6 / n, t / hz, (s[1] + s[2]) * 1e6 / n, s[1] + s[2] }'
}
run_cpu() {
	local p=$1 t0 n
	shift
	t0=$(ticks "$p")
	{ time "$bin/mqbench" "$@" >"$work/gen.out"; } 2>"$work/gen.time"
	cat "$work/gen.out"
	n=$(grep -oE '[0-9]+ (msgs|acked) in' "$work/gen.out" | head -1 | cut -d' ' -f1)
	per_msg "$(($(ticks "$p") - t0))" "$(tail -1 "$work/gen.time")" "$n"
}

# run_h2load PID ADDR: h2load (nghttp2's HTTP/2 load generator, written
# in C) sends the SendMessage request mqbench wrote, 64 streams at once
# on one connection, for the run time; then the broker's and h2load's
# CPU per message, and how many messages the topic gained (h2load counts
# HTTP 200 answers; a gRPC error would still be one, so the topic must
# gain at least that many).
secs=${dur%s}
case $dur in *m) secs=$((${dur%m} * 60)) ;; esac
stored() { "$bin/mqadmin" topicStatus -n "$ns" -t BenchGrpc | awk 'NR > 1 { s += $4 } END { print s + 0 }'; }
run_h2load() {
	local p=$1 t0 s0 per
	s0=$(stored)
	t0=$(ticks "$p")
	{ time h2load -c 1 -m 64 -D "$secs" -d "$work/send.req" -H 'content-type: application/grpc' -H 'te: trailers' \
		-H 'x-mq-client-id: h2load' -H 'x-mq-language: GO' -H 'x-mq-protocol: v2' -H 'x-mq-client-version: h2load' \
		"http://$2/apache.rocketmq.v2.MessagingService/SendMessage" >"$work/gen.out"; } 2>"$work/gen.time"
	per=$(per_msg "$(($(ticks "$p") - t0))" "$(tail -1 "$work/gen.time")" \
		"$(grep -oE '[0-9]+ succeeded' "$work/gen.out" | cut -d' ' -f1)")
	echo "mode=h2load streams=64 conns=1 size=1024B: $(grep -E '^(finished|requests:)' "$work/gen.out" | tr '\n' ' ')"
	echo "$per"
	echo "   stored: $(($(stored) - s0)) messages (h2load stops with up to 64 requests unanswered, which may be stored)"
}

rss() { awk '/^(RssAnon|VmRSS)/ {printf "%s %s kB  ", $1, $2}' "/proc/$1/status"; echo; }

"$bin/mqnamesrv" -p listenPort=0 -p "kvConfigPath=$work/kv.json" -p "logDir=$work/nslogs" >"$work/ns.out" 2>&1 &
pids+=($!)
ns=127.0.0.1:$(wait_addr "$work/ns.out" 'address \S+' | awk -F: '{print $NF}')

# SYNC_FLUSH first: its figures depend on fsync latency, which the page
# cache the ASYNC run leaves behind would disturb.
modes="SYNC_FLUSH ASYNC_FLUSH"
[ -n "$grpc_only" ] && modes=ASYNC_FLUSH
for mode in $modes; do
	sync
	dir="$work/$mode"
	pp=()
	[ -n "$prof" ] && pp=(-pprof 127.0.0.1:6061)
	"$bin/mqbroker" "${pp[@]}" -n "$ns" -p listenPort=0 -p brokerIP1=127.0.0.1 -p "flushDiskType=$mode" \
		--enable-proxy -p grpcServerPort=0 -p tlsTestModeEnable=true \
		-p "storePathRootDir=$dir/store" -p "logDir=$dir/logs" >"$work/$mode.out" 2>&1 &
	bp=$!
	pids+=($bp)
	br=$(wait_addr "$work/$mode.out" 'broker\[[^,]+, [0-9.]+:[0-9]+\]')
	ga=$(wait_addr "$work/$mode.out" 'listens on [0-9.]+:[0-9]+')
	# gRPC sends need the topic (they never create one, as in Java's proxy).
	"$bin/mqadmin" updateTopic -n "$ns" -b "$br" -t BenchGrpc -r 8 -w 8 >/dev/null
	echo "== $mode broker at $br, gRPC at $ga (pid $bp); ${dur} per run, 1 KiB bodies, generator on the same machine; $(uptime | sed 's/.*load/load/')"
	echo -n "broker memory at start: "; rss "$bp"
	if [ "$mode" = ASYNC_FLUSH ]; then
		if [ -z "$grpc_only" ]; then
			for c in 1 16; do "$bin/mqbench" -broker "$br" -mode send -c "$c" -d "$dur"; done
		fi
		run_cpu "$bp" -broker "$br" -mode send -c 64 -d "$dur"
		# The RocketMQ 5 gRPC service next to it: 64 senders on one
		# HTTP/2 connection (as the official clients keep one per
		# broker), plaintext and TLS; then 16 consumers of one group
		# drain what they sent: receive 32, ack the 32 in one call.
		run_cpu "$bp" -grpc "$ga" -topic BenchGrpc -mode grpc-send -c 64 -conns 1 -d "$dur"
		run_cpu "$bp" -grpc "$ga" -topic BenchGrpc -mode grpc-send -c 64 -conns 1 -tls -d "$dur"
		# The same gRPC sends from h2load, a lean generator: grpc-go's
		# client costs about as much CPU per call as the broker, on the
		# same two cores. Every request is the same bytes, so all these
		# messages share one message id: the broker stores and indexes
		# each all the same (no deduplication, as in RocketMQ).
		"$bin/mqbench" -mode grpc-request -topic BenchGrpc >"$work/send.req"
		run_h2load "$bp" "$ga"
		if [ -n "$prof" ]; then
			# The first 3 s of the run (a 10 s run's backlog lasts longer).
			curl -s -o "$prof/broker-recv.cpu" "http://127.0.0.1:6061/debug/pprof/profile?seconds=3" &
			c1=$!
			curl -s -o "$prof/broker-recv.allocs" "http://127.0.0.1:6061/debug/pprof/allocs?seconds=3" &
			c2=$!
			run_cpu "$bp" -grpc "$ga" -topic BenchGrpc -mode grpc-recv -c 16 -conns 1 -batch 32 -ackbatch 32 -d 60s \
				-cpuprofile "$prof/mqbench-recv.cpu" -memprofile "$prof/mqbench-recv.allocs"
			wait "$c1" "$c2"
		else
			run_cpu "$bp" -grpc "$ga" -topic BenchGrpc -mode grpc-recv -c 16 -conns 1 -batch 32 -ackbatch 32 -d 60s
		fi
		# The same backlog again for a second group, received by a lean
		# gRPC client (mqbench's own HTTP/2 framing, no grpc-go): a new
		# group starts at offset 0 of these young queues.
		run_cpu "$bp" -grpc "$ga" -topic BenchGrpc -group BENCH_POP_H2 -mode grpc-recv-h2 -c 16 -conns 1 -batch 32 -ackbatch 32 -d 60s
		if [ -n "$grpc_only" ]; then
			kill -TERM "$bp"
			wait "$bp" || true
			exit 0
		fi
		"$bin/mqbench" -broker "$br" -mode batch -c 16 -batch 32 -d "$dur"
		"$bin/mqbench" -broker "$br" -mode rate -c 16 -rate 10000 -d "$dur"
		echo -n "broker memory with backlog: "; rss "$bp"
		"$bin/mqbench" -broker "$br" -mode consume
		echo -n "broker memory after drain: "; rss "$bp"
		"$bin/mqbench" -broker "$br" -namesrv "$ns" -mode official -c 64 -d "$dur"
	else
		"$bin/mqbench" -broker "$br" -mode send -c 16 -d "$dur"
		run_cpu "$bp" -broker "$br" -mode send -c 64 -d "$dur"
		run_cpu "$bp" -grpc "$ga" -topic BenchGrpc -mode grpc-send -c 64 -conns 1 -d "$dur"
		"$bin/mqbench" -broker "$br" -mode rate -c 16 -rate 10000 -d "$dur"
	fi
	kill -TERM "$bp"
	wait "$bp" || true
done

# Replication: a master and one slave on this machine, 64 senders against
# the master (compare with ASYNC_FLUSH, 64 senders above: the standalone
# broker). SYNC_MASTER answers once the slave has the bytes; failed
# requests are non-SEND_OK answers (FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE).
# For ASYNC_MASTER: the replication lag at 10 000 msgs/s offered; then the
# slave is stopped, the master takes another run, and the
# restarted slave's catch-up rate is measured.
start_broker() { # dir brokerName role brokerId out; sets last_pid
	local dir="$work/$1"
	"$bin/mqbroker" -n "$ns" -p listenPort=0 -p brokerIP1=127.0.0.1 -p "brokerName=$2" \
		-p "brokerRole=$3" -p "brokerId=$4" -p "storePathRootDir=$dir/store" -p "logDir=$dir/logs" \
		>>"$5" 2>&1 &
	last_pid=$!
	pids+=($last_pid)
}
for role in SYNC_MASTER ASYNC_MASTER; do
	sync
	name="bench-${role,,}"
	start_broker "$name" "$name" "$role" 0 "$work/$name-m.out"
	mp=$last_pid
	br=$(wait_addr "$work/$name-m.out" 'broker\[[^,]+, [0-9.]+:[0-9]+\]')
	start_broker "$name-s" "$name" SLAVE 1 "$work/$name-s.out"
	sp=$last_pid
	wait_addr "$work/$name-s.out" 'broker\[[^,]+, [0-9.]+:[0-9]+\]' >/dev/null
	echo "== $role at $br (pid $mp) with one SLAVE (pid $sp); ${dur} per run, 1 KiB bodies"
	# The slave learns the master's HA address from its first registration.
	for _ in $(seq 1 100); do grep -q 'connected to master' "$work/$name-s/logs/store.log" 2>/dev/null && break; sleep 0.1; done
	"$bin/mqbench" -broker "$br" -mode send -c 64 -d "$dur"
	if [ "$role" = ASYNC_MASTER ]; then
		"$bin/mqbench" -broker "$br" -slave "$(wait_addr "$work/$name-s.out" 'broker\[[^,]+, [0-9.]+:[0-9]+\]')" \
			-mode lag -c 16 -rate 10000 -d "$dur"
		kill -TERM "$sp"; wait "$sp" || true
		echo "slave stopped; another run against the master alone:"
		"$bin/mqbench" -broker "$br" -mode send -c 64 -d "$dur"
		start_broker "$name-s" "$name" SLAVE 1 "$work/$name-s2.out"
		sp=$last_pid
		sr=$(wait_addr "$work/$name-s2.out" 'broker\[[^,]+, [0-9.]+:[0-9]+\]')
		"$bin/mqbench" -broker "$br" -slave "$sr" -mode catchup
	fi
	kill -TERM "$sp" "$mp"
	wait "$sp" "$mp" || true
done
