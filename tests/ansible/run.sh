#!/usr/bin/env bash
# End-to-end test of the Ansible rollout (make test-ansible; needs root and
# bin/ from make build). It builds nine throwaway hosts on this machine and
# deploys a real cluster onto them (mq4 joins in the scale-out, mq7-mq9 in
# step 10, mq5 and mq6 in the upgrade):
#
#   bridge mqopsbr0, 10.213.37.1/24 (this machine, the controller)
#     netns mqops-mq1  10.213.37.11  name server with a controller inside,
#                                    broker-a SYNC_MASTER (id 0)
#     netns mqops-mq2  10.213.37.12  name server with a controller inside,
#                                    broker-a slave (id 1), replicating from mq1
#     netns mqops-mq3  10.213.37.13  broker-b master (id 0), name-server endpoint,
#                                    standalone controller (mqcontroller),
#                                    AMQP gateway (mqamqp)
#     netns mqops-mq4  10.213.37.14  broker-c master (id 0), step 7
#     netns mqops-mq5  10.213.37.15  green: name server + broker-g1 master, step 11
#     netns mqops-mq6  10.213.37.16  green: name server + broker-g2 master, step 11
#     netns mqops-mq7  10.213.37.17  broker-d replica, controller mode, step 10
#     netns mqops-mq8  10.213.37.18  broker-d replica, controller mode, step 10
#     netns mqops-mq9  10.213.37.19  broker-d replica added to the group, step 10
#
# Each namespace runs its own sshd (throwaway host key, throwaway client key,
# root login) as Ansible's target. Its SetEnv SHLVL=1 keeps root's bash from
# reading ~/.bashrc for every command (bash reads it for ssh commands only
# at level 1): this machine's shell set-up costs seconds per Ansible task
# and is no part of what a target host is. The namespaces share this
# machine's file system, kernel and /etc/passwd, so the generated inventory
# gives every host its own directories under $work/<host>/, its own service
# user (mqops-<host>), supervisor mode (no systemd in a namespace), and
# points the OS tuning at per-host files with nothing applied to the shared
# kernel.
#
# Steps, each asserting outcomes:
#   1. ansible-lint, production profile (skipped with MQOPS_ANSIBLE_LINTED=1:
#      make test runs it in make lint);
#   2. systemd-analyze verify on the production units (rendered by
#      render_units.yml), any complaint fails;
#   3. deploy.yml --check on the fresh hosts: passes and creates nothing;
#   4. deploy.yml: processes run in their own namespaces as their users;
#      mqadmin hosts check passes against the inventory (the contract);
#      messages sent through the name servers from this machine reach both
#      broker groups (SEND_OK from the SYNC_MASTER: the slave holds them)
#      and are read back by key and by pulling every queue; the slave's
#      commit log reaches the master's end, and a message sent through
#      the master is read from the slave's own address; the three
#      controllers (two in name servers, one standalone) answer
#      GET_METADATA_INFO as one Raft group with one leader; the AMQP
#      gateway on mq3 answers the protocol header (health-checked by the
#      play), an amqp091-go application on mq3 itself publishes 100
#      persistent messages with confirms and consumes them back as guest,
#      and guest from the controller is refused with 403 (loopbackUsers);
#  4b. ACL and TLS (on for the whole run, the controller's address
#      white-listed): plain_acl.yml, tools.yml, broker.conf and the TLS key
#      mode 0600 of the service user, the Zabbix helper's keys of zabbix;
#      no secret in the output; signed registrations in the name servers'
#      acl.log; an unsigned admin command from a host refused, the same
#      with the host's tools.yml done; the deployed certificates served and
#      mqadmin --tls with the CA working;
#   5. deploy.yml again: every host reports changed=0;
#  5b. an account added and mq3's certificate renewed: the account works
#      without a restart (pids kept), mq3's broker and controller restarted
#      with the new certificate;
#   6. a broker stopped behind Ansible's back is started again by
#      deploy.yml --tags mqops_broker, and only that host changes.
#   7. scale_out.yml adds broker-c: only mq4 changes; routes of existing
#      topics list broker-c with the same queues; groups copied with their
#      settings; messages for an existing topic are stored on broker-c;
#   8. scale_out.yml again (naming broker-c): changed=0;
#   9. rolling_restart.yml while an official-client producer and consumer
#      run (tests/loadclient): the slave first (its SYNC_MASTER out of the
#      write routes meanwhile), then one master at a time, all restarted;
#      the slave is caught up again; no send fails beyond the
#      client's retries; the consumer receives every acknowledged message;
#      the client's sends are acknowledged before and after the play; all
#      masters writable again; the AMQP gateway restarted last and serving
#      again.
#  10. a controller-mode group (broker-d) added by scale_out.yml, a third
#      replica added to it, then under an official-client load:
#      rolling_restart.yml moves the master role (mqadmin ha elect) before
#      restarting the master, no send fails; kill -9 of the master: a new
#      master in every name server's route, sends acknowledged by broker-d
#      again, the killed broker rejoins the SyncStateSet; 0 SEND_OK
#      messages lost; broker-d is stopped again;
#  11. upgrade.yml first stops at its check for AMQP gateways (mq3, mq1's
#      embedded one), which it does not move; acknowledged, it upgrades to
#      a green cluster (mq5, mq6) while the same kind of client runs,
#      finding its name servers through the endpoint: no send
#      fails beyond retries, every acknowledged message is consumed (from
#      blue and green brokers); the endpoint and DNS-style record name the
#      green name servers; blue daemons are stopped; green lists only green;
#      the client's sends are acknowledged before and after the play.
# The run ends with the seconds each section took.
# Everything (daemons, sshds, namespaces, bridge, users, temp dir) is removed
# on exit, failed or not. KEEP=1 keeps the temp dir for inspection.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANSIBLE_CONFIG=$root/ansible.cfg

net=10.213.37
bridge=mqopsbr0
hosts=(mq1 mq2 mq3 mq4 mq5 mq6 mq7 mq8 mq9)
declare -A ip=([mq1]=$net.11 [mq2]=$net.12 [mq3]=$net.13 [mq4]=$net.14 [mq5]=$net.15 [mq6]=$net.16
	[mq7]=$net.17 [mq8]=$net.18 [mq9]=$net.19)
namesrv_addr="$net.11:9876;$net.12:9876"
topic=AnsibleSmoke
load_pid=

t_start=$SECONDS
marks=()
# log TITLE: a section header with the time since the start; the durations
# of the sections are printed at the end.
log() {
	marks+=("$SECONDS|$*")
	printf '\n=== [%dm%02ds] %s\n' $(((SECONDS - t_start) / 60)) $(((SECONDS - t_start) % 60)) "$*"
}
die() {
	echo "FAIL: $*" >&2
	exit 1
}
# A command failing under set -e names itself instead of ending the run
# without a word.
on_err() { echo "FAIL: line $1: $2 (exit $3)" >&2; }
set -E
trap 'on_err $LINENO "$BASH_COMMAND" $?' ERR

[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, sshd, users)"
# The checks need only the standard library: the system's python3, which
# Ansible runs on too, not a version manager's shim that may stand first
# in PATH (and costs seconds per call).
py=/usr/bin/python3
[ -x "$py" ] || py=python3
for cmd in ip sshd ssh-keygen ansible-playbook ansible-lint ansible-vault openssl setpriv "$py"; do
	command -v "$cmd" >/dev/null || die "$cmd not found (make deps installs it)"
done
for b in mqnamesrv mqbroker mqcontroller mqadmin mqnsaddr mqops-zbx loadclient; do
	[ -x "bin/$b" ] || die "bin/$b missing: run make build"
done

# One run at a time: the bridge, namespace and user names are fixed. The
# lock lives in /run/lock, not /tmp, because a run with a private /tmp (a
# CI sandbox) still shares this machine's network namespaces.
lockdir=/run/lock
[ -d "$lockdir" ] || lockdir=/tmp
exec 9>"$lockdir/mqops-ansible.lock"
flock -w 600 9 || die "another test-ansible run holds $lockdir/mqops-ansible.lock"

work=$(mktemp -d /tmp/mqops-ansible.XXXXXX)
# The Go client's name-server resolver keeps a snapshot under the user's
# home (from /etc/passwd, not $HOME); removed afterwards unless it was there.
client_snapshots=$(getent passwd "$(id -un)" | cut -d: -f6)/logs/rocketmq-go
[ -e "$client_snapshots" ] && client_snapshots=
# The daemons run as per-host users and must reach their directories.
chmod 755 "$work"
made_run_sshd=

