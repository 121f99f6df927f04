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
#
# The case harness (daemons, guests, results, the TAP output) is
# blk-harness.sh, shared by test-blk-qemu.sh and test-blk-rbd-qemu.sh.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BLK_NAME=test-blk-qemu
# shellcheck source=blk-harness.sh
. "$HERE/blk-harness.sh"
blk_begin ""

new_disk() { # FILE MIB
	truncate -s "${2}M" "$1"
}

# ---------------------------------------------------------------- cases

case_split() {
	local d=$case_dir
	new_disk "$d/disk.img" 64
	start_daemon "$d/daemon.log" --socket-path "$d/blk.sock" --blk-file "$d/disk.img"
	wait_listening "$d/daemon.log" "$DPID" || return
	guest "$IMG" blk-verify "$d/console.log" vuarg.mib=8 -- \
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
	guest "$IMG" blk-verify "$d/console.log" vuarg.mib=8 -- \
		-chardev "socket,id=c0,path=$d/blk.sock" -device vhost-user-blk-pci,chardev=c0,packed=on
	rc=$?
	check_guest "$rc" "$d/console.log"
	guest_diag "$d/console.log"
	stop_packed "$d/daemon.log"
}

case_multiqueue() {
	local d=$case_dir sectors=$((64 * 2048))
	new_disk "$d/disk.img" 64
	start_daemon "$d/daemon.log" --socket-path "$d/blk.sock" --blk-file "$d/disk.img" \
		--num-queues 2 --serial mq-disk
	wait_listening "$d/daemon.log" "$DPID" || return
	guest "$IMG" blk-features "$d/console.log" vuarg.queues=2 vuarg.sectors=$sectors vuarg.serial=mq-disk -- \
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
	guest "$IMG" blk-rebind "$d/console.log" vuarg.rounds=2 -- \
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
	guest "$IMG" blk-features "$d/console.log" vuarg.ro=1 vuarg.serial=VU-RO-0123456789abcd \
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
	local d=$case_dir qpid rc t_kill t_restart t_conn t_prog n_kill r log=daemon.log
	local chardev="socket,id=c0,path=$d/blk.sock,reconnect=1"
	local dargs=(--socket-path "$d/blk.sock" --blk-file "$d/disk.img" --num-queues "$nq")
	local qargs=()
	[ "$nq" -gt 1 ] && qargs=(-smp "$nq") && devopts+=",num-queues=$nq"
	new_disk "$d/disk.img" 64
	start_daemon "$d/$log" "${dargs[@]}"
	wait_listening "$d/$log" "$DPID" || return
	guest_bg "$IMG" blk-io-loop "$d/console.log" vuarg.secs=$((8 + 4 * restarts)) \
		vuarg.kib=256 vuarg.readers=2 vuarg.fsync=1 -- "${qargs[@]}" \
		-chardev "$chardev" -device "vhost-user-blk-pci,chardev=c0$devopts"
	qpid=$GPID
	wait_io_started "$d/console.log" "$qpid" "$d/$log" || return
	for r in $(seq "$restarts"); do
		# Let a little I/O run, then kill the backend in mid-flight.
		kill_in_flight "$d/$log" "$d/console.log" "$nq" "restart $r: "
		sleep 1
		log=daemon$((r + 1)).log
		t_restart=$(vu_now)
		start_daemon "$d/$log" "${dargs[@]}"
		note "restart $r: started vhost-blk again (pid $DPID) $(vu_elapsed "$t_kill" "$t_restart") s after the kill"
		wait_resumed "$d/$log" "$d/console.log" "$qpid" 30
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
	guest_bg "$IMG" blk-resize "$d/console.log" vuarg.sectors=$((48 * 2048)) -- \
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
	guest "$IMG" blk-multi "$d/console.log" vuarg.devs=vda,vdb vuarg.mib=4 -- \
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
	guest_bg "$IMG" blk-io-loop "$d/console.log" "${io[@]}" -- -qmp "unix:$d/qmp.sock,server=on,wait=off" \
		-chardev "socket,id=c0,path=$d/a.sock" -device vhost-user-blk-pci,chardev=c0
	qsrc=$GPID
	guest_bg "$IMG" blk-io-loop "$d/console-dst.log" "${io[@]}" -- -incoming "unix:$d/migrate.sock" \
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
run_cases "$default_cases" "$default_cases migrate"
