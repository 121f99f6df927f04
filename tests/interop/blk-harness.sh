# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# The case harness of vhost-blk's QEMU interop suites, test-blk-qemu.sh and
# test-blk-rbd-qemu.sh (both QEMU_BINARY IMAGEDIR BUILDDIR): argument and
# setup checks, vhost-blk daemons and qemu-run.sh guests started in the
# background with their PIDs recorded (lib.sh) and stopped by PID, the
# per-case result, the TAP-like output ("ok - NAME", "not ok - NAME",
# "ok - NAME # SKIP why", diagnostics as "# ..." lines, the plan "1..N"),
# and the steps the suites' packed and restart cases have in common.
#
# Source it from the suite (it takes the suite's arguments, "$@") after
# setting HERE (this directory) and:
#   BLK_NAME          the suite's name in its error messages (die)
#   BLK_USAGE_NOTE    appended to the usage line (default: nothing)
#   BLK_LISTEN_SECS   how long wait_listening waits for the daemon's
#                     socket line (default 10 s)
#   BLK_STOP_SECS     how long stop_daemon gives the daemon to exit after
#                     SIGTERM (default 5 s)
#   BLK_KERNEL_CHECK  1: check_guest also fails a case whose guest kernel
#                     logged an I/O error or a hung task (default 0)
# Sourcing it checks the arguments (usage error: exit 2), sets QEMU, IMG,
# BUILD, DAEMON and GTESTS, sources lib.sh (its EXIT trap, VU_TMP) and
# checks the QEMU, vhost-blk, the guest image and taskset (die: exit 2).
# The suite then makes its own checks, calls blk_begin, defines its cases
# (case_NAME, dashes in NAME as underscores) and ends with run_cases. A
# suite may redefine case_cleanup, which end_case calls once the case's
# processes are stopped (to remove what else the case made).

