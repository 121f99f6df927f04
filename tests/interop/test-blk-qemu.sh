#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test-blk-qemu.sh QEMU_BINARY IMAGEDIR BUILDDIR
#
# The interop suite of vhost-blk against real QEMU guests: each case starts
# a fresh vhost-blk (BUILDDIR/vhost-blk/vhost-blk, on CPU $VU_DAEMON_CPU,
# adaptive polling) on a new sparse backing file, boots the test guest of
# IMAGEDIR (guest/build-guest.sh) under QEMU_BINARY with TCG (qemu-run.sh,
# pinned to CPU $VU_PEER_CPU) against it, and runs a guest test script
# (guest/tests/NAME.sh, given to the guest with qemu-run.sh -s, so a stale
# image still runs the current script). Cases:
#   split       split ring; blk-verify
#   packed      packed=on; blk-verify; the daemon log must show a packed
#               ring, else SKIP (this QEMU does not negotiate packed)
#   multiqueue  num-queues=2, -smp 2; blk-features with vuarg.queues=2: size,
#               flush, cache_type (SET_CONFIG must reach the daemon),
#               discard, write-zeroes limits, both virtqueues complete I/O
#   rebind      blk-rebind: unbind/bind virtio_blk twice in mid-test
#   ro-serial   --read-only --serial: blk-features with vuarg.ro=1 and
#               vuarg.serial; the backing file is unchanged afterwards
#   resize      blk-resize: the backing file grows and the daemon gets
#               SIGHUP while the guest runs; the guest must see the new size
#               (CONFIG_CHANGE_MSG) and use the new space
#   restart     QEMU with reconnect=1, guest runs blk-io-loop (a writer
#               and two O_DIRECT readers); once it prints its io-started
#               mark the daemon is SIGKILLed at a moment when it holds
#               requests in flight (it is SIGSTOPped until its inflight
#               area shows some, for at most 5 s), started again 1 s later
#               on the same socket and file, and the guest must pass (no
#               I/O error, all data verified); prints how many requests
#               were in flight, whether the new daemon resubmitted them,
#               the time from the restart to QEMU's reconnect and to the
#               guest's next progress, and the longest stall it saw
#   restart-packed-mq  the same, twice in a row (the third daemon gets
#               the inflight area the first one made), with packed=on,
#               num-queues=2 and -smp 2 (the guest's readers run on the
#               second CPU: both queues carry requests)
#   multidisk   one process with --disk A --disk B, two vhost-user-blk
#               devices; blk-multi: blk-verify on vda and vdb, then a
#               distinct block per disk, checked in the right backing file
# After every case the daemon must still run and must exit with status 0
# on SIGTERM (a clean shutdown). Not run by default (VU_CASES=migrate):
#   migrate     live migration of a guest running blk-io-loop from one
#               QEMU + vhost-blk to another on the same backing file (the
#               source daemon dirty-logs what it writes into guest memory)
#
# Output is TAP-like: "ok - NAME", "not ok - NAME", "ok - NAME # SKIP why",
# with diagnostics as "# ..." lines, then the plan "1..N". Exit status: 0
# if no case failed, 1 otherwise, 2 on a usage/setup error.
# Environment: VU_CASES="split rebind" runs those cases only; VU_KEEP=1
# keeps the work directory (logs) and prints where it is.
#
# Only processes this script started are stopped (by PID), and the work
# directory (sockets, backing files, logs) is removed on any exit.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -ne 3 ]; then
	echo "usage: $0 QEMU_BINARY IMAGEDIR BUILDDIR" >&2
	exit 2
fi
QEMU=$1
IMG=$2
BUILD=$3
DAEMON=$BUILD/vhost-blk/vhost-blk
GTESTS=$HERE/guest/tests

# shellcheck source=lib.sh
. "$HERE/lib.sh"

die() { echo "test-blk-qemu: $*" >&2; exit 2; }
command -v "$QEMU" >/dev/null || die "no QEMU binary '$QEMU'"
[ -x "$DAEMON" ] || die "no vhost-blk at $DAEMON (build it first)"
if [ ! -f "$IMG/vmlinuz" ] || [ ! -f "$IMG/initramfs.cpio.gz" ]; then
	die "no guest image in $IMG (run guest/build-guest.sh $IMG)"
fi
command -v taskset >/dev/null || die "no taskset (util-linux)"

