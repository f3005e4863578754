#!/usr/bin/env bash
# Throwaway Zabbix 6.0 server + web frontend/API for automated tests (needs
# root; Debian 12 packages zabbix-server-pgsql, zabbix-frontend-php,
# php-pgsql, php-fpm, postgresql, nginx; python3).
#
#   stack.sh start WORKDIR   start everything inside WORKDIR, wait until the
#                            API answers (and Admin can log in) and the server
#                            trapper accepts connections, then print on stdout:
#                              ZBX_API_URL=http://127.0.0.1:<port>/api_jsonrpc.php
#                              ZBX_SERVER_PORT=<zabbix_server trapper port>
#                              ZBX_USER=Admin
#                              ZBX_PASSWORD=zabbix
#                            (also saved as WORKDIR/stack.env). Diagnostics go
#                            to stderr; on failure it prints the tail of the
#                            relevant log, stops what it started and exits 1.
#   stack.sh stop WORKDIR    stop every process recorded in WORKDIR's pid files;
#                            safe to repeat and after a failed start.
#
# Layout (WORKDIR must not already hold a stack; logs stay after stop):
#   pg/data, pg/postgres.log   private PostgreSQL cluster, unix socket in pg/ only
#   zabbix/                    zabbix_server.conf, .pid, .log
#   web/zabbix.conf.php        frontend config of this stack
#   php/, nginx/               php-fpm and nginx configs, pid files, logs
#   run/                       zabbix_server IPC sockets and the php-fpm socket
#
# The frontend reads its config from the fixed path /etc/zabbix/zabbix.conf.php
# (CConfigFile::CONFIG_FILE_PATH). php-fpm therefore runs in a private mount
# namespace with web/ bind-mounted over /etc/zabbix, so nothing global is
# written. Where mount namespaces are unavailable (or ZBX_STACK_NO_NAMESPACE=1)
# a stack-independent shim is installed at that path instead: it includes the
# file named by the pool's ZBX_STACK_WEB_CONF environment variable; it is left
# in place by stop (harmless, shared by concurrent stacks).
#
# Environment: ZBX_STACK_TIMEOUT (seconds to wait for readiness, default 120).
set -Eeuo pipefail

readonly ZBX_SQL_DIR=/usr/share/zabbix-server-pgsql
readonly ZBX_WEB_ROOT=/usr/share/zabbix
readonly ZBX_WEB_CONF_DIR=/etc/zabbix
readonly ZBX_SERVER_BIN=/usr/sbin/zabbix_server
readonly NGINX_BIN=/usr/sbin/nginx
readonly SHIM_MARKER='managed by tests/zabbix-server/stack.sh'
readonly TIMEOUT=${ZBX_STACK_TIMEOUT:-120}

log() { printf '[zabbix-stack] %s\n' "$*" >&2; }
# Name the command behind an unexpected failure (set -e exits silently).
trap 'log "command failed (line $LINENO): $BASH_COMMAND"' ERR
fail() { log "ERROR: $*"; exit 1; }
usage() { echo "usage: $0 start|stop WORKDIR" >&2; exit 2; }

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }

# Logs whose tails explain a failure of the current phase.
phase_logs=()

tail_logs() {
	local f
	for f in "$@"; do
		[[ -s $f ]] || continue
		log "---- last lines of $f ----"
		tail -n 30 "$f" | sed 's/^/  | /' >&2
	done
}

set_paths() {
	pg_dir=$workdir/pg
	pg_data=$pg_dir/data
	pg_log=$pg_dir/postgres.log
	zbx_dir=$workdir/zabbix
	web_dir=$workdir/web
	php_dir=$workdir/php
	nginx_dir=$workdir/nginx
	run_dir=$workdir/run
}

# alive PID: running and not a zombie (PID 1 here may not reap orphans).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

descendants() {
	ps -e -o pid= -o ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			for (p in parent) {
				q = p
				while ((q in parent) && q != root && q > 1) q = parent[q]
				if (q == root && p != root) print p
			}
		}'
}

