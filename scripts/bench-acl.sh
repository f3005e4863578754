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

"$bin/mqnamesrv" -p listenPort=0 -p "kvConfigPath=$work/kv.json" -p "logDir=$work/nslogs" >"$work/ns.out" 2>&1 &
pids+=($!)
ns=127.0.0.1:$(wait_addr "$work/ns.out" 'address \S+' | awk -F: '{print $NF}')

cat >"$work/plain_acl.yml" <<'EOF'
accounts:
- accessKey: benchProducer
  secretKey: benchSecret1
  defaultTopicPerm: DENY
  topicPerms:
  - BenchTopic=PUB
EOF
declare -A addr pid
for side in off on; do
	acl=(-p aclEnable=false)
	[ "$side" = on ] && acl=(-p aclEnable=true -p "aclFile=$work/plain_acl.yml")
	"$bin/mqbroker" -n "$ns" -p listenPort=0 -p brokerIP1=127.0.0.1 -p "brokerName=bench-acl-$side" \
		-p flushDiskType=ASYNC_FLUSH "${acl[@]}" \
		-p "storePathRootDir=$work/$side/store" -p "logDir=$work/$side/logs" >"$work/$side.out" 2>&1 &
	pid[$side]=$!
	pids+=($!)
	addr[$side]=$(wait_addr "$work/$side.out" 'broker\[[^,]+, [0-9.]+:[0-9]+\]')
done
keys() { [ "$1" = on ] && echo -access-key benchProducer -secret-key benchSecret1 || true; }

# send SIDE DURATION: one mqbench run; prints its line and the CPU time
# the broker and the generator spent per message, and appends
# "side msgs/s broker-µs generator-µs" to $work/runs.
hz=$(getconf CLK_TCK)
TIMEFORMAT='%3U %3S'
send() {
	local t0 t1 n line
	# The previous run's dirty pages are written back before this one
	# starts, not during it.
	sync
	t0=$(ticks "${pid[$1]}")
	# shellcheck disable=SC2046
	{ time "$bin/mqbench" -broker "${addr[$1]}" -mode send -c 64 -d "$2" $(keys "$1") >"$work/gen.out"; } 2>"$work/gen.time"
	t1=$(ticks "${pid[$1]}")
	line=$(cat "$work/gen.out")
	n=$(grep -oE '[0-9]+ msgs in' <<<"$line" | cut -d' ' -f1)
	awk -v side="$1" -v line="$line" -v n="$n" -v t="$((t1 - t0))" -v hz="$hz" -v g="$(tail -1 "$work/gen.time")" -v out="$work/runs" 'BEGIN {
		split(g, s, " "); match(line, /= [0-9]+ msgs\/s/); r = substr(line, RSTART + 2, RLENGTH - 9)
		b = t / hz * 1e6 / n; c = (s[1] + s[2]) * 1e6 / n
		printf "ACL %-3s %s\n        CPU per message: broker %.1f µs, generator %.1f µs\n", side, line, b, c
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

# Medians, spread (min–max) and the ratios: of the medians, and the median
# of each turn's on/off (a turn's two runs are adjacent in time).
awk '
function median(a, n,   i, j, t) { # sorts a
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $1 == "on"; i = ++n[k]; r[k, i] = $2; b[k, i] = $3; g[k, i] = $4 }
END {
	for (k = 0; k <= 1; k++) {
		for (i = 1; i <= n[k]; i++) { x[i] = r[k, i]; y[i] = b[k, i]; z[i] = g[k, i]; s[i] = b[k, i] + g[k, i] }
		med[k] = median(x, n[k]); mb = median(y, n[k]); mg = median(z, n[k]); ms[k] = median(s, n[k])
		printf "ACL %-3s median %.0f msgs/s (runs %.0f–%.0f, spread %.1f %% of the median); median CPU per message: broker %.1f µs, generator %.1f µs, both %.1f µs\n",
			k ? "on" : "off", med[k], x[1], x[n[k]], 100 * (x[n[k]] - x[1]) / med[k], mb, mg, ms[k]
	}
	m = n[0] < n[1] ? n[0] : n[1]
	for (i = 1; i <= m; i++) p[i] = r[1, i] / r[0, i]
	mp = median(p, m)
	printf "ACL on/off throughput: %.1f %% (ratio of the medians; per turn %.1f–%.1f %%, median %.1f %%); CPU per message off/on: %.1f %%. Target: on >= 90 %% of off.\n",
		100 * med[1] / med[0], 100 * p[1], 100 * p[m], 100 * mp, 100 * ms[0] / ms[1]
}' "$work/runs"
