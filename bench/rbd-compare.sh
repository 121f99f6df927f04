#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vhost-blk's rbd engine vs qemu-storage-daemon's rbd driver, on the same
# throw-away one-node Ceph cluster (tests/ceph/ceph-cluster.sh; started
# here unless CEPH_CONF already names one), driven by the same load
# generator.  Method: shared/PERF.md (back-ends on CPU 0, vu-blkgen on
# CPU 1, alternating runs, median of per-round ratios).  The cluster is
# the bottleneck here, so beside IOPS this reports each back-end's CPU
# time per I/O (all its threads, librbd's included, from /proc/PID/stat).
#
#   bench/rbd-compare.sh [--quick] [--rounds N] [--runtime SECS]
#                        [--rws randread,randwrite] [--qds 1,32]
#                        [--no-save] [--out DIR]
#
# Ours twice: vhost-blk --rbd in its default adaptive polling mode
# ("ours"), and sleeping whenever idle, --poll never ("ours-sleep": no CPU
# spent spinning).  Baseline: QSD's --blockdev driver=rbd
# (qemu-block-extra), export in the main loop.
# Both use librbd's default cache settings of the cluster's configuration.
# The image (256 MiB) is written in full first, so reads hit objects.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

args=("$@")
quick=0 rounds= runtime= save=1 rws=randread,randwrite qds=1,32
BENCH_OPTS="--quick --rounds --runtime --no-save --out"
out=$SRC_DIR/bench/results
while [ $# -gt 0 ]; do
	case $1 in
	--rws) rws=$2; shift ;;
	--qds) qds=$2; shift ;;
	*) bench_common_opt "$@"; shift $((OPT_USED - 1)) ;;
	esac
	shift
done
if [ -z "${CEPH_CONF:-}" ]; then
	exec "$SRC_DIR/tests/ceph/ceph-cluster.sh" run -- "$0" "${args[@]}"
fi
if [ $quick = 1 ]; then
	rounds=${rounds:-1} runtime=${runtime:-1}
else
	rounds=${rounds:-3} runtime=${runtime:-5}
fi
need_tools
make_workdir
check_qsd
if [ $have_qsd = 1 ] && [ ! -e /usr/lib/x86_64-linux-gnu/qemu/block-rbd.so ]; then
	have_qsd=0
	note "QSD has no rbd driver (Debian package qemu-block-extra): baseline skipped"
fi

IMAGE=rbd/bench-$$
SOCK=$WORK/blk.sock
RUNS=$WORK/runs.tsv
THREADS=$WORK/threads.tsv
: >"$RUNS"
: >"$THREADS"
rbd -c "$CEPH_CONF" create "$IMAGE" --size 256M
rbd -c "$CEPH_CONF" bench --io-type write --io-size 4M --io-threads 4 --io-total 256M \
	--io-pattern seq "$IMAGE" >/dev/null
remove_image() { rbd -c "$CEPH_CONF" rm --no-progress "$IMAGE" >/dev/null 2>&1 || true; }
trap 'cleanup; remove_image' EXIT

IFS=, read -r -a RWS <<<"$rws"
IFS=, read -r -a QDS <<<"$qds"
hz=$(getconf CLK_TCK)

# One measurement; appends: round rw qd who iops p50 p99 cpu_us_per_io.
measure() { # round rw qd who
	local round=$1 rw=$2 qd=$3 who=$4 json t0 t1
	case $who in
	ours|ours-sleep)
		local poll=adaptive
		[ $who = ours-sleep ] && poll=never
		start_backend ours "$SOCK" --rbd "$IMAGE" --ceph-conf "$CEPH_CONF" --poll $poll || return 1
		;;
	qsd)
		mapfile -t args < <(qsd_args "$SOCK" --blockdev \
			"driver=rbd,node-name=n0,pool=${IMAGE%%/*},image=${IMAGE#*/},conf=$CEPH_CONF")
		start_backend qsd "$SOCK" "${args[@]}" || return 1
		;;
	esac
	t0=$(proc_cpu_ticks "$BACKEND_PID")
	th0=$(proc_thread_ticks "$BACKEND_PID")
	json=$(run_gen "$SOCK" --rw "$rw" --bs 4096 --iodepth "$qd" --runtime "$runtime" \
		--label "rbd/$rw/qd$qd/$who")
	t1=$(proc_cpu_ticks "$BACKEND_PID")
	th1=$(proc_thread_ticks "$BACKEND_PID")
	stop_backend
	[ -n "$json" ] || return 1
	python3 - "$json" "$round" "$rw" "$qd" "$who" "$((t1 - t0))" "$hz" "$th0" "$th1" "$THREADS" \
		>>"$RUNS" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
ticks, hz = int(sys.argv[6]), int(sys.argv[7])
ios = j["requests"]
us = lambda t: t / hz * 1e6 / ios if ios else float("nan")
print("\t".join(sys.argv[2:6] + ["%.0f" % j["iops"], str(j["lat_ns"]["p50"]),
                                 str(j["lat_ns"]["p99"]), "%.1f" % us(ticks)]))
# Per thread name; what threads that ended during the run used is "other".
th = [dict((l.split()[0], int(l.split()[1])) for l in a.splitlines() if l.strip())
      for a in sys.argv[8:10]]
with open(sys.argv[10], "a") as f:
    rest = ticks
    for name in sorted(th[1]):
        d = th[1][name] - th[0].get(name, 0)
        rest -= d
        f.write("\t".join(sys.argv[2:6] + [name, "%.2f" % us(d)]) + "\n")
    f.write("\t".join(sys.argv[2:6] + ["other", "%.2f" % us(max(rest, 0))]) + "\n")