# stop_pidfile NAME PIDFILE EXE_GLOB SIGNAL: signal the process named in
# PIDFILE if its executable matches (never a recycled pid), wait, escalate to
# SIGKILL, then kill leftover children running the same executable.
stop_pidfile() {
	local name=$1 pidfile=$2 exe_glob=$3 sig=$4 pid exe kid kids i
	[[ -s $pidfile ]] || return 0
	pid=$(head -n 1 "$pidfile")
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	# shellcheck disable=SC2053 # exe_glob is a pattern on purpose
	if [[ ! $pid =~ ^[0-9]+$ ]] || ! alive "$pid" || [[ $exe != $exe_glob ]]; then
		rm -f "$pidfile"
		return 0
	fi
	kids=$(descendants "$pid")
	log "stopping $name (pid $pid)"
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		alive "$pid" || break
		sleep 0.2
	done
	if alive "$pid"; then
		log "$name did not stop within 30s, killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	for kid in $kids; do
		# shellcheck disable=SC2053
		if alive "$kid" && [[ $(readlink "/proc/$kid/exe" 2>/dev/null) == $exe_glob ]]; then
			kill -KILL "$kid" 2>/dev/null || true
		fi
	done
	rm -f "$pidfile"
}

stop_stack() {
	# Reverse start order: clients before the database they use.
	stop_pidfile nginx "$nginx_dir/nginx.pid" '*/nginx' TERM
	stop_pidfile php-fpm "$php_dir/php-fpm.pid" '*/php-fpm*' TERM
	stop_pidfile zabbix_server "$zbx_dir/zabbix_server.pid" '*/zabbix_server' TERM
	# SIGINT is PostgreSQL's "fast" shutdown (TERM would wait for clients).
	stop_pidfile postgres "$pg_data/postmaster.pid" '*/postgres' INT
}

# free_ports N: N distinct free loopback TCP ports (held open together so
# they differ; the usual small race until the daemons bind them remains).
# Drawn from 10000-32767: zabbix_server rejects a ListenPort above 32767, and
# port 0 would land in the kernel's ephemeral range (32768+ by default).
free_ports() {
	python3 - "$1" <<'PY'
import random, socket, sys
socks = []
while len(socks) < int(sys.argv[1]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randint(10000, 32767)))
    except OSError:
        s.close()
        continue
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# Rewrites the Debian SQL files for a fast import: consecutive single-row
# INSERTs into the same table become multi-row INSERTs (per-statement overhead
# dominates otherwise), and data.sql's own START TRANSACTION/COMMIT are dropped
# so psql -1 wraps everything. Statement ends are found line by line: with
# standard_conforming_strings a line with an odd number of quotes toggles
# "inside a string literal" ('' escapes count twice), and a statement ends at
# a line ending in ';' outside a literal. Binary I/O keeps \r\n in data intact.
readonly SQL_BATCHER='
import gzip, re, sys
insert = re.compile(rb"INSERT INTO \w+ \([^)]*\) values ", re.I)
out = sys.stdout.buffer
def flush(prefix, rows):
    if rows:
        out.write(prefix + b",\n".join(rows) + b";\n")
for path in sys.argv[1:]:
    buf, odd, prefix, rows = [], False, None, []
    with gzip.open(path, "rb") as f:
        for line in f:
            buf.append(line)
            if line.count(b"\x27") % 2:
                odd = not odd
            if odd or not line.rstrip().endswith(b";"):
                continue
            stmt, buf = b"".join(buf).rstrip(), []
            m = insert.match(stmt)
            if m:
                if stmt[:m.end()] != prefix or len(rows) >= 1000:
                    flush(prefix, rows)
                    prefix, rows = stmt[:m.end()], []
                rows.append(stmt[m.end():-1])
                continue
            flush(prefix, rows)
            prefix, rows = None, []
            if stmt.upper() not in (b"START TRANSACTION;", b"BEGIN;", b"COMMIT;"):
                out.write(stmt + b"\n")
    flush(prefix, rows)
    if b"".join(buf).strip():
        sys.exit("unterminated SQL statement at the end of " + path)
'

find_binaries() {
	# Newest installed PostgreSQL major version.
	pg_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
	[[ -x $pg_bin ]] || fail "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)"
	pg_bin=${pg_bin%/initdb}
	php_fpm=$(compgen -G '/usr/sbin/php-fpm*' | sort -V | tail -n 1 || true)
	[[ -n $php_fpm ]] || fail "php-fpm not found (apt-get install php-fpm)"
	local f
	for f in "$ZBX_SERVER_BIN" "$NGINX_BIN"; do
		[[ -x $f ]] || fail "$f not found (apt-get install zabbix-server-pgsql nginx)"
	done
	for f in "$ZBX_SQL_DIR"/{schema,images,data}.sql.gz "$ZBX_WEB_ROOT/api_jsonrpc.php"; do
		[[ -f $f ]] || fail "$f not found (apt-get install zabbix-server-pgsql zabbix-frontend-php)"
	done
	command -v python3 >/dev/null || fail "python3 not found"
	command -v curl >/dev/null || fail "curl not found"
}

