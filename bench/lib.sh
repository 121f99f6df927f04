# SPDX-License-Identifier: MIT
# Helpers of the benchmark scripts (sourced, not run): where the tools
# are, starting and stopping back-ends on the back-end CPU, running the
# load generator on the other one, reading its JSON line.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC_DIR/build}
VHOST_BLK=${VHOST_BLK:-$BUILD_DIR/vhost-blk/vhost-blk}
BLKGEN=${BLKGEN:-$BUILD_DIR/bench/vu-blkgen}
NULLBLK=${NULLBLK:-$BUILD_DIR/bench/vu-nullblk}
LINEXFER=${LINEXFER:-$BUILD_DIR/bench/vu-linexfer}
QSD=${QSD:-$(command -v qemu-storage-daemon || true)}

# PERF.md: the back-end gets CPU 0, the load generator CPU 1.  On a
# one-CPU machine both share CPU 0 (numbers then mean little).
if [ "$(nproc)" -ge 2 ]; then
	BACKEND_CPU=${BACKEND_CPU:-0}
	GEN_CPU=${GEN_CPU:-1}
else
	BACKEND_CPU=${BACKEND_CPU:-0}
	GEN_CPU=${GEN_CPU:-0}
fi

BACKEND_PID=
WORK=

die() { echo "${0##*/}: $*" >&2; exit 1; }
note() { echo "${0##*/}: $*" >&2; }

need_tools() {
	[ -x "$VHOST_BLK" ] || die "no $VHOST_BLK (build first: meson setup build && ninja -C build)"
	[ -x "$BLKGEN" ] || die "no $BLKGEN (build first)"
	[ -x "$NULLBLK" ] || die "no $NULLBLK (build first)"
	command -v python3 >/dev/null || die "python3 is needed for the summaries"
}

# Sets have_qsd: 1 if the baseline, qemu-storage-daemon, is there; else 0
# with a note that the baseline is skipped.
check_qsd() {
	have_qsd=1
	if [ -z "$QSD" ] || [ ! -x "$QSD" ]; then
		have_qsd=0
		note "qemu-storage-daemon not found (Debian package qemu-system-common): baseline skipped"
	fi
}

# A private directory for sockets and the disk file.  The disk goes to
# /dev/shm (tmpfs) unless DISK_DIR says otherwise.
make_workdir() {
	WORK=$(mktemp -d /tmp/vu-bench.XXXXXX)
	DISK_DIR=${DISK_DIR:-/dev/shm}
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

cleanup() {
	stop_backend
	[ -n "${DISK_FILE:-}" ] && [ "${KEEP_DISK:-0}" != 1 ] && rm -f "$DISK_FILE"
	[ -n "$WORK" ] && rm -rf "$WORK"
	return 0
}

# Wait until a Unix socket exists at $1 and the back-end is alive.
wait_socket() {
	local sock=$1 i
	for i in $(seq 1 200); do
		[ -S "$sock" ] && return 0
		kill -0 "$BACKEND_PID" 2>/dev/null || return 1
		sleep 0.025
	done
	return 1
}

# start_backend KIND SOCKET [args]: KIND is ours, qsd or nullblk.  Every
# thread of the back-end runs on BACKEND_CPU (taskset), and ours and
# vu-nullblk pin their poller there too.  Its log goes to $WORK/KIND.log.
start_backend() {
	local kind=$1 sock=$2; shift 2
	rm -f "$sock"
	case $kind in
	ours)
		taskset -c "$BACKEND_CPU" "$VHOST_BLK" --socket-path "$sock" --cpus "$BACKEND_CPU" \
			"$@" >"$WORK/$kind.log" 2>&1 &
		;;
	nullblk)
		taskset -c "$BACKEND_CPU" "$NULLBLK" --socket-path "$sock" --cpu "$BACKEND_CPU" \
			"$@" >"$WORK/$kind.log" 2>&1 &
		;;
	qsd)
		taskset -c "$BACKEND_CPU" "$QSD" "$@" >"$WORK/$kind.log" 2>&1 &
		;;
	*) die "unknown back-end $kind" ;;
	esac
	BACKEND_PID=$!
	if ! wait_socket "$sock"; then
		note "$kind did not come up; its log:"
		cat "$WORK/$kind.log" >&2
		stop_backend
		return 1
	fi
}

stop_backend() {
	[ -n "$BACKEND_PID" ] || return 0
	kill "$BACKEND_PID" 2>/dev/null || true
	local i
	for i in $(seq 1 100); do
		kill -0 "$BACKEND_PID" 2>/dev/null || break
		sleep 0.02
	done
	kill -9 "$BACKEND_PID" 2>/dev/null || true
	wait "$BACKEND_PID" 2>/dev/null || true
	BACKEND_PID=
}

# The QSD command line of a vhost-user-blk export at $1 of node n0, after
# the --blockdev arguments given.  QSD_IOTHREAD=1 runs the export in an
# iothread (adaptive polling) instead of the main loop.
qsd_args() {
	local sock=$1; shift
	local it=() eopt=
	if [ "${QSD_IOTHREAD:-0}" = 1 ]; then
		it=(--object iothread,id=iot0)
		eopt=,iothread=iot0
	fi
	printf '%s\n' "$@" "${it[@]}" --export \
		"type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=$sock,writable=on,num-queues=1$eopt"
}

