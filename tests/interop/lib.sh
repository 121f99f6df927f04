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
