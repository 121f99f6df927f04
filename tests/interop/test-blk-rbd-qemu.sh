#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test-blk-rbd-qemu.sh QEMU_BINARY IMAGEDIR BUILDDIR
#
# The interop suite of vhost-blk's rbd engine against real QEMU guests and
# a real Ceph cluster. Run it under tests/ceph/ceph-cluster.sh run, which
# provides the cluster (pool "rbd") and exports CEPH_CONF (client.admin)
# and VU_CEPH_DIR. Each case creates its own RBD image (rbd create
# rbd/vutest-CASE-PID), starts a fresh vhost-blk on it (BUILDDIR/vhost-blk/
# vhost-blk --rbd, on CPU $VU_DAEMON_CPU, adaptive polling), boots the test
# guest of IMAGEDIR (guest/build-guest.sh; IMAGEDIR/fio, the same guest
# with fio, for the fio tests) under QEMU_BINARY with TCG (qemu-run.sh,
# pinned to CPU $VU_PEER_CPU) against it, runs guest test scripts
# (guest/tests/NAME.sh, given to the guest with qemu-run.sh -s), and
# removes the image. Cases:
#   rbd-split    split ring; blk-fio-verify (fio: random writes of 4k-64k,
#                iodepth 16, O_DIRECT, crc32c verify of all of it), then a
#                second boot on the same daemon running blk-verify; after
#                the daemon's exit the image, exported with `rbd export`,
#                must hold what blk-verify wrote (the data is in the
#                cluster, not in some cache of the daemon)
#   rbd-packed   packed=on; blk-fio-verify; the daemon log must show a
#                packed ring, else SKIP (that QEMU did not negotiate packed
#                rings for vhost-user-blk; Debian's 7.2 and 10.0 do)
#   rbd-restart  QEMU with reconnect=1, guest runs blk-io-loop (a writer,
#                two O_DIRECT readers, a FLUSH after every chunk); the
#                daemon (as client.vhost: mon 'profile rbd', osd 'profile
#                rbd pool=rbd', when VU_CEPH_DIR has its keyring) is
#                SIGKILLed while it holds requests in flight (lib.sh's
#                vu_kill_in_flight, as test-blk-qemu.sh's restart), started
#                again 1 s later, and the guest must pass: no I/O error, all
#                data verified, chunks written after the restart.
#                The killed client keeps the image's exclusive lock until
#                its watch times out (the cluster's osd client watch
#                timeout, 10 s in ceph-cluster.sh), so the restarted
#                daemon's writes (its resubmitted ones first) wait up to
#                that long for the lock: the guest's loop runs vuarg.secs=24
#                (not its default 10) to keep writing after that, and the
#                host waits up to 45 s for its next progress. blk-io-loop
#                has no stall limit of its own, and Linux 6.1's virtio_blk
#                has no request timeout handler (blk-mq's 30 s request
#                timeout only re-arms its timer), so a stalled request does
#                not fail in the guest: a guest of this image ran
#                blk-io-loop through a 40 s SIGSTOP of its backend without
#                an error. Prints the requests in flight at the kill, the
#                image's watchers then, whether the new daemon resubmitted
#                them, the clients the cluster blocklisted (the dead one,
#                once its lock was broken), the time from the kill and from
#                the restart to QEMU's reconnect and to the guest's next
#                progress (I/O resumed), the chunks written before and
#                after, and the longest stall the guest saw.
# After every case the daemon must still run and must exit with status 0
# on SIGTERM (a clean shutdown: it closes the image, releasing its lock).
#
# Output is TAP-like: "ok - NAME", "not ok - NAME", "ok - NAME # SKIP why",
# with diagnostics as "# ..." lines, then the plan "1..N". Exit status: 0
# if no case failed, 1 otherwise, 2 on a usage/setup error.
# Environment: CEPH_CONF (required), VU_CEPH_DIR (for client.vhost's
# keyring), VU_CASES="rbd-split rbd-restart" runs those cases only;
# VU_KEEP=1 keeps the work directory (logs) and prints where it is.
#
# Only processes this script started are stopped (by PID); the work
# directory (sockets, exports, logs) and every image it created are
# removed on any exit.
#
# The case harness (daemons, guests, results, the TAP output) is
# blk-harness.sh, shared by test-blk-qemu.sh and test-blk-rbd-qemu.sh.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BLK_NAME=test-blk-rbd-qemu
BLK_USAGE_NOTE=" (under tests/ceph/ceph-cluster.sh run)"
# Connecting to the cluster and opening the image come before the socket;
# closing the image (releasing its lock) comes before the exit.
BLK_LISTEN_SECS=30
BLK_STOP_SECS=10
# check_guest also fails a case whose guest kernel logged an I/O error.
BLK_KERNEL_CHECK=1
# shellcheck source=blk-harness.sh
. "$HERE/blk-harness.sh"
command -v rbd >/dev/null || die "no rbd (ceph-common)"
{ [ -n "${CEPH_CONF:-}" ] && [ -f "$CEPH_CONF" ]; } ||
	die "no CEPH_CONF (run me under tests/ceph/ceph-cluster.sh run -- $0 ...)"

