#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Idle cost: CPU time used by a back-end with an attached but idle device,
# and the latency of the first request after the idle period, next to the
# polled latency (shared/PERF.md "Cost when idle").
#
#   bench/idle-cost.sh [--quick] [--rounds N] [--window SECS] [--no-save] [--out DIR]
#
# For each back-end (vhost-blk in adaptive mode, its default; then
# qemu-storage-daemon), on CPU 0, and each engine (null: ours --engine null
# vs QSD null-co, the vhost path alone; file: a file on /dev/shm through
# the page cache, io_uring for both): vu-blkgen (CPU 1) connects and sets up the
# queue, then stays idle; the back-end's utime+stime (/proc/PID/stat, all
# threads) is read over WINDOW seconds (default 10) of that idle period.
# Then vu-blkgen times one request (the first after idling: a read), 9 more
# single requests each after 0.2 s of idling (their median), and 20000
# requests at QD 1 (their p50 is the polled latency).  Each round also
# measures the platform's floor with vu-wakeping: a thread sleeping in
# epoll_wait on CPU 0 woken by an eventfd write from CPU 1 after 0.2 s
# idle, what any back-end that sleeps pays on top of its polled latency.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

quick=0 rounds= window= save=1
BENCH_OPTS="--quick --rounds --no-save --out"
out=$SRC_DIR/bench/results
while [ $# -gt 0 ]; do
	case $1 in
	--window) window=$2; shift ;;
	*) bench_common_opt "$@"; shift $((OPT_USED - 1)) ;;
	esac
	shift
done
if [ $quick = 1 ]; then
	rounds=${rounds:-1} window=${window:-1}
else
	rounds=${rounds:-3} window=${window:-10}
fi
need_tools
make_workdir
check_qsd
SOCK=$WORK/blk.sock
DISK_FILE=$DISK_DIR/vu-idle-$$.img
dd if=/dev/zero of="$DISK_FILE" bs=1M count=64 status=none
RES=$WORK/idle.tsv
WAKE=$WORK/wake.tsv
: >"$RES"
: >"$WAKE"
WAKEPING=${WAKEPING:-$BUILD_DIR/bench/vu-wakeping}
[ -x "$WAKEPING" ] || die "no $WAKEPING (build first)"
hz=$(getconf CLK_TCK)
settle=1

# One measurement of back-end $1 (ours, ours-always, qsd) with engine $2
# (null, file) in round $3.
measure() {
	local who=$1 engine=$2 round=$3 gpid t0 t1 json i eng=() bd
	if [ "$engine" = null ]; then
		eng=(--engine null)
		bd="driver=null-co,node-name=n0,size=$((64 << 20))"
	else
		eng=(--engine io_uring --direct off)
		bd="driver=file,node-name=n0,filename=$DISK_FILE,aio=io_uring,cache.direct=off"
	fi
	case $who in
	ours) start_backend ours "$SOCK" --blk-file "$DISK_FILE" "${eng[@]}" --poll adaptive || return 1 ;;
	ours-always) start_backend ours "$SOCK" --blk-file "$DISK_FILE" "${eng[@]}" --poll always || return 1 ;;
	qsd)
		mapfile -t args < <(qsd_args "$SOCK" --blockdev "$bd")
		start_backend qsd "$SOCK" "${args[@]}" || return 1
		;;
	esac
	local idle
	idle=$(python3 -c "print($settle + $window + 0.5)")
	taskset -c "$GEN_CPU" "$BLKGEN" --socket "$SOCK" --cpu "$GEN_CPU" --rw randread --bs 4096 \
		--iodepth 1 --number 20000 --idle "$idle" --probes 9 --probe-gap 0.2 \
		--label "idle/$engine/$who" >"$WORK/gen.log" 2>&1 &
	gpid=$!
	for i in $(seq 1 400); do
		grep -q '^IDLE: begin' "$WORK/gen.log" 2>/dev/null && break
		kill -0 $gpid 2>/dev/null || break
		sleep 0.025
	done
	if ! grep -q '^IDLE: begin' "$WORK/gen.log"; then
		wait $gpid || true
		note "vu-blkgen did not reach the idle phase:"; cat "$WORK/gen.log" >&2
		stop_backend; return 1
	fi
	sleep "$settle"
	t0=$(proc_cpu_ticks "$BACKEND_PID")
	sleep "$window"
	t1=$(proc_cpu_ticks "$BACKEND_PID")
	if ! wait $gpid; then
		note "vu-blkgen failed:"; cat "$WORK/gen.log" >&2
		stop_backend; return 1
	fi
	stop_backend
	json=$(sed -n 's/^JSON: //p' "$WORK/gen.log" | tail -1)
	python3 - "$json" "$round" "$engine/$who" "$t0" "$t1" "$hz" "$window" >>"$RES" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
rnd, who, t0, t1, hz, win = sys.argv[2:8]
cpu = (int(t1) - int(t0)) / int(hz) / float(win) * 100
print("\t".join([rnd, who, "%.2f" % cpu, str(j["first_after_idle_ns"]),
                 str(j["idle_probe_p50_ns"]), str(j["lat_ns"]["p50"])]))
