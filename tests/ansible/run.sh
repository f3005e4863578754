#!/usr/bin/env bash
# End-to-end test of the Ansible rollout (make test-ansible; needs root and
# bin/ from make build). It builds three throwaway hosts on this machine and
# deploys a real cluster onto them:
#
#   bridge mqopsbr0, 10.213.37.1/24 (this machine, the controller)
#     netns mqops-mq1  10.213.37.11  name server + broker-a master (id 0)
#     netns mqops-mq2  10.213.37.12  name server + broker-a slave  (id 1)
#     netns mqops-mq3  10.213.37.13  broker-b master (id 0)
#
# Each namespace runs its own sshd (throwaway host key, throwaway client key,
# root login) as Ansible's target. The namespaces share this machine's file
# system, kernel and /etc/passwd, so the generated inventory gives every host
# its own directories under $work/<host>/, its own service user
# (mqops-<host>), supervisor mode (no systemd in a namespace), and points the
# OS tuning at per-host files with nothing applied to the shared kernel.
#
# Steps, each asserting outcomes:
#   1. ansible-lint, production profile;
#   2. systemd-analyze verify on the production units (rendered by
#      render_units.yml), any complaint fails;
#   3. deploy.yml --check on the fresh hosts: passes and creates nothing;
#   4. deploy.yml: processes run in their own namespaces as their users;
#      mqadmin hosts check passes against the inventory (the contract);
#      messages sent through the name servers from this machine reach both
#      broker groups and are read back by key and by pulling every queue;
#   5. deploy.yml again: every host reports changed=0;
#   6. a broker stopped behind Ansible's back is started again by
#      deploy.yml --tags mqops_broker, and only that host changes.
# Everything (daemons, sshds, namespaces, bridge, users, temp dir) is removed
# on exit, failed or not. KEEP=1 keeps the temp dir for inspection.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANSIBLE_CONFIG=$root/ansible.cfg

net=10.213.37
bridge=mqopsbr0
hosts=(mq1 mq2 mq3)
declare -A ip=([mq1]=$net.11 [mq2]=$net.12 [mq3]=$net.13)
namesrv_addr="$net.11:9876;$net.12:9876"
topic=AnsibleSmoke