# RBD images this script created and has not removed yet.
IMAGES=()

# rbd_cmd ARGS...: the rbd CLI as client.admin, never waiting long.
rbd_cmd() { timeout 60 rbd -c "$CEPH_CONF" "$@"; }

# rbd_rm NAME: remove an image we created; false (with the reason on
# stderr) if it is still there. A client killed with the image open stays
# a watcher until its watch times out (10 s): retried for 30 s.
rbd_rm() {
	local out="" keep=() i rc=1
	for _ in $(seq 30); do
		if out=$(rbd_cmd rm --no-progress "rbd/$1" 2>&1); then
			rc=0
			break
		fi
		case "$out" in
		*"No such file"* | *"does not exist"*) rc=0; break ;;
		*watchers*) sleep 1 ;;
		*) break ;;
		esac
	done
	for i in "${IMAGES[@]}"; do [ "$i" = "$1" ] || keep+=("$i"); done
	IMAGES=("${keep[@]}")
	[ "$rc" -eq 0 ] || echo "test-blk-rbd-qemu: rbd rm rbd/$1: $out" >&2
	return "$rc"
}

# On any exit: our processes first (lib.sh, by PID; a daemon gets SIGTERM
# and closes its image), then our images.
rbd_cleanup() {
	local i
	vu_cleanup
	for i in "${IMAGES[@]}"; do rbd_rm "$i"; done
}
trap rbd_cleanup EXIT

blk_begin "Ceph: $CEPH_CONF; "

# This case's RBD image (none yet).
case_image=""

