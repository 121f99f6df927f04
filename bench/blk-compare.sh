#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vhost-blk vs qemu-storage-daemon's vhost-user-blk export, driven by the
# same load generator (vu-blkgen), with the harness ceiling (vu-nullblk)
# in the same run.  Method: shared/PERF.md (back-ends on CPU 0, the
# generator on CPU 1, alternating runs, median of per-round ratios and
# best-of-N ratio).  See bench/README.md.
#
#   bench/blk-compare.sh [--quick] [--rounds N] [--runtime SECS] [--size BYTES]
#                        [--engines null,file] [--rws randread,randwrite]
#                        [--qds 1,32,128] [--no-ceiling] [--no-plots]
#                        [--file-poll MODE] [--indirect] [--no-save] [--out DIR]
#                        [--from-runs FILE.runs.tsv]   (summary and plots only)
#
# Cases: engine null (ours --engine null vs QSD null-co) and file (ours
# --engine io_uring vs QSD file,aio=io_uring, the same file on /dev/shm,
# both through the page cache: ours --direct off, QSD cache.direct=off),
# 4 KiB randread and randwrite, QD 1, 32, 128; ours with split and packed
# rings, QSD split only (libvhost-user has no packed ring).  Ours runs with
# --poll always (throughput), QSD in its main loop (QSD_IOTHREAD=1: in an
# iothread).  Ours busy-polls (--poll always) with the null engine; on
# the file it runs in its default adaptive mode (--file-poll changes it):
# tmpfs files lack FMODE_NOWAIT, so io_uring hands every request to an
# io-wq kernel thread, which on the back-end's only core competes with a
# busy-polling poller (bench/README.md, "What limits each result").
# --indirect: the generator posts every request as one indirect
# descriptor, for every side, as Linux guests do when the device offers
# VIRTIO_RING_F_INDIRECT_DESC (default: direct chains of three).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

quick=0 rounds= runtime= size=$((1 << 30)) save=1 plots=1 ceiling=1 file_poll=adaptive from_runs=
indirect=off
engines=null,file rws=randread,randwrite qds=1,32,128
out=$SRC_DIR/bench/results
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=$2; shift ;;
	--engines) engines=$2; shift ;;
	--rws) rws=$2; shift ;;
	--qds) qds=$2; shift ;;
	--no-ceiling) ceiling=0 ;;
	--file-poll) file_poll=$2; shift ;;
	--indirect) indirect=on ;;
	*) bench_common_opt "$@"; shift $((OPT_USED - 1)) ;;
	esac
	shift
done
if [ $quick = 1 ]; then
	rounds=${rounds:-1} runtime=${runtime:-1} size=$((64 << 20))
else
	rounds=${rounds:-5} runtime=${runtime:-3}
fi
need_tools
make_workdir
check_qsd

SOCK=$WORK/blk.sock
DISK_FILE=$DISK_DIR/vu-bench-$$.img
NULL_FILE=$WORK/null.img
RUNS=$WORK/runs.tsv
: >"$RUNS"
if [ -n "$from_runs" ]; then
	cp "$from_runs" "$RUNS"
	rounds=$(cut -f1 "$RUNS" | sort -n | tail -1)
else
	# The backing file, written in full so that every page exists in tmpfs.
	dd if=/dev/zero of="$DISK_FILE" bs=1M count=$((size >> 20)) status=none
	truncate -s "$size" "$NULL_FILE"   # the null engine needs a file for its size only
fi

IFS=, read -r -a ENGINES <<<"$engines"
IFS=, read -r -a RWS <<<"$rws"
IFS=, read -r -a QDS <<<"$qds"

# One measurement: start the back-end, run the generator, stop it, and
# append a line to $RUNS: round engine rw qd who iops p50 p99 p999.
measure() { # round engine rw qd who
	local round=$1 engine=$2 rw=$3 qd=$4 who=$5 ring=split json
	local gen=(--rw "$rw" --bs 4096 --iodepth "$qd" --runtime "$runtime" --indirect "$indirect")
	linexfer_mark
	case $who in
	ours-split|ours-packed)
		[ $who = ours-packed ] && ring=packed
		if [ "$engine" = null ]; then
			start_backend ours "$SOCK" --blk-file "$NULL_FILE" --engine null --poll always || return 1
		else
			start_backend ours "$SOCK" --blk-file "$DISK_FILE" --engine io_uring --direct off \
				--poll "$file_poll" || return 1
		fi
		;;
	qsd)
		local bd
		if [ "$engine" = null ]; then
			bd="driver=null-co,node-name=n0,size=$size"
		else
			bd="driver=file,node-name=n0,filename=$DISK_FILE,aio=io_uring,cache.direct=off"
		fi
		mapfile -t args < <(qsd_args "$SOCK" --blockdev "$bd")
		start_backend qsd "$SOCK" "${args[@]}" || return 1
		;;
	ceiling)
		start_backend nullblk "$SOCK" --size "$size" --poll always || return 1
		;;
	ceiling-raw)
		start_backend nullblk "$SOCK" --size "$size" --poll always --raw || return 1
		;;
	esac
	json=$(run_gen "$SOCK" "${gen[@]}" --ring "$ring" --label "$engine/$rw/qd$qd/$who")
	stop_backend
	linexfer_mark
	[ -n "$json" ] || return 1
	python3 - "$json" "$round" "$engine" "$rw" "$qd" "$who" >>"$RUNS" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
