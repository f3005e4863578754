#!/usr/bin/env bash
# profile-syncflush.sh [BINDIR] [OUTDIR]: where the time of a SYNC_FLUSH ack
# goes. Starts a name server and a SYNC_FLUSH broker (mqbroker -pprof) in a
# temp dir and runs `mqbench -mode send -c 64` twice: once with a CPU
# profile of the broker (OUTDIR/cpu.pprof) and its CPU ticks per ack, once
# under `perf stat` for syscalls, fdatasyncs, writes, futexes, context
# switches, page faults and CPU per ack, with the bytes the broker had written to disk
# per ack (/proc/PID/io) and acks per fsync. Per-ack figures, unlike msgs/s,
# hold up on a busy machine. Needs perf with tracepoint access
# (kernel.perf_event_paranoid <= 2).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(cd "${1:-bin}" && pwd)
out=${2:-profile-syncflush}
dur=${BENCH_DURATION:-8s}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/mqops-prof.XXXXXX)
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
"$bin/mqbroker" -pprof 127.0.0.1:6071 -n "$ns" -p listenPort=0 -p brokerIP1=127.0.0.1 -p flushDiskType=SYNC_FLUSH \
	-p "storePathRootDir=$work/store" -p "logDir=$work/logs" >"$work/broker.out" 2>&1 &
bp=$!
pids+=($bp)
br=$(wait_addr "$work/broker.out" 'broker\[[^,]+, [0-9.]+:[0-9]+\]')
"$bin/mqbench" -broker "$br" -mode send -c 64 -d 2s >/dev/null # creates the topic, warms up
acks() { grep -oE '[0-9]+ msgs in' "$1" | cut -d' ' -f1; }
secs=${dur%s}

t0=$(ticks "$bp")
curl -s -o "$out/cpu.pprof" "http://127.0.0.1:6071/debug/pprof/profile?seconds=$secs" &
cp=$!
"$bin/mqbench" -broker "$br" -mode send -c 64 -d "$dur" | tee "$out/profiled.txt"
t1=$(ticks "$bp")
wait "$cp"
awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$(acks "$out/profiled.txt")" \
	'BEGIN { printf "broker CPU per ack: %.1f µs (profile: %s)\n", t / hz * 1e6 / n, "'"$out/cpu.pprof"'" }'

w0=$(awk '/^write_bytes/ {print $2}' "/proc/$bp/io")
perf stat -x, -o "$work/perf.txt" -p "$bp" -e raw_syscalls:sys_enter,syscalls:sys_enter_fdatasync,syscalls:sys_enter_pwrite64,syscalls:sys_enter_write,syscalls:sys_enter_futex,context-switches,page-faults,task-clock &
pp=$!
sleep 0.5
"$bin/mqbench" -broker "$br" -mode send -c 64 -d "$dur" | tee "$out/counted.txt"
kill -INT "$pp"
wait "$pp" || true
w1=$(awk '/^write_bytes/ {print $2}' "/proc/$bp/io")
n=$(acks "$out/counted.txt")
awk -F, -v n="$n" '$1 ~ /^[0-9.]+$/ { printf "%-34s %10.0f  per ack %.3f%s\n", $3, $1, $1 / n, ($3 == "task-clock" ? " ms" : "") }' "$work/perf.txt"
f=$(awk -F, '$3 == "syscalls:sys_enter_fdatasync" {print $1}' "$work/perf.txt")
awk -v w=$((w1 - w0)) -v n="$n" -v f="$f" -v d="$secs" 'BEGIN {
	printf "disk bytes written per ack: %.0f\nacks per fsync: %.1f; fsync period (one in flight at a time): %.0f µs\n", w / n, n / f, d * 1e6 / f }'
