# SPDX-License-Identifier: MIT
# Shell helpers for the interop tests and the demo: start our daemons in the
# background with their PIDs recorded, wait for their sockets, and stop
# exactly those processes (and remove what was made) on any exit.
# Source it; it sets an EXIT trap that calls vu_cleanup.

VU_PIDS=()
VU_TMP=$(mktemp -d /tmp/vutest.XXXXXX)

vu_cleanup() {
	local pid
	for pid in "${VU_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${VU_PIDS[@]}"; do
		# Give each up to 5 s to exit cleanly, then SIGKILL it.
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	VU_PIDS=()
	rm -rf "$VU_TMP"
}
trap vu_cleanup EXIT
trap 'exit 130' INT TERM

# vu_wait_socket PATH [SECS]: wait until PATH is a socket.
vu_wait_socket() {
	local i
	for i in $(seq $((${2:-10} * 10))); do
		[ -S "$1" ] && return 0
		sleep 0.1
	done
	echo "no socket at $1" >&2
	return 1
}

# vu_start LOG CMD...: start CMD in the background, logging to LOG; sets VU_LAST_PID.
vu_start() {
	local log=$1; shift
	"$@" >"$log" 2>&1 &
	VU_LAST_PID=$!
	VU_PIDS+=("$VU_LAST_PID")
}

# vu_stop PID [SIGNAL]: stop one process we started.
vu_stop() {
	kill -"${2:-TERM}" "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local keep=() p
	for p in "${VU_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	VU_PIDS=("${keep[@]}")
}

# The CPU the daemon gets and the one QEMU gets (PERF.md: pin them apart).
VU_DAEMON_CPU=0
VU_PEER_CPU=$(( $(nproc) > 1 ? 1 : 0 ))

# vu_guest_and_qemu qemu72|qemu10 WORKDIR: the start of the meson interop
# tests' runners (run-blk-qemu.sh, net-run-qemu.sh). Makes sure the guest
# image is in WORKDIR/guest (guest/build-guest.sh, which does nothing when it
# is up to date) and sets VU_QEMU to the QEMU binary asked for:
#   qemu72  Debian's qemu-system-x86_64 from PATH (7.2 on Debian 12);
#   qemu10  QEMU 10.0 from bookworm-backports, unpacked into WORKDIR/qemu10
#           by scripts/get-qemu10.sh (nothing installed; reused once there).
# Exits the script: 1 if the image cannot be built or there is no system
# QEMU (the suite could not run), 77 (skipped, the reason printed) if QEMU
# 10 cannot be had (no network, no backports), 2 for another name.
vu_guest_and_qemu() {
	local which=$1 workdir=$2 me=${0##*/}
	local src
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	mkdir -p "$workdir"
	echo "${me%.sh}: guest image in $workdir/guest"
	if ! "$src/tests/interop/guest/build-guest.sh" "$workdir/guest" \
		>"$workdir/build-guest.log" 2>&1; then
		cat "$workdir/build-guest.log" >&2
		echo "${me%.sh}: cannot build the guest image (see above); the interop suite cannot run" >&2
		exit 1
	fi
	tail -n 1 "$workdir/build-guest.log"
	case "$which" in
	qemu72)
		VU_QEMU=$(command -v qemu-system-x86_64) || {
			echo "${me%.sh}: no qemu-system-x86_64 in PATH (install qemu-system-x86: scripts/install-deps.sh)" >&2
			exit 1
		}
		;;
	qemu10)
		if ! "$src/scripts/get-qemu10.sh" "$workdir/qemu10" >"$workdir/get-qemu10.log" 2>&1; then
			echo "${me%.sh}: SKIP: scripts/get-qemu10.sh could not provide QEMU 10:"
			grep -E 'get-qemu10:|^E:|^W:|rror' "$workdir/get-qemu10.log" | tail -n 5 | sed 's/^/  /'
			exit 77
		fi
		VU_QEMU=$workdir/qemu10/qemu-system-x86_64
		;;
	*)
		echo "${me%.sh}: no QEMU called '$which' (qemu72 or qemu10)" >&2
		exit 2
		;;
	esac
}

# ---- Helpers of the QEMU interop suites (test-blk-qemu.sh,
# test-blk-rbd-qemu.sh).

# vu_now: seconds since the epoch with milliseconds.
vu_now() { date +%s.%N | cut -c1-14; }
# vu_elapsed T0 T1: T1 - T0 in seconds, two decimals.
vu_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# vu_wait_log FILE PATTERN SECS [PID]: until FILE has a line matching
# PATTERN (grep -E); fails early if PID (when given) exits.
vu_wait_log() {
	for _ in $(seq $(($3 * 20))); do
		grep -aEq "$2" "$1" 2>/dev/null && return 0
		if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then
			grep -aEq "$2" "$1" 2>/dev/null && return 0
			return 1
		fi
		sleep 0.05
	done
	return 1
}

# vu_kill_in_flight PID split|packed [NQ]: SIGKILL the daemon (one we
# started) at a moment when it holds guest requests in flight (taken from
# the ring, not yet completed to it), so that the restarted daemon must
# resubmit them: stop it (SIGSTOP, until every thread is stopped), count
# the entries of its inflight area whose "inflight" byte is 1 (the memfd
# it gave QEMU with GET_INFLIGHT_FD; layout: QEMU's
# docs/interop/vhost-user.rst, "Inflight I/O tracking"), and if nothing is
# in flight let it run 2-30 ms and try again, for at most 5 s; then kill
# it. One python process samples (hundreds of tries in 5 s): requests
# that spend a few milliseconds in the backend are caught too. Sets
# VU_KILLED_WITH (the count) and VU_KILL_TRIES.
vu_kill_in_flight() {
	local pid=$1 out
	out=$(python3 - "$pid" "$2" "${3:-1}" <<'PY' 2>/dev/null
import os, random, signal, struct, sys, time
pid, layout, nq = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
first, size = (16, 16) if layout == "split" else (32, 32)

def stopped():
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            st = open("/proc/%d/task/%s/stat" % (pid, t)).read()
        except OSError:
            continue
        if st.rsplit(")", 1)[1].split()[0] not in "Tt":
            return False
    return True

def inflight():
    for fd in os.listdir("/proc/%d/fd" % pid):
        path = "/proc/%d/fd/%s" % (pid, fd)
        try:
            if not os.readlink(path).startswith("/memfd:vu-inflight"):
                continue
            data = open(path, "rb").read()
        except OSError:
            continue
        region = len(data) // nq
        n = 0
        for q in range(nq):
            base = q * region
            desc_num = struct.unpack_from("<H", data, base + 10)[0]
            n += sum(1 for i in range(desc_num)
                     if first + i * size < region and data[base + first + i * size] == 1)
        return n
    return 0

n, tries, end = 0, 0, time.time() + 5
try:
    while time.time() < end:
        tries += 1
        os.kill(pid, signal.SIGSTOP)
        t = time.time() + 1
        while not stopped() and time.time() < t:
            time.sleep(0.001)
        n = inflight()
        if n > 0:
            break
        os.kill(pid, signal.SIGCONT)
        time.sleep(random.uniform(0.002, 0.03))
except OSError:
    pass
print(n, tries)
PY
	)
	read -r VU_KILLED_WITH VU_KILL_TRIES <<<"${out:-0 0}"
	vu_stop "$pid" KILL
}