l = j["lat_ns"]
print("\t".join(sys.argv[2:7] + ["%.0f" % j["iops"], str(l["p50"]), str(l["p99"]), str(l["p999"])]))
PY
	tail -1 "$RUNS" | awk -F'\t' '{ printf "  round %s  %-5s %-9s qd%-4s %-12s %10.0f IOPS  p50 %7.2f us  p99 %8.2f us\n", $1, $2, $3, $4, $5, $6, $7/1000, $8/1000 }'
}

echo "blk-compare: $(machine_desc)"
echo "  back-ends on CPU $BACKEND_CPU, vu-blkgen on CPU $GEN_CPU; $rounds round(s) of ${runtime} s runs; disk $((size >> 20)) MiB on $DISK_DIR"
[ $have_qsd = 1 ] && echo "  baseline: $("$QSD" --version | head -1)"
fail=0
for round in $(seq 1 "$rounds"); do
	[ -n "$from_runs" ] && break
	for engine in "${ENGINES[@]}"; do
		for rw in "${RWS[@]}"; do
			for qd in "${QDS[@]}"; do
				# Alternate which side goes first from round to round.
				if [ $((round % 2)) = 1 ]; then
					order=(ours-split qsd ours-packed)
				else
					order=(qsd ours-split ours-packed)
				fi
				for who in "${order[@]}"; do
					[ $who = qsd ] && [ $have_qsd = 0 ] && continue
					measure "$round" "$engine" "$rw" "$qd" "$who" || fail=1
				done
			done
		done
	done
	if [ $ceiling = 1 ]; then
		for qd in "${QDS[@]}"; do
			measure "$round" ceiling randread "$qd" ceiling || fail=1
			measure "$round" ceiling randread "$qd" ceiling-raw || fail=1
		done
	fi
done

# Summary: per case, the median IOPS of each side, the median of the
# per-round ratios, the best-of-N ratio, and the p50 latencies.
date=$(results_stamp)
summary=$WORK/summary.md
python3 - "$RUNS" "$WORK" "$(machine_desc)" "$rounds" "$runtime" "$([ $have_qsd = 1 ] && "$QSD" --version | head -1)" "$file_poll" "$DISK_DIR" "$((size >> 20))" "$indirect" >"$summary" <<'PY'
import collections, statistics as st, sys, time
runs, work, machine, rounds, runtime, qsdver, file_poll, disk_dir, size_mib, indirect = sys.argv[1:11]
R = collections.defaultdict(dict)   # (engine, rw, qd, who) -> round -> (iops, p50, p99)
for line in open(runs):
    rnd, eng, rw, qd, who, iops, p50, p99, p999 = line.split("\t")
    R[(eng, rw, int(qd), who)][int(rnd)] = (float(iops), int(p50), int(p99))
med = lambda xs: st.median(xs) if xs else float("nan")
def fmt_iops(x): return "%.2f M" % (x / 1e6) if x >= 1e6 else "%.0f k" % (x / 1e3)
print("# vhost-blk vs qemu-storage-daemon (vhost-user-blk), %s" % time.strftime("%Y-%m-%d"))
print()
print("Machine: %s.  Back-ends on CPU 0, vu-blkgen on CPU 1; %s rounds of %s s per run, alternating."
      % (machine, rounds, runtime))
print("Baseline: %s, export in the main loop.  Ours: vhost-blk, --poll always with the null engine,"
      % (qsdver or "none"))
print("--poll %s on the file.  4 KiB requests, one queue, EVENT_IDX on, %s." % (file_poll,
      "each request one indirect descriptor (as Linux guests post them)" if indirect == "on"
      else "each request a chain of three descriptors"))
print("null: ours --engine null vs QSD null-co (no data moved).  file: the same %s MiB file on %s,"
      % (size_mib, disk_dir))
