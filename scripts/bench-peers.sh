#!/usr/bin/env bash
# make bench-peers: mqops next to Redis Streams on this machine, in one
# run (issue 16). It starts, in a temp dir, a name server, one SYNC_FLUSH
# and one ASYNC_FLUSH broker of this build, and two redis-server instances
# on free ports, both `appendonly yes`, one with `appendfsync always` and
# one with `everysec`. Then, BENCH_REPS times (default 3), each row runs
# mqops and Redis back to back, in turns (the order flips every
# repetition, so drift on the machine hits both sides alike), 1 KiB
# values, loopback, generators on the same machine:
#
#   sync64   64 synchronous senders: SYNC_FLUSH (mqbench -mode send -c 64)
#            vs redis-benchmark -c 64 XADD on appendfsync always
#   one      1 synchronous sender: ASYNC_FLUSH (mqbench -mode send -c 1)
#            vs redis-benchmark -c 1 XADD on everysec
#   async64  64 synchronous senders: ASYNC_FLUSH vs -c 64 on everysec
#   batch    16 senders x 32 messages per request: mqbench -mode batch
#            vs redis-benchmark -c 16 -P 32 (pipelining) on everysec
#
# and each row once more with the official Go client rocketmq-client-go
# v2.1.2 as mqops's generator (mqbench -mode official / official-batch).
# It prints every run, then per row the medians, the spread (min–max) and
# the ratio mqops/Redis of the medians (and of each repetition's pair),
# and the CPU each server and generator spent per message.
#
# Redis gets its best case: auto AOF rewrite is off (a rewrite forks and
# copies the data set mid-run) and between runs its data set is flushed
# and the AOF rewritten, so every run starts from an empty stream.
# redis-benchmark has no duration, so each run's request count is the
# previous run's rate times BENCH_DURATION.
#
# BENCH_BROKER_ARGS adds broker settings to both brokers (e.g.
# "warmMapedFileEnable=false" to measure without the warmer).
# BENCH_DURATION (default 10s) is each run's length; BENCH_PEERS_ROWS
# (default "sync64 one async64 batch") picks rows; BENCH_PEERS_OFFICIAL=0
# leaves out the official-client runs.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
bin=$(cd "${1:-bin}" && pwd)
dur=${BENCH_DURATION:-10s}
secs=${dur%s}
case $dur in *m) secs=$((${dur%m} * 60)) ;; esac
reps=${BENCH_REPS:-3}
rows=${BENCH_PEERS_ROWS:-sync64 one async64 batch}
official=${BENCH_PEERS_OFFICIAL:-1}
for t in redis-server redis-benchmark redis-cli; do
	command -v "$t" >/dev/null || { echo "bench-peers needs $t (Debian: apt-get install redis-server)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/mqops-bench-peers.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$bin/mqnamesrv" -p listenPort=0 -p "kvConfigPath=$work/kv.json" -p "logDir=$work/nslogs" >"$work/ns.out" 2>&1 &
pids+=($!)
ns=127.0.0.1:$(wait_addr "$work/ns.out" 'address \S+' | awk -F: '{print $NF}')

# One broker per flush mode, each with its own topic, so that the official
# client (which routes through the name server) reaches only that broker.
declare -A baddr bpid btopic
for mode in SYNC_FLUSH ASYNC_FLUSH; do
	m=${mode%_FLUSH}
	m=${m,,}
	extra=()
	for kv in ${BENCH_BROKER_ARGS:-}; do extra+=(-p "$kv"); done
	"$bin/mqbroker" -n "$ns" -p listenPort=0 -p brokerIP1=127.0.0.1 -p "brokerName=peers-$m" -p "flushDiskType=$mode" \
		-p "storePathRootDir=$work/$m/store" -p "logDir=$work/$m/logs" "${extra[@]}" >"$work/$m.out" 2>&1 &
	bpid[$m]=$!
	pids+=($!)
	baddr[$m]=$(wait_addr "$work/$m.out" 'broker\[[^,]+, [0-9.]+:[0-9]+\]')
	btopic[$m]=Bench${m^}
	"$bin/mqadmin" updateTopic -n "$ns" -b "${baddr[$m]}" -t "${btopic[$m]}" -r 8 -w 8 >/dev/null
done

# start_redis NAME FSYNC: a redis-server with appendonly yes and
# appendfsync FSYNC on a free port (redis cannot bind port 0 and report
# it, so a random one is tried until one starts).
declare -A rport rpid
start_redis() {
	local dir="$work/redis-$1" port pid
	mkdir -p "$dir"
	for _ in $(seq 1 20); do
		port=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
		redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync "$2" \
			--save '' --auto-aof-rewrite-percentage 0 --logfile "$dir/redis.log" &
		pid=$!
		pids+=("$pid")
		for _ in $(seq 1 100); do
			if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
				rport[$1]=$port
				rpid[$1]=$pid
				return
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	echo "redis-server ($2) did not start:" >&2
	cat "$dir/redis.log" >&2
	exit 1
}
start_redis always always
start_redis everysec everysec

# redis_reset NAME: an empty data set and a rewritten (near-empty) AOF.
redis_reset() {
	redis-cli -p "${rport[$1]}" flushall >/dev/null
	redis-cli -p "${rport[$1]}" bgrewriteaof >/dev/null
	for _ in $(seq 1 600); do
		redis-cli -p "${rport[$1]}" info persistence |
			grep -qE '^aof_rewrite_(in_progress|scheduled):1' || return 0
		sleep 0.1
	done
}

val=$(head -c 1024 /dev/zero | tr '\0' v)
hz=$(getconf CLK_TCK)
TIMEFORMAT='%3U %3S'
: >"$work/runs"

# record ROW SIDE REP RATE SERVER-TICKS "GEN-USER GEN-SYS" COUNT LABEL
# prints one run and appends "row side rep rate server-µs gen-µs" to
# $work/runs.
record() {
	awk -v row="$1" -v side="$2" -v rep="$3" -v r="$4" -v t="$5" -v g="$6" -v n="$7" -v label="$8" -v hz="$hz" \
		-v out="$work/runs" 'BEGIN { split(g, s, " "); b = n > 0 ? t / hz * 1e6 / n : 0; c = n > 0 ? (s[1] + s[2]) * 1e6 / n : 0
		printf "  %-8s %-8s rep %d: %s\n      CPU per message: server %.1f µs, generator %.1f µs\n", row, side, rep, label, b, c
		printf "%s %s %d %.0f %.2f %.2f\n", row, side, rep, r, b, c >> out }'
}

