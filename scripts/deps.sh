#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (run as root).
# Idempotent: only missing packages are installed.
set -euo pipefail
need=()
for pkg in "$@"; do
	dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	epmd_before=$(command -v epmd >/dev/null && epmd -names >/dev/null 2>&1 && echo yes || true)
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}"
	# The tests start RabbitMQ nodes of their own (e2e/rabbitmq_test.go):
	# stop the service the package's postinst may have started, and the
	# epmd it left on the default port.
	if [[ " ${need[*]} " == *" rabbitmq-server "* ]]; then
		# (Its CLI starts an epmd of its own: only when a node runs.)
		if pgrep -u rabbitmq -x beam.smp >/dev/null; then
			/etc/init.d/rabbitmq-server stop >/dev/null 2>&1 || true
		fi
		[ -n "$epmd_before" ] || epmd -kill >/dev/null 2>&1 || true
	fi
fi
go mod download