# PostgreSQL refuses to run as root, so user postgres must be able to reach
# WORKDIR/pg. Temporary directories are 0700 (mktemp -d; Go's t.TempDir() is
# /tmp/TestX123/001 with both levels 0700): grant search-only permission (o+x,
# no listing) on WORKDIR and on its ancestors below the temp directory.
grant_postgres_search() {
	local dir=$workdir tmp
	runuser -u postgres -- test -x "$workdir" && return 0
	chmod o+x "$workdir"
	tmp=$(realpath -- "${TMPDIR:-/tmp}")
	while dir=$(dirname -- "$dir") && [[ $dir == "$tmp"/* ]]; do
		chmod o+x "$dir"
	done
	runuser -u postgres -- test -x "$workdir" ||
		fail "user postgres cannot reach $workdir: a parent directory is not searchable (chmod o+x it)"
}

init_postgres() {
	local t0
	t0=$(now_ms)
	phase_logs=("$pg_dir/initdb.log" "$pg_log" "$pg_dir/pg_ctl.log")
	mkdir -p "$pg_dir"
	chown postgres:postgres "$pg_dir"
	chmod 0700 "$pg_dir"
	grant_postgres_search
	# trust auth: the only listener is a unix socket in a 0700 directory.
	runuser -u postgres -- "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust \
		-E UTF8 --locale=C --no-sync --no-instructions >>"$pg_dir/initdb.log" 2>&1
	# Durability is worthless for a throwaway cluster; skipping it speeds the
	# import. wal_level=minimal lets the import skip most WAL.
	cat >>"$pg_data/postgresql.conf" <<EOF

# ---- zabbix test stack ----
listen_addresses = ''
unix_socket_directories = '$pg_dir'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 1GB
autovacuum = off
EOF
	runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_log" -w -t "$TIMEOUT" start \
		</dev/null >>"$pg_dir/pg_ctl.log" 2>&1
	log "postgres up in $(since "$t0")"
}

import_schema() {
	local t0
	t0=$(now_ms)
	phase_logs=("$pg_dir/import.log" "$pg_log")
	"$pg_bin/psql" -X -q -h "$pg_dir" -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c 'CREATE ROLE zabbix LOGIN' \
		-c "CREATE DATABASE zabbix OWNER zabbix ENCODING 'UTF8' TEMPLATE template0" \
		>>"$pg_dir/import.log" 2>&1
	# As superuser with session_replication_role=replica no foreign-key or
	# user triggers fire: the data is consistent and already carries the
	# name_upper values those triggers would recompute row by row. SET ROLE
	# makes zabbix own everything.
	python3 -c "$SQL_BATCHER" "$ZBX_SQL_DIR"/{schema,images,data}.sql.gz |
		"$pg_bin/psql" -X -q -1 -h "$pg_dir" -U postgres -d zabbix -v ON_ERROR_STOP=1 \
			-c 'SET session_replication_role = replica' -c 'SET ROLE zabbix' -f - \
			>>"$pg_dir/import.log" 2>&1
	# Autovacuum is off: without statistics the planner picks nested loops
	# over the big tables, and linking a template to a host ran a trigger
	# dependency query for minutes.
	"$pg_bin/psql" -X -q -h "$pg_dir" -U postgres -d zabbix -v ON_ERROR_STOP=1 -c 'ANALYZE' \
		>>"$pg_dir/import.log" 2>&1
	log "schema, images and data imported in $(since "$t0")"
}

start_zabbix_server() {
	phase_logs=("$zbx_dir/zabbix_server.log" "$zbx_dir/stdout.log")
	mkdir -p "$zbx_dir/tmp" "$run_dir"
	# AllowRoot: the whole stack runs as root, only postgres needs its user.
	# Few processes keep start-up fast; CacheUpdateFrequency=5 makes imported
	# templates/hosts reach the configuration cache within seconds.
	cat >"$zbx_dir/zabbix_server.conf" <<EOF
ListenIP=127.0.0.1
ListenPort=$zbx_port
LogType=file
LogFile=$zbx_dir/zabbix_server.log
LogFileSize=0
PidFile=$zbx_dir/zabbix_server.pid
SocketDir=$run_dir
TmpDir=$zbx_dir/tmp
AlertScriptsPath=$zbx_dir
ExternalScripts=$zbx_dir
DBHost=$pg_dir
DBPort=5432
DBName=zabbix
DBUser=zabbix
AllowRoot=1
AllowUnsupportedDBVersions=1
Timeout=10
CacheUpdateFrequency=5
StartPollers=2
StartPollersUnreachable=1
StartPreprocessors=2
StartTrappers=2
StartHistoryPollers=1
StartDBSyncers=1
StartLLDProcessors=1
StartAlerters=1
StartEscalators=1
StartTimers=1
StartPingers=0
StartDiscoverers=0
StartHTTPPollers=0
StartProxyPollers=0
HousekeepingFrequency=0
StatsAllowedIP=127.0.0.1
EOF
	"$ZBX_SERVER_BIN" -c "$zbx_dir/zabbix_server.conf" </dev/null >>"$zbx_dir/stdout.log" 2>&1 ||
		fail "zabbix_server failed to start"
}

write_frontend_conf() {
	mkdir -p "$web_dir"
	cat >"$web_dir/zabbix.conf.php" <<EOF
<?php
// Zabbix frontend configuration of the test stack in $workdir.
\$DB['TYPE'] = 'POSTGRESQL';
\$DB['SERVER'] = '$pg_dir';
\$DB['PORT'] = '5432';
\$DB['DATABASE'] = 'zabbix';
\$DB['USER'] = 'zabbix';
\$DB['PASSWORD'] = '';
\$DB['SCHEMA'] = '';
\$DB['ENCRYPTION'] = false;
\$DB['KEY_FILE'] = '';
\$DB['CERT_FILE'] = '';
\$DB['CA_FILE'] = '';
\$DB['VERIFY_HOST'] = false;
\$DB['CIPHER_LIST'] = '';
\$DB['VAULT_URL'] = '';
\$DB['VAULT_DB_PATH'] = '';
\$DB['VAULT_TOKEN'] = '';
\$DB['DOUBLE_IEEE754'] = true;
\$ZBX_SERVER = '127.0.0.1';
\$ZBX_SERVER_PORT = '$zbx_port';
\$ZBX_SERVER_NAME = 'zabbix-test-stack';
\$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
EOF
	chmod 0644 "$web_dir/zabbix.conf.php"

	if [[ -z ${ZBX_STACK_NO_NAMESPACE:-} && -d $ZBX_WEB_CONF_DIR ]] &&
		unshare --mount --propagation private -- mount --bind "$web_dir" "$ZBX_WEB_CONF_DIR" 2>/dev/null; then
		frontend_ns=1
		return
	fi
	frontend_ns=
	local shim=$ZBX_WEB_CONF_DIR/zabbix.conf.php
	if [[ -e $shim ]] && ! grep -qF "$SHIM_MARKER" "$shim"; then
		fail "no mount namespaces and $shim is not ours; refusing to overwrite it"
	fi
	log "no private mount namespace for php-fpm: installing the config shim $shim"
	mkdir -p "$ZBX_WEB_CONF_DIR"
	cat >"$shim.tmp.$$" <<EOF
<?php
// $SHIM_MARKER: test stacks point their php-fpm pool at
// their own config through ZBX_STACK_WEB_CONF; nothing is configured here.
\$zbx_stack_web_conf = getenv('ZBX_STACK_WEB_CONF');
if (\$zbx_stack_web_conf !== false && \$zbx_stack_web_conf !== '') {
	require \$zbx_stack_web_conf;
}
EOF
	chmod 0644 "$shim.tmp.$$"
	mv -f "$shim.tmp.$$" "$shim"
}

start_php_fpm() {
	phase_logs=("$php_dir/php-fpm.log" "$php_dir/stdout.log")
	mkdir -p "$php_dir" "$run_dir"
	# Workers run as root (-R) so nothing in WORKDIR needs chown/chmod.
	cat >"$php_dir/php-fpm.conf" <<EOF
[global]
pid = $php_dir/php-fpm.pid
error_log = $php_dir/php-fpm.log
daemonize = yes

[zabbix]
user = root
group = root
listen = $run_dir/php-fpm.sock
listen.mode = 0600
pm = static
pm.max_children = 4
env[ZBX_STACK_WEB_CONF] = $web_dir/zabbix.conf.php
catch_workers_output = yes
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
php_admin_value[error_log] = $php_dir/php-error.log
php_admin_value[memory_limit] = 512M
php_admin_value[post_max_size] = 64M
php_admin_value[upload_max_filesize] = 64M
php_admin_value[max_execution_time] = 300
php_admin_value[max_input_time] = 300
php_admin_value[date.timezone] = UTC
EOF
	if [[ -n $frontend_ns ]]; then
		# shellcheck disable=SC2016 # expanded by the inner shell
		unshare --mount --propagation private -- /bin/sh -c \
			'mount --bind "$1" "$2" && shift 2 && exec "$@"' \
			sh "$web_dir" "$ZBX_WEB_CONF_DIR" "$php_fpm" -R -y "$php_dir/php-fpm.conf" \
			</dev/null >>"$php_dir/stdout.log" 2>&1 || fail "php-fpm failed to start"
	else
		"$php_fpm" -R -y "$php_dir/php-fpm.conf" </dev/null >>"$php_dir/stdout.log" 2>&1 ||
			fail "php-fpm failed to start"
	fi
}

start_nginx() {
	phase_logs=("$nginx_dir/error.log" "$nginx_dir/stdout.log")
	mkdir -p "$nginx_dir/tmp"
	cat >"$nginx_dir/nginx.conf" <<EOF
daemon on;
user root root;
worker_processes 1;
pid $nginx_dir/nginx.pid;
error_log $nginx_dir/error.log warn;

events {
	worker_connections 256;
}

http {
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	access_log $nginx_dir/access.log;
	client_body_temp_path $nginx_dir/tmp/client_body;
	proxy_temp_path $nginx_dir/tmp/proxy;
	fastcgi_temp_path $nginx_dir/tmp/fastcgi;
	uwsgi_temp_path $nginx_dir/tmp/uwsgi;
	scgi_temp_path $nginx_dir/tmp/scgi;
	client_max_body_size 64m;

	server {
		listen 127.0.0.1:$http_port;
		root $ZBX_WEB_ROOT;
		index index.php;

		location ~ ^/(app|conf|include|local|locale|vendor)/ {
			deny all;
		}
		location / {
			try_files \$uri \$uri/ =404;
		}
		location ~ \.php\$ {
			try_files \$uri =404;
			fastcgi_pass unix:$run_dir/php-fpm.sock;
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
			fastcgi_read_timeout 300s;
			fastcgi_buffers 16 16k;
			fastcgi_buffer_size 32k;
		}
	}
}
EOF
	# -e: nginx opens its error log before reading the config; keep it here too.
	"$NGINX_BIN" -p "$nginx_dir" -e "$nginx_dir/error.log" -c "$nginx_dir/nginx.conf" \
		</dev/null >>"$nginx_dir/stdout.log" 2>&1 || fail "nginx failed to start"
}

api_call() {
	curl -sS --max-time 10 -H 'Content-Type: application/json-rpc' -d "$1" "$api_url" 2>&1
}

# require_alive NAME PIDFILE: fail fast when a daemon died during the wait.
require_alive() {
	local pid=
	[[ -s $2 ]] && pid=$(head -n 1 "$2")
	[[ -n $pid ]] && alive "$pid" && return 0
	fail "$1 is not running"
}

wait_ready() {
	local t0 deadline reply
	t0=$(now_ms)
	deadline=$((SECONDS + TIMEOUT))
	phase_logs=("$zbx_dir/zabbix_server.log" "$zbx_dir/stdout.log")
	# The main process opens the trapper port early; the worker processes are
	# forked only after the initial configuration cache sync, so "trapper #1
	# started" in the log means the server really serves requests.
	until [[ -s $zbx_dir/zabbix_server.pid ]] &&
		grep -q 'started \[trapper #1\]' "$zbx_dir/zabbix_server.log" 2>/dev/null &&
		(: <>"/dev/tcp/127.0.0.1/$zbx_port") 2>/dev/null; do
		if [[ -s $zbx_dir/zabbix_server.pid ]]; then
			require_alive zabbix_server "$zbx_dir/zabbix_server.pid"
		fi
		# zabbix_server retries a failing database forever; ours is already up,
		# so this is a configuration error, not worth waiting out.
		if grep -q 'database is down' "$zbx_dir/zabbix_server.log" 2>/dev/null; then
			fail "zabbix_server cannot use the database"
		fi
		((SECONDS < deadline)) || fail "zabbix_server trapper not listening on 127.0.0.1:$zbx_port after ${TIMEOUT}s"
		sleep 0.1
	done
	log "zabbix_server listening on 127.0.0.1:$zbx_port after $(since "$t0")"

	phase_logs=("$nginx_dir/error.log" "$php_dir/php-fpm.log" "$php_dir/php-error.log")
	until reply=$(api_call '{"jsonrpc":"2.0","method":"apiinfo.version","params":{},"id":1}') &&
		[[ $reply == *'"result":"'* ]]; do
		require_alive php-fpm "$php_dir/php-fpm.pid"
		require_alive nginx "$nginx_dir/nginx.pid"
		((SECONDS < deadline)) || fail "API at $api_url not answering after ${TIMEOUT}s; last reply: $reply"
		sleep 0.2
	done
	log "API answers: $reply"
	reply=$(api_call '{"jsonrpc":"2.0","method":"user.login","params":{"username":"Admin","password":"zabbix"},"id":2}')
	[[ $reply =~ \"result\":\"[0-9a-f]{32}\" ]] || fail "user.login as Admin failed: $reply"
	require_alive zabbix_server "$zbx_dir/zabbix_server.pid"
	log "Admin login works; ready after $(since "$t0")"
}

start_stack() {
	local t0 ports
	t0=$(now_ms)
	find_binaries
	ports=$(free_ports 2)
	http_port=${ports% *}
	zbx_port=${ports#* }
	api_url=http://127.0.0.1:$http_port/api_jsonrpc.php
	log "workdir $workdir, http port $http_port, zabbix_server port $zbx_port"

	# From here on a failure stops what this run started (not for cmd_start's
	# checks: they protect a stack that may already run in WORKDIR).
	cleanup_on_failure=1
	init_postgres
	# The web tier needs no database to start; it is ready by the time the
	# import ends.
	write_frontend_conf
	start_php_fpm
	start_nginx
	import_schema
	start_zabbix_server
	wait_ready
	log "stack started in $(since "$t0")"
}

cleanup_on_failure=

on_start_exit() {
	local rc=$1
	((rc == 0)) && return 0
	[[ -n $cleanup_on_failure ]] || return 0
	log "start failed (exit $rc)"
	tail_logs "${phase_logs[@]}"
	log "stopping what this start launched"
	stop_stack || true
}

cmd_start() {
	local d
	[[ $EUID -eq 0 ]] || fail "must run as root (PostgreSQL runs as user postgres via runuser)"
	workdir=$(realpath -m -- "$workdir")
	[[ $workdir =~ ^/[A-Za-z0-9._/+-]*$ ]] ||
		fail "WORKDIR $workdir: only letters, digits and ._/+- are allowed (the path is written into configs)"
	# Unix socket paths are limited to 107 bytes; the longest is
	# run/zabbix_server_preprocessing.sock.
	((${#workdir} <= 70)) || fail "WORKDIR $workdir is longer than 70 characters (unix socket path limit)"
	for d in pg zabbix web php nginx run; do
		[[ ! -e $workdir/$d ]] || fail "$workdir already holds a stack ($workdir/$d exists); use a fresh directory"
	done
	mkdir -p "$workdir"
	set_paths
	trap 'on_start_exit $?' EXIT
	start_stack >&2
	trap - EXIT
	local env
	env=$(printf '%s\n' \
		"ZBX_API_URL=$api_url" \
		"ZBX_SERVER_PORT=$zbx_port" \
		"ZBX_USER=Admin" \
		"ZBX_PASSWORD=zabbix")
	printf '%s\n' "$env" >"$workdir/stack.env"
	printf '%s\n' "$env"
}

cmd_stop() {
	if [[ ! -d $workdir ]]; then
		log "$workdir does not exist; nothing to stop"
		return 0
	fi
	workdir=$(realpath -- "$workdir")
	set_paths
	stop_stack
	log "stopped"
}

[[ $# -eq 2 ]] || usage
workdir=$2
case $1 in
start) cmd_start ;;
stop) cmd_stop ;;
*) usage ;;
esac