# run_gen SOCKET ARGS...: the generator on GEN_CPU; prints its JSON line
# (without the prefix), or nothing on failure (its output is in
# $WORK/gen.log).
run_gen() {
	local sock=$1; shift
	if taskset -c "$GEN_CPU" "$BLKGEN" --socket "$sock" --cpu "$GEN_CPU" "$@" >"$WORK/gen.log" 2>&1; then
		sed -n 's/^JSON: //p' "$WORK/gen.log" | tail -1
	else
		note "vu-blkgen failed ($*):"
		sed 's/^/    /' "$WORK/gen.log" >&2
	fi
}

# json_get JSON KEY[.SUBKEY]: one value of a JSON line.
json_get() {
	python3 -c 'import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"
}

# A description of the machine for the results.
machine_desc() {
	local model kernel
	model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
	kernel=$(uname -r)
	echo "$(nproc) CPUs ($model), kernel $kernel, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
}

# Total CPU time (utime + stime, in clock ticks) of process $1, all threads.
proc_cpu_ticks() {
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}

# CPU ticks (utime + stime) of the live threads of process $1, summed by
# thread name without a trailing number: lines "NAME TICKS".
proc_thread_ticks() {
	local t
	for t in /proc/"$1"/task/*; do
		printf '%s %s\n' "$(tr ' ' _ <"$t/comm")" \
			"$(sed 's/^.*) //' "$t/stat" | awk '{ print $12 + $13 }')"
	done 2>/dev/null | awk '{ sub(/-?[0-9]+$/, "", $1); c[$1] += $2 } END { for (k in c) print k, c[k] }'
}

# The script's own help: its leading comment, without the licence line.
bench_help() {
	awk 'NR == 1 || /^# SPDX/ { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0"
}

# The options the benchmarks share.  Sets quick, rounds, runtime, save,
# plots, out and from_runs (the script gives them defaults first) and
# OPT_USED, the number of arguments taken; dies on an unknown option, or
# one not in BENCH_OPTS (the script's list, when it takes only some).
bench_common_opt() {
	OPT_USED=1
	case " ${BENCH_OPTS:---quick --rounds --runtime --no-save --no-plots --out --from-runs} -h --help " in
	*" $1 "*) ;;
	*) die "unknown option $1" ;;
	esac
	case $1 in
	--rounds|--runtime|--out|--from-runs) [ $# -ge 2 ] || die "$1 needs a value" ;;
	esac
	case $1 in
	--quick) quick=1 ;;
	--rounds) rounds=$2; OPT_USED=2 ;;
	--runtime) runtime=$2; OPT_USED=2 ;;
	--no-save) save=0 ;;
	--no-plots) plots=0 ;;
	--out) out=$2; OPT_USED=2 ;;
	--from-runs) from_runs=$2; OPT_USED=2 ;;
	-h|--help) bench_help; exit 0 ;;
	esac
}

# Append the raw runs to a summary: "All runs (CAPTION):" and RUNS as a
# code block.
append_runs() { # summary caption runs
	{ echo; echo "All runs ($2):"; echo; echo '```'; cat "$3"; echo '```'; } >>"$1"
}

# linexfer_mark: the one-way cache-line transfer between BACKEND_CPU and
# GEN_CPU now (vu-linexfer, ~10 ms), added to $WORK/linexfer.txt: the
# machine's mode; taken before and after every run (bench/README.md,
# "Two modes").
linexfer_mark() {
	[ -x "$LINEXFER" ] && [ "$BACKEND_CPU" != "$GEN_CPU" ] || return 0
	{ "$LINEXFER" --cpus "$BACKEND_CPU,$GEN_CPU" --count 5000 2>/dev/null || true; } |
		sed -n 's/.*"one_way_ns": \([0-9.]*\).*/\1/p' >>"$WORK/linexfer.txt"
}

# append_linexfer SUMMARY RUNS BASELINE: how many runs started in each
# mode, and the ratios to BASELINE by mode (bench/modes.py).
append_linexfer() {
	[ -s "$WORK/linexfer.txt" ] || return 0
	awk '{ v = $1 + 0; if (v < 100) f++; else s++; l = l sprintf(" %.0f", v) }
	     END { printf "\nCache line between the two CPUs before and after each run (vu-linexfer, ns one way): " \
		   "%d figure(s) under 100 ns (one L3: the fast mode), %d over (two L3s: the slow mode). " \
		   "In run order:%s.\n", f, s, l }' "$WORK/linexfer.txt" >>"$1"
	python3 "$SRC_DIR/bench/modes.py" "$2" "$WORK/linexfer.txt" "$3" >>"$1"
}

# The stamp in the names of saved results: RESULTS_STAMP, or today's
# date (YYYYMMDD).
results_stamp() {
	echo "${RESULTS_STAMP:-$(date +%Y%m%d)}"
}

# Copy the summary (and the runs, if given) to $out as NAME-STAMP.md and
# NAME-STAMP.runs.tsv; STAMP is $date (results_stamp if unset).
save_results() { # name summary [runs]
	local name=$1 summary=$2 runs=${3:-}
	date=${date:-$(results_stamp)}
	mkdir -p "$out"
	cp "$summary" "$out/$name-$date.md"
	[ -z "$runs" ] || cp "$runs" "$out/$name-$date.runs.tsv"
	echo "saved $out/$name-$date.md"
}
