#!/usr/bin/env bash
# End-to-end test of the Ansible rollout (make test-ansible; needs root and
# bin/ from make build). It builds four throwaway hosts on this machine and
# deploys a real cluster onto them (mq4 joins in the scale-out):
#
#   bridge mqopsbr0, 10.213.37.1/24 (this machine, the controller)
#     netns mqops-mq1  10.213.37.11  name server + broker-a master (id 0)
#     netns mqops-mq2  10.213.37.12  name server + broker-a slave  (id 1)
#     netns mqops-mq3  10.213.37.13  broker-b master (id 0)
#     netns mqops-mq4  10.213.37.14  broker-c master (id 0), step 7
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
#   7. scale_out.yml adds broker-c: only mq4 changes; routes of existing
#      topics list broker-c with the same queues; groups copied with their
#      settings; messages for an existing topic are stored on broker-c;
#   8. scale_out.yml again (naming broker-c): changed=0;
#   9. rolling_restart.yml while a producer runs: slave first, then one
#      master at a time, all restarted; every acknowledged message is read
#      back; no batch fails after the client's retries; all masters writable.
# Everything (daemons, sshds, namespaces, bridge, users, temp dir) is removed
# on exit, failed or not. KEEP=1 keeps the temp dir for inspection.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export ANSIBLE_CONFIG=$root/ansible.cfg