print("io_uring through the page cache for both (ours --direct off, QSD aio=io_uring,cache.direct=off).")
print()
print("IOPS are medians over the rounds; *ratio* is the median of the per-round ratios ours/baseline,")
print("*best* the ratio of the best runs of each side; *p50* the median latency (us), ours / baseline.")
print()
print("| case | ours | baseline | ratio | best | p50 ours | p50 base | p50 ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
plots = collections.defaultdict(list)
cases = sorted({(e, rw, qd) for (e, rw, qd, w) in R if e != "ceiling"},
               key=lambda c: (c[0] != "null", c[1], c[2]))
for (eng, rw, qd) in cases:
    base = R.get((eng, rw, qd, "qsd"), {})
    for who in ("ours-split", "ours-packed"):
        o = R.get((eng, rw, qd, who), {})
        if not o:
            continue
        oi = med([v[0] for v in o.values()]); op50 = med([v[1] for v in o.values()])
        row = "| %s %s qd%d %s | %s |" % (eng, rw, qd, who.split("-")[1], fmt_iops(oi))
        if base:
            bi = med([v[0] for v in base.values()]); bp50 = med([v[1] for v in base.values()])
            ratios = [o[r][0] / base[r][0] for r in o if r in base and base[r][0] > 0]
            lratios = [o[r][1] / base[r][1] for r in o if r in base and base[r][1] > 0]
            best = max(v[0] for v in o.values()) / max(v[0] for v in base.values())
            row += " %s | %.2fx | %.2fx | %.2f | %.2f | %.2fx |" % (
                fmt_iops(bi), med(ratios), best, op50 / 1e3, bp50 / 1e3, med(lratios))
        else:
            row += " - | - | - | %.2f | - | - |" % (op50 / 1e3)
        print(row)
ceil = sorted({(w, qd) for (e, rw, qd, w) in R if e == "ceiling"})
if ceil:
    print()
    print("Harness ceiling (vu-nullblk, randread, split ring): *library* = common/'s ring walker,")
    print("*raw* = no walker, no validation (the generator's own limit).")
    print()
    print("| case | IOPS (median) | best | p50 (us) |")
    print("|---|---:|---:|---:|")
    for (w, qd) in ceil:
        v = R[("ceiling", "randread", qd, w)]
        print("| %s qd%d | %s | %s | %.2f |" % ("raw" if w.endswith("raw") else "library", qd,
              fmt_iops(med([x[0] for x in v.values()])), fmt_iops(max(x[0] for x in v.values())),
              med([x[1] for x in v.values()]) / 1e3))
# Plot data: one file per engine/rw, columns qd, then each side's median IOPS.
sides = ["ours-split", "ours-packed", "qsd"]
for (eng, rw) in sorted({(c[0], c[1]) for c in cases}):
    for stat, fn in (("median", med), ("best", max)):
        with open("%s/plot-%s-%s-%s.dat" % (work, eng, rw, stat), "w") as f:
            f.write("# qd " + " ".join(sides + ["ceiling"]) + "\n")
            for qd in sorted({c[2] for c in cases if c[0] == eng and c[1] == rw}):
                vals = []
                for w in sides:
                    v = R.get((eng, rw, qd, w), {})
                    vals.append("%.0f" % fn([x[0] for x in v.values()]) if v else "NaN")
                cs = [fn([x[0] for x in R[("ceiling", "randread", qd, w)].values()])
                      for w in ("ceiling", "ceiling-raw") if R.get(("ceiling", "randread", qd, w))]
                vals.append("%.0f" % max(cs) if cs else "NaN")
                f.write("%d %s\n" % (qd, " ".join(vals)))
PY
append_linexfer "$summary" "$RUNS" qsd
append_runs "$summary" "round, engine, rw, qd, side, IOPS, p50 ns, p99 ns, p99.9 ns" "$RUNS"
echo
cat "$summary"

# Assert that every run produced a number (the smoke test's only check).
nruns=$(wc -l <"$RUNS")
zero=$(awk -F'\t' '$6 <= 0' "$RUNS" | wc -l)
if [ "$fail" != 0 ] || [ "$nruns" = 0 ] || [ "$zero" != 0 ]; then
	die "some runs failed or reported nothing ($nruns runs, $zero without IOPS)"
fi

if [ $save = 1 ]; then
	save_results blk "$summary" "$RUNS"
fi
if [ $plots = 1 ]; then
	if ! command -v gnuplot >/dev/null; then
		note "gnuplot not installed (Debian: apt-get install gnuplot-nox): no plots"
	else
		pdir=$([ $save = 1 ] && echo "$out" || echo "$WORK")
		for dat in "$WORK"/plot-*.dat; do
			name=$(basename "$dat" .dat); name=${name#plot-}
			stat=${name##*-}
			png=$pdir/blk-$date-$name.png
			gnuplot <<EOF
set terminal pngcairo size 800,500 noenhanced
set output '$png'
set title 'vhost-blk vs qemu-storage-daemon: $name, 4 KiB ($date)'
set xlabel 'queue depth'
set ylabel 'IOPS ($stat of rounds)'
set logscale x 2
set key top left
set grid
set format y '%.1s%c'
plot '$dat' using 1:2 with linespoints title 'vhost-blk split', \
     '' using 1:3 with linespoints title 'vhost-blk packed', \
     '' using 1:4 with linespoints title 'qemu-storage-daemon', \
     '' using 1:5 with linespoints dashtype 2 title 'ceiling (vu-nullblk)'
EOF
			echo "plot $png"
		done
	fi
fi