if [ "${VU_KEEP:-0}" = 1 ]; then
	WORK=$(mktemp -d /tmp/vutest-keep.XXXXXX)
	echo "# VU_KEEP=1: logs stay in $WORK"
else
	WORK=$VU_TMP # removed by lib.sh's cleanup
fi

qver=$("$QEMU" --version 2>/dev/null | head -n1)
echo "# $qver ($QEMU)"
echo "# vhost-blk: $DAEMON; guest: $IMG; daemon on CPU $VU_DAEMON_CPU, QEMU on CPU $VU_PEER_CPU"

ncases=0
nfailed=0
case_dir=""
case_pids=()
# Per case: TAP result (set by the case), diagnostics (printed before it).
result=""
reason=""

diag() { sed 's/^/# /'; }
note() { echo "# $*"; }

# start_daemon LOG ARGS...: vhost-blk in the background; sets DPID.
start_daemon() {
	local log=$1
	shift
	vu_start "$log" "$DAEMON" --cpus "$VU_DAEMON_CPU" "$@"
	DPID=$VU_LAST_PID
	case_pids+=("$DPID")
}

# wait_listening LOG PID: the daemon logged its disks (it listens now).
wait_listening() {
	vu_wait_log "$1" ' on .*\.sock' 10 "$2" || {
		fail "vhost-blk did not start"
		diag <"$1"
		return 1
	}
}

fail() {
	[ -n "$reason" ] || reason=$*
	result=fail
}

# stop_daemon PID LOG: it must still run and exit 0 on SIGTERM.
stop_daemon() {
	local pid=$1 log=$2 rc=0
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		rc=$?
		fail "vhost-blk (pid $pid) died during the case (status $rc)"
		tail -n 20 "$log" | diag
		vu_stop "$pid"
		return
	fi
	kill -TERM "$pid"
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "vhost-blk (pid $pid) still runs 5 s after SIGTERM"
		vu_stop "$pid" KILL
		return
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	vu_stop "$pid"
	if [ "$rc" -ne 0 ]; then
		fail "vhost-blk exited with status $rc after SIGTERM (expected a clean exit, 0)"
		tail -n 5 "$log" | diag
	fi
}

# guest TEST LOG KARGS... -- QEMU-ARGS...: boot the guest, run TEST; its
# status is qemu-run.sh's (0 PASS).
guest() {
	local t=$1 log=$2
	shift 2
	taskset -c "$VU_PEER_CPU" "$HERE/qemu-run.sh" -q "$QEMU" -t 120 -l "$log" \
		-s "$GTESTS/$t.sh" "$IMG" "$t" "$@" 2>"${log%.log}.run"
}

# guest_bg TEST LOG KARGS... -- QEMU-ARGS...: the same in the background;
# sets GPID, the PID of qemu-run.sh itself (it kills its QEMU when it gets
# SIGTERM), recorded for the cleanup.
guest_bg() {
	local t=$1 log=$2
	shift 2
	: >"$log"
	taskset -c "$VU_PEER_CPU" "$HERE/qemu-run.sh" -q "$QEMU" -t 120 -l "$log" \
		-s "$GTESTS/$t.sh" "$IMG" "$t" "$@" 2>"${log%.log}.run" &
	GPID=$!
	VU_PIDS+=("$GPID")
	case_pids+=("$GPID")
}

# The guest's own lines (vutest: ...) as diagnostics.
guest_diag() { grep -a -e '^vutest:' -e 'VUTEST-RESULT' "$1" | tr -d '\r' | diag; }

# Mandatory: the guest passed. Prints why not.
check_guest() {
	local rc=$1 log=$2
	if [ "$rc" -ne 0 ]; then
		local why
		why=$(grep -a 'VUTEST-RESULT: FAIL' "$log" | head -n1 | tr -d '\r')
		[ "$rc" -eq 124 ] && why="timeout${why:+ ($why)}"
		fail "guest: ${why:-no result (qemu-run status $rc)}"
		tail -n 30 "$log" | tr -d '\r' | diag
		grep -v '^qemu-run: ----' "${log%.log}.run" 2>/dev/null | grep '^qemu-run:' | diag
	fi
}

new_disk() { # FILE MIB
	truncate -s "${2}M" "$1"
}

begin_case() {
	case_dir=$WORK/$1
	mkdir -p "$case_dir"
	case_pids=()
	result=ok
	reason=""
}