net=10.213.37
bridge=mqopsbr0
hosts=(mq1 mq2 mq3 mq4)
declare -A ip=([mq1]=$net.11 [mq2]=$net.12 [mq3]=$net.13 [mq4]=$net.14)
namesrv_addr="$net.11:9876;$net.12:9876"
topic=AnsibleSmoke
load_pid=

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
	# The background producer of step 9, by its pid.
	[ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
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
play() { # play PLAYBOOK LOGNAME ARGS...: run another playbook the same way
	local book=$1 name=$2
	shift 2
	ansible-playbook -i "$work/inventory" "playbooks/$book" "$@" 2>&1 | tee "$work/$name.log"
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
# write_hosts [mq4]: the inventory's hosts.yml; mq4 (broker-c master) joins
# for the scale-out of step 7. Only plain values: mqadmin hosts check reads
# this inventory too.
write_hosts() {
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
	[ "${1:-}" = mq4 ] && echo "            mq4: {mqops_broker_name: broker-c, mqops_broker_id: 0}"
	echo "        mqops_broker_slave:"
	echo "          hosts:"
	echo "            mq2: {mqops_broker_name: broker-a, mqops_broker_id: 1}"
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
# The test's producer is a new process per batch of 12 messages, so it
# routes around a read-only master once every batch that started before
# the write-disable has ended; under the test's load a batch can take a few
# seconds (a 2 s wait once let one batch end on its stale route, and the Go
# client's retries do not avoid the broker that refused). Production keeps
# the 30 s client refresh.
mqops_broker_rolling_route_refresh_wait_s: 10
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
python3 - "$work" "$topic" <<'EOF2'
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
mqadmin message query -t "$topic" --key "$key" -o json >"$work/by-key-c.json"
mqadmin topic status -t "$topic" -o json >"$work/status-c.json"
mqadmin message send -t ScaleOutTopic --body spread --count 18 -o json >"$work/send-spread.json"
python3 - "$work" "${ip[mq4]}" <<'EOF2'
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
run="rr-$$-$RANDOM"
mkdir -p "$work/load"
# A producer from the controller: batches of 12 sends, each batch one
# official-client process (retries 2) whose round-robin over the 12 queues
# reaches all three masters. A batch's acknowledgements are known only when
# all of it succeeds (mqadmin prints nothing when a send fails), so a
# failed batch counts as failed whole. Each batch has its own key.
(
	set +e
	i=0
	while [ ! -e "$work/load/stop" ]; do
		i=$((i + 1))
		k="$run-$i"
		if out=$(bin/mqadmin -n "$namesrv_addr" message send -t RollTopic --body "$k" --keys "$k" --count 12 -o json 2>&1); then
			paste -d' ' <(grep -o '"msgId": "[^"]*"' <<<"$out" | cut -d'"' -f4) \
				<(grep -o '"brokerName": "[^"]*"' <<<"$out" | cut -d'"' -f4) | sed "s/^/$k /" >>"$work/load/ok"
		else
			echo "$k $(date +%T.%N) $out" >>"$work/load/fail"
		fi
	done
) &
load_pid=$!
declare -A pid_before
for h in mq1 mq2 mq3 mq4; do pid_before[$h]=$(pid_of "$h" broker); done
sleep 3
play rolling_restart.yml rolling-restart
sleep 2
touch "$work/load/stop"
wait "$load_pid"
load_pid=
touch "$work/load/ok" "$work/load/fail"
# Every master is writable again: fresh sends reach all three groups.
mqadmin message send -t RollTopic --body after --count 12 -o json >"$work/send-after.json"
mqadmin message query -t RollTopic --tag '*' --max 1000000 -o json >"$work/roll-by-pull.json"
# By key through the index: 25 batches picked at random.
mkdir -p "$work/roll-by-key"
for k in $(cut -d' ' -f1 "$work/load/ok" | sort -u | shuf -n 25); do
	mqadmin message query -t RollTopic --key "$k" -o json >"$work/roll-by-key/$k.json"
done
python3 - "$work" <<'EOF2'
import json, sys
work = sys.argv[1]
import glob, os
ok = [l.split() for l in open(f"{work}/load/ok") if l.strip()]
fail = [l.rstrip("\n") for l in open(f"{work}/load/fail") if l.strip()]
acked = {f[1]: f[0] for f in ok}
per = {}
for f in ok:
    per[f[2]] = per.get(f[2], 0) + 1
batches = len({f[0] for f in ok})
print(f"load: {len(ok)} sends acknowledged in {batches} batches ({', '.join(f'{b} {n}' for b, n in sorted(per.items()))}); "
      f"{len(fail)} batches failed after the client's retries")
for l in fail:
    print("  failed:", l[:300])
assert batches >= 30, f"only {batches} batches acknowledged: the producer did not run through the restart"
assert sorted(per) == ["broker-a", "broker-b", "broker-c"], f"the load reached only {sorted(per)}"
got = {m["msgId"] for m in json.load(open(f"{work}/roll-by-pull.json"))}
lost = sorted(set(acked) - got)
assert not lost, f"by pulling every queue: {len(lost)} acknowledged messages missing, e.g. batches {sorted({acked[m] for m in lost})[:5]}"
print(f"ok: all {len(acked)} acknowledged messages read back by pulling every queue")
n = 0
for path in glob.glob(f"{work}/roll-by-key/*.json"):
    k = os.path.basename(path)[:-5]
    want = {m for m, b in acked.items() if b == k}
    have = {m["msgId"] for m in json.load(open(path))}
    assert want <= have, f"by key {k}: {len(want - have)} of {len(want)} acknowledged messages missing"
    n += len(want)
print(f"ok: {n} acknowledged messages of 25 random batches read back by key, through the index")
after = sorted({x["brokerName"] for x in json.load(open(f"{work}/send-after.json"))})
assert after == ["broker-a", "broker-b", "broker-c"], f"after the restart sends reach {after}: a master stayed read-only"
print("ok: every master is writable again:", after)
assert not fail, f"{len(fail)} sends failed beyond the client's retries"
EOF2
for h in mq1 mq2 mq3 mq4; do
	[ "$(recap_changed_host "$work/rolling-restart.log" "$h")" -ge 1 ] || die "$h was not restarted"
done
for h in mq1 mq2 mq3 mq4; do
	check_process "$h" broker mqbroker
	[ "$(pid_of "$h" broker)" != "${pid_before[$h]}" ] || die "$h's broker was not restarted (pid ${pid_before[$h]})"
done
# Order: the slave first, then one master at a time.
order=$(grep -o '^changed: \[mq[0-9]\]' "$work/rolling-restart.log" | tr -d '[]' | awk '{print $2}' | uniq | tr '\n' ' ')
[ "$order" = "mq2 mq1 mq3 mq4 " ] || die "restart order was: $order"
echo "ok: every broker restarted (new pids), in the order $order"