# new_image SIZE: a fresh image rbd/vutest-CASE-PID; sets case_image.
new_image() {
	local out
	case_image=vutest-${case_dir##*/}-$$
	if ! out=$(rbd_cmd create "rbd/$case_image" --size "$1" 2>&1); then
		fail "rbd create rbd/$case_image --size $1: $out"
		case_image=""
		return 1
	fi
	IMAGES+=("$case_image")
}

# rbd_args [ID]: the daemon's store arguments for this case's image.
rbd_args() {
	RARGS=(--rbd "rbd/$case_image" --ceph-conf "$CEPH_CONF")
	[ -z "${1:-}" ] || RARGS+=(--ceph-id "$1")
}

# fio_image: IMAGEDIR/fio, the guest with fio, or fail.
fio_image() {
	if [ -f "$IMG/fio/vmlinuz" ] && [ -f "$IMG/fio/initramfs.cpio.gz" ]; then
		FIO_IMG=$IMG/fio
		return 0
	fi
	fail "no guest image with fio in $IMG/fio (install fio on the host and rerun guest/build-guest.sh $IMG)"
	return 1
}

# case_cleanup (end_case, once the case's processes are stopped): the
# case's image is removed.
case_cleanup() {
	if [ -n "$case_image" ] && ! rbd_rm "$case_image" 2>"$case_dir/rbd-rm.err"; then
		fail "could not remove rbd/$case_image: $(tail -c 300 "$case_dir/rbd-rm.err")"
	fi
	case_image=""
}

# The fio summary lines of a guest log (IOPS, bandwidth) as diagnostics.
fio_diag() {
	grep -a -e 'vutest: fio: *\(read\|write\): IOPS' -e 'vutest: fio: *\(READ\|WRITE\): bw' "$1" |
		tr -d '\r' | sed 's/^vutest: fio: */fio: /' | diag
}

# ---------------------------------------------------------------- cases

case_rbd_split() {
	local d=$case_dir rc line sum1 sum2 off2 mib got out
	local dev=(-chardev "socket,id=c0,path=$d/blk.sock" -device "vhost-user-blk-pci,chardev=c0")
	fio_image || return
	new_image 64M || return
	rbd_args
	start_daemon "$d/daemon.log" --socket-path "$d/blk.sock" "${RARGS[@]}"
	wait_listening "$d/daemon.log" "$DPID" || return
	guest "$FIO_IMG" blk-fio-verify "$d/fio.log" vuarg.mib=32 -- "${dev[@]}"
	rc=$?
	check_guest "$rc" "$d/fio.log"
	grep -a -e '^vutest: /dev' -e '^vutest: blk-fio' -e 'VUTEST-RESULT' "$d/fio.log" | tr -d '\r' | diag
	fio_diag "$d/fio.log"
	[ "$result" = ok ] || { stop_daemon "$DPID" "$d/daemon.log"; return; }
	# A second guest (a new front-end session) on the same daemon.
	guest "$IMG" blk-verify "$d/console.log" vuarg.mib=8 -- "${dev[@]}"
	check_guest $? "$d/console.log"
	guest_diag "$d/console.log"
	grep -aq 'started (split ring' "$d/daemon.log" || fail "no queue started as a split ring"
	stop_daemon "$DPID" "$d/daemon.log"
	daemon_warnings "$d/daemon.log"
	[ "$result" = ok ] || return
	# What blk-verify wrote is in the image: "wrote M MiB at 0 MiB (SUM1)
	# and at OFF MiB (SUM2)".
	line=$(grep -a '^vutest: wrote .* MiB at 0 MiB' "$d/console.log" | tr -d '\r' | head -n1)
	read -r mib off2 sum1 sum2 < <(sed -E \
		's/^vutest: wrote ([0-9]+) MiB at 0 MiB \(([0-9a-f]+)\) and at ([0-9]+) MiB \(([0-9a-f]+)\).*/\1 \3 \2 \4/' \
		<<<"$line")
	if [ -z "${sum2:-}" ]; then
		fail "cannot read the sums blk-verify wrote from its log ('$line')"
		return
	fi
	if ! out=$(rbd_cmd export --no-progress "rbd/$case_image" "$d/export.img" 2>&1); then
		fail "rbd export rbd/$case_image: $out"
		return
	fi
	got=$(head -c $((mib * 1048576)) "$d/export.img" | md5sum | cut -d' ' -f1)
	[ "$got" = "$sum1" ] || fail "the image holds other data at 0 MiB than the guest wrote ($got, not $sum1)"
	got=$(tail -c +$((off2 * 1048576 + 1)) "$d/export.img" | head -c $((mib * 1048576)) | md5sum | cut -d' ' -f1)
	[ "$got" = "$sum2" ] || fail "the image holds other data at $off2 MiB than the guest wrote ($got, not $sum2)"
	[ "$result" = ok ] && note "rbd export: the image holds what the guest wrote at 0 and $off2 MiB"
}

case_rbd_packed() {
	local d=$case_dir rc
	fio_image || return
	new_image 64M || return
	rbd_args
	start_daemon "$d/daemon.log" --socket-path "$d/blk.sock" "${RARGS[@]}"
	wait_listening "$d/daemon.log" "$DPID" || return
	guest "$FIO_IMG" blk-fio-verify "$d/fio.log" vuarg.mib=32 -- \
		-chardev "socket,id=c0,path=$d/blk.sock" -device vhost-user-blk-pci,chardev=c0,packed=on
	rc=$?
	check_guest "$rc" "$d/fio.log"
	grep -a -e '^vutest: /dev' -e '^vutest: blk-fio' -e 'VUTEST-RESULT' "$d/fio.log" | tr -d '\r' | diag
	fio_diag "$d/fio.log"
	stop_packed "$d/daemon.log" fio
}

case_rbd_restart() {
	local d=$case_dir qpid rc t_kill t_restart t_conn t_prog n n_kill log=daemon.log layout=split
	local id="" secs=24
	new_image 64M || return
	# The daemon as the restricted client a deployment would give it, if
	# the cluster has one: breaking a dead client's lock takes blocklisting,
	# which 'profile rbd' allows.
	if [ -n "${VU_CEPH_DIR:-}" ] && [ -f "$VU_CEPH_DIR/keyring.vhost" ]; then
		id=vhost
		DENV=("CEPH_ARGS=--keyring=$VU_CEPH_DIR/keyring.vhost")
	fi
	rbd_args "$id"
	local dargs=(--socket-path "$d/blk.sock" "${RARGS[@]}")
	note "the daemon runs as client.${id:-admin}"
	start_daemon "$d/$log" "${dargs[@]}"
	wait_listening "$d/$log" "$DPID" || return
	guest_bg "$IMG" blk-io-loop "$d/console.log" vuarg.secs=$secs \
		vuarg.kib=256 vuarg.readers=2 vuarg.fsync=1 -- \
		-chardev "socket,id=c0,path=$d/blk.sock,reconnect=1" -device vhost-user-blk-pci,chardev=c0
	qpid=$GPID
	wait_io_started "$d/console.log" "$qpid" "$d/$log" || return
	# Let a little I/O run, then kill the backend in mid-flight.
	kill_in_flight "$d/$log" "$d/console.log" 1
	# Who holds the image now (the dead client's watch), in the background.
	rbd_cmd status "rbd/$case_image" >"$d/status.txt" 2>&1 &
	local spid=$!
	VU_PIDS+=("$spid")
	sleep 1
	log=daemon2.log
	t_restart=$(vu_now)
	start_daemon "$d/$log" "${dargs[@]}"
	note "started vhost-blk again (pid $DPID) $(vu_elapsed "$t_kill" "$t_restart") s after the kill"
	wait_resumed "$d/$log" "$d/console.log" "$qpid" 45
	wait "$spid" 2>/dev/null
	forget "$spid"
	grep -a -e 'Watchers' -e 'watcher=' "$d/status.txt" | sed 's/^[[:space:]]*/rbd status after the kill: /' | diag
	if [ -n "$t_conn" ]; then
		note "restart -> QEMU reconnected: $(vu_elapsed "$t_restart" "$t_conn") s"
	else
		fail "QEMU did not reconnect to the restarted vhost-blk"
	fi
	if [ -n "$t_prog" ]; then
		note "I/O resumed (the guest's next progress): $(vu_elapsed "$t_restart" "$t_prog") s after the restart, $(vu_elapsed "$t_kill" "$t_prog") s after the kill"
	else
		fail "the guest made no progress within 45 s of the restart"
	fi
	grep -a -e 'resubmitting' "$d/$log" | sed 's/^/daemon: /' | diag
	# The new client broke the dead one's lock: the cluster blocklisted it.
	if command -v ceph >/dev/null; then
		local bl w
		bl=$(timeout 30 ceph -c "$CEPH_CONF" osd blocklist ls 2>&1)
		while read -r w; do
			if grep -qF "$w" <<<"$bl"; then
				note "the dead client's watcher $w is blocklisted: its lock was broken"
			else
				note "watcher $w is not blocklisted"
			fi
		done < <(grep -ao 'watcher=[^ ]*' "$d/status.txt" | cut -d= -f2)
	fi
	wait "$qpid"
	rc=$?
	forget "$qpid"
	check_guest "$rc" "$d/console.log"
	guest_diag "$d/console.log"
	n=$(grep -ac 'VUTEST-PROGRESS' "$d/console.log")
	note "guest: $n chunks in all, $((n - n_kill)) after the restart"
	[ "$n" -gt "$n_kill" ] || fail "the guest wrote no chunk after the restart"
	stop_daemon "$DPID" "$d/$log"
	daemon_warnings "$d/$log"
}

# ---------------------------------------------------------------- main

default_cases="rbd-split rbd-packed rbd-restart"
run_cases "$default_cases" "$default_cases"