# terminate PID: SIGTERM (qemu-run.sh then stops its QEMU), SIGKILL if it
# is still there 5 s later; reaped and forgotten by lib.sh.
terminate() {
	kill -TERM "$1" 2>/dev/null
	kill -CONT "$1" 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	vu_stop "$1" KILL
}

end_case() {
	local name=$1 pid
	# Anything the case left running is stopped (by PID) now.
	for pid in "${case_pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			terminate "$pid"
		fi
	done
	ncases=$((ncases + 1))
	case "$result" in
	ok) echo "ok - $name" ;;
	skip) echo "ok - $name # SKIP $reason" ;;
	*)
		echo "not ok - $name${reason:+ # $reason}"
		nfailed=$((nfailed + 1))
		;;
	esac
	[ "${VU_KEEP:-0}" = 1 ] || rm -f "$case_dir"/*.img
}

# Warnings the daemon logged, as diagnostics (they do not fail a case).
daemon_warnings() {
	grep -a -e '^warning:' -e '^error:' "$1" | head -n 10 | sed 's/^/daemon: /' | diag
}

# ---------------------------------------------------------------- cases

case_split() {
	local d=$case_dir
	new_disk "$d/disk.img" 64
	start_daemon "$d/daemon.log" --socket-path "$d/blk.sock" --blk-file "$d/disk.img"
	wait_listening "$d/daemon.log" "$DPID" || return
	guest blk-verify "$d/console.log" vuarg.mib=8 -- \
		-chardev "socket,id=c0,path=$d/blk.sock" -device vhost-user-blk-pci,chardev=c0
	check_guest $? "$d/console.log"
	guest_diag "$d/console.log"
	grep -aq 'started (split ring' "$d/daemon.log" || fail "no queue started as a split ring"
	stop_daemon "$DPID" "$d/daemon.log"
	daemon_warnings "$d/daemon.log"
}

case_packed() {
	local d=$case_dir rc
	new_disk "$d/disk.img" 64
	start_daemon "$d/daemon.log" --socket-path "$d/blk.sock" --blk-file "$d/disk.img"
	wait_listening "$d/daemon.log" "$DPID" || return
	guest blk-verify "$d/console.log" vuarg.mib=8 -- \
		-chardev "socket,id=c0,path=$d/blk.sock" -device vhost-user-blk-pci,chardev=c0,packed=on
	rc=$?
	check_guest "$rc" "$d/console.log"
	guest_diag "$d/console.log"
	grep -a 'queue 0: started' "$d/daemon.log" | sed 's/^/daemon: /' | diag
	stop_daemon "$DPID" "$d/daemon.log"
	daemon_warnings "$d/daemon.log"
	if [ "$result" = ok ] && ! grep -aq 'started (packed ring' "$d/daemon.log"; then
		if grep -aq 'started (split ring.*event idx' "$d/daemon.log"; then
			result=skip
			reason="QEMU ${qver#QEMU emulator version } does not negotiate packed rings for vhost-user-blk (the guest ran on a split ring)"
		else
			fail "the guest's queue did not start"
		fi
	fi
}

case_multiqueue() {
	local d=$case_dir sectors=$((64 * 2048))
	new_disk "$d/disk.img" 64
	start_daemon "$d/daemon.log" --socket-path "$d/blk.sock" --blk-file "$d/disk.img" \
		--num-queues 2 --serial mq-disk
	wait_listening "$d/daemon.log" "$DPID" || return
	guest blk-features "$d/console.log" vuarg.queues=2 vuarg.sectors=$sectors vuarg.serial=mq-disk -- \
		-smp 2 -chardev "socket,id=c0,path=$d/blk.sock" \
		-device vhost-user-blk-pci,chardev=c0,num-queues=2
	check_guest $? "$d/console.log"
	guest_diag "$d/console.log"
	grep -aq 'queue 1: started' "$d/daemon.log" || fail "queue 1 never started in the daemon"
	# cache_type written in the guest: config space write (SET_CONFIG).
	grep -aq 'write cache writethrough' "$d/daemon.log" ||
		fail "the guest's cache_type change never reached the daemon (SET_CONFIG)"
	stop_daemon "$DPID" "$d/daemon.log"
	daemon_warnings "$d/daemon.log"
}

case_rebind() {
	local d=$case_dir
	new_disk "$d/disk.img" 64
	start_daemon "$d/daemon.log" --socket-path "$d/blk.sock" --blk-file "$d/disk.img"
	wait_listening "$d/daemon.log" "$DPID" || return
	guest blk-rebind "$d/console.log" vuarg.rounds=2 -- \
		-chardev "socket,id=c0,path=$d/blk.sock" -device vhost-user-blk-pci,chardev=c0
	check_guest $? "$d/console.log"
	guest_diag "$d/console.log"
	stop_daemon "$DPID" "$d/daemon.log"
	daemon_warnings "$d/daemon.log"
}

case_ro_serial() {
	local d=$case_dir before after sectors=$((32 * 2048))
	# Not sparse: the guest reads data that must stay as it is.
	head -c $((32 * 1048576)) /dev/urandom >"$d/disk.img"
	before=$(md5sum <"$d/disk.img")
	start_daemon "$d/daemon.log" --socket-path "$d/blk.sock" --blk-file "$d/disk.img" \
		--read-only --serial "VU-RO-0123456789abcd"
	wait_listening "$d/daemon.log" "$DPID" || return
	guest blk-features "$d/console.log" vuarg.ro=1 vuarg.serial=VU-RO-0123456789abcd \
		vuarg.sectors=$sectors vuarg.queues=1 -- \
		-chardev "socket,id=c0,path=$d/blk.sock" -device vhost-user-blk-pci,chardev=c0
	check_guest $? "$d/console.log"
	guest_diag "$d/console.log"
	stop_daemon "$DPID" "$d/daemon.log"
	daemon_warnings "$d/daemon.log"
	after=$(md5sum <"$d/disk.img")
	[ "$before" = "$after" ] || fail "the read-only backing file changed"
}

case_restart() { restart_case 1 1; }
case_restart_packed_mq() { restart_case 2 2 ",packed=on"; }

# restart_case NQ RESTARTS [DEVICE-OPTIONS]
restart_case() {
	local nq=$1 restarts=$2 devopts=${3:-} layout=split
	local d=$case_dir qpid rc t_kill t_restart t_conn t_prog n0 n r log=daemon.log
	local chardev="socket,id=c0,path=$d/blk.sock,reconnect=1"
	local dargs=(--socket-path "$d/blk.sock" --blk-file "$d/disk.img" --num-queues "$nq")
	local qargs=()
	[ "$nq" -gt 1 ] && qargs=(-smp "$nq") && devopts+=",num-queues=$nq"
	new_disk "$d/disk.img" 64
	start_daemon "$d/$log" "${dargs[@]}"
	wait_listening "$d/$log" "$DPID" || return
	guest_bg blk-io-loop "$d/console.log" vuarg.secs=$((8 + 4 * restarts)) \
		vuarg.kib=256 vuarg.readers=2 vuarg.fsync=1 -- "${qargs[@]}" \
		-chardev "$chardev" -device "vhost-user-blk-pci,chardev=c0$devopts"
	qpid=$GPID
	if ! vu_wait_log "$d/console.log" 'VUTEST-MARK: io-started' 60 "$qpid"; then
		fail "the guest never started its I/O loop"
		wait "$qpid" 2>/dev/null
		tail -n 30 "$d/console.log" | tr -d '\r' | diag
		stop_daemon "$DPID" "$d/$log"
		return
	fi
	for r in $(seq "$restarts"); do
		# Let a little I/O run, then kill the backend in mid-flight.
		sleep 0.5
		grep -aq 'started (packed ring' "$d/$log" && layout=packed
		vu_kill_in_flight "$DPID" "$layout" "$nq"
		t_kill=$(vu_now)
		n0=$(grep -ac 'VUTEST-PROGRESS' "$d/console.log")
		note "restart $r: SIGKILLed vhost-blk (pid $DPID) after $n0 guest chunks, with $VU_KILLED_WITH requests in flight (try $VU_KILL_TRIES)"
		daemon_warnings "$d/$log"
		sleep 1
		log=daemon$((r + 1)).log
		t_restart=$(vu_now)
		start_daemon "$d/$log" "${dargs[@]}"
		note "restart $r: started vhost-blk again (pid $DPID) $(vu_elapsed "$t_kill" "$t_restart") s after the kill"
		# Progress: a chunk written, or the loop's end (its readers stopped).
		n0=$(grep -acE 'VUTEST-PROGRESS|vutest: wrote' "$d/console.log")
		t_conn=""
		t_prog=""
		for _ in $(seq 600); do # 30 s
			if [ -z "$t_conn" ] && grep -aq 'front-end connected' "$d/$log"; then
				t_conn=$(vu_now)
			fi
			n=$(grep -acE 'VUTEST-PROGRESS|vutest: wrote' "$d/console.log")
			if [ "$n" -gt "$n0" ]; then
				t_prog=$(vu_now)
				break
			fi
			kill -0 "$qpid" 2>/dev/null || break
			sleep 0.05
		done
		if [ -n "$t_conn" ]; then
			note "restart $r: restart -> QEMU reconnected: $(vu_elapsed "$t_restart" "$t_conn") s"
		else
			fail "QEMU did not reconnect to the restarted vhost-blk (restart $r)"
		fi
		if [ -n "$t_prog" ]; then
			note "restart $r: restart -> next guest progress: $(vu_elapsed "$t_restart" "$t_prog") s"
		else
			fail "the guest made no progress after restart $r"
		fi
		grep -a -e 'resubmitting' "$d/$log" | sed "s/^/restart $r: daemon: /" | diag
		[ "$result" = ok ] || break
	done
	wait "$qpid"
	rc=$?
	check_guest "$rc" "$d/console.log"
	guest_diag "$d/console.log"
	note "guest: $(grep -ac 'VUTEST-PROGRESS' "$d/console.log") chunks in all"
	stop_daemon "$DPID" "$d/$log"
	daemon_warnings "$d/$log"
}

case_resize() {
	local d=$case_dir qpid rc
	new_disk "$d/disk.img" 32
	start_daemon "$d/daemon.log" --socket-path "$d/blk.sock" --blk-file "$d/disk.img"
	wait_listening "$d/daemon.log" "$DPID" || return
	guest_bg blk-resize "$d/console.log" vuarg.sectors=$((48 * 2048)) -- \
		-chardev "socket,id=c0,path=$d/blk.sock" -device vhost-user-blk-pci,chardev=c0
	qpid=$GPID
	if vu_wait_log "$d/console.log" 'VUTEST-MARK: size-read' 60 "$qpid"; then
		truncate -s 48M "$d/disk.img"
		kill -HUP "$DPID"
	fi
	wait "$qpid"
	rc=$?
	check_guest "$rc" "$d/console.log"
	guest_diag "$d/console.log"
	grep -a 'size changed' "$d/daemon.log" | sed 's/^/daemon: /' | diag
	stop_daemon "$DPID" "$d/daemon.log"
	daemon_warnings "$d/daemon.log"
}

case_multidisk() {
	local d=$case_dir serial sum mib file got
	new_disk "$d/a.img" 48
	new_disk "$d/b.img" 40
	start_daemon "$d/daemon.log" \
		--disk "socket-path=$d/a.sock,blk-file=$d/a.img,serial=disk-a" \
		--disk "socket-path=$d/b.sock,blk-file=$d/b.img,serial=disk-b"
	vu_wait_log "$d/daemon.log" 'on .*/b\.sock' 10 "$DPID" || {
		fail "vhost-blk did not start with two disks"
		diag <"$d/daemon.log"
		return
	}
	guest blk-multi "$d/console.log" vuarg.devs=vda,vdb vuarg.mib=4 -- \
		-chardev "socket,id=c0,path=$d/a.sock" -device vhost-user-blk-pci,chardev=c0 \
		-chardev "socket,id=c1,path=$d/b.sock" -device vhost-user-blk-pci,chardev=c1
	check_guest $? "$d/console.log"
	guest_diag "$d/console.log"
	stop_daemon "$DPID" "$d/daemon.log"
	daemon_warnings "$d/daemon.log"
	[ "$result" = ok ] || return
	# Each disk's data is in its own backing file.
	local seen=0
	while read -r _ serial sum mib; do
		case "$serial" in
		disk-a) file=$d/a.img ;;
		disk-b) file=$d/b.img ;;
		*) fail "guest reported a disk with serial '$serial'"; continue ;;
		esac
		got=$(head -c $((mib * 1048576)) "$file" | md5sum | cut -d' ' -f1)
		if [ "$got" = "$sum" ]; then
			seen=$((seen + 1))
		else
			fail "$serial: ${file##*/} does not hold what the guest wrote to that disk"
		fi
	done < <(grep -a '^VUTEST-SUM:' "$d/console.log" | tr -d '\r')
	[ "$seen" -eq 2 ] || fail "the data of $((2 - seen)) disk(s) was not found in its backing file"
}