# run_mq ROW SIDE REP BROKER ARGS...: one mqbench run against broker
# BROKER (sync or async).
run_mq() {
	local row=$1 side=$2 rep=$3 m=$4 t0 t1 line
	shift 4
	sync
	t0=$(ticks "${bpid[$m]}")
	{ time "$bin/mqbench" -broker "${baddr[$m]}" -namesrv "$ns" -topic "${btopic[$m]}" -d "$dur" "$@" >"$work/gen.out"; } 2>"$work/gen.time"
	t1=$(ticks "${bpid[$m]}")
	line=$(cat "$work/gen.out")
	[ -n "$rep" ] || return 0
	record "$row" "$side" "$rep" "$(grep -oE '= [0-9]+ msgs/s' <<<"$line" | grep -oE '[0-9]+')" "$((t1 - t0))" \
		"$(tail -1 "$work/gen.time")" "$(grep -oE '[0-9]+ msgs in' <<<"$line" | cut -d' ' -f1)" "$line"
}

# run_redis ROW REP NAME CLIENTS PIPELINE: one redis-benchmark run of
# XADD with a 1 KiB value; an empty REP is the calibration run.
declare -A rn
run_redis() {
	local row=$1 rep=$2 name=$3 n t0 t1 rate label
	n=${rn[$row]:-20000}
	sync
	t0=$(ticks "${rpid[$name]}")
	{ time redis-benchmark -p "${rport[$name]}" -c "$4" -P "$5" -n "$n" --csv XADD bench '*' f "$val" >"$work/gen.out"; } 2>"$work/gen.time"
	t1=$(ticks "${rpid[$name]}")
	rate=$(tail -1 "$work/gen.out" | awk -F'","' '{ printf "%.0f", $2 }')
	rn[$row]=$(awk -v r="$rate" -v s="$secs" 'BEGIN { n = int(r * s); print n < 10000 ? 10000 : n }')
	label=$(tail -1 "$work/gen.out" | awk -F'","' -v c="$4" -v p="$5" -v n="$n" -v r="$rate" -v f="$name" \
		'{ printf "redis-benchmark appendfsync=%s clients=%d pipeline=%d: %d XADD in %.1f s = %d msgs/s; latency p50 %s ms p99 %s ms max %s", f, c, p, n, n / r, r, $5, $7, $8 }')
	redis_reset "$name"
	[ -n "$rep" ] || return 0
	record "$row" redis "$rep" "$rate" "$((t1 - t0))" "$(tail -1 "$work/gen.time")" "$n" "${label%\"}"
}

# row ROW REP: the row's runs. An empty REP warms up and calibrates.
row() {
	local r=$1 rep=$2 mq=() off=() broker=async redis=everysec c=64 p=1 first=mq
	case $r in
	sync64) broker=sync redis=always mq=(-mode send -c 64) off=(-mode official -c 64) ;;
	one) c=1 mq=(-mode send -c 1 -conns 1) off=(-mode official -c 1) ;;
	async64) mq=(-mode send -c 64) off=(-mode official -c 64) ;;
	batch) c=16 p=32 mq=(-mode batch -c 16 -batch 32) off=(-mode official-batch -c 16 -batch 32) ;;
	*) echo "unknown row $r (want sync64, one, async64, batch)" >&2; exit 1 ;;
	esac
	if [ -z "$rep" ]; then
		run_mq "$r" mqops "" "$broker" "${mq[@]}" -d 2s
		[ "$official" = 0 ] || run_mq "$r" official "" "$broker" "${off[@]}" -d 2s
		run_redis "$r" "" "$redis" "$c" "$p"
		return
	fi
	[ $((rep % 2)) = 0 ] && first=redis
	[ "$first" = redis ] && run_redis "$r" "$rep" "$redis" "$c" "$p"
	run_mq "$r" mqops "$rep" "$broker" "${mq[@]}"
	[ "$official" = 0 ] || run_mq "$r" official "$rep" "$broker" "${off[@]}"
	[ "$first" = mq ] && run_redis "$r" "$rep" "$redis" "$c" "$p"
	return 0
}

