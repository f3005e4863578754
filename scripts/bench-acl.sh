#!/usr/bin/env bash
# Send throughput with ACL off and on in one run (make bench, make
# bench-acl). Two ASYNC_FLUSH brokers of this build run side by side, one
# with aclEnable=false and one with aclEnable=true; the same generator
# (mqbench, 64 synchronous senders, 1 KiB bodies) takes turns on them:
# off, on, off, on, ... BENCH_ACL_REPS times each. Against the ACL broker
# it signs every request again (HMAC-SHA1, as the official clients sign
# each send), so the ratio is the whole system's: the broker verifying,
# the generator signing, on the same cores. Turns and medians, because the
# machine's drift between runs is larger than the difference.
#
# Then a smaller comparison with the official client (mqbench -mode
# official: rocketmq-client-go v2.1.2, which with -access-key signs through
# its ACL hook), what users run: BENCH_ACL_OFFICIAL_REPS turns (default 2)
# of BENCH_ACL_OFFICIAL_DURATION (default 5s). Each broker has its own name
# server so that the client routes to it alone. BENCH_ACL_OFFICIAL=0 skips
# it. The lean generator's ratio stays the headline figure: the official
# client spends several times the CPU per message, which dilutes the ACL's.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(cd "${1:-bin}" && pwd)
dur=${BENCH_ACL_DURATION:-${BENCH_DURATION:-10s}}
reps=${BENCH_ACL_REPS:-5}
work=$(mktemp -d /tmp/mqops-bench-acl.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/plain_acl.yml" <<'EOF'
accounts:
- accessKey: benchProducer
  secretKey: benchSecret1
  defaultTopicPerm: DENY
  topicPerms:
  - BenchTopic=PUB
EOF
declare -A addr pid ns
for side in off on; do
	"$bin/mqnamesrv" -p listenPort=0 -p "kvConfigPath=$work/$side-kv.json" -p "logDir=$work/$side/nslogs" >"$work/$side-ns.out" 2>&1 &
	pids+=($!)
	ns[$side]=127.0.0.1:$(wait_addr "$work/$side-ns.out" 'address \S+' | awk -F: '{print $NF}')
	acl=(-p aclEnable=false)
	[ "$side" = on ] && acl=(-p aclEnable=true -p "aclFile=$work/plain_acl.yml")
	"$bin/mqbroker" -n "${ns[$side]}" -p listenPort=0 -p brokerIP1=127.0.0.1 -p "brokerName=bench-acl-$side" \
		-p flushDiskType=ASYNC_FLUSH "${acl[@]}" \
		-p "storePathRootDir=$work/$side/store" -p "logDir=$work/$side/logs" >"$work/$side.out" 2>&1 &
	pid[$side]=$!
	pids+=($!)
	addr[$side]=$(wait_addr "$work/$side.out" 'broker\[[^,]+, [0-9.]+:[0-9]+\]')
done
keys() { [ "$1" = on ] && echo -access-key benchProducer -secret-key benchSecret1 || true; }

# send SIDE DURATION [RUNS [MODE]]: one mqbench run (MODE send, the
# default, or official); prints its line and the CPU time the broker and
# the generator spent per message, and appends "side msgs/s broker-µs
# generator-µs" to RUNS ($work/runs by default).
hz=$(getconf CLK_TCK)
TIMEFORMAT='%3U %3S'
send() {
	local t0 t1 n line runs=${3-$work/runs} mode=${4:-send}
	# The previous run's dirty pages are written back before this one
	# starts, not during it.
	sync
	t0=$(ticks "${pid[$1]}")
	# shellcheck disable=SC2046
	{ time "$bin/mqbench" -broker "${addr[$1]}" -namesrv "${ns[$1]}" -mode "$mode" -c 64 -d "$2" $(keys "$1") >"$work/gen.out"; } 2>"$work/gen.time"
	t1=$(ticks "${pid[$1]}")
	line=$(cat "$work/gen.out")
	n=$(grep -oE '[0-9]+ msgs in' <<<"$line" | cut -d' ' -f1)
	awk -v side="$1" -v line="$line" -v n="$n" -v t="$((t1 - t0))" -v hz="$hz" -v g="$(tail -1 "$work/gen.time")" -v out="$runs" -v mode="$mode" 'BEGIN {
		split(g, s, " "); match(line, /= [0-9]+ msgs\/s/); r = substr(line, RSTART + 2, RLENGTH - 9)
		b = t / hz * 1e6 / n; c = (s[1] + s[2]) * 1e6 / n
		printf "ACL %-3s %s\n        CPU per message: broker %.1f µs, %s %.1f µs\n", side, line, b, mode == "official" ? "official client" : "generator", c
		if (out != "") printf "%s %s %.2f %.2f\n", side, r, b, c >> out }'
}