# qmp_migrate QMP-SOCKET URI: migrate the guest of that QEMU to URI and
# wait (60 s at most) until it is done; prints QEMU's final status line.
qmp_migrate() {
	python3 - "$1" "$2" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())
def cmd(name, **args):
    f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
cmd("qmp_capabilities")
r = cmd("migrate", uri=sys.argv[2])
if "error" in r:
    print("migrate failed: %s" % r["error"].get("desc"))
    sys.exit(1)
end = time.time() + 60
while time.time() < end:
    m = cmd("query-migrate")["return"]
    if m.get("status") in ("completed", "failed", "cancelled"):
        print("%s: total %s ms, downtime %s ms, %s MB sent%s" % (m["status"],
              m.get("total-time"), m.get("downtime"),
              m.get("ram", {}).get("transferred", 0) // 1000000,
              (", " + m["error-desc"]) if "error-desc" in m else ""))
        sys.exit(0 if m["status"] == "completed" else 1)
    time.sleep(0.1)
print("migration still running after 60 s")
sys.exit(1)
PY
}

# Not in the default list (it takes ~30 s more per QEMU): live migration
# of a guest doing verified I/O (blk-io-loop) from one QEMU + vhost-blk to
# another QEMU + vhost-blk on the same backing file, while the source's
# daemon dirty-logs the guest memory it writes (LOG_ALL, SET_LOG_BASE).
case_migrate() {
	local d=$case_dir pa pb qsrc qdst rc out
	local io=(vuarg.secs=14 vuarg.kib=256 vuarg.readers=2)
	new_disk "$d/disk.img" 64
	start_daemon "$d/a.log" --socket-path "$d/a.sock" --blk-file "$d/disk.img"
	pa=$DPID
	start_daemon "$d/b.log" --socket-path "$d/b.sock" --blk-file "$d/disk.img"
	pb=$DPID
	wait_listening "$d/a.log" "$pa" || return
	wait_listening "$d/b.log" "$pb" || return
	guest_bg blk-io-loop "$d/console.log" "${io[@]}" -- -qmp "unix:$d/qmp.sock,server=on,wait=off" \
		-chardev "socket,id=c0,path=$d/a.sock" -device vhost-user-blk-pci,chardev=c0
	qsrc=$GPID
	guest_bg blk-io-loop "$d/console-dst.log" "${io[@]}" -- -incoming "unix:$d/migrate.sock" \
		-chardev "socket,id=c0,path=$d/b.sock" -device vhost-user-blk-pci,chardev=c0
	qdst=$GPID
	if ! vu_wait_log "$d/console.log" 'VUTEST-MARK: io-started' 60 "$qsrc"; then
		fail "the guest never started its I/O loop"
		tail -n 30 "$d/console.log" | tr -d '\r' | diag
		return
	fi
	sleep 1
	if out=$(qmp_migrate "$d/qmp.sock" "unix:$d/migrate.sock" 2>&1); then
		note "migration $out"
	else
		fail "migration: $out"
		return
	fi
	terminate "$qsrc" # paused after the migration
	wait "$qdst"
	rc=$?
	check_guest "$rc" "$d/console-dst.log"
	guest_diag "$d/console-dst.log"
	grep -a 'started' "$d/b.log" | sed 's/^/daemon (destination): /' | diag
	stop_daemon "$pa" "$d/a.log"
	stop_daemon "$pb" "$d/b.log"
	daemon_warnings "$d/a.log"
	daemon_warnings "$d/b.log"
}

# ---------------------------------------------------------------- main

default_cases="split packed multiqueue rebind ro-serial resize restart restart-packed-mq multidisk"
all_cases="$default_cases migrate"
cases=${VU_CASES:-$default_cases}
start=$SECONDS
for c in $cases; do
	case " $all_cases " in
	*" $c "*) ;;
	*) die "unknown case '$c' (have: $all_cases)" ;;
	esac
	t0=$SECONDS
	begin_case "$c"
	"case_${c//-/_}"
	note "$c: $((SECONDS - t0)) s"
	end_case "$c"
done
echo "1..$ncases"
echo "# $((ncases - nfailed)) of $ncases cases passed (or skipped), $nfailed failed, in $((SECONDS - start)) s"
[ "$nfailed" -eq 0 ]
