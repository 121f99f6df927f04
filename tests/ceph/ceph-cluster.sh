#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throw-away one-node Ceph cluster (one ceph-mon, one ceph-osd on memstore)
# for the rbd tests, listening on 127.0.0.1 only, everything kept in one
# directory: nothing is read from or written to /etc/ceph, /var/lib/ceph,
# /var/log/ceph or /run/ceph, and no systemd is involved.
#
#   ceph-cluster.sh start DIR
#       DIR must not exist or be empty. Returns 0 once an rbd image can be
#       created and removed in pool "rbd" (replicated, size 1). Leaves:
#         DIR/ceph.conf         for clients (rbd -c, CEPH_CONF, librados)
#         DIR/keyring           client.admin
#         DIR/keyring.vhost     client.vhost: mon 'profile rbd',
#                               osd 'profile rbd pool=rbd'
#         DIR/ceph-unreachable.conf  no monitor behind it; clients give up
#                               after 3 s (client mount timeout)
#         DIR/pids              "PID NAME" of each daemon, one a line
#         DIR/log/              daemon, cluster and client logs
#       A client killed without closing its image holds the exclusive lock
#       until its watch times out: 10 s here (osd client watch timeout).
#       On failure prints the end of the logs, stops what it started and
#       removes DIR (keeps it with --keep-on-failure). The daemons keep
#       running after start returns, in the caller's process group.
#       There is no ceph-mgr: commands served by it (ceph config show,
#       rbd perf, PG stats in ceph -s) wait for one forever. Objects live
#       in the OSD's memory, 1 GiB at most.
#   ceph-cluster.sh stop DIR
#       Stops exactly the processes in DIR/pids (SIGTERM, SIGKILL after 5 s),
#       waits until they are gone and removes DIR.
#   ceph-cluster.sh run [--keep-on-failure] -- CMD ARGS...
#       start in a new mktemp -d directory (${TMPDIR:-/tmp}/vutest-ceph.*),
#       run CMD with CEPH_CONF=DIR/ceph.conf and VU_CEPH_DIR=DIR, stop on
#       any exit (signals too: CMD and its children get SIGTERM), check
#       that no process with DIR/ceph.conf on its command line is left,
#       exit with CMD's status (1 if something was left). CMD's stdin is
#       /dev/null. --keep-on-failure keeps DIR (daemons stopped) when CMD
#       or the bring-up fails.
# Status 77 (meson's "skipped") when ceph-mon, ceph-osd, ceph, rbd or
# ceph-authtool is not installed.
set -euo pipefail

prog=ceph-cluster
keep_on_failure=0
exec 3>&2 # the traps report here even if a signal came during a redirection
start_dir=

now_ms() { echo $(($(date +%s%N) / 1000000)); }
die() { echo "$prog: $*" >&2; exit 1; }

need_binaries() {
	local b
	for b in ceph-mon ceph-osd ceph-authtool monmaptool ceph rbd; do
		command -v "$b" >/dev/null 2>&1 && continue
		echo "$prog: SKIP: $b not installed (apt-get install ceph-mon ceph-osd ceph-common)" >&2
		exit 77
	done
}

# free_ports: print two TCP ports on 127.0.0.1 that nobody listens on now,
# outside the kernel's ephemeral range so that outgoing connections do not
# take them in the meantime. Racy by nature: start retries if the monitor
# cannot bind its port.
free_ports() {
	python3 - <<'PY'
import random, socket
found = set()
for _ in range(500):
    port = random.randrange(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    found.add(port)
    if len(found) == 2:
        print(*found)
        break
else:
    raise SystemExit("no free port")
PY
}

# is_ours DIR PID: PID is still a daemon we started: running with our
# ceph.conf on its command line (a zombie's is empty, a recycled PID's
# another).
is_ours() {
	grep -qxzF -- "$1/ceph.conf" "/proc/$2/cmdline" 2>/dev/null
}

is_zombie() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" = Z ]
}

# live_pids DIR: those of DIR/pids that are still ours, in start order.
live_pids() {
	local dir=$1 pid name
	[ -f "$dir/pids" ] || return 0
	while read -r pid name; do
		is_ours "$dir" "$pid" && echo "$pid"
	done <"$dir/pids"
	return 0
}

