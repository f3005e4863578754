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
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
go mod download
