# Shared by run.sh, run-ha.sh, bench.sh, bench-acl.sh, bench-peers.sh and
# bench-amqp.sh (sourced, not run): waiting for a daemon's port or its
# logged address, a free port, a process's CPU ticks, and stopping the
# daemons in order on Ctrl-C or exit.

# wait_port PORT [SECONDS]: waits until 127.0.0.1:PORT accepts connections
# (at most SECONDS, default 10).
wait_port() {
	for _ in $(seq 1 $((${2:-10} * 10))); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 did not open" >&2
	return 1
}

# free_port: prints a random port in 20000-59999 nothing listens on now,
# for servers that cannot bind port 0 and report the port they got.
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
	done
}

# wait_addr FILE REGEX: prints the address captured by REGEX once it
# appears in FILE (a daemon's output); exits if it does not within 10 s.
wait_addr() {
	for _ in $(seq 1 100); do
		if a=$(grep -oE "$2" "$1" | head -1) && [ -n "$a" ]; then
			echo "$a" | grep -oE '[0-9.]*:[0-9]+' | tail -1
			return
		fi
		sleep 0.1
	done
	echo "daemon did not start:" >&2
	cat "$1" >&2
	exit 1
}

# ticks PID: the user + system CPU clock ticks PID has used.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# stop, once: the brokers first, as they flush and unregister, then the
# name server ($ns). $brokers names the variables holding the brokers'
# pids (read when stopping: a restarted broker has a new one). The caller
# sets `trap stop INT TERM EXIT`.
ns= brokers= stopped=
stop() {
	[ -n "$stopped" ] && return
	stopped=1
	local v
	for v in $brokers; do kill -TERM "${!v}" 2>/dev/null || true; done
	for v in $brokers; do wait "${!v}" 2>/dev/null || true; done
	kill -TERM "$ns" 2>/dev/null || true
	wait "$ns" 2>/dev/null || true
	echo "stopped; data in $data"
}