log() { printf '\n=== %s\n' "$*"; }
die() {
	echo "FAIL: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, sshd, users)"
for cmd in ip sshd ssh-keygen ansible-playbook ansible-lint setpriv; do
	command -v "$cmd" >/dev/null || die "$cmd not found (make deps installs it)"
done
for b in mqnamesrv mqbroker mqadmin; do
	[ -x "bin/$b" ] || die "bin/$b missing: run make build"
done

# One run at a time: the bridge, namespace and user names are fixed.
exec 9>/tmp/mqops-ansible.lock
flock -w 300 9 || die "another test-ansible run holds /tmp/mqops-ansible.lock"

work=$(mktemp -d /tmp/mqops-ansible.XXXXXX)
# The daemons run as per-host users and must reach their directories.
chmod 755 "$work"
made_run_sshd=

cleanup() {
	local rc=$?
	set +e
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
	[ -n "$made_run_sshd" ] && rmdir /run/sshd 2>/dev/null
	if [ "${KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
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
recap_changed_host() {
	sed -n '/PLAY RECAP/,$p' "$1" | grep "^$2 " | grep -o 'changed=[0-9]*' | cut -d= -f2
}
playbook() { # playbook LOGNAME ARGS...: run deploy.yml, output to the terminal and a log
	local name=$1
	shift
	ansible-playbook -i "$work/inventory" playbooks/deploy.yml "$@" 2>&1 | tee "$work/$name.log"
}

steps=$((steps + 1))
log "1. ansible-lint (production profile)"
ansible-lint -c tests/ansible/ansible-lint.yml ansible.cfg inventory playbooks roles tests/ansible

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
ip link add "$bridge" type bridge
ip addr add "$net.1/24" dev "$bridge"
ip link set "$bridge" up
ssh-keygen -q -t ed25519 -N '' -C mqops-test-client -f "$work/client_key"
[ -d /run/sshd ] || { mkdir -p /run/sshd && made_run_sshd=1; }
: >"$work/known_hosts"
for h in "${hosts[@]}"; do
	d=$work/$h
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
	EOF
	ip netns exec "mqops-$h" /usr/sbin/sshd -f "$d/ssh/sshd_config" -E "$d/ssh/sshd.log"
	# A stand-in for sysfs, in the kernel's format with THP already off:
	# the role reads it and leaves it alone, as on a tuned host.
	echo 'always madvise [never]' >"$d/thp/enabled"
	echo 'always defer defer+madvise madvise [never]' >"$d/thp/defrag"
done

log "Inventory $work/inventory"
mkdir -p "$work/inventory/group_vars"
# Only plain values: mqadmin hosts check reads this inventory too.
{
	echo "all:"
	echo "  children:"
	echo "    mqops_namesrv:"
	echo "      hosts: {mq1: {}, mq2: {}}"
	echo "    mqops_broker:"
	echo "      children:"
	echo "        mqops_broker_master:"
	echo "          hosts:"
	echo "            mq1: {mqops_broker_name: broker-a, mqops_broker_id: 0}"
	echo "            mq3: {mqops_broker_name: broker-b, mqops_broker_id: 0}"
	echo "        mqops_broker_slave:"
	echo "          hosts:"
	echo "            mq2: {mqops_broker_name: broker-a, mqops_broker_id: 1}"
	echo "    mqops_zabbix_agent:"
	echo "      children: {mqops_namesrv: {}, mqops_broker: {}}"
} >"$work/inventory/hosts.yml"
cat >"$work/inventory/group_vars/all.yml" <<EOF
ansible_user: root
ansible_ssh_private_key_file: $work/client_key
ansible_ssh_common_args: -o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes
ansible_python_interpreter: /usr/bin/python3
mqops_service_manager: supervisor
mqops_os_tuning_sysctl_apply: false
EOF
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
		mqops_os_tuning_sysctl_file: $d/sysctl-60-mqops.conf
		mqops_os_tuning_limits_file: $d/limits-60-mqops.conf
		mqops_os_tuning_thp_dir: $d/thp
		mqops_os_tuning_thp_tmpfiles_file: $d/tmpfiles-60-mqops-thp.conf
	EOF
done
export ANSIBLE_SSH_CONTROL_PATH_DIR=$work/cp

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
python3 - "$work/send.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
bad = [x for x in r if x["sendResult"] != "SEND_OK"]
assert len(r) == 16 and not bad, f"sends: {len(r)}, not OK: {bad}"
brokers = sorted({x["brokerName"] for x in r})
assert brokers == ["broker-a", "broker-b"], f"sends reached {brokers}, want both broker groups"
print("ok: 16 sends SEND_OK on", brokers)
EOF
mqadmin message query -t "$topic" --key "$key" -o json >"$work/by-key.json"
mqadmin message query -t "$topic" --tag '*' -o json >"$work/by-pull.json"
python3 - "$work/by-key.json" "$work/by-pull.json" "hello from $key" <<'EOF'
import json, sys
body = sys.argv[3]
for path, how in ((sys.argv[1], "by key, through the index"), (sys.argv[2], "by pulling every queue")):
    msgs = [m for m in json.load(open(path)) if m["body"] == body]
    assert len(msgs) == 16, f"{how}: {len(msgs)} of 16 messages read back"
    print(f"ok: 16 messages read back {how}")
EOF

steps=$((steps + 1))
log "5. deploy.yml again: nothing may change"
playbook rerun
changed=$(recap_changed "$work/rerun.log")
[ "$changed" = 0 ] || die "second run changed $changed thing(s); see the recap above"
echo "ok: changed=0 on every host"

steps=$((steps + 1))
log "6. A stopped broker is started by deploy.yml --tags mqops_broker"
"$work/mq3/bin/mqops-supervise" stop "$work/mq3/run/mqops-broker.pid" "$work/mq3/bin/mqbroker" 30
playbook restart-stopped --tags mqops_broker
[ "$(recap_changed_host "$work/restart-stopped.log" mq3)" -ge 1 ] || die "mq3's broker was not started"
[ "$(recap_changed_host "$work/restart-stopped.log" mq1)" = 0 ] || die "mq1 changed"
[ "$(recap_changed_host "$work/restart-stopped.log" mq2)" = 0 ] || die "mq2 changed"
check_process mq3 broker mqbroker