echo "== ACL off vs on: brokers ${addr[off]} (aclEnable=false) and ${addr[on]} (aclEnable=true, signed sends), ASYNC_FLUSH, 64 senders, 1 KiB bodies, ${dur} per run, ${reps} turns each; $(uptime | sed 's/.*load/load/')"
# Warm-up, not counted: first segments, page cache, connections.
for side in off on; do send "$side" 2s >/dev/null; done
: >"$work/runs"
for _ in $(seq 1 "$reps"); do
	for side in off on; do send "$side" "$dur"; done
done
echo "   (load after the runs: $(uptime | sed 's/.*load average: //'))"

# summary RUNS LABEL GEN: medians, spread (min–max) and the ratios: of the
# medians, and the median of each turn's on/off (a turn's two runs are
# adjacent in time).
summary() {
	awk -v label="$2" -v gen="$3" '
function median(a, n,   i, j, t) { # sorts a
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $1 == "on"; i = ++n[k]; r[k, i] = $2; b[k, i] = $3; g[k, i] = $4 }
END {
	for (k = 0; k <= 1; k++) {
		for (i = 1; i <= n[k]; i++) { x[i] = r[k, i]; y[i] = b[k, i]; z[i] = g[k, i]; s[i] = b[k, i] + g[k, i] }
		med[k] = median(x, n[k]); mb = median(y, n[k]); mg = median(z, n[k]); ms[k] = median(s, n[k])
		printf "%sACL %-3s median %.0f msgs/s (runs %.0f–%.0f, spread %.1f %% of the median); median CPU per message: broker %.1f µs, %s %.1f µs, both %.1f µs\n",
			label, k ? "on" : "off", med[k], x[1], x[n[k]], 100 * (x[n[k]] - x[1]) / med[k], mb, gen, mg, ms[k]
	}
	m = n[0] < n[1] ? n[0] : n[1]
	for (i = 1; i <= m; i++) p[i] = r[1, i] / r[0, i]
	mp = median(p, m)
	printf "%sACL on/off throughput: %.1f %% (ratio of the medians; per turn %.1f–%.1f %%, median %.1f %%); CPU per message off/on: %.1f %%.%s\n",
		label, 100 * med[1] / med[0], 100 * p[1], 100 * p[m], 100 * mp, 100 * ms[0] / ms[1], label == "" ? " Target: on >= 90 % of off." : ""
}' "$1"
}
summary "$work/runs" "" generator

if [ "${BENCH_ACL_OFFICIAL:-1}" != 0 ]; then
	odur=${BENCH_ACL_OFFICIAL_DURATION:-5s}
	oreps=${BENCH_ACL_OFFICIAL_REPS:-2}
	echo "== The official client (rocketmq-client-go v2.1.2, signing with its ACL hook on the ACL broker), 64 senders, 1 KiB bodies, ${odur} per run, ${oreps} turns each"
	for side in off on; do send "$side" 3s "" official >/dev/null; done
	: >"$work/runs-official"
	for _ in $(seq 1 "$oreps"); do
		for side in off on; do send "$side" "$odur" "$work/runs-official" official; done
	done
	summary "$work/runs-official" "official client: " "client"
fi