# stop_pid DIR PID: SIGTERM, up to 5 s, SIGKILL, then wait until it is gone.
stop_pid() {
	local dir=$1 pid=$2 i
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		is_ours "$dir" "$pid" || break
		sleep 0.1
	done
	if is_ours "$dir" "$pid"; then
		echo "$prog: pid $pid did not exit on SIGTERM, sending SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	for i in $(seq 100); do
		is_ours "$dir" "$pid" || break
		sleep 0.1
	done
	wait "$pid" 2>/dev/null || true # reap it if it is our child
	! is_ours "$dir" "$pid"
}

# stop_daemons DIR: the OSD before the monitor (an OSD says goodbye to the
# monitor and waits for the answer: osd mon shutdown timeout).
stop_daemons() {
	local dir=$1 pid status=0
	for pid in $(live_pids "$dir" | tac); do
		stop_pid "$dir" "$pid" || {
			echo "$prog: pid $pid still running after SIGKILL" >&2
			status=1
		}
	done
	return $status
}

# remove_dir DIR: only a directory this script filled (it has the marker).
remove_dir() {
	local dir=$1
	[ -d "$dir" ] || return 0
	if [ -e "$dir/.vutest-ceph" ]; then
		rm -rf -- "$dir"
	else
		rmdir -- "$dir" 2>/dev/null || echo "$prog: left $dir (not made by $prog)" >&2
	fi
}

