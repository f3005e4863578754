#!/usr/bin/env bash
# make bench-amqp (also the last part of make bench): the AMQP gateway next
# to Debian's RabbitMQ, in one run on this machine (issue 15). It starts,
# in a temp dir it removes at the end, a name server, a SYNC_FLUSH broker
# (enableLmq, enableMultiDispatch) and mqamqp of this build, and a private
# rabbitmq-server (run as root from /usr/lib/rabbitmq/bin, its node name,
# ports, epmd, data, logs and HOME all in the temp dir, in a process group
# of its own that is killed at exit). Then each row runs, back to back,
# against mqops through mqamqp, mqops through the broker's own gateway
# (enableAmqpGateway, side mqops-embedded), a RabbitMQ classic queue and
# a RabbitMQ quorum queue
# (x-queue-type), with `mqbench` on amqp091-go v1.17.0, 1 KiB persistent
# messages (delivery-mode 2), durable queues, loopback:
#
#   confirm-1     1 publisher waiting for each confirm
#   confirm-16    16 such publishers, each on its own connection
#   async-4x500   4 publishers, up to 500 unconfirmed each; what they
#                 confirm is the next row's backlog
#   consume-p500  one consumer, prefetch 500, a multiple ack every 250,
#                 taking as many messages of that backlog as the
#                 smallest side's async run confirmed
#
# It prints every run, then a table: msgs/s, confirm latency p50/p99, the
# server's CPU per message, the ratio mqops / RabbitMQ quorum for the
# publish rows and mqops / RabbitMQ classic for consume, and PASS or
# short against the targets (>= 2x quorum publish with confirms, >= 1x
# classic consume; the async row's >= 1x quorum is the design's goal).
# Figures taken while other work loads the machine are indicative only.
#
# BENCH_DURATION (default 10s) is each publish run's length (1s makes a
# smoke run); BENCH_AMQP_ROWS (default "confirm-1 confirm-16 consume-p500")
# picks rows (consume-p500 runs async-4x500 first). Without
# rabbitmq-server the RabbitMQ columns are skipped, unless
# MQOPS_REQUIRE_RABBITMQ=1, which makes that an error.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
bin=$(cd "${1:-bin}" && pwd)
dur=${BENCH_DURATION:-10s}
rows=${BENCH_AMQP_ROWS:-confirm-1 confirm-16 consume-p500}
rabbit_bin=/usr/lib/rabbitmq/bin/rabbitmq-server
sides="mqops mqops-embedded rabbit-classic rabbit-quorum"
if ! [ -x "$rabbit_bin" ]; then
	if [ "${MQOPS_REQUIRE_RABBITMQ:-}" = 1 ]; then
		echo "bench-amqp needs $rabbit_bin (Debian: apt-get install rabbitmq-server)" >&2
		exit 1
	fi
	echo "bench-amqp: $rabbit_bin not installed: RabbitMQ columns skipped" >&2
	sides="mqops mqops-embedded"
fi