PY
	tail -1 "$RES" | awk -F'\t' '{ printf "  round %s %-17s idle CPU %6.2f%%  first after idle %8.1f us  idle probes p50 %8.1f us  polled p50 %6.2f us\n", $1, $2, $3, $4/1000, $5/1000, $6/1000 }'
}

echo "idle-cost: $(machine_desc)"
echo "  back-ends on CPU $BACKEND_CPU, vu-blkgen on CPU $GEN_CPU; window ${window} s; CLK_TCK $hz"
fail=0
for round in $(seq 1 "$rounds"); do
	if [ $((round % 2)) = 1 ]; then order=(ours qsd); else order=(qsd ours); fi
	for engine in null file; do
		for who in "${order[@]}"; do
			[ $who = qsd ] && [ $have_qsd = 0 ] && continue
			measure "$who" "$engine" "$round" || fail=1
		done
	done
	json=$("$WAKEPING" --sleeper-cpu "$BACKEND_CPU" --pinger-cpu "$GEN_CPU" --idle 0.2 --count 9 |
		sed -n 's/^JSON: //p')
	if [ -n "$json" ]; then
		echo "$round $(json_get "$json" median_ns) $(json_get "$json" min_ns)" >>"$WAKE"
		echo "  round $round platform: wake-up round trip after 0.2 s idle $(awk '{ printf "%.1f us (min %.1f)", $2 / 1000, $3 / 1000 }' <<<"$(tail -1 "$WAKE")")"
	else
		note "vu-wakeping failed"; fail=1
	fi
done
# For reference: busy polling (one round).
measure ours-always null 1 || fail=1

date=$(results_stamp)
summary=$WORK/idle.md
python3 - "$RES" "$(machine_desc)" "$window" "$rounds" "$WAKE" >"$summary" <<'PY'
import collections, statistics as st, sys, time
res, machine, window, rounds, wake = sys.argv[1:6]
R = collections.defaultdict(list)
for line in open(res):
    rnd, who, cpu, first, probe, p50 = line.rstrip("\n").split("\t")
    R[who].append((float(cpu), int(first) / 1e3, int(probe) / 1e3, int(p50) / 1e3))
def m(who, i):
    v = [x[i] for x in R.get(who, [])]
    return st.median(v) if v else None
print("# Idle cost: vhost-blk vs qemu-storage-daemon, %s" % time.strftime("%Y-%m-%d"))
print()
print("Machine: %s.  Back-ends on CPU 0: *null* = vhost-blk --engine null vs QSD null-co;"
      % machine)
print("*file* = a 64 MiB file on /dev/shm, io_uring through the page cache for both;")
print("vu-blkgen on CPU 1.  CPU over a %s s idle window with the device attached; medians of %s rounds."
      % (window, rounds))
print("Ours: vhost-blk --poll adaptive (default, 100 us idle before sleeping).")
print()
print("| case | ours | baseline | ratio |")
print("|---|---:|---:|---:|")
rows = [("idle CPU (% of one core)", 0, "%.2f"), ("first request after idle (us)", 1, "%.1f"),
        ("request after 0.2 s idle, median (us)", 2, "%.1f"), ("polled QD1 p50 (us)", 3, "%.2f")]
fmt = lambda f, v: f % v if v is not None else "-"
for eng in ("null", "file"):
    for name, i, f in rows:
        o, b = m(eng + "/ours", i), m(eng + "/qsd", i)
        print("| %s: %s | %s | %s | %s |" % (eng, name, fmt(f, o), fmt(f, b),
              "%.2fx" % (o / b) if o is not None and b else "-"))
    o1, op = m(eng + "/ours", 1), m(eng + "/ours", 3)
    b1, bp = m(eng + "/qsd", 1), m(eng + "/qsd", 3)
    print("| %s: first after idle minus polled (us) | %s | %s | - |" % (
        eng, fmt("%.1f", o1 - op if o1 is not None else None),
        fmt("%.1f", b1 - bp if b1 is not None else None)))
W = [line.split() for line in open(wake)]
if W:
    print()
    print("Platform floor (vu-wakeping): a thread sleeping in epoll_wait on CPU 0 answers an eventfd write")
    print("from CPU 1 after 0.2 s idle in %.1f us (median of the rounds' medians; fastest %.1f us): what any"
          % (st.median(int(w[1]) for w in W) / 1e3, min(int(w[2]) for w in W) / 1e3))
    print("back-end that sleeps while idle pays on top of its polled latency.")
a = R.get("null/ours-always")
if a:
    print()
    print("For reference, vhost-blk --engine null --poll always: %.1f%% of a core idle, first request after idle %.1f us."
          % (a[0][0], a[0][1]))
PY
append_runs "$summary" "round, side, idle CPU %, first ns, probe median ns, polled p50 ns" "$RES"
echo
cat "$summary"
n=$(wc -l <"$RES")
if [ "$fail" != 0 ] || [ "$n" = 0 ]; then
	die "some runs failed ($n results)"
fi
if [ $save = 1 ]; then
	save_results idle "$summary"
fi