# teardown_hosts: stops everything in the test namespaces and removes the
# namespaces, veths, bridge and per-host users. Safe when some are missing.
teardown_hosts() {
	local h pids
	for h in "${hosts[@]}"; do
		# Everything inside a namespace was started by this script or by
		# the deploy it ran: the daemons and the sshd.
		if [ -e "/run/netns/mqops-$h" ]; then
			pids=$(ip netns pids "mqops-$h")
			[ -n "$pids" ] && kill $pids 2>/dev/null
		fi
	done
	sleep 0.5
	for h in "${hosts[@]}"; do
		if [ -e "/run/netns/mqops-$h" ]; then
			pids=$(ip netns pids "mqops-$h")
			[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
			ip netns delete "mqops-$h"
		fi
		ip link delete "mqv-$h" 2>/dev/null
		id "mqops-$h" >/dev/null 2>&1 && userdel "mqops-$h"
		getent group "mqops-$h" >/dev/null && groupdel "mqops-$h"
	done
	ip link delete "$bridge" 2>/dev/null
	return 0
}

cleanup() {
	local rc=$?
	set +e
	trap - ERR
	# The background load client of steps 9 and 10, by its pid.
	[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
	if [ $rc -ne 0 ] && [ -n "${work:-}" ]; then
		# The daemons' own last words, before the hosts and their logs go.
		for f in "$work"/mq*/log/broker.log "$work"/mq*/log/namesrv.log "$work"/mq*/log/controller.log; do
			[ -f "$f" ] || continue
			echo "--- last lines of $f" >&2
			tail -n 25 "$f" >&2
		done
	fi
	teardown_hosts
	[ -n "$client_snapshots" ] && rm -rf "$client_snapshots"
	[ -n "$made_run_sshd" ] && rmdir /run/sshd 2>/dev/null
	if [ "${KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
	# Where the time went: each section's duration.
	marks+=("$SECONDS|end")
	echo "test-ansible: seconds per section"
	for ((i = 0; i + 1 < ${#marks[@]}; i++)); do
		printf '%6d  %s\n' $((${marks[i + 1]%%|*} - ${marks[i]%%|*})) "${marks[i]#*|}"
	done
	# The plain "N passed, N failed" line CI reads as the test result.
	if [ $rc -eq 0 ]; then
		echo "test-ansible: $((steps)) passed, 0 failed"
	else
		echo "test-ansible: $((steps - 1 > 0 ? steps - 1 : 0)) passed, 1 failed (exit $rc)"
	fi
	exit $rc
}
steps=0
trap cleanup EXIT
trap 'exit 130' INT TERM

# recap_changed LOGFILE: sum of changed= over the PLAY RECAP lines.
recap_changed() {
	sed -n '/PLAY RECAP/,$p' "$1" | grep -o 'changed=[0-9]*' | awk -F= '{ n += $2 } END { print n + 0 }'
}
# recap_changed_host LOGFILE HOST
# task_ok LOGFILE TASK HOST...: the task (name as printed after the role)
# ran on each HOST and reported ok.
task_ok() {
	local log=$1 task=$2 h
	shift 2
	for h in "$@"; do
		awk -v t="$task]" '/^TASK \[/ { on = index($0, t) > 0 } on' "$log" | grep -q "^ok: \[$h\]" || return 1
	done
}
recap_changed_host() {
	sed -n '/PLAY RECAP/,$p' "$1" | grep "^$2 " | grep -o 'changed=[0-9]*' | cut -d= -f2
}
playbook() { # playbook LOGNAME ARGS...: run deploy.yml, output to the terminal and a log
	local name=$1
	shift
	ansible-playbook -i "$work/inventory" playbooks/deploy.yml "$@" 2>&1 | tee "$work/$name.log"
}
play() { # play PLAYBOOK LOGNAME ARGS...: run another playbook the same way
	local book=$1 name=$2
	shift 2
	ansible-playbook -i "$work/inventory" "playbooks/$book" "$@" 2>&1 | tee "$work/$name.log"
}

steps=$((steps + 1))
log "1. ansible-lint (production profile)"
if [ "${MQOPS_ANSIBLE_LINTED:-}" = 1 ]; then
	echo "skipped: make lint runs the same ansible-lint (make test sets MQOPS_ANSIBLE_LINTED=1)"
else
	ansible-lint -c tests/ansible/ansible-lint.yml ansible.cfg inventory playbooks roles tests/ansible
fi

steps=$((steps + 1))
log "2. systemd-analyze verify on the production units"
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$work/units"
	ansible-playbook tests/ansible/render_units.yml \
		-e "mqops_units_dir=$work/units" -e "mqops_bin_dir=$root/bin" >"$work/units.log" 2>&1 ||
		{ cat "$work/units.log"; die "rendering the units failed"; }
	for u in "$work"/units/*.service; do
		out=$(systemd-analyze verify "$u" 2>&1) || die "systemd-analyze verify $u: $out"
		[ -z "$out" ] || die "systemd-analyze verify $u complains: $out"
		echo "ok $(basename "$u")"
	done
else
	echo "skipped: no systemd-analyze on this machine"
fi

log "Hosts: bridge $bridge, namespaces ${hosts[*]}, sshd in each"
# With the lock held, a bridge or namespace of ours is a leftover of a run
# that was killed before its cleanup (SIGKILL, a lost machine session).
if ip link show "$bridge" >/dev/null 2>&1 || ls /run/netns/mqops-mq* >/dev/null 2>&1; then
	echo "removing the leftovers of an earlier run that did not clean up"
	set +e
	trap - ERR
	teardown_hosts
	trap 'on_err $LINENO "$BASH_COMMAND" $?' ERR
	set -e
fi
ip link add "$bridge" type bridge
ip addr add "$net.1/24" dev "$bridge"
ip link set "$bridge" up
ssh-keygen -q -t ed25519 -N '' -C mqops-test-client -f "$work/client_key"
[ -d /run/sshd ] || { mkdir -p /run/sshd && made_run_sshd=1; }
: >"$work/known_hosts"
# make_host HOST: its namespace, veth on the bridge, address, host key and
# sshd. The hosts are made side by side.
make_host() {
	local h=$1 d=$work/$1
	mkdir -p "$d/ssh" "$d/thp"
	ip netns add "mqops-$h"
	ip link add "mqv-$h" type veth peer name eth0 netns "mqops-$h"
	ip link set "mqv-$h" master "$bridge" up
	ip -n "mqops-$h" addr add "${ip[$h]}/24" dev eth0
	ip -n "mqops-$h" link set eth0 up
	ip -n "mqops-$h" link set lo up
	ssh-keygen -q -t ed25519 -N '' -C "mqops-test-$h" -f "$d/ssh/host_key"
	echo "${ip[$h]} $(cut -d' ' -f1-2 "$d/ssh/host_key.pub")" >>"$work/known_hosts"
	cp "$work/client_key.pub" "$d/ssh/authorized_keys"
	cat >"$d/ssh/sshd_config" <<-EOF
		ListenAddress ${ip[$h]}
		HostKey $d/ssh/host_key
		PidFile $d/ssh/sshd.pid
		AuthorizedKeysFile $d/ssh/authorized_keys
		PermitRootLogin prohibit-password
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		StrictModes no
		Subsystem sftp internal-sftp
		SetEnv SHLVL=1
	EOF
	ip netns exec "mqops-$h" /usr/sbin/sshd -f "$d/ssh/sshd_config" -E "$d/ssh/sshd.log"
	# A stand-in for sysfs, in the kernel's format with THP already off:
	# the role reads it and leaves it alone, as on a tuned host.
	echo 'always madvise [never]' >"$d/thp/enabled"
	echo 'always defer defer+madvise madvise [never]' >"$d/thp/defrag"
}
made=()
for h in "${hosts[@]}"; do
	make_host "$h" &
	made+=($!)
done
for p in "${made[@]}"; do
	wait "$p" || die "setting up a test host failed"
done

log "TLS: a private CA and a certificate for every host"
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-subj "/CN=mqops test CA" -keyout "$work/tls/ca.key" -out "$work/tls/ca.pem" 2>/dev/null
# host_cert HOST [SUFFIX]: a key and a certificate naming the host's
# address, signed by the CA.
host_cert() {
	local h=$1 out=$work/tls/$1${2:-}
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$h" \
		-keyout "$out.key" -out "$out.csr" 2>/dev/null
	printf 'subjectAltName=IP:%s,DNS:%s\n' "${ip[$h]}" "$h" >"$out.ext"
	openssl x509 -req -in "$out.csr" -CA "$work/tls/ca.pem" -CAkey "$work/tls/ca.key" -CAcreateserial \
		-days 30 -extfile "$out.ext" -out "$out.pem" 2>/dev/null
}
for h in "${hosts[@]}"; do host_cert "$h"; done
# served_cert ADDR: the SHA-256 fingerprint of the certificate a TLS port
# presents; cert_fp FILE: the same of a PEM file.
served_cert() {
	openssl s_client -connect "$1" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256
}
cert_fp() { openssl x509 -in "$1" -noout -fingerprint -sha256; }

log "Inventory $work/inventory"
mkdir -p "$work/inventory/group_vars"
# write_hosts [mq4|ctl|ctl3|green]: the inventory's hosts.yml; mq4 (broker-c
# master) joins for the scale-out of step 7, the controller-mode group
# broker-d (mq7, mq8; mq9 with ctl3) for step 10, the green cluster (mq5,
# mq6) for the upgrade of step 11 (broker-d is gone by then). Only plain
# values: mqadmin hosts check reads this inventory too.
write_hosts() {
	local stage=${1:-}
	echo "all:"
	echo "  children:"
	echo "    mqops_namesrv:"
	echo "      hosts: {mq1: {}, mq2: {}$([ "$stage" = green ] && echo ', mq5: {}, mq6: {}')}"
	echo "    mqops_broker:"
	echo "      children:"
	echo "        mqops_broker_master:"
	echo "          hosts:"
	echo "            mq1: {mqops_broker_name: broker-a, mqops_broker_id: 0, mqops_broker_amqp_gateway_enable: true}"
	echo "            mq3: {mqops_broker_name: broker-b, mqops_broker_id: 0}"
	[ -n "$stage" ] && echo "            mq4: {mqops_broker_name: broker-c, mqops_broker_id: 0}"
	case $stage in ctl*) echo "            mq7: {mqops_broker_name: broker-d, mqops_broker_id: 0}" ;; esac
	if [ "$stage" = green ]; then
		echo "            mq5: {mqops_broker_name: broker-g1, mqops_broker_id: 0}"
		echo "            mq6: {mqops_broker_name: broker-g2, mqops_broker_id: 0}"
	fi
	echo "        mqops_broker_slave:"
	echo "          hosts:"
	echo "            mq2: {mqops_broker_name: broker-a, mqops_broker_id: 1}"
	case $stage in ctl*) echo "            mq8: {mqops_broker_name: broker-d, mqops_broker_id: 1}" ;; esac
	[ "$stage" = ctl3 ] && echo "            mq9: {mqops_broker_name: broker-d, mqops_broker_id: 2}"
	echo "    mqops_controller:"
	echo "      hosts: {mq3: {}}"
	echo "    mqops_nsaddr:"
	echo "      hosts: {mq3: {}}"
	echo "    mqops_amqp:"
	echo "      hosts: {mq3: {}}"
	[ "$stage" = green ] && echo "    mqops_green:" && echo "      hosts: {mq5: {}, mq6: {}}"
	echo "    mqops_zabbix_agent:"
	echo "      children: {mqops_namesrv: {}, mqops_broker: {}}"
	return 0
}
write_hosts >"$work/inventory/hosts.yml"
cat >"$work/inventory/group_vars/all.yml" <<EOF
ansible_user: root
ansible_ssh_private_key_file: $work/client_key
ansible_ssh_common_args: -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes
ansible_python_interpreter: /usr/bin/python3
mqops_service_manager: supervisor
mqops_os_tuning_sysctl_apply: false
zabbix_agent_server: 127.0.0.1,$net.1
EOF
# ACL and TLS for the whole run (checked in step 4b, edited in step 5b).
# The controller's own address (the test's mqadmin, load clients and
# Zabbix queries) is white-listed; the hosts are not, so the brokers'
# registrations and slave syncs, the roles' and playbooks' mqadmin calls
# and the Zabbix helper on the hosts must all sign. Permissive TLS: the
# v2.1.2 load client and mqops-zbx have no TLS. The admin secret is
# vault-encrypted, as production inventories keep it.
admin_sk=adminSecret-$RANDOM$RANDOM
monitor_sk=monitorSecret-$RANDOM
probe_sk=probeSecret-$RANDOM
printf 'vault-%s\n' "$RANDOM$RANDOM" >"$work/vault-pass"
export ANSIBLE_VAULT_PASSWORD_FILE=$work/vault-pass
{
	echo "mqops_acl_enable: true"
	echo "mqops_acl_admin_access_key: mqopsAdmin"
	# Its output ends without a newline.
	ansible-vault encrypt_string "$admin_sk" --name mqops_acl_admin_secret_key 2>/dev/null
	echo
	echo "mqops_acl_global_white_remote_addresses: [$net.1]"
	echo "mqops_acl_accounts:"
	echo "  - {accessKey: zbxMonitor, secretKey: $monitor_sk, defaultTopicPerm: SUB, defaultGroupPerm: SUB}"
	echo "zabbix_agent_mqadmin_access_key: zbxMonitor"
	echo "zabbix_agent_mqadmin_secret_key: $monitor_sk"
	echo "mqops_tls_enable: true"
	echo "mqops_tls_ca_src: $work/tls/ca.pem"
} >>"$work/inventory/group_vars/all.yml"
grep -q '^mqops_acl_admin_secret_key: !vault' "$work/inventory/group_vars/all.yml" || die "ansible-vault encrypt_string failed"
mkdir -p "$work/inventory/host_vars"
for h in "${hosts[@]}"; do
	d=$work/$h
	cat >"$work/inventory/host_vars/$h.yml" <<-EOF
		ansible_host: ${ip[$h]}
		mqops_user: mqops-$h
		mqops_group: mqops-$h
		mqops_bin_dir: $d/bin
		mqops_log_dir: $d/log
		mqops_conf_dir: $d/etc
		mqops_run_dir: $d/run
		mqops_broker_store_dir: $d/store
		mqops_common_user_home: $d/home
		mqops_namesrv_kv_config_path: $d/namesrv/kvConfig.json
		mqops_controller_store_dir: $d/controller
		mqops_os_tuning_sysctl_file: $d/sysctl-60-mqops.conf
		mqops_os_tuning_limits_file: $d/limits-60-mqops.conf
		mqops_os_tuning_thp_dir: $d/thp
		mqops_os_tuning_thp_tmpfiles_file: $d/tmpfiles-60-mqops-thp.conf
		zabbix_agent_conf_file: $d/zabbix/agent.conf
		zabbix_agent_include_dir: $d/zabbix/agent.d
		zabbix_agent_log_file: $d/zabbix/log/agent.log
		zabbix_agent_run_dir: $d/zabbix/run
		zabbix_agent_state_dir: $d/zabbix/state
		mqops_tls_cert_src: $work/tls/$h.pem
		mqops_tls_key_src: $work/tls/$h.key
	EOF
done
# mq3 also runs the name-server endpoint, and keeps the DNS-style record in
# its own hosts file (a resolver's file in production).
# broker-a, with its slave on mq2, answers SEND_OK only once mq2 holds a
# message.
echo "mqops_broker_master_role: SYNC_MASTER" >>"$work/inventory/host_vars/mq1.yml"
# The name servers of mq1 and mq2 run a controller each; with mq3's
# standalone one they form one Raft group of three.
for h in mq1 mq2; do
	echo "mqops_namesrv_enable_controller: true" >>"$work/inventory/host_vars/$h.yml"
done
# broker-a's master and broker-b also serve RocketMQ 5's gRPC protocol.
for h in mq1 mq3; do
	echo "mqops_broker_grpc_enable: true" >>"$work/inventory/host_vars/$h.yml"
done
# broker-d (step 10) runs in controller mode: the controllers of mq1-mq3
# pick its master.
for h in mq7 mq8 mq9; do
	echo "mqops_broker_controller_mode: true" >>"$work/inventory/host_vars/$h.yml"
done
cat >>"$work/inventory/host_vars/mq3.yml" <<EOF
mqops_nsaddr_dns_name: mq-ns.mqops.test
mqops_nsaddr_dns_hosts_file: $work/mq3/hosts
EOF
export ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp
# The hosts' facts do not change during the run: gather them once per host
# (gathering = smart in ansible.cfg), not once per playbook, and keep each
# host's SSH master connection for the whole run, not 60 s; no compression
# (Ansible's default -C) over a local bridge, where it only costs CPU.
export ANSIBLE_CACHE_PLUGIN=jsonfile ANSIBLE_CACHE_PLUGIN_CONNECTION=$work/facts ANSIBLE_CACHE_PLUGIN_TIMEOUT=0
export ANSIBLE_SSH_ARGS='-o ControlMaster=auto -o ControlPersist=30m'
# Ansible's processes poll each other every 1 ms by default, a busy loop
# that takes CPU from the daemons and clients under test; 50 ms is what
# its documentation suggests for unattended runs.
export ANSIBLE_INTERNAL_POLL_INTERVAL=0.05

for _ in $(seq 1 50); do
	ansible all -i "$work/inventory" -m ansible.builtin.ping -o >"$work/ping.log" 2>&1 && break
	sleep 0.2
done || { cat "$work/ping.log"; die "the test hosts do not answer over SSH"; }

steps=$((steps + 1))
log "3. deploy.yml --check on fresh hosts"
playbook check-fresh --check
for h in "${hosts[@]}"; do
	[ ! -e "$work/$h/bin" ] || die "--check created $work/$h/bin"
	[ ! -e "$work/$h/etc" ] || die "--check created $work/$h/etc"
done
echo "ok: --check passed and created nothing"

steps=$((steps + 1))
log "4. deploy.yml"
playbook deploy

# pid_of HOST SERVICE: the supervisor's pid for it
pid_of() { cat "$work/$1/run/mqops-$2.pid"; }
# start_load DIR ARGS...: the load client in the background, writing to DIR.
start_load() {
	local dir=$1
	shift
	mkdir -p "$dir"
	HOME=$dir "$root/bin/loadclient" -dir "$dir" -rate 100 -drain 3m "$@" >"$dir/out" 2>&1 &
	load_pid=$!
}
# load_progress DIR: wait until the producer has had 100 more sends
# acknowledged than when called (about a second at -rate 100) and the
# consumer has received messages: the application is working now.
load_progress() {
	local dir=$1 before n
	# The client creates its files once it runs.
	lines() { if [ -e "$1" ]; then wc -l <"$1"; else echo 0; fi; }
	before=$(lines "$dir/acked")
	for _ in $(seq 1200); do
		n=$(lines "$dir/acked")
		[ "$n" -ge $((before + 100)) ] && [ -s "$dir/received" ] && return 0
		sleep 0.1
	done
	cat "$dir/out"
	die "the load client did not get 100 more sends acknowledged and messages received within 120 s ($before, then $n acked)"
}
# stop_load DIR: stop the producer; the client exits once its consumer has
# received every acknowledged message (or gives up after its -drain).
stop_load() {
	touch "$1/stop"
	local rc=0
	wait "$load_pid" || rc=$?
	load_pid=
	[ -s "$1/summary.json" ] || { cat "$1/out"; die "the load client left no summary (exit $rc)"; }
}
# check_load DIR BROKER...: no send failed beyond the client's retries, the
# consumer received every acknowledged message, and the acknowledged
# messages were stored on each BROKER.
check_load() {
	"$py" - "$@" <<'EOF2'
import json, sys
d, want = sys.argv[1], sorted(sys.argv[2:])
s = json.load(open(f"{d}/summary.json"))
print(f"load: {s['acked']} sends acknowledged {s['ackedPerBroker']}, {s['failed']} failed after the client's retries, "
      f"{s['received']} received by the consumer ({s['duplicates']} duplicates)")
fails = open(f"{d}/failed").read().splitlines()
for l in fails[:10]:
    print("  failed:", l[:300])
assert s["acked"] >= 300, f"only {s['acked']} sends acknowledged: the producer did not run through"
assert not fails and s["failed"] == 0, f"{s['failed']} sends failed beyond the client's retries"
missing = s.get("missing") or []
assert not missing, f"{len(missing)} acknowledged messages never reached the consumer, e.g. {missing[:5]}"
assert s["received"] == s["acked"]
got = sorted(b for b, n in s["ackedPerBroker"].items() if n > 0)
assert all(b in got for b in want), f"acknowledged messages were stored on {got}, want every one of {want}"
print(f"ok: no send failed; every acknowledged message was consumed; brokers {got}")
EOF2
}
check_process() { # check_process HOST SERVICE BINARY
	local pid
	pid=$(pid_of "$1" "$2") || die "$1: no pid file for $2"
	[ "$(ip netns identify "$pid")" = "mqops-$1" ] || die "$1: $2 (pid $pid) runs outside namespace mqops-$1"
	[ "$(readlink "/proc/$pid/exe")" = "$work/$1/bin/$3" ] || die "$1: pid $pid is not $work/$1/bin/$3"
	[ "$(ps -o user= -p "$pid")" = "mqops-$1" ] || die "$1: $2 runs as $(ps -o user= -p "$pid"), not mqops-$1"
	echo "ok: $1 $2 pid $pid in mqops-$1 as mqops-$1"
}
check_process mq1 namesrv mqnamesrv
check_process mq2 namesrv mqnamesrv
check_process mq1 broker mqbroker
check_process mq2 broker mqbroker
check_process mq3 broker mqbroker
grep -qx 'vm.max_map_count=655360' "$work/mq1/sysctl-60-mqops.conf" || die "sysctl file lacks vm.max_map_count"
grep -qx 'brokerRole=SLAVE' "$work/mq2/etc/broker.conf" || die "mq2's broker.conf is not a slave's"
grep -qx 'brokerRole=SYNC_MASTER' "$work/mq1/etc/broker.conf" || die "mq1's broker.conf is not a SYNC_MASTER's"
grep -qx 'haListenPort=10912' "$work/mq1/etc/broker.conf" || die "mq1's broker.conf lacks haListenPort=10912"
task_ok "$work/deploy.log" "Wait until the slave's commit log reaches it and the master reports an in-sync slave" mq2 || die "deploy.yml did not check the slave replicates"
echo "ok: mq1 is broker-a's SYNC_MASTER (HA port 10912), mq2 its slave, checked to replicate by the play"
# grpc_answers HOST: a QueryRoute without a client id over TLS with HTTP/2,
# as the Go v5 client dials, answers gRPC OK with the MessagingService's
# CLIENT_ID_REQUIRED status in the body: the broker's gRPC service itself.
grpc_answers() {
	local out
	out=$(printf '\0\0\0\0\0' | curl -sSk --http2 --max-time 10 -D "$work/grpc-$1.headers" -X POST \
		-H 'content-type: application/grpc' -H 'te: trailers' --data-binary @- \
		"https://${ip[$1]}:8081/apache.rocketmq.v2.MessagingService/QueryRoute" | tr -d '\0') || return 1
	grep -qi '^grpc-status: 0' "$work/grpc-$1.headers" && [[ $out == *"x-mq-client-id header is required"* ]]
}
for h in mq1 mq3; do
	grep -qx 'enableProxy=true' "$work/$h/etc/broker.conf" && grep -qx 'grpcServerPort=8081' "$work/$h/etc/broker.conf" ||
		die "$h's broker.conf does not enable the gRPC service on 8081"
	grpc_answers "$h" || die "$h: the gRPC port ${ip[$h]}:8081 does not answer as MessagingService: $(cat "$work/grpc-$h.headers" 2>/dev/null)"
done
task_ok "$work/deploy.log" "Ask each name server for the broker's published gRPC address" mq1 mq3 ||
	die "deploy.yml did not check the gRPC port and its published address on mq1 and mq3"
! grep -q '^enableProxy' "$work/mq2/etc/broker.conf" || die "mq2's broker.conf enables the gRPC service"
! grpc_answers mq2 || die "mq2 serves gRPC without mqops_broker_grpc_enable"
echo "ok: mq1 and mq3 answer gRPC on 8081 (health-checked and published by the play); mq2 does not serve it"
check_process mq3 nsaddr mqnsaddr
check_process mq3 controller mqcontroller
for h in mq1 mq2; do
	grep -qx 'enableControllerInNamesrv=true' "$work/$h/etc/namesrv.conf" || die "$h's namesrv.conf does not embed a controller"
done
grep -qx "controllerDLegerSelfId=mq3" "$work/mq3/etc/controller.conf" || die "mq3's controller.conf lacks its id"
nsaddr_url=http://${ip[mq3]}:8080/rocketmq/nsaddr
[ "$(curl -fsS "$nsaddr_url")" = "$namesrv_addr" ] || die "$nsaddr_url does not serve $namesrv_addr"
grep -qx "${ip[mq1]} mq-ns.mqops.test" "$work/mq3/hosts" && grep -qx "${ip[mq2]} mq-ns.mqops.test" "$work/mq3/hosts" ||
	die "the DNS-style record does not name mq1 and mq2: $(cat "$work/mq3/hosts")"
echo "ok: $nsaddr_url serves $namesrv_addr; mq-ns.mqops.test names mq1 and mq2"
check_process mq3 amqp mqamqp
for h in mq1 mq2 mq3; do
	grep -qx 'enableLmq=true' "$work/$h/etc/broker.conf" && grep -qx 'enableMultiDispatch=true' "$work/$h/etc/broker.conf" ||
		die "$h's broker.conf does not turn on light queues for the AMQP gateway"
done
task_ok "$work/deploy.log" "Check the gateway answers the AMQP 0-9-1 protocol header with connection.start" mq3 ||
	die "deploy.yml did not health-check the AMQP gateway on mq3"
# amqp_check NAME [HOST]: an amqp091-go application on HOST (mq3, the
# mqamqp host, by default) itself (guest is a loopback user) declares a
# durable quorum queue, publishes 100 persistent messages with confirms and
# consumes every one back.
amqp_check() {
	local h=${2:-mq3}
	ip netns exec "mqops-$h" bin/amqpclient -url amqp://guest:guest@127.0.0.1:5672/ -queue "ansible-$1" -n 100 \
		>"$work/amqp-$1.json" 2>"$work/amqp-$1.err" || die "AMQP through $h's gateway ($1): $(cat "$work/amqp-$1.json" "$work/amqp-$1.err")"
	echo "ok: AMQP through $h's gateway ($1): $(cat "$work/amqp-$1.json")"
}
amqp_check deploy
# With TLS on (mqops_tls_enable), the gateway also serves amqps on 5671
# with the host's certificate, which a client checks against the CA.
grep -qx 'tlsListenAddr=0.0.0.0:5671' "$work/mq3/etc/amqp.conf" || die "mq3's amqp.conf has no amqps listener"
ip netns exec mqops-mq3 bin/amqpclient -url amqps://guest:guest@127.0.0.1:5671/ -ca "$work/tls/ca.pem" -server-name mq3 \
	-queue ansible-amqps -n 20 >"$work/amqps.json" 2>"$work/amqps.err" || die "amqps through mq3's gateway: $(cat "$work/amqps.json" "$work/amqps.err")"
echo "ok: amqps through mq3's gateway, certificate checked against the CA: $(cat "$work/amqps.json")"
# The gateway serves its figures (statsListenAddr, the role's default) to
# the Zabbix helper on its own host; they count the 100 messages.
grep -qx 'statsListenAddr=127.0.0.1:15680' "$work/mq3/etc/amqp.conf" || die "mq3's amqp.conf has no statsListenAddr"
task_ok "$work/deploy.log" "Check the gateway serves its stats for monitoring" mq3 || die "deploy.yml did not check mq3's gateway stats"
gwstats=$(ip netns exec mqops-mq3 bin/mqops-zbx amqpgw --addr 127.0.0.1:15680)
python3 -c 'import json, sys; s = json.load(sys.stdin); sys.exit(not (s["up"] == 1 and min(s["published"], s["delivered"], s["acked"]) >= 100))' <<<"$gwstats" ||
	die "mq3's gateway stats do not count the 100 messages: $gwstats"
echo "ok: mq3's gateway stats through mqops-zbx amqpgw: $gwstats"
# mq1's broker runs the gateway inside it (mqops_broker_amqp_gateway_enable
# on that host only).
grep -qx 'enableAmqpGateway=true' "$work/mq1/etc/broker.conf" && grep -qx 'amqpListenPort=5672' "$work/mq1/etc/broker.conf" ||
	die "mq1's broker.conf does not start the broker's AMQP gateway"
! grep -q 'enableAmqpGateway' "$work/mq2/etc/broker.conf" || die "mq2's broker.conf starts an AMQP gateway it was not asked for"
task_ok "$work/deploy.log" "Check the broker's AMQP gateway answers the AMQP 0-9-1 protocol header with connection.start" mq1 ||
	die "deploy.yml did not health-check mq1's embedded AMQP gateway"
amqp_check embedded mq1
if bin/amqpclient -url "amqp://guest:guest@${ip[mq3]}:5672/" -n 1 -timeout 20s >/dev/null 2>"$work/amqp-remote.err"; then
	die "guest logged in to mq3's gateway from the controller"
fi
grep -q '403' "$work/amqp-remote.err" || die "guest from the controller was not refused with 403: $(cat "$work/amqp-remote.err")"
echo "ok: guest from the controller refused with 403 (loopbackUsers)"

log "mqadmin hosts check against the generated inventory"
bin/mqadmin hosts check -i "$work/inventory" --key "$work/client_key" \
	--known-hosts "$work/known_hosts" -o json >"$work/hosts-check.json" ||
	{ cat "$work/hosts-check.json"; die "mqadmin hosts check failed"; }
echo "ok: mqadmin hosts check"

log "Produce and consume through the new cluster from the controller"
mqadmin() { bin/mqadmin -n "$namesrv_addr" "$@"; }
mqadmin topic create -t "$topic" -c DefaultCluster --queues 4 >/dev/null
key="smoke-$$-$RANDOM"
# The route reaches the producer through the name servers just deployed;
# 16 sends round-robin over both masters' queues.
mqadmin message send -t "$topic" --body "hello from $key" --keys "$key" --count 16 -o json >"$work/send.json"
"$py" - "$work/send.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
bad = [x for x in r if x["sendResult"] != "SEND_OK"]
assert len(r) == 16 and not bad, f"sends: {len(r)}, not OK: {bad}"
brokers = sorted({x["brokerName"] for x in r})
assert brokers == ["broker-a", "broker-b"], f"sends reached {brokers}, want both broker groups"
print("ok: 16 sends SEND_OK on", brokers)
EOF
# The key index is written behind the consume queue (and fresh brokers
# create their first index file on their first message): poll briefly.
for _ in $(seq 10); do
	mqadmin message query -t "$topic" --key "$key" -o json >"$work/by-key.json"
	[ "$(grep -c '"msgId"' "$work/by-key.json")" -ge 16 ] && break
	sleep 1
done
mqadmin message query -t "$topic" --tag '*' -o json >"$work/by-pull.json"
"$py" - "$work/by-key.json" "$work/by-pull.json" "hello from $key" <<'EOF'
import json, sys
body = sys.argv[3]
for path, how in ((sys.argv[1], "by key, through the index"), (sys.argv[2], "by pulling every queue")):
    msgs = [m for m in json.load(open(path)) if m["body"] == body]
    assert len(msgs) == 16, f"{how}: {len(msgs)} of 16 messages read back"
    print(f"ok: 16 messages read back {how}")
EOF

log "The slave mq2 replicates broker-a"
# Its commit log reaches the master's end: the same offset (the sends above
# are SEND_OK from a SYNC_MASTER, so the slave acknowledged them already).
slave_caught_up() {
	local o
	for _ in $(seq 60); do
		o=$(for h in mq1 mq2; do
			mqadmin broker status -b "${ip[$h]}:10911" -o json |
				"$py" -c 'import json, sys; print(next(iter(json.load(sys.stdin).values()))["commitLogMaxOffset"])'
		done | tr '\n' ' ')
		set -- $o
		if [ "$1" -gt 0 ] && [ "$1" = "$2" ]; then
			echo "ok: commit-log max offset $1 on master mq1 and slave mq2"
			return 0
		fi
		sleep 1
	done
	die "commit-log max offsets after 60 s: master mq1 $1, slave mq2 $2"
}
slave_caught_up
# A message sent through the master, read from the slave's own address: its
# offset message id with the slave's IP (both listen on 10911) names the
# slave, which serves VIEW_MESSAGE_BY_ID from its own copy.
"$py" - "$work/send.json" "${ip[mq2]}" >"$work/slave-id" <<'EOF'
import json, socket, sys
m = next(x for x in json.load(open(sys.argv[1])) if x["brokerName"] == "broker-a")
print(socket.inet_aton(sys.argv[2]).hex().upper() + m["offsetMsgId"][8:], m["offsetMsgId"])
EOF
read -r slave_id master_id <"$work/slave-id"
mqadmin message get -i "$slave_id" --no-track -o json >"$work/from-slave.json"
"$py" - "$work/from-slave.json" "hello from $key" "$master_id" "${ip[mq2]}" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
assert len(m) == 1 and m[0]["body"] == sys.argv[2] and m[0]["offsetMsgId"] == sys.argv[3], m
print(f"ok: message {sys.argv[3]} (sent through the master) read from the slave at {sys.argv[4]}")
EOF

log "The controllers: two inside the name servers, one standalone, one leader"
ctl_addr="${ip[mq1]}:9878;${ip[mq2]}:9878;${ip[mq3]}:9878"
task_ok "$work/deploy.log" "Wait until the controller answers with its group's leader" mq1 mq2 mq3 ||
	die "deploy.yml did not health-check the controllers"
bin/mqadmin controller metadata -a "$ctl_addr" -o json >"$work/controllers.json" ||
	{ cat "$work/controllers.json"; die "mqadmin controller metadata failed"; }
"$py" - "$work/controllers.json" "$ctl_addr" <<'EOF'
import json, sys
ms, want = json.load(open(sys.argv[1])), sys.argv[2].split(";")
assert sorted(m["addr"] for m in ms) == sorted(want), f"answers from {[m['addr'] for m in ms]}, want {want}"
bad = [m for m in ms if m.get("error")]
assert not bad, f"controllers without an answer: {bad}"
assert {m["group"] for m in ms} == {"mqops"}, f"groups: {[m['group'] for m in ms]}"
leaders = [m["addr"] for m in ms if m["isLeader"]]
assert len(leaders) == 1, f"{len(leaders)} controllers say they lead: {leaders}"
known = {(m["controllerLeaderId"], m["controllerLeaderAddress"]) for m in ms}
assert len(known) == 1 and next(iter(known))[1] == leaders[0], f"the controllers know different leaders: {known}, leading: {leaders}"
peers = {frozenset((p["id"], p["addr"]) for p in m["peers"]) for m in ms}
assert len(peers) == 1 and len(next(iter(peers))) == 3, f"peer lists: {peers}"
print(f"ok: controllers {', '.join(want)} answer as group mqops, one leader {next(iter(known))[0]} at {leaders[0]}")
EOF

log "The Zabbix agents answer the mqops keys (role zabbix_agent)"
zget() { bin/mqops-zbx get --timeout 20s -s "${ip[$1]}:10050" "$2"; }
for h in mq1 mq2 mq3; do
	pid=$(cat "$work/$h/run/zabbix-agent.pid") || die "$h: no pid file for the Zabbix agent"
	[ "$(ip netns identify "$pid")" = "mqops-$h" ] || die "$h: the Zabbix agent runs outside mqops-$h"
	[ "$(ps -o user= -p "$pid")" = zabbix ] || die "$h: the Zabbix agent runs as $(ps -o user= -p "$pid")"
	zget "$h" "rocketmq.broker.get[\"${ip[$h]}:10911\",\"\"]" >"$work/zbx-broker-$h.json" || die "$h: rocketmq.broker.get failed"
	zget "$h" "rocketmq.logs.get[\"$work/$h/log\"]" >"$work/zbx-logs-$h.json" || die "$h: rocketmq.logs.get failed"
done
zget mq1 "rocketmq.namesrv.get[\"${ip[mq1]}:9876\"]" >"$work/zbx-namesrv.json" || die "rocketmq.namesrv.get failed"
zget mq3 "rocketmq.cluster.get[\"${namesrv_addr/;/,}\",DefaultCluster]" >"$work/zbx-cluster.json" || die "rocketmq.cluster.get failed"
zget mq3 "rocketmq.business.get[\"${namesrv_addr/;/,}\",DefaultCluster]" >"$work/zbx-business.json" || die "rocketmq.business.get failed"
zget mq3 'mqops.amqpgw.get["127.0.0.1:15680"]' >"$work/zbx-amqpgw.json" || die "mqops.amqpgw.get failed"
task_ok "$work/deploy.log" "Ask the agent for the AMQP gateway's figures" mq3 || die "the zabbix_agent role did not check mq3's AMQP gateway key"
"$py" - "$work" "$topic" <<'EOF2'
import json, sys
work, topic = sys.argv[1], sys.argv[2]
load = lambda name: json.load(open(f"{work}/{name}.json"))
for h, name, bid in (("mq1", "broker-a", 0), ("mq2", "broker-a", 1), ("mq3", "broker-b", 0)):
    b = load(f"zbx-broker-{h}")
    assert b["up"] == 1 and b["brokerName"] == name and b["brokerId"] == bid, f"{h}: {b}"
    assert b["registered"] == 2 and b["namesrvCount"] == 2, f"{h}: registered in {b['registered']} of {b['namesrvCount']} name servers"
    logs = load(f"zbx-logs-{h}")
    assert logs["files"]["broker"]["present"] and logs["files"]["broker"]["lines"] > 0, f"{h}: the agent's user cannot read broker.log: {logs}"
ns = load("zbx-namesrv")
assert ns["up"] == 1 and ns["brokers"] == 3 and ns["masters"] == 2, ns
cl = load("zbx-cluster")
assert cl["status"] == 0 and cl["mastersWritable"] == 2 and cl["slavesUp"] == 1 and cl["namesrvUp"] == 2, cl
biz = load("zbx-business")
assert biz["topics"][topic]["today"] == 16, biz["topics"].get(topic)
gw = load("zbx-amqpgw")
assert gw["up"] == 1 and gw["published"] >= 100 and gw["acked"] >= 100, gw
print("ok: agents on mq1-mq3 run as zabbix in their namespaces; broker, logs, name server, cluster, business and AMQP gateway keys answer")
EOF2

steps=$((steps + 1))
log "4b. ACL and TLS: files, signed registrations, unsigned refused, the deployed certificates served"
# file_is FILE OWNER MODE
file_is() {
	local got
	got=$(stat -c '%U %a' "$1") || die "$1 is missing"
	[ "$got" = "$2 $3" ] || die "$1: owner and mode $got, want $2 $3"
}
for h in mq1 mq2 mq3; do
	file_is "$work/$h/conf/plain_acl.yml" "mqops-$h" 600
	file_is "$work/$h/conf/tools.yml" "mqops-$h" 600
	file_is "$work/$h/etc/broker.conf" "mqops-$h" 600
	file_is "$work/$h/etc/tls/node.key" "mqops-$h" 600
	file_is "$work/$h/zabbix/state/mqadmin.env" zabbix 600
	for kv in aclEnable=true "aclFile=$work/$h/conf/plain_acl.yml" useTLS=true tlsClientAuthServer=true \
		"tlsClientTrustCertPath=$work/$h/etc/tls/ca.pem" tlsServerMode=permissive "tlsCertPath=$work/$h/etc/tls/node.pem"; do
		grep -qxF "$kv" "$work/$h/etc/broker.conf" || die "$h's broker.conf lacks $kv"
	done
	grep -q '^innerClientAuthenticationCredentials={"accessKey": "mqopsAdmin"' "$work/$h/etc/broker.conf" ||
		die "$h's broker.conf lacks the inner credentials"
done
for h in mq1 mq2; do
	for kv in aclEnable=true tlsServerMode=permissive tlsTestModeEnable=false; do
		grep -qxF "$kv" "$work/$h/etc/namesrv.conf" || die "$h's namesrv.conf lacks $kv"
	done
done
grep -q '^- accessKey: mqopsAdmin$' "$work/mq1/conf/plain_acl.yml" && grep -qF 'admin: true' "$work/mq1/conf/plain_acl.yml" ||
	die "plain_acl.yml lacks the admin account: $(sed 's/secretKey:.*/secretKey: .../' "$work/mq1/conf/plain_acl.yml")"
for f in "$work"/*.log; do
	! grep -qF -e "$admin_sk" -e "$monitor_sk" "$f" || die "a secret appears in the play's output $f"
done
echo "ok: plain_acl.yml, tools.yml, broker.conf, the TLS key and the Zabbix helper's keys are mode 0600 of their users; no secret in the output"
# Every broker's registration reached both name servers signed by the
# admin account (each name server's acl.log has the allowed admin code).
for ns in mq1 mq2; do
	for h in mq1 mq2 mq3; do
		grep -E "ALLOW.*103.*mqopsAdmin.*${ip[$h]//./\\.}:" "$work/$ns/log/acl.log" >/dev/null ||
			die "$ns's acl.log has no signed registration from $h"
	done
done
echo "ok: the name servers on mq1 and mq2 took signed registrations from every broker"
# in_ns HOST CMD...: a command from the host's own address (not
# white-listed), without any of mqadmin's credentials.
mkdir -p "$work/nohome"
in_ns() {
	local h=$1
	shift
	ip netns exec "mqops-$h" env -u ROCKETMQ_HOME -u MQADMIN_ACCESS_KEY -u MQADMIN_SECRET_KEY HOME="$work/nohome" "$@"
}
if in_ns mq3 bin/mqadmin -n "$namesrv_addr" topic create -t AclProbe -b "${ip[mq3]}:10911" >"$work/acl-unsigned.out" 2>&1; then
	die "an unsigned topic create from mq3 was accepted"
fi
grep -q 'No accessKey is configured' "$work/acl-unsigned.out" || die "unsigned topic create: $(cat "$work/acl-unsigned.out")"
in_ns mq3 env ROCKETMQ_HOME="$work/mq3" bin/mqadmin -n "$namesrv_addr" topic create -t AclProbe -b "${ip[mq3]}:10911" \
	>"$work/acl-signed.out" 2>&1 || die "topic create signed with mq3's tools.yml failed: $(cat "$work/acl-signed.out")"
echo "ok: from mq3, an unsigned topic create is refused (No accessKey is configured); signed with its tools.yml it is done"
# TLS: each port presents the certificate the play copied, and mqadmin
# --tls checked against the CA reaches name servers and brokers. The
# controller ports too: the embedded ones' (mq1, mq2) and the standalone
# one's (mq3), which brokers with useTLS check against the CA whichever
# is the leader.
for a in mq1:9876 mq2:9876 mq1:10911 mq2:10911 mq3:10911 mq1:9878 mq2:9878 mq3:9878; do
	h=${a%:*}
	[ "$(served_cert "${ip[$h]}:${a#*:}")" = "$(cert_fp "$work/tls/$h.pem")" ] ||
		die "${ip[$h]}:${a#*:} does not present $h's deployed certificate"
done
tls_admin() { bin/mqadmin --tls --tls-ca-file "$work/tls/ca.pem" -n "$namesrv_addr" "$@"; }
tls_admin cluster list -o json >"$work/tls-cluster.json"
[ "$(grep -o '"brokerName"' "$work/tls-cluster.json" | wc -l)" = 3 ] || die "mqadmin --tls cluster list: $(cat "$work/tls-cluster.json")"
tls_admin broker status -b "${ip[mq1]}:10911" -o json >/dev/null || die "mqadmin --tls broker status failed"
! bin/mqadmin --tls -n "$namesrv_addr" cluster list >/dev/null 2>&1 ||
	die "mqadmin --tls accepted the name servers' certificates without the CA"
echo "ok: every port presents its deployed certificate; mqadmin --tls with the CA works (and fails without it)"

steps=$((steps + 1))
log "5. deploy.yml again: nothing may change"
playbook rerun
changed=$(recap_changed "$work/rerun.log")
[ "$changed" = 0 ] || die "second run changed $changed thing(s); see the recap above"
echo "ok: changed=0 on every host"

steps=$((steps + 1))
log "5b. deploy.yml with an account added and mq3's certificate renewed"
# The new account is refused before; after the run the daemons have
# re-read plain_acl.yml without a restart. The new certificate restarts
# mq3's broker only (the daemons load certificates at start).
probe() {
	in_ns mq1 bin/mqadmin -n "$namesrv_addr" --access-key probeUser --secret-key "$probe_sk" \
		broker status -b "${ip[mq1]}:10911" -o json
}
probe >"$work/probe-before.out" 2>&1 && die "probeUser was accepted before it was added"
grep -q 'No acl config for probeUser' "$work/probe-before.out" || die "probeUser before: $(cat "$work/probe-before.out")"
declare -A pid_acl
for x in mq1:namesrv mq2:namesrv mq1:broker mq2:broker mq3:broker mq3:controller; do pid_acl[$x]=$(pid_of "${x%:*}" "${x#*:}"); done
sed -i "/accessKey: zbxMonitor/a\\  - {accessKey: probeUser, secretKey: $probe_sk, defaultTopicPerm: SUB}" "$work/inventory/group_vars/all.yml"
host_cert mq3
playbook acl-edit
for x in mq1:namesrv mq2:namesrv mq1:broker mq2:broker; do
	[ "$(pid_of "${x%:*}" "${x#*:}")" = "${pid_acl[$x]}" ] || die "${x%:*}'s $x was restarted by an account change"
done
for x in broker controller; do
	[ "$(pid_of mq3 "$x")" != "${pid_acl[mq3:$x]}" ] || die "mq3's $x was not restarted for its new certificate"
done
grep -q 'accessKey: probeUser' "$work/mq1/conf/plain_acl.yml" || die "mq1's plain_acl.yml lacks probeUser"
for _ in $(seq 30); do probe >"$work/probe-after.out" 2>&1 && break; sleep 1; done
probe >"$work/probe-after.out" 2>&1 || die "probeUser still refused 30 s after the run: $(cat "$work/probe-after.out")"
for port in 10911 9878; do
	[ "$(served_cert "${ip[mq3]}:$port")" = "$(cert_fp "$work/tls/mq3.pem")" ] || die "mq3's port $port does not present its new certificate"
done
echo "ok: probeUser works without a restart (name servers and brokers on mq1 and mq2 kept their pids); mq3's broker and controller restarted and present its new certificate"

steps=$((steps + 1))
log "6. A stopped broker is started by deploy.yml --tags mqops_broker"
"$work/mq3/bin/mqops-supervise" stop "$work/mq3/run/mqops-broker.pid" "$work/mq3/bin/mqbroker" 30
playbook restart-stopped --tags mqops_broker
[ "$(recap_changed_host "$work/restart-stopped.log" mq3)" -ge 1 ] || die "mq3's broker was not started"
[ "$(recap_changed_host "$work/restart-stopped.log" mq1)" = 0 ] || die "mq1 changed"
[ "$(recap_changed_host "$work/restart-stopped.log" mq2)" = 0 ] || die "mq2 changed"
check_process mq3 broker mqbroker

steps=$((steps + 1))
log "7. scale_out.yml adds broker-c (mq4) with the cluster's topics and groups"
# Metadata the new group must get: a topic with its own queue counts, and
# a group with non-default settings, on both existing masters.
mqadmin topic create -t ScaleOutTopic -c DefaultCluster -r 6 -w 6 -p 6 >/dev/null
mqadmin group create -g ScaleOutGroup -c DefaultCluster --retry-max-times 3 --retry-queues 2 >/dev/null
write_hosts mq4 >"$work/inventory/hosts.yml"
play scale_out.yml scale-out
[ "$(recap_changed_host "$work/scale-out.log" mq4)" -ge 1 ] || die "scale_out.yml changed nothing on mq4"
for h in mq1 mq2 mq3; do
	[ "$(recap_changed_host "$work/scale-out.log" "$h")" = 0 ] || die "scale_out.yml changed existing host $h"
done
check_process mq4 broker mqbroker
for t in "$topic" ScaleOutTopic; do
	mqadmin topic route -t "$t" -o json >"$work/route-$t.json"
done
mqadmin group list -b broker-c -o json >"$work/groups-c.json"
"$py" - "$work" "$topic" <<'EOF2'
import json, sys
work, smoke = sys.argv[1], sys.argv[2]
for t in (smoke, "ScaleOutTopic"):
    q = {d["brokerName"]: d for d in json.load(open(f"{work}/route-{t}.json"))["queueDatas"]}
    assert "broker-c" in q, f"route of {t} lacks broker-c: {sorted(q)}"
    a, c = q["broker-a"], q["broker-c"]
    for k in ("readQueueNums", "writeQueueNums", "perm"):
        assert a[k] == c[k], f"{t}: broker-c {k}={c[k]}, broker-a has {a[k]}"
    print(f"ok: route of {t} includes broker-c (r {c['readQueueNums']} w {c['writeQueueNums']} perm {c['perm']}, as broker-a)")
g = {x["config"]["groupName"]: x["config"] for x in json.load(open(f"{work}/groups-c.json"))}
assert "ScaleOutGroup" in g, f"broker-c lacks ScaleOutGroup: {sorted(g)}"
assert g["ScaleOutGroup"]["retryMaxTimes"] == 3 and g["ScaleOutGroup"]["retryQueueNums"] == 2, g["ScaleOutGroup"]
print("ok: broker-c has ScaleOutGroup with its settings (retryMaxTimes 3, retryQueueNums 2)")
EOF2
# The new group takes traffic for an existing topic at once: sends pinned to
# it are stored there, and unpinned sends round-robin onto it too.
key="scale-$$-$RANDOM"
mqadmin message send -t "$topic" --body "to broker-c $key" --keys "$key" -b broker-c -q 0 --count 3 -o json >"$work/send-c.json"
# The same brief poll for the index of the broker that just joined.
for _ in $(seq 10); do
	mqadmin message query -t "$topic" --key "$key" -o json >"$work/by-key-c.json"
	[ "$(grep -c '"msgId"' "$work/by-key-c.json")" -ge 3 ] && break
	sleep 1
done
mqadmin topic status -t "$topic" -o json >"$work/status-c.json"
mqadmin message send -t ScaleOutTopic --body spread --count 18 -o json >"$work/send-spread.json"
"$py" - "$work" "${ip[mq4]}" <<'EOF2'
import json, sys
work, mq4 = sys.argv[1], sys.argv[2]
sent = json.load(open(f"{work}/send-c.json"))
assert len(sent) == 3 and all(x["sendResult"] == "SEND_OK" and x["brokerName"] == "broker-c" for x in sent), sent
got = json.load(open(f"{work}/by-key-c.json"))
assert sorted(m["msgId"] for m in got) == sorted(x["msgId"] for x in sent), f"by key: {got}"
hosts = {m["storeHost"] for m in got}
assert hosts == {f"{mq4}:10911"}, f"stored on {hosts}, want broker-c at {mq4}"
q0 = [q for q in json.load(open(f"{work}/status-c.json")) if q["brokerName"] == "broker-c" and q["queueId"] == 0]
assert q0 and q0[0]["maxOffset"] == 3, f"broker-c queue 0: {q0}"
print(f"ok: 3 messages sent to broker-c are stored on {mq4} (queue 0 max offset 3) and read back by key")
spread = sorted({x["brokerName"] for x in json.load(open(f"{work}/send-spread.json"))})
assert spread == ["broker-a", "broker-b", "broker-c"], f"unpinned sends reached {spread}"
print("ok: unpinned sends to ScaleOutTopic reach", spread)
EOF2

steps=$((steps + 1))
log "8. scale_out.yml again, naming broker-c: nothing may change"
play scale_out.yml scale-out-rerun -e '{"mqops_scale_out_broker_names": ["broker-c"]}'
changed=$(recap_changed "$work/scale-out-rerun.log")
[ "$changed" = 0 ] || die "scale_out.yml re-run changed $changed thing(s)"
grep -q 'Create the missing topics on this broker' "$work/scale-out-rerun.log" ||
	die "the re-run did not reach the metadata copy"
echo "ok: changed=0 (topics and groups all present on broker-c)"

steps=$((steps + 1))
log "9. rolling_restart.yml under load"
mqadmin topic create -t RollTopic -c DefaultCluster --queues 4 >/dev/null
mqadmin group create -g RollGroup -c DefaultCluster >/dev/null
# An application on the controller: an official-client producer and push
# consumer (tests/loadclient) running through the whole restart.
start_load "$work/load-roll" -topic RollTopic -group RollGroup -n "$namesrv_addr"
declare -A pid_before
for h in mq1 mq2 mq3 mq4; do pid_before[$h]=$(pid_of "$h" broker); done
amqp_pid_before=$(pid_of mq3 amqp)
load_progress "$work/load-roll"
play rolling_restart.yml rolling-restart
# The application still sends (and has them acknowledged) after the restart.
load_progress "$work/load-roll"
# Every master is writable again: fresh sends reach all three groups.
mqadmin message send -t RollTopic --body after --count 12 -o json >"$work/send-after.json"
stop_load "$work/load-roll"
check_load "$work/load-roll" broker-a broker-b broker-c
"$py" - "$work" <<'EOF2'
import json, sys
after = sorted({x["brokerName"] for x in json.load(open(f"{sys.argv[1]}/send-after.json"))})
assert after == ["broker-a", "broker-b", "broker-c"], f"after the restart sends reach {after}: a master stayed read-only"
print("ok: every master is writable again:", after)
EOF2
for h in mq1 mq2 mq3 mq4; do
	[ "$(recap_changed_host "$work/rolling-restart.log" "$h")" -ge 1 ] || die "$h was not restarted"
done
for h in mq1 mq2 mq3 mq4; do
	check_process "$h" broker mqbroker
	[ "$(pid_of "$h" broker)" != "${pid_before[$h]}" ] || die "$h's broker was not restarted (pid ${pid_before[$h]})"
done
# Order: the slave first, then one master at a time, then the gateway.
order=$(grep -o '^changed: \[mq[0-9]\]' "$work/rolling-restart.log" | tr -d '[]' | awk '{print $2}' | uniq | tr '\n' ' ')
[ "$order" = "mq2 mq1 mq3 mq4 mq3 " ] || die "restart order was: $order"
echo "ok: every broker restarted (new pids), then the AMQP gateway, in the order $order"
check_process mq3 amqp mqamqp
[ "$(pid_of mq3 amqp)" != "$amqp_pid_before" ] || die "mq3's AMQP gateway was not restarted (pid $amqp_pid_before)"
amqp_check rolling-restart
# During the slave's turn its SYNC_MASTER was out of the write routes and
# read-only (without its slave it would answer SLAVE_NOT_AVAILABLE).
sed -n '/Rolling restart of the broker slaves/,/Rolling restart of the broker masters/p' "$work/rolling-restart.log" |
	grep -A3 'Make the master read-only' | grep -q '^changed: \[mq2\]' ||
	die "the slave's turn did not make its SYNC_MASTER read-only"
echo "ok: the slave's SYNC_MASTER took no sends while the slave restarted"
slave_caught_up

steps=$((steps + 1))
log "10. Controller-mode group broker-d: scale-out, a third replica, rolling restart and kill -9 under load"
# ctl_state FILE: the controller leader's view of broker-d (master, epoch,
# SyncStateSet), as mqadmin ha sync-state prints it.
ctl_state() { bin/mqadmin ha sync-state -a "$ctl_addr" -b broker-d -o json >"$1"; }
# ctl_get FILE FIELD: master (address), epoch, insync (alive in-sync addresses).
ctl_get() {
	"$py" - "$@" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))["replicasInfoTable"]["broker-d"]
f = sys.argv[2]
if f == "master":
    print(r.get("masterAddress", ""))
elif f == "epoch":
    print(r["masterEpoch"])
else:
    print(" ".join(sorted(x["brokerAddress"] for x in r["inSyncReplicas"] if x["alive"])))
EOF2
}
host_of() { # host_of ADDR: the test host whose broker listens at ADDR
	local h
	for h in mq7 mq8 mq9; do [ "$1" = "${ip[$h]}:10911" ] && echo "$h" && return 0; done
	die "no test host at $1"
}
# The group is added as any new group: scale_out.yml deploys mq7 (first in
# the inventory, so the controller elects it: it registers alone) and mq8.
write_hosts ctl >"$work/inventory/hosts.yml"
play scale_out.yml scale-out-ctl
for h in mq7 mq8; do
	check_process "$h" broker mqbroker
	for kv in enableControllerMode=true brokerId=-1 brokerRole=SLAVE allAckInSyncStateSet=true; do
		grep -qx "$kv" "$work/$h/etc/broker.conf" || die "$h's broker.conf lacks $kv"
	done
	[ "$(sed -n 's/^controllerAddr=//p' "$work/$h/etc/broker.conf" | tr ';' '\n' | sort | tr '\n' ' ')" = \
		"$(echo "$ctl_addr" | tr ';' '\n' | sort | tr '\n' ' ')" ] || die "$h's controllerAddr does not list the three controllers"
done
task_ok "$work/scale-out-ctl.log" "Wait until the controller counts the replica in sync with its master" mq7 mq8 ||
	die "scale_out.yml did not wait for broker-d's replicas in the SyncStateSet"
ctl_state "$work/ctl-0.json"
[ "$(ctl_get "$work/ctl-0.json" insync)" = "${ip[mq7]}:10911 ${ip[mq8]}:10911" ] ||
	die "broker-d's SyncStateSet is not mq7 and mq8: $(cat "$work/ctl-0.json")"
echo "ok: broker-d in controller mode, master $(ctl_get "$work/ctl-0.json" master), mq7 and mq8 in its SyncStateSet"

# A topic on every group: while broker-d's master moves, producers use the
# other groups (a Go client learns the new master only with its next route
# refresh, every 30 s).
mqadmin topic create -t CtlTopic -c DefaultCluster --queues 4 >/dev/null
mqadmin group create -g CtlGroup -c DefaultCluster >/dev/null
start_load "$work/load-ctl" -topic CtlTopic -group CtlGroup -n "$namesrv_addr"
load_progress "$work/load-ctl"
fails() { wc -l <"$work/load-ctl/failed"; }

log "10b. scale_out.yml adds a third replica (mq9) to broker-d under load"
write_hosts ctl3 >"$work/inventory/hosts.yml"
play scale_out.yml scale-out-replica
[ "$(recap_changed_host "$work/scale-out-replica.log" mq9)" -ge 1 ] || die "scale_out.yml changed nothing on mq9"
for h in mq1 mq2 mq3 mq4 mq7 mq8; do
	[ "$(recap_changed_host "$work/scale-out-replica.log" "$h")" = 0 ] || die "adding mq9 changed existing host $h"
done
task_ok "$work/scale-out-replica.log" "Wait until the controller counts the replica in sync with its master" mq9 ||
	die "scale_out.yml did not wait for mq9 to join the SyncStateSet"
check_process mq9 broker mqbroker
ctl_state "$work/ctl-1.json"
[ "$(ctl_get "$work/ctl-1.json" insync)" = "${ip[mq7]}:10911 ${ip[mq8]}:10911 ${ip[mq9]}:10911" ] ||
	die "broker-d's SyncStateSet lacks mq9: $(cat "$work/ctl-1.json")"
echo "ok: mq9 caught up with broker-d's master and joined the SyncStateSet; nothing else changed"
load_progress "$work/load-ctl"

log "10c. rolling_restart.yml of broker-d under load: the master role moves first (mqadmin ha elect)"
old_master=$(ctl_get "$work/ctl-1.json" master)
old_master_host=$(host_of "$old_master")
old_epoch=$(ctl_get "$work/ctl-1.json" epoch)
declare -A pid_d
for h in mq7 mq8 mq9; do pid_d[$h]=$(pid_of "$h" broker); done
fails_before=$(fails)
play rolling_restart.yml rolling-restart-ctl --limit mq7,mq8,mq9
load_progress "$work/load-ctl"
roll_fails=$(($(fails) - fails_before))
fails_before=$(fails)
ctl_state "$work/ctl-2.json"
new_master=$(ctl_get "$work/ctl-2.json" master)
for h in mq7 mq8 mq9; do
	check_process "$h" broker mqbroker
	[ "$(pid_of "$h" broker)" != "${pid_d[$h]}" ] || die "$h's broker was not restarted"
done
order=$(grep -o '^changed: \[mq[0-9]\]' "$work/rolling-restart-ctl.log" | tr -d '[]' | awk '{print $2}' | uniq | tr '\n' ' ')
# group_by fills the replica group in the order its forks finish, so the two
# replicas may come in either order; the master must come last.
replicas=$(for h in mq7 mq8 mq9; do [ "$h" = "$old_master_host" ] || echo "$h"; done | sort | tr '\n' ' ')
got_replicas=$(echo "$order" | awk '{print $1; print $2}' | sort | tr '\n' ' ')
[ "$(echo "$order" | awk '{print NF}')" = 3 ] && [ "$got_replicas" = "$replicas" ] &&
	[ "$(echo "$order" | awk '{print $3}')" = "$old_master_host" ] ||
	die "restart order was: $order, want the replicas ($replicas) in any order, then the master ($old_master_host)"
awk -v t="Hand the master role to an in-sync replica (electMaster)]" '/^TASK \[/ { on = index($0, t) > 0 } on' \
	"$work/rolling-restart-ctl.log" | grep -x "changed: \[$old_master_host\]" >/dev/null ||
	die "the master's turn did not move the master role away (mqadmin ha elect)"
[ -n "$new_master" ] && [ "$new_master" != "$old_master" ] ||
	die "broker-d's master is still $old_master after the rolling restart"
[ "$(ctl_get "$work/ctl-2.json" epoch)" -gt "$old_epoch" ] || die "the master epoch did not grow: $(cat "$work/ctl-2.json")"
[ "$(ctl_get "$work/ctl-2.json" insync)" = "${ip[mq7]}:10911 ${ip[mq8]}:10911 ${ip[mq9]}:10911" ] ||
	die "not every replica is back in the SyncStateSet: $(cat "$work/ctl-2.json")"
echo "ok: order $order; the master moved from $old_master to $new_master (epoch $old_epoch -> $(ctl_get "$work/ctl-2.json" epoch)) before $old_master_host restarted; all three in sync"
echo "load: $roll_fails sends failed (after the client's retries) during the rolling restart"
[ "$roll_fails" = 0 ] || { tail -n "$roll_fails" "$work/load-ctl/failed" | head -20; die "$roll_fails sends failed during broker-d's rolling restart"; }
# broker-d takes sends again at its new master, and the name servers route
# writes to it.
mqadmin topic route -t CtlTopic -o json >"$work/route-ctl.json"
"$py" - "$work/route-ctl.json" "$new_master" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
q = [d for d in r["queueDatas"] if d["brokerName"] == "broker-d"]
b = [d for d in r["brokerDatas"] if d["brokerName"] == "broker-d"]
assert q and q[0]["perm"] & 2, f"broker-d is not writable in CtlTopic's route: {q}"
assert b and b[0]["brokerAddrs"].get("0") == sys.argv[2], f"CtlTopic's route names {b} as broker-d's master"
print(f"ok: CtlTopic's route has broker-d writable (perm {q[0]['perm']}) at {sys.argv[2]}")
EOF2
mqadmin message send -t CtlTopic --body after-roll -b broker-d -q 0 --count 3 -o json >"$work/send-d.json"
grep -c '"SEND_OK"' "$work/send-d.json" | grep -qx 3 || die "broker-d's new master does not take sends: $(cat "$work/send-d.json")"
echo "ok: broker-d's new master is writable (3 sends SEND_OK)"

log "10d. kill -9 of broker-d's master under load"
victim=$(host_of "$new_master")
t_kill=$(date +%s%N)
t_kill_ms=$((t_kill / 1000000))
kill -KILL "$(pid_of "$victim" broker)"
# A new master in the route: every name server lists id 0 of broker-d at
# another replica's address.
routed=
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
	r=$(for a in ${namesrv_addr//;/ }; do
		bin/mqadmin -n "$a" cluster list -o json | "$py" -c '
import json, sys
print(" ".join(b["addr"] for b in json.load(sys.stdin) if b["brokerName"] == "broker-d" and b["brokerId"] == 0) or "none")'
	done | sort -u) || true
	if [ "$r" != none ] && [ "$r" != "$new_master" ] && [ "$(echo "$r" | wc -w)" = 1 ]; then
		routed=$r
		break
	fi
	sleep 0.1
done
[ -n "$routed" ] || die "no new master of broker-d in the name servers' routes 60 s after killing $victim"
echo "ok: kill -9 of $victim ($new_master): new master $routed in every name server's route after $((($(date +%s%N) - t_kill) / 1000000)) ms"
# The application's sends reach broker-d again (its next route refresh):
# an ack by broker-d dated after the kill (the client writes its file
# about once a second, so lines appearing later may be older acks).
d_again=
for _ in $(seq 900); do
	if awk -v t="$t_kill_ms" '$2 == "broker-d" && $3 > t { f = 1; exit } END { exit !f }' "$work/load-ctl/acked"; then
		d_again=1
		break
	fi
	sleep 0.1
done
[ -n "$d_again" ] || die "the application had no send acknowledged by broker-d within 90 s after the kill"
first_d=$(awk -v t="$t_kill_ms" '$2 == "broker-d" && $3 > t { print $3; exit }' "$work/load-ctl/acked")
echo "ok: the application's sends are acknowledged by broker-d's new master again $((first_d - t_kill_ms)) ms after the kill"
# The killed broker comes back through the role (start, health check: back
# in the SyncStateSet as a replica of the new master).
playbook restart-killed --tags mqops_broker --limit "$victim"
[ "$(recap_changed_host "$work/restart-killed.log" "$victim")" -ge 1 ] || die "$victim's broker was not started"
ctl_state "$work/ctl-3.json"
[ "$(ctl_get "$work/ctl-3.json" master)" = "$routed" ] || die "the master changed again: $(cat "$work/ctl-3.json")"
[ "$(ctl_get "$work/ctl-3.json" insync)" = "${ip[mq7]}:10911 ${ip[mq8]}:10911 ${ip[mq9]}:10911" ] ||
	die "$victim did not rejoin the SyncStateSet: $(cat "$work/ctl-3.json")"
echo "ok: $victim is back as a replica of $routed, in the SyncStateSet"
load_progress "$work/load-ctl"
stop_load "$work/load-ctl"
# Every failure after the rolling restart: the kill's.
kill_fails=$(($(fails) - fails_before))
"$py" - "$work/load-ctl" "$roll_fails" "$kill_fails" <<'EOF2'
import json, sys
d, roll, kill = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = json.load(open(f"{d}/summary.json"))
print(f"load: {s['acked']} sends acknowledged {s['ackedPerBroker']}, {s['failed']} failed after the client's retries "
      f"({roll} during the rolling restart, {kill} after the kill), {s['received']} received ({s['duplicates']} duplicates)")
missing = s.get("missing") or []
assert not missing, f"{len(missing)} SEND_OK messages were never consumed (lost), e.g. {missing[:5]}"
assert s["received"] == s["acked"] and s["acked"] >= 300, s
assert s["ackedPerBroker"].get("broker-d", 0) > 0, s["ackedPerBroker"]
print("ok: 0 SEND_OK messages lost: every acknowledged message was consumed")
EOF2
# broker-d leaves before the upgrade (its replicas, then its master): a
# clean stop unregisters from the name servers.
for h in mq7 mq8 mq9; do
	[ "${ip[$h]}:10911" = "$routed" ] || "$work/$h/bin/mqops-supervise" stop "$work/$h/run/mqops-broker.pid" "$work/$h/bin/mqbroker" 60
done
m=$(host_of "$routed")
"$work/$m/bin/mqops-supervise" stop "$work/$m/run/mqops-broker.pid" "$work/$m/bin/mqbroker" 60
for _ in $(seq 150); do
	mqadmin cluster list -o json | grep -q '"broker-d"' || break
	sleep 1
done
! mqadmin cluster list -o json | grep -q '"broker-d"' || die "the name servers still list broker-d after its brokers stopped"
echo "ok: broker-d stopped and unregistered"

steps=$((steps + 1))
log "11. upgrade.yml: blue-green to a new cluster while a producer and consumer run"
green_addr="${ip[mq5]}:9876;${ip[mq6]}:9876"
mqadmin topic create -t UpTopic -c DefaultCluster --queues 4 >/dev/null
mqadmin group create -g UpGroup -c DefaultCluster >/dev/null
# The application finds its name servers through the endpoint, as a
# RocketMQ client configured with the address server does.
start_load "$work/load-up" -topic UpTopic -group UpGroup -domain "$nsaddr_url"
write_hosts green >"$work/inventory/hosts.yml"
# RollGroup of step 9 and CtlGroup of step 10 are abandoned with a few messages unconsumed: the
# knob for such groups keeps it from holding up the drain.
printf 'mqops_live_color: green\nmqops_upgrade_drain_timeout_s: 300\nmqops_upgrade_drain_ignore_groups: [RollGroup, CtlGroup]\n' \
	>>"$work/inventory/group_vars/all.yml"
# mq3's gateway and mq1's embedded one: upgrade.yml does not move AMQP
# gateways, so it stops before changing anything until told to go ahead.
if play upgrade.yml upgrade-amqp-guard >/dev/null; then
	die "upgrade.yml went ahead with AMQP gateways in the inventory"
fi
grep -q "does not move AMQP gateways.*'mq3', 'mq1'" "$work/upgrade-amqp-guard.log" && ! grep -q 'PLAY \[Build' "$work/upgrade-amqp-guard.log" ||
	die "upgrade.yml did not stop at the AMQP check: $(tail -20 "$work/upgrade-amqp-guard.log")"
echo "ok: upgrade.yml stops before the build while AMQP gateways (mq3, mq1) are in the inventory"
echo 'mqops_upgrade_amqp_acknowledged: true' >>"$work/inventory/group_vars/all.yml"
load_progress "$work/load-up"
play upgrade.yml upgrade
# The application still sends (and has them acknowledged) after the upgrade.
load_progress "$work/load-up"
stop_load "$work/load-up"
check_load "$work/load-up" broker-a broker-b broker-c broker-g1 broker-g2
[ "$(curl -fsS "$nsaddr_url")" = "$green_addr" ] || die "$nsaddr_url does not serve the green name servers"
grep -qx "${ip[mq5]} mq-ns.mqops.test" "$work/mq3/hosts" && grep -qx "${ip[mq6]} mq-ns.mqops.test" "$work/mq3/hosts" &&
	! grep -q "${ip[mq1]} mq-ns" "$work/mq3/hosts" || die "the DNS-style record was not moved to mq5 and mq6: $(cat "$work/mq3/hosts")"
echo "ok: the endpoint and the DNS-style record name the green name servers"
for h in mq5 mq6; do
	check_process "$h" namesrv mqnamesrv
	check_process "$h" broker mqbroker
done
for x in "mq1 namesrv mqnamesrv" "mq2 namesrv mqnamesrv" "mq1 broker mqbroker" "mq2 broker mqbroker" "mq3 broker mqbroker" "mq4 broker mqbroker"; do
	set -- $x
	st=$("$work/$1/bin/mqops-supervise" status "$work/$1/run/mqops-$2.pid" "$work/$1/bin/$3")
	[ "$st" = stopped ] || die "$1: the blue $2 is $st after the upgrade"
done
echo "ok: the blue name servers and brokers are stopped; green runs on mq5 and mq6"
bin/mqadmin -n "$green_addr" cluster list -o json >"$work/green-cluster.json"
"$py" - "$work/green-cluster.json" <<'EOF2'
import json, sys
names = sorted(b["brokerName"] for b in json.load(open(sys.argv[1])))
assert names == ["broker-g1", "broker-g2"], f"the green name servers list {names}"
print("ok: the green name servers list only", names)
EOF2
# Messages sent now go to green, through the name that the record moved.
bin/mqadmin -n "$green_addr" message send -t UpTopic --body after-upgrade --count 8 -o json >"$work/send-green.json"
"$py" - "$work/send-green.json" <<'EOF2'
import json, sys
got = sorted({x["brokerName"] for x in json.load(open(sys.argv[1]))})
assert got == ["broker-g1", "broker-g2"], f"sends after the upgrade reached {got}"
print("ok: sends after the upgrade reach", got)
EOF2
# The build phase put the Zabbix agent on the green hosts too.
for h in mq5 mq6; do
	zget "$h" "rocketmq.broker.get[\"${ip[$h]}:10911\",\"\"]" >"$work/zbx-broker-$h.json" || die "$h: rocketmq.broker.get failed"
done
"$py" - "$work" <<'EOF2'
import json, sys
for h, name in (("mq5", "broker-g1"), ("mq6", "broker-g2")):
    b = json.load(open(f"{sys.argv[1]}/zbx-broker-{h}.json"))
    assert b["up"] == 1 and b["brokerName"] == name and b["registered"] == 2, f"{h}: {b}"
print("ok: the green hosts' Zabbix agents answer for broker-g1 and broker-g2")
EOF2