show_logs() {
	local dir=$1 f
	for f in "$dir"/log/*; do
		[ -f "$f" ] || continue
		echo "---- $f (last 20 lines)" >&2
		tail -n 20 "$f" >&2
	done
}

write_conf() { # DIR FSID PORT
	local dir=$1 fsid=$2 port=$3
	cat >"$dir/ceph.conf" <<EOF
# Written by tests/ceph/ceph-cluster.sh; a throw-away test cluster.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
log file = $dir/log/\$name.log
run dir = $dir/run
crash dir = $dir/crash
# One OSD: pools of size 1, without the warnings that come with them.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false

[mon]
mon data = $dir/\$name
keyring = $dir/\$name/keyring
admin socket = $dir/run/\$name.asok
mon cluster log file = $dir/log/cluster.log
# A full-ish disk must not stop the monitor.
mon data avail warn = 1
mon data avail crit = 0
# A 4 MB rocksdb write buffer: the WAL is preallocated to 1.1 times it.
mon rocksdb options = write_buffer_size=4194304,compression=kNoCompression,level_compaction_dynamic_level_bytes=true
# Commit map changes at once: bring-up in ~1 s instead of ~7 s.
paxos propose interval = 0.01
paxos min wait = 0.001
# Fail at once when the port was taken in the meantime (start retries).
ms bind retry count = 1
ms bind retry delay = 1

[osd]
osd data = $dir/\$name
keyring = $dir/\$name/keyring
admin socket = $dir/run/\$name.asok
# In memory, pages allocated as written (1 GiB capacity), short PG logs:
# the OSD stays at ~50 MB plus the data written instead of growing past 1 GB.
osd objectstore = memstore
memstore page set = true
memstore device bytes = 1073741824
osd min pg log entries = 100
osd max pg log entries = 100
osd pg log dups tracked = 100
osd pg log trim min = 10
# A client killed with an image open holds its lock until the watch times out.
osd client watch timeout = 10
# Stop quickly even when the monitor is already gone.
osd mon shutdown timeout = 1
EOF
	cat >"$dir/ceph-unreachable.conf" <<EOF
# Written by tests/ceph/ceph-cluster.sh: no monitor listens here.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$4]
keyring = $dir/keyring
log file = $dir/log/\$name.log
run dir = $dir/run
crash dir = $dir/crash
client mount timeout = 3
EOF
}

# client CMD ARGS...: run a Ceph client for at most 30 s, in the
# background so that a signal is handled at once (the traps stop it).
client_pid=
client() {
	local status=0
	timeout 30 "$@" </dev/null 3>&- &
	client_pid=$!
	wait "$client_pid" || status=$?
	client_pid=
	return $status
}

stop_client() {
	[ -n "$client_pid" ] || return 0
	kill -TERM "$client_pid" 2>/dev/null || true # timeout passes it on
	wait "$client_pid" 2>/dev/null || true
	client_pid=
}

# start_once DIR: one bring-up attempt. Returns 2 if the monitor could not
# bind its port (try again with another), 1 on other failures.
start_once() {
	local dir=$1 fsid osd_uuid port port2 i
	fsid=$(cat /proc/sys/kernel/random/uuid)
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	read -r port port2 < <(free_ports) && [ -n "$port2" ] || return 1
	mkdir -p "$dir/log" "$dir/run" "$dir/crash" "$dir/mon.a" "$dir/osd.0" &&
		: >"$dir/pids" && write_conf "$dir" "$fsid" "$port" "$port2" || return 1

	# Keys: every entity is known to the monitor from its mkfs on.
	{ ceph-authtool "$dir/keyring" --create-keyring --gen-key -n client.admin \
		--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' &&
	ceph-authtool "$dir/keyring.vhost" --create-keyring --gen-key -n client.vhost \
		--cap mon 'profile rbd' --cap osd 'profile rbd pool=rbd' &&
	ceph-authtool "$dir/osd.0/keyring" --create-keyring --gen-key -n osd.0 \
		--cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' &&
	ceph-authtool "$dir/mon.keyring" --create-keyring --gen-key -n mon. --cap mon 'allow *' &&
	ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/keyring" &&
	ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/keyring.vhost" &&
	ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/osd.0/keyring" &&
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap"
	} >"$dir/log/keys.out" 2>&1 || { echo "$prog: making keys or monmap failed" >&2; return 1; }

	ceph-mon -c "$dir/ceph.conf" -i a --mkfs --monmap "$dir/monmap" \
		--keyring "$dir/mon.keyring" >"$dir/log/mon.a.mkfs" 2>&1 ||
		{ echo "$prog: ceph-mon --mkfs failed" >&2; return 1; }
	ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --no-mon-config --osd-uuid "$osd_uuid" \
		>"$dir/log/osd.0.mkfs" 2>&1 ||
		{ echo "$prog: ceph-osd --mkfs failed" >&2; return 1; }

	ceph-mon -c "$dir/ceph.conf" -i a -f </dev/null >"$dir/log/mon.a.out" 2>&1 3>&- &
	local mon_pid=$!
	echo "$mon_pid mon.a" >>"$dir/pids"
	# Wait until the monitor itself listens on its port: if another
	# process took the port, the monitor exits and we try another.
	for i in $(seq 200); do
		ss -Htlnp "sport = :$port" 2>/dev/null | grep -q "pid=$mon_pid," && break
		if ! kill -0 "$mon_pid" 2>/dev/null || is_zombie "$mon_pid"; then
			wait "$mon_pid" 2>/dev/null || true
			grep -qs 'unable to bind monitor' "$dir/log/mon.a.log" && return 2
			echo "$prog: the monitor exited at start" >&2
			return 1
		fi
		sleep 0.05
	done
	client ceph -c "$dir/ceph.conf" --connect-timeout 20 osd new "$osd_uuid" 0 >/dev/null ||
		{ echo "$prog: the monitor does not answer (ceph osd new)" >&2; return 1; }

	ceph-osd -c "$dir/ceph.conf" -i 0 -f </dev/null >"$dir/log/osd.0.out" 2>&1 3>&- &
	echo "$! osd.0" >>"$dir/pids"

	client ceph -c "$dir/ceph.conf" osd pool create rbd 8 8 replicated >/dev/null 2>&1 ||
		{ echo "$prog: osd pool create rbd failed" >&2; return 1; }
	client rbd -c "$dir/ceph.conf" pool init rbd ||
		{ echo "$prog: rbd pool init failed" >&2; return 1; }
	client rbd -c "$dir/ceph.conf" create rbd/probe --size 4M &&
		client rbd -c "$dir/ceph.conf" rm --no-progress rbd/probe ||
		{ echo "$prog: rbd create/rm of a probe image failed" >&2; return 1; }
}

cmd_start() {
	local dir=${1:?usage: start DIR} attempt status
	need_binaries
	case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
	if [ -e "$dir" ]; then
		[ -d "$dir" ] && [ -z "$(ls -A "$dir")" ] || die "$dir exists and is not empty"
	else
		mkdir -p "$dir"
	fi
	touch "$dir/.vutest-ceph" || die "cannot write to $dir"
	start_dir=$dir
	for attempt in 1 2 3; do
		status=0
		start_once "$dir" || status=$?
		[ "$status" -eq 0 ] && return 0
		if [ "$status" -eq 2 ] && [ "$attempt" -lt 3 ]; then
			echo "$prog: monitor port taken, trying another" >&2
			stop_daemons "$dir"
			find "$dir" -mindepth 1 ! -name .vutest-ceph -delete
			continue
		fi
		break
	done
	show_logs "$dir"
	stop_daemons "$dir" || true
	[ "$keep_on_failure" = 1 ] && echo "$prog: kept $dir" >&2 || remove_dir "$dir"
	return 1
}

# A signal during start: stop what was started, remove DIR.
start_signal() {
	trap - INT TERM
	exec 2>&3
	stop_client
	if [ -n "$start_dir" ]; then
		stop_daemons "$start_dir" || true
		[ "$keep_on_failure" = 1 ] && echo "$prog: kept $start_dir" >&2 ||
			remove_dir "$start_dir"
	fi
	exit "$1"
}

cmd_stop() {
	local dir=${1:?usage: stop DIR}
	case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
	[ -d "$dir" ] || return 0
	[ -e "$dir/.vutest-ceph" ] || die "$dir was not made by $prog"
	stop_daemons "$dir"
	remove_dir "$dir"
}

cmd_run() {
	local t0
	while [ $# -gt 0 ]; do
		case $1 in
		--keep-on-failure) keep_on_failure=1; shift ;;
		--) shift; break ;;
		*) die "usage: run [--keep-on-failure] -- CMD ARGS..." ;;
		esac
	done
	[ $# -gt 0 ] || die "usage: run [--keep-on-failure] -- CMD ARGS..."
	need_binaries

	run_dir=$(mktemp -d "${TMPDIR:-/tmp}/vutest-ceph.XXXXXXXX")
	run_pids=
	run_child=
	run_status=1
	trap run_cleanup EXIT
	trap 'run_status=130; exit 130' INT
	trap 'run_status=143; exit 143' TERM
	t0=$(now_ms)
	cmd_start "$run_dir" || { run_dir=; exit 1; } # start cleaned up
	run_pids=$(awk '{print $1}' "$run_dir/pids")
	echo "$prog: up in $(($(now_ms) - t0)) ms in $run_dir" >&2

	CEPH_CONF=$run_dir/ceph.conf VU_CEPH_DIR=$run_dir "$@" 3>&- &
	run_child=$!
	run_status=0
	wait "$run_child" || run_status=$?
	run_child=
	exit "$run_status"
}

# pid_tree PID: PID and all its descendants.
pid_tree() {
	local p
	echo "$1"
	for p in $(pgrep -P "$1"); do pid_tree "$p"; done
}

run_cleanup() {
	local pid f left= t0
	trap - EXIT INT TERM
	exec 2>&3
	stop_client
	if [ -n "$run_child" ]; then
		# A signal: stop CMD and what it started (sh -c does not pass
		# SIGTERM on), SIGKILL after 5 s.
		local tree i
		tree=$(pid_tree "$run_child")
		kill -TERM $tree 2>/dev/null || true
		for i in $(seq 50); do
			kill -0 $tree 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL $tree 2>/dev/null || true
		wait "$run_child" 2>/dev/null || true
	fi
	[ -n "$run_dir" ] || exit "$run_status"
	t0=$(now_ms)
	if [ "$run_status" -ne 0 ] && [ "$keep_on_failure" = 1 ]; then
		stop_daemons "$run_dir" || run_status=1
		echo "$prog: kept $run_dir" >&2
	else
		cmd_stop "$run_dir" || run_status=1
	fi
	echo "$prog: stopped in $(($(now_ms) - t0)) ms" >&2
	# Nothing of this cluster may outlive run: neither the recorded
	# daemons nor any other process started with its ceph.conf.
	for pid in $run_pids; do
		wait "$pid" 2>/dev/null || true
		is_ours "$run_dir" "$pid" && left="$left $pid"
	done
	for f in $(grep -lxzF -- "$run_dir/ceph.conf" /proc/[0-9]*/cmdline 2>/dev/null); do
		f=${f#/proc/}
		left="$left ${f%/cmdline}"
	done
	if [ -n "$left" ]; then
		echo "$prog: processes of $run_dir left running:$left" >&2
		run_status=1
	fi
	exit "$run_status"
}

case ${1:-} in
start)
	shift
	trap 'start_signal 130' INT
	trap 'start_signal 143' TERM
	cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
run) shift; cmd_run "$@" ;;
*) echo "usage: $0 start DIR | stop DIR | run [--keep-on-failure] -- CMD ARGS..." >&2; exit 2 ;;
esac
