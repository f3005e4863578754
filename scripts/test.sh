#!/usr/bin/env bash
# The suites of `make test`, run in lanes side by side (make deps and
# build come first; see the Makefile):
#
#   cpu      lint, test-unit, then test-e2e (race-built daemons): compiling
#            and the race detector keep a core busy; run at lower priority
#            so that the other lanes' daemons answer in time.
#   ansible  test-ansible: mostly waiting on ssh, Ansible and the clients'
#            route refreshes.
#   zabbix   test-zabbix-server, then test-zabbix, then test-amqp-rabbitmq:
#            mostly waiting on the Zabbix server's and agents' polls, and
#            on a RabbitMQ node's start.
#
# Every suite writes its own log, $MQOPS_TEST_LOGS/<suite>.log (default
# bin/test-logs), and its lines go to the terminal prefixed with
# [<suite>]. A failed suite does not stop the others; at the end a table
# gives each suite's result and duration, the tail of every failed suite's
# log is printed again, and the exit code is 1 if any suite failed.
# MQOPS_TEST_SUITES limits the run to some suites (space-separated names).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
make=${MAKE:-make}
logs=${MQOPS_TEST_LOGS:-$root/bin/test-logs}
only=" ${MQOPS_TEST_SUITES:-lint test-unit test-e2e test-ansible test-zabbix-server test-zabbix test-amqp-rabbitmq} "
rm -rf "$logs"
mkdir -p "$logs"
# make lint runs the ansible-lint that test-ansible would run first.
[[ $only == *" lint "* ]] && export MQOPS_ANSIBLE_LINTED=1

# cpu_seconds FILE: user + system seconds of finished children from the
# second line of the output of `times` in FILE ("1m2.5s 0m3.1s"). (`times`
# itself must not run in a pipe or $(...): a fresh subshell has no children.)
cpu_seconds() {
	sed -n 2p "$1" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, "[ms]"); n += a[1] * 60 + a[2] } printf "%d", n }'
}

# suite NAME [nice]: runs make NAME, logging as described above; writes
# "NAME EXIT WALL_SECONDS CPU_SECONDS" to NAME.result.
suite() {
	local name=$1 prio=${2:-0}
	[[ $only == *" $name "* ]] || return 0
	(
		t0=$(date +%s)
		echo "[$name] started $(date +%T)"
		nice -n "$prio" "$make" --no-print-directory "$name" </dev/null 2>&1 |
			tee "$logs/$name.log" | sed -u "s/^/[$name] /"
		rc=${PIPESTATUS[0]}
		wall=$(($(date +%s) - t0))
		times >"$logs/$name.times"
		echo "$name $rc $wall $(cpu_seconds "$logs/$name.times")" >"$logs/$name.result"
		echo "[$name] finished $(date +%T): $([ "$rc" = 0 ] && echo ok || echo "FAILED (exit $rc)") after $wall s"
	)
}

lane_cpu() {
	suite lint 10
	suite test-unit 10
	suite test-e2e 10
}
lane_ansible() { suite test-ansible; }
lane_zabbix() {
	suite test-zabbix-server
	suite test-zabbix
	suite test-amqp-rabbitmq
}

t_all=$(date +%s)
# Each lane in its own process group, so that an interrupt reaches all of
# them (test-ansible's clean-up runs on SIGINT/SIGTERM).
set -m
pids=()
lane_cpu &
pids+=($!)
lane_ansible &
pids+=($!)
lane_zabbix &
pids+=($!)
set +m
stop() {
	for p in "${pids[@]}"; do kill -INT -- "-$p" 2>/dev/null; done
	wait
	exit 130
}
trap stop INT TERM
wait

passed=0 failed=0 failures=()
echo
echo "=== make test: suites (logs in $logs)"
printf '%-20s %-8s %8s %8s\n' suite result seconds cpu-s
for f in "$logs"/*.result; do
	[ -e "$f" ] || continue
	read -r name rc secs cpu <"$f"
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		printf '%-20s %-8s %8s %8s\n' "$name" ok "$secs" "$cpu"
	else
		failed=$((failed + 1))
		failures+=("$name")
		printf '%-20s %-8s %8s %8s\n' "$name" "FAILED" "$secs" "$cpu"
	fi
done
echo "wall clock of the suites side by side: $(($(date +%s) - t_all)) s"
for name in "${failures[@]}"; do
	echo
	echo "=== FAILED: $name (exit $(cut -d' ' -f2 "$logs/$name.result")); last 60 lines of $logs/$name.log:"
	tail -n 60 "$logs/$name.log"
done
# The closing line CI reads (one word and a colon may precede the counts).
echo "suites: $passed passed, $failed failed"
[ "$failed" = 0 ]