work=$(mktemp -d /tmp/mqops-bench-amqp.XXXXXX)
pids=() rpg= epmd_pid=
cleanup() {
	if [ -n "$rpg" ]; then
		kill -TERM -- "-$rpg" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 -- "-$rpg" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$rpg" 2>/dev/null || true
	fi
	[ -z "$epmd_pid" ] || kill -TERM "$epmd_pid" 2>/dev/null || true
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_rabbit: boots the private RabbitMQ node on fresh ports, in the
# background; rabbit_up waits for it.
start_rabbit() {
	r=$work/rabbit
	rm -rf "$r"
	mkdir -p "$r"
	rport=$(free_port)
	epmd_port=$(free_port)
	echo '[].' >"$r/enabled_plugins"
	# Our own epmd in the foreground (Erlang would start a daemonized one
	# outside our process group).
	epmd -port "$epmd_port" >"$r/epmd.out" 2>&1 &
	epmd_pid=$!
	(
		cd "$r"
		export HOME=$r RABBITMQ_NODENAME=mqbench$$@localhost RABBITMQ_NODE_PORT=$rport \
			RABBITMQ_DIST_PORT=$(free_port) ERL_EPMD_PORT=$epmd_port RABBITMQ_MNESIA_BASE=$r/mnesia \
			RABBITMQ_LOG_BASE=$r/log RABBITMQ_CONFIG_FILE=$r/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$r/enabled_plugins
		exec setsid "$rabbit_bin" >"$r/server.out" 2>&1
	) &
	rpg=$!
}

# rabbit_up: waits up to 180 s (a loaded CI machine) for the node's AMQP
# port; false, with its last words, if the node exits or never opens it.
rabbit_up() {
	for _ in $(seq 1 1800); do
		(exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null && return 0
		kill -0 "$rpg" 2>/dev/null || break
		sleep 0.1
	done
	echo "RabbitMQ did not open port $rport:" >&2
	tail -n 30 "$r/server.out" "$r/epmd.out" "$r"/log/*.log >&2 || true
	kill -KILL -- "-$rpg" 2>/dev/null || true
	kill -TERM "$epmd_pid" 2>/dev/null || true
	wait "$rpg" "$epmd_pid" 2>/dev/null || true
	return 1
}

# RabbitMQ first: it takes longest to boot, and ours start meanwhile.
case $sides in *rabbit*) start_rabbit ;; esac

"$bin/mqnamesrv" -p listenPort=0 -p "kvConfigPath=$work/kv.json" -p "logDir=$work/nslogs" >"$work/ns.out" 2>&1 &
pids+=($!)
ns=127.0.0.1:$(wait_addr "$work/ns.out" 'address \S+' | awk -F: '{print $NF}')
"$bin/mqbroker" -n "$ns" -p listenPort=0 -p brokerIP1=127.0.0.1 -p flushDiskType=SYNC_FLUSH \
	-p enableLmq=true -p enableMultiDispatch=true -p enableAmqpGateway=true -p amqpListenPort=0 \
	-p "storePathRootDir=$work/broker/store" -p "logDir=$work/broker/logs" >"$work/broker.out" 2>&1 &
bpid=$!
pids+=($bpid)
wait_addr "$work/broker.out" 'broker\[[^,]+, [0-9.]+:[0-9]+\]' >/dev/null
emb=$(grep -oE "The broker's AMQP 0-9-1 gateway listens on [0-9.]+:[0-9]+" "$work/broker.out" | awk '{print $NF}')
"$bin/mqamqp" -p listenPort=0 -p bindAddress=127.0.0.1 -p "namesrvAddr=$ns" -p "logDir=$work/gwlogs" >"$work/gw.out" 2>&1 &
gpid=$!
pids+=($gpid)
gw=$(wait_addr "$work/gw.out" 'The AMQP gateway boot success\. address [0-9.]+:[0-9]+')

declare -A url
url[mqops]="amqp://guest:guest@$gw/"
url[mqops-embedded]="amqp://guest:guest@$emb/"
if [ -n "$rpg" ]; then
	# One more try on fresh ports: a port taken between free_port and the
	# node's bind fails the boot.
	if ! rabbit_up; then
		echo "starting RabbitMQ again" >&2
		start_rabbit
		rabbit_up || exit 1
	fi
	url[rabbit-classic]="amqp://guest:guest@127.0.0.1:$rport/"
	url[rabbit-quorum]=${url[rabbit-classic]}
fi

# server_ticks SIDE: the CPU clock ticks the side's server processes have
# used (mqops: broker and gateway; RabbitMQ: its Erlang VM).
server_ticks() {
	local p t=0
	if [ "$1" = mqops ]; then
		p="$bpid $gpid"
	elif [ "$1" = mqops-embedded ]; then
		p=$bpid
	else
		p=$(pgrep -g "$rpg" -x beam.smp || true)
	fi
	for p in $p; do t=$((t + $(ticks "$p"))); done
	echo "$t"
}

hz=$(getconf CLK_TCK)
: >"$work/runs"
# run ROW SIDE ARGS...: one mqbench run; prints it and appends
# "row side rate p50 p99 count server-µs-per-msg" to $work/runs.
run() {
	local row=$1 side=$2 qt= t0 out
	shift 2
	case $side in rabbit-classic) qt=classic ;; rabbit-quorum) qt=quorum ;; esac
	sync
	t0=$(server_ticks "$side")
	if ! "$bin/mqbench" -url "${url[$side]}" -queue-type "$qt" -d "$dur" "$@" >"$work/gen.out" 2>&1; then
		echo "$row $side: mqbench failed:" >&2
		cat "$work/gen.out" >&2
		# What the servers said about it (the temp dir goes at exit).
		for f in "$work"/broker/logs/broker.log "$work"/gwlogs/*.log; do
			[ -f "$f" ] && echo "--- last lines of $f:" >&2 && tail -30 "$f" >&2
		done
		exit 1
	fi
	out=$(cat "$work/gen.out")
	printf '  %-13s %-15s %s\n' "$row" "$side" "$out"
	awk -v row="$row" -v side="$side" -v t="$(($(server_ticks "$side") - t0))" -v hz="$hz" '{
		rate = "-"; n = 0; p50 = p99 = "-"
		if (match($0, /= [0-9]+ msgs\/s/)) rate = substr($0, RSTART + 2, RLENGTH - 9)
		if (match($0, /[0-9]+ msgs in/)) n = substr($0, RSTART, RLENGTH - 8)
		if (match($0, /p50 [^ ]+/)) p50 = substr($0, RSTART + 4, RLENGTH - 4)
		if (match($0, /p99 [^ ]+/)) p99 = substr($0, RSTART + 4, RLENGTH - 4)
		printf "%s %s %s %s %s %d %.1f\n", row, side, rate, p50, p99, n, (n > 0 ? t / hz * 1e6 / n : 0)
	}' <<<"$out" >>"$work/runs"
}

echo "== AMQP: mqops $(basename "$bin")/mqamqp at $gw (SYNC_FLUSH broker)${rpg:+, RabbitMQ $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null) at 127.0.0.1:$rport}; 1 KiB persistent messages, durable queues, ${dur} per publish run, loopback; $(nproc) CPUs; $(uptime | sed 's/.*load/load/')"
for row in $rows; do
	case $row in
	confirm-1) for side in $sides; do run "$row" "$side" -mode amqp-publish -queue bench-confirm-1 -c 1 -window 1; done ;;
	confirm-16) for side in $sides; do run "$row" "$side" -mode amqp-publish -queue bench-confirm-16 -c 16 -window 1; done ;;
	consume-p500)
		# Every side drains the same number of messages: the smallest
		# backlog the async runs left (the rest goes with the queue).
		backlog=
		for side in $sides; do
			run async-4x500 "$side" -mode amqp-publish -queue "bench-consume-$side" -c 4 -window 500 -keep
			n=$(tail -1 "$work/runs" | cut -d' ' -f6)
			[ -n "$backlog" ] && [ "$backlog" -le "$n" ] || backlog=$n
		done
		for side in $sides; do
			run "$row" "$side" -mode amqp-consume -queue "bench-consume-$side" -prefetch 500 -ackbatch 250 -count "$backlog"
		done
		;;
	*) echo "unknown row $row (want confirm-1, confirm-16, consume-p500)" >&2; exit 1 ;;
	esac
done
echo "   (load after the runs: $(uptime | sed 's/.*load average: //'))"
echo

# The table: per row each side's msgs/s (p50/p99 confirm latency; CPU µs
# per message of the server), the ratio against the target's side and
# the verdict.
awk '
{ k = $1 SUBSEP $2; rate[k] = $3; p50[k] = $4; p99[k] = $5; cpu[k] = $7; if (!($1 in seen)) { seen[$1] = 1; order[++nr] = $1 } }
END {
	vs["confirm-1"] = "rabbit-quorum"; want["confirm-1"] = 2
	vs["confirm-16"] = "rabbit-quorum"; want["confirm-16"] = 2
	vs["async-4x500"] = "rabbit-quorum"; want["async-4x500"] = 1
	vs["consume-p500"] = "rabbit-classic"; want["consume-p500"] = 1
	split("mqops mqops-embedded rabbit-classic rabbit-quorum", sides, " ")
	printf "%-13s", "row"
	for (s = 1; s <= 4; s++) printf " %-36s", sides[s] " msgs/s (p50/p99, cpu/msg)"
	printf " %-30s %-7s %s\n", "ratio (mqops / mqops-embedded)", "target", "result"
	for (i = 1; i <= nr; i++) {
		r = order[i]
		printf "%-13s", r
		for (s = 1; s <= 4; s++) {
			k = r SUBSEP sides[s]
			if (!(k in rate)) { printf " %-36s", "skipped"; continue }
			c = rate[k]
			if (p50[k] != "-") c = c " (" p50[k] "/" p99[k] ", " cpu[k] "us)"
			else c = c " (" cpu[k] "us)"
			gsub(/µ/, "u", c) # one column per character in any awk
			printf " %-36s", c
		}
		b = r SUBSEP vs[r]; m = r SUBSEP "mqops"; e = r SUBSEP "mqops-embedded"
		if ((b in rate) && rate[b] > 0) {
			q = rate[m] / rate[b]; qe = rate[e] / rate[b]
			printf " %-30s %-7s %s\n", sprintf("%.2fx / %.2fx of %s", q, qe, vs[r]), sprintf(">= %gx", want[r]),
				(q >= want[r] ? "PASS" : "short") " / " (qe >= want[r] ? "PASS" : "short")
		} else printf " %-30s %-7s %s\n", "-", sprintf(">= %gx", want[r]), "no RabbitMQ"
	}
}' "$work/runs"