if [ $# -ne 3 ]; then
	echo "usage: $0 QEMU_BINARY IMAGEDIR BUILDDIR${BLK_USAGE_NOTE:-}" >&2
	exit 2
fi
QEMU=$1
IMG=$2
BUILD=$3
DAEMON=$BUILD/vhost-blk/vhost-blk
GTESTS=$HERE/guest/tests
: "${BLK_LISTEN_SECS:=10}" "${BLK_STOP_SECS:=5}" "${BLK_KERNEL_CHECK:=0}"

# shellcheck source=lib.sh
. "$HERE/lib.sh"

die() { echo "${BLK_NAME:?}: $*" >&2; exit 2; }
command -v "$QEMU" >/dev/null || die "no QEMU binary '$QEMU'"
[ -x "$DAEMON" ] || die "no vhost-blk at $DAEMON (build it first)"
if [ ! -f "$IMG/vmlinuz" ] || [ ! -f "$IMG/initramfs.cpio.gz" ]; then
	die "no guest image in $IMG (run guest/build-guest.sh $IMG)"
fi
command -v taskset >/dev/null || die "no taskset (util-linux)"

# blk_begin [MORE]: the work directory WORK (VU_KEEP=1: kept, and said
# where), then the header lines: the QEMU version (also in qver) and what
# runs where (MORE, e.g. "Ceph: FILE; ", after the guest image).
blk_begin() {
	if [ "${VU_KEEP:-0}" = 1 ]; then
		WORK=$(mktemp -d /tmp/vutest-keep.XXXXXX)
		echo "# VU_KEEP=1: logs stay in $WORK"
	else
		WORK=$VU_TMP # removed by lib.sh's cleanup
	fi
	qver=$("$QEMU" --version 2>/dev/null | head -n1)
	echo "# $qver ($QEMU)"
	echo "# vhost-blk: $DAEMON; guest: $IMG; ${1:-}daemon on CPU $VU_DAEMON_CPU, QEMU on CPU $VU_PEER_CPU"
}

ncases=0
nfailed=0
case_dir=""
case_pids=()
# Per case: TAP result (set by the case), diagnostics (printed before it).
result=""
reason=""

diag() { sed 's/^/# /'; }
note() { echo "# $*"; }

fail() {
	[ -n "$reason" ] || reason=$*
	result=fail
}

# start_daemon LOG ARGS...: vhost-blk in the background, with the
# environment DENV (NAME=VALUE..., this case's; none by default); sets DPID.
DENV=()
start_daemon() {
	local log=$1 envcmd=()
	shift
	[ ${#DENV[@]} -eq 0 ] || envcmd=(env "${DENV[@]}")
	vu_start "$log" "${envcmd[@]}" "$DAEMON" --cpus "$VU_DAEMON_CPU" "$@"
	DPID=$VU_LAST_PID
	case_pids+=("$DPID")
}

# wait_listening LOG PID: the daemon logged its disks (it listens now),
# within BLK_LISTEN_SECS (an rbd daemon connects to the cluster and opens
# its image first).
wait_listening() {
	vu_wait_log "$1" ' on .*\.sock' "$BLK_LISTEN_SECS" "$2" || {
		fail "vhost-blk did not start"
		diag <"$1"
		return 1
	}
}

# stop_daemon PID LOG: it must still run and exit 0 on SIGTERM (within
# BLK_STOP_SECS).
stop_daemon() {
	local pid=$1 log=$2 rc=0
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		rc=$?
		fail "vhost-blk (pid $pid) died during the case (status $rc)"
		tail -n 20 "$log" | diag
		forget "$pid"
		return
	fi
	kill -TERM "$pid"
	for _ in $(seq $((BLK_STOP_SECS * 20))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "vhost-blk (pid $pid) still runs $BLK_STOP_SECS s after SIGTERM"
		vu_stop "$pid" KILL
		return
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	forget "$pid"
	if [ "$rc" -ne 0 ]; then
		fail "vhost-blk exited with status $rc after SIGTERM (expected a clean exit, 0)"
		tail -n 5 "$log" | diag
	fi
}

# forget PID: a process we started that has been reaped (wait) leaves
# lib.sh's list, so that nothing signals its PID again.
forget() {
	local keep=() p
	for p in "${VU_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	VU_PIDS=("${keep[@]}")
}

# guest IMAGEDIR TEST LOG KARGS... -- QEMU-ARGS...: boot the guest, run
# TEST; its status is qemu-run.sh's (0 PASS). In the background, waited
# for: a signal to this script interrupts the wait, and the cleanup then
# stops qemu-run.sh (which stops its QEMU).
guest() {
	local img=$1 t=$2 log=$3 pid rc
	shift 3
	taskset -c "$VU_PEER_CPU" "$HERE/qemu-run.sh" -q "$QEMU" -t 120 -l "$log" \
		-s "$GTESTS/$t.sh" "$img" "$t" "$@" 2>"${log%.log}.run" &
	pid=$!
	VU_PIDS+=("$pid")
	wait "$pid"
	rc=$?
	forget "$pid"
	return "$rc"
}

# guest_bg IMAGEDIR TEST LOG KARGS... -- QEMU-ARGS...: the same in the
# background; sets GPID (qemu-run.sh's PID: it stops its QEMU on SIGTERM).
guest_bg() {
	local img=$1 t=$2 log=$3
	shift 3
	: >"$log"
	taskset -c "$VU_PEER_CPU" "$HERE/qemu-run.sh" -q "$QEMU" -t 120 -l "$log" \
		-s "$GTESTS/$t.sh" "$img" "$t" "$@" 2>"${log%.log}.run" &
	GPID=$!
	VU_PIDS+=("$GPID")
	case_pids+=("$GPID")
}

# The guest's own lines (vutest: ...) as diagnostics.
guest_diag() { grep -a -e '^vutest:' -e 'VUTEST-RESULT' "$1" | tr -d '\r' | diag; }

# Mandatory: the guest passed, and (BLK_KERNEL_CHECK=1) its kernel logged
# no I/O error. Prints why not.
check_guest() {
	local rc=$1 log=$2 why
	if [ "$rc" -ne 0 ]; then
		why=$(grep -a 'VUTEST-RESULT: FAIL' "$log" | head -n1 | tr -d '\r')
		[ "$rc" -eq 124 ] && why="timeout${why:+ ($why)}"
		fail "guest: ${why:-no result (qemu-run status $rc)}"
		tail -n 30 "$log" | tr -d '\r' | diag
		grep -v '^qemu-run: ----' "${log%.log}.run" 2>/dev/null | grep '^qemu-run:' | diag
	fi
	[ "$BLK_KERNEL_CHECK" = 1 ] || return 0
	why=$(grep -a -e 'I/O error' -e 'blocked for more than' "$log" | head -n1 | tr -d '\r')
	[ -z "$why" ] || fail "the guest's kernel logged: $why"
}

begin_case() {
	case_dir=$WORK/$1
	mkdir -p "$case_dir"
	case_pids=()
	DENV=()
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

# case_cleanup: the suite's own cleanup at the end of a case (nothing by
# default); it may fail the case.
case_cleanup() { :; }

end_case() {
	local name=$1 pid
	# Anything the case left running is stopped (by PID) now, then the
	# suite's case_cleanup runs.
	for pid in "${case_pids[@]}"; do
		case " ${VU_PIDS[*]} " in *" $pid "*) ;; *) continue ;; esac
		if kill -0 "$pid" 2>/dev/null; then
			terminate "$pid"
		fi
	done
	case_cleanup
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

# stop_packed LOG [WHAT]: the end of a case on a packed=on device: the
# daemon's queue 0 line as a diagnostic, stop_daemon DPID, its warnings;
# then, if the case passed, the daemon (LOG) must have run a packed ring:
# a split ring with event idx instead is a SKIP (this QEMU does not
# negotiate packed rings; the guest ran WHAT on a split ring), no queue
# started a failure.
stop_packed() {
	grep -a 'queue 0: started' "$1" | sed 's/^/daemon: /' | diag
	stop_daemon "$DPID" "$1"
	daemon_warnings "$1"
	if [ "$result" = ok ] && ! grep -aq 'started (packed ring' "$1"; then
		if grep -aq 'started (split ring.*event idx' "$1"; then
			result=skip
			reason="QEMU ${qver#QEMU emulator version } does not negotiate packed rings for vhost-user-blk (the guest ran ${2:+$2 }on a split ring)"
		else
			fail "the guest's queue did not start"
		fi
	fi
}

# wait_io_started CONSOLE QPID LOG: the guest (qemu-run.sh QPID) printed
# its io-started mark in CONSOLE within 60 s; else the case fails, the
# guest is reaped, the tail of CONSOLE printed, the daemon DPID (its log
# LOG) stopped, and the status is 1.
wait_io_started() {
	vu_wait_log "$1" 'VUTEST-MARK: io-started' 60 "$2" && return 0
	fail "the guest never started its I/O loop"
	wait "$2" 2>/dev/null
	forget "$2"
	tail -n 30 "$1" | tr -d '\r' | diag
	stop_daemon "$DPID" "$3"
	return 1
}

# kill_in_flight LOG CONSOLE NQ [PREFIX]: after a little more guest I/O
# (0.5 s), SIGKILL the daemon DPID (its log LOG; NQ queues) while it holds
# requests in flight (lib.sh's vu_kill_in_flight, with the ring layout in
# the caller's layout: split, or packed once a log showed a packed ring);
# sets t_kill (when) and n_kill (the guest's chunks in CONSOLE by then),
# notes them (after PREFIX) and the daemon's warnings.
# shellcheck disable=SC2034 # t_kill: the caller's
kill_in_flight() {
	sleep 0.5
	grep -aq 'started (packed ring' "$1" && layout=packed
	vu_kill_in_flight "$DPID" "$layout" "$3"
	t_kill=$(vu_now)
	n_kill=$(grep -ac 'VUTEST-PROGRESS' "$2")
	note "${4:-}SIGKILLed vhost-blk (pid $DPID) after $n_kill guest chunks, with $VU_KILLED_WITH requests in flight (try $VU_KILL_TRIES)"
	daemon_warnings "$1"
}

# wait_resumed LOG CONSOLE QPID SECS: after a restart of the daemon (its
# log LOG), for at most SECS s or until QPID (the guest's qemu-run.sh)
# exits: sets t_conn, when the daemon logged its front-end connected, and
# t_prog, when the guest (CONSOLE) next made progress; "" if never.
# shellcheck disable=SC2034 # t_prog: the caller's
wait_resumed() {
	local n0 n
	# Progress: a chunk written, or the loop's end (its readers stopped).
	n0=$(grep -acE 'VUTEST-PROGRESS|vutest: wrote' "$2")
	t_conn=""
	t_prog=""
	for _ in $(seq $(($4 * 20))); do
		if [ -z "$t_conn" ] && grep -aq 'front-end connected' "$1"; then
			t_conn=$(vu_now)
		fi
		n=$(grep -acE 'VUTEST-PROGRESS|vutest: wrote' "$2")
		if [ "$n" -gt "$n0" ]; then
			t_prog=$(vu_now)
			break
		fi
		kill -0 "$3" 2>/dev/null || break
		sleep 0.05
	done
}

# run_cases DEFAULT ALL: runs the cases VU_CASES names (default: those of
# DEFAULT; each must be in ALL, else die), each as case_NAME between
# begin_case and end_case, with its time as a diagnostic; then the plan
# and a summary. Its status: 0 if no case failed, 1 otherwise.
run_cases() {
	local default=$1 all=$2 cases c t0 start=$SECONDS
	cases=${VU_CASES:-$default}
	for c in $cases; do
		case " $all " in
		*" $c "*) ;;
		*) die "unknown case '$c' (have: $all)" ;;
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
}