PY
	tail -1 "$RUNS" | awk -F'\t' '{ printf "  round %s  %-9s qd%-3s %-10s %8.0f IOPS  p50 %8.1f us  CPU %6.1f us/IO\n", $1, $2, $3, $4, $5, $6/1000, $8 }'
}

echo "rbd-compare: $(machine_desc)"
echo "  back-ends on CPU $BACKEND_CPU, vu-blkgen on CPU $GEN_CPU, the cluster unpinned; $rounds round(s) of ${runtime} s"
[ $have_qsd = 1 ] && echo "  baseline: $("$QSD" --version | head -1), driver=rbd"
fail=0
for round in $(seq 1 "$rounds"); do
	for rw in "${RWS[@]}"; do
		for qd in "${QDS[@]}"; do
			if [ $((round % 2)) = 1 ]; then
				order=(ours qsd ours-sleep)
			else
				order=(qsd ours ours-sleep)
			fi
			for who in "${order[@]}"; do
				[ $who = qsd ] && [ $have_qsd = 0 ] && continue
				measure "$round" "$rw" "$qd" "$who" || fail=1
			done
		done
	done
done

summary=$WORK/summary.md
python3 - "$RUNS" "$THREADS" "$(machine_desc)" "$rounds" "$runtime" \
	"$([ $have_qsd = 1 ] && "$QSD" --version | head -1)" "$(uptime | sed 's/.*load average: //')" \
	>"$summary" <<'PY'
import collections, statistics as st, sys, time
runs, threads, machine, rounds, runtime, qsdver, load = sys.argv[1:8]
R = collections.defaultdict(dict)   # (rw, qd, who) -> round -> (iops, p50, cpu)
for line in open(runs):
    rnd, rw, qd, who, iops, p50, p99, cpu = line.rstrip("\n").split("\t")
    R[(rw, int(qd), who)][int(rnd)] = (float(iops), int(p50), float(cpu))
med = lambda xs: st.median(xs) if xs else float("nan")
print("# vhost-blk rbd engine vs qemu-storage-daemon's rbd driver, %s" % time.strftime("%Y-%m-%d"))
print()
print("Machine: %s; load average at the end %s." % (machine, load))
print("One-node Ceph cluster from tests/ceph/ceph-cluster.sh (memstore, pool size 1), unpinned;")
print("back-ends on CPU 0, vu-blkgen on CPU 1; %s rounds of %s s, alternating.  Baseline: %s."
      % (rounds, runtime, qsdver or "none"))
print("4 KiB requests, one queue.  *CPU/IO*: the back-end's CPU time (all threads) per request.")
print("Ratios are medians of the per-round ratios ours/baseline.")
print()
print("| case | IOPS ours | IOPS QSD | ratio | CPU/IO ours | CPU/IO QSD | CPU ratio | p50 ours | p50 QSD |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for (rw, qd, who) in sorted({(k[0], k[1], k[2]) for k in R if k[2] != "qsd"}):
    o, b = R.get((rw, qd, who), {}), R.get((rw, qd, "qsd"), {})
    p50 = lambda d: "%.0f us" % (med([v[1] for v in d.values()]) / 1000) if d else "-"
    cell = lambda d, i, f: f % med([v[i] for v in d.values()]) if d else "-"
    ratio = lambda i: "%.2f" % med([o[r][i] / b[r][i] for r in o if r in b and b[r][i] > 0]) if b else "-"
    print("| %s qd%d %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        rw, qd, "adaptive" if who == "ours" else "sleep", cell(o, 0, "%.0f"), cell(b, 0, "%.0f"), ratio(0),
        cell(o, 2, "%.1f us"), cell(b, 2, "%.1f us"), ratio(2),
        p50(o), p50(b)))
print()
print("Targets (issue 7): IOPS ratio >= 1.0, CPU ratio <= 0.5.")
print()
print("CPU per I/O by thread (us, median over the rounds; threads named by the process:")
print("librbd's are io_context_pool, msgr-worker, fn_*, safe_timer, ...; ours vhost-blk and vu-*,")
print("QSD's qemu-storage-da; *other*: threads that ended during the run):")
print()
T = collections.defaultdict(list)   # (rw, qd, who) -> name -> [us]
for line in open(threads):
    rnd, rw, qd, who, name, us = line.rstrip("\n").split("\t")
    T[(rw, int(qd), who)].append((name, float(us)))
for key in sorted(T):
    per = collections.defaultdict(list)
    for name, us in T[key]:
        per[name].append(us)
    cells = sorted(((med(v), n) for n, v in per.items()), reverse=True)
    print("- %s qd%d %s: %s" % (key[0], key[1], {"ours": "ours adaptive", "ours-sleep": "ours sleep"}.get(key[2], "QSD"),
          ", ".join("%s %.1f" % (n, u) for u, n in cells if u >= 0.05)))
PY
cat "$summary"
if [ $save = 1 ]; then
	save_results rbd "$summary" "$RUNS"
	cp "$THREADS" "$out/rbd-$date.threads.tsv"
fi
if [ $quick = 1 ]; then
	# The smoke run asserts that every run reported.
	want=$(( ${#RWS[@]} * ${#QDS[@]} * (2 + have_qsd) ))
	got=$(awk -F'\t' '$5 > 0' "$RUNS" | wc -l)
	[ "$got" = "$want" ] || { note "$got of $want runs reported IOPS"; exit 1; }
fi
exit $fail