echo "== mqops vs Redis Streams: SYNC_FLUSH broker ${baddr[sync]}, ASYNC_FLUSH broker ${baddr[async]}, redis-server $(redis-server --version | grep -oE 'v=[0-9.]+' | cut -c3-) on ports ${rport[always]} (appendfsync always) and ${rport[everysec]} (everysec); 1 KiB values, loopback, ${dur} per run, ${reps} repetitions; $(nproc) CPUs; $(uptime | sed 's/.*load/load/')"
echo "warm-up and calibration (not counted)"
for r in $rows; do row "$r" ""; done
for rep in $(seq 1 "$reps"); do
	echo "repetition $rep"
	for r in $rows; do row "$r" "$rep"; done
done
echo "   (load after the runs: $(uptime | sed 's/.*load average: //'))"
echo

# The table: per row and generator the median msgs/s and its min–max,
# the ratio of the medians to Redis's and the range of the per-repetition
# ratios (a repetition's runs are adjacent in time), and the median CPU
# per message of server and generator.
awk -v order="$rows" '
function median(a, n,   i, j, t) { # sorts a
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $1 SUBSEP $2; i = ++n[k]; rate[k, i] = $4; srv[k, i] = $5; gen[k, i] = $6; byrep[$1, $2, $3] = $4; reps[$3] = 1 }
END {
	desc["sync64"] = "64 senders, SYNC_FLUSH vs appendfsync always"
	desc["one"] = "1 sender, ASYNC_FLUSH vs everysec"
	desc["async64"] = "64 senders, ASYNC_FLUSH vs everysec"
	desc["batch"] = "16 senders x 32 batched vs -c 16 -P 32 everysec"
	target["sync64"] = ">= 1.5"; target["one"] = ">= 1.0"; target["async64"] = "1.9 before"; target["batch"] = "3.35 before"
	printf "%-50s %-9s %9s %19s %13s %15s %9s\n", "row", "generator", "msgs/s", "min-max", "mqops/Redis", "per rep", "target"
	printf "%-50s %-9s %9s %19s %13s %15s %9s\n", "", "", "median", "", "(medians)", "", ""
	nr = split(order, rows, " ")
	for (x = 1; x <= nr; x++) {
		r = rows[x]
		for (y = 1; y <= 3; y++) {
			s = y == 1 ? "mqops" : y == 2 ? "official" : "redis"
			k = r SUBSEP s
			if (!n[k]) continue
			for (i = 1; i <= n[k]; i++) { a[i] = rate[k, i]; b[i] = srv[k, i]; c[i] = gen[k, i] }
			m = median(a, n[k]); mb = median(b, n[k]); mc = median(c, n[k])
			med[r, s] = m
			cpu[r, s] = sprintf("%.1f + %.1f", mb, mc)
			spread[r, s] = sprintf("%.0f-%.0f", a[1], a[n[k]])
		}
		for (y = 1; y <= 3; y++) {
			s = y == 1 ? "mqops" : y == 2 ? "official" : "redis"
			if (!((r, s) in med)) continue
			ratio = per = ""
			if (s != "redis" && med[r, "redis"] > 0) {
				ratio = sprintf("%.2fx", med[r, s] / med[r, "redis"])
				lo = 1e9; hi = 0
				for (p in reps) if (byrep[r, "redis", p] > 0 && byrep[r, s, p] > 0) {
					q = byrep[r, s, p] / byrep[r, "redis", p]; if (q < lo) lo = q; if (q > hi) hi = q
				}
				if (hi > 0) per = sprintf("%.2f-%.2fx", lo, hi)
			}
			printf "%-50s %-9s %9.0f %19s %13s %15s %9s\n", y == 1 ? desc[r] : "", s, med[r, s], spread[r, s], ratio, per, y == 1 ? target[r] : ""
		}
	}
	printf "\nmedian CPU µs per message, server + generator:\n"
	for (x = 1; x <= nr; x++) {
		r = rows[x]; line = sprintf("  %-8s", r)
		for (y = 1; y <= 3; y++) {
			s = y == 1 ? "mqops" : y == 2 ? "official" : "redis"
			if ((r, s) in cpu) line = line sprintf("  %s %s", s, cpu[r, s])
		}
		print line
	}
}' "$work/runs"
