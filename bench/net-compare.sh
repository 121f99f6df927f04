#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vhost-net vs DPDK's own vhost PMD (testpmd io forwarding between
# net_vhost0 and net_null0), both driven by the same peer: dpdk-testpmd
# with net_virtio_user0 (a userspace virtio-net guest).  Method:
# shared/PERF.md (back-ends on CPU 0, the peer on CPU 1, alternating runs,
# median of per-round ratios and best-of-N ratio).  See bench/README.md.
#
#   bench/net-compare.sh [--quick] [--rounds N] [--runtime SECS] [--warmup SECS]
#                        [--cases LIST] [--no-plots] [--no-save] [--out DIR]
#                        [--from-runs FILE.runs.tsv]   (summary and plots only)
#
# Cases (--cases: comma-separated names or shell patterns, default all 8):
# DIR-FRAME-RING with DIR tx (guest TX: the peer runs txonly, the back-end
# sends to net_null0,no-rx=1) or rx (guest RX: the back-end receives from
# net_null0,size=N, the peer runs rxonly), FRAME 64 or 1518 (bytes on the
# wire including the 4-byte FCS, so 60 and 1514 bytes in the guest's
# buffers: txonly --txpkts, net_null size=), RING split or packed.  One
# queue pair.  Ours: vhost-net --mode xconnect --poll always --cpus 0.
# The figure: the packets per second the peer's port counted over RUNTIME
# seconds after WARMUP seconds (testpmd's own "show port stats" rate).
# --quick: one round of 0.5 s runs, asserting only that every run reports
# a rate (the CI smoke, suite 'bench'); exit 77 without dpdk-testpmd,
# vhost-net or root.
# Environment: BUILD_DIR, VHOST_NET (the daemon), TESTPMD, BACKEND_CPU,
# GEN_CPU, NET_MEM_MB (--no-huge -m of each DPDK process, default 128),
# NET_MBUFS (testpmd --total-num-mbufs, 16384), NET_BENCH_KEEP=DIR (copy
# every run's logs there).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VHOST_NET=${VHOST_NET:-$BUILD_DIR/vhost-net/vhost-net}
TESTPMD=${TESTPMD:-$(command -v dpdk-testpmd || true)}
NET_MEM_MB=${NET_MEM_MB:-128}      # --no-huge -m of every DPDK process
NET_MBUFS=${NET_MBUFS:-16384}      # --total-num-mbufs of both testpmds

quick=0 rounds= runtime= warmup= save=1 plots=1 from_runs=
cases_opt='*'
out=$SRC_DIR/bench/results
while [ $# -gt 0 ]; do
	case $1 in
	--warmup) warmup=$2; shift ;;
	--cases) cases_opt=$2; shift ;;
	*) bench_common_opt "$@"; shift $((OPT_USED - 1)) ;;
	esac
	shift
done
if [ $quick = 1 ]; then
	rounds=${rounds:-1} runtime=${runtime:-0.5} warmup=${warmup:-0.25}
else
	rounds=${rounds:-5} runtime=${runtime:-3} warmup=${warmup:-1}
fi

skip() { echo "SKIP: $*"; exit 77; }
command -v python3 >/dev/null || die "python3 is needed for the summaries"
if [ -z "$from_runs" ]; then
	[ -n "$TESTPMD" ] && [ -x "$TESTPMD" ] || skip "dpdk-testpmd not found (Debian package dpdk)"
	[ -x "$VHOST_NET" ] || skip "no $VHOST_NET (not built: libdpdk missing? or set BUILD_DIR)"
	[ "$(id -u)" = 0 ] || skip "DPDK's net_virtio_user needs root here"
	command -v taskset >/dev/null || skip "taskset (util-linux) not found"
	command -v stdbuf >/dev/null || skip "stdbuf (coreutils) not found"
	[ "$BACKEND_CPU" != "$GEN_CPU" ] || note "one CPU only: back-end and peer share CPU $BACKEND_CPU"
fi

ALL_CASES=(tx-64-split tx-64-packed tx-1518-split tx-1518-packed
	rx-64-split rx-64-packed rx-1518-split rx-1518-packed)
CASES=()
IFS=, read -r -a pats <<<"$cases_opt"
for c in "${ALL_CASES[@]}"; do
	for p in "${pats[@]}"; do
		# shellcheck disable=SC2254
		case $c in $p) CASES+=("$c"); break ;; esac
	done
done
[ ${#CASES[@]} -gt 0 ] || die "no case matches --cases $cases_opt (cases: ${ALL_CASES[*]})"

# Every process we start: its PID, and the DPDK runtime directory it
# makes (/var/run/dpdk/PREFIX; vhost-net names its own vhost-net-PID).
NET_PIDS=()
PREFIXES=()
FDS=()
had_dpdk_dir=0
[ -d /var/run/dpdk ] && had_dpdk_dir=1
net_cleanup() {
	local pid fd p
	if [ -n "${NET_BENCH_KEEP:-}" ] && [ -n "$WORK" ]; then
		mkdir -p "$NET_BENCH_KEEP" && cp "$WORK"/*.log "$NET_BENCH_KEEP"/ 2>/dev/null || true
	fi
	# testpmds leave their prompt at once on "quit"; on SIGTERM later.
	for fd in "${FDS[@]}"; do { echo stop >&"$fd"; echo quit >&"$fd"; } 2>/dev/null || true; done
	sleep 0.2
	for fd in "${FDS[@]}"; do exec {fd}>&-; done
	for pid in "${NET_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${NET_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	for p in "${PREFIXES[@]}"; do rm -rf "/var/run/dpdk/$p"; done
	# Only if empty: other DPDK processes may have come meanwhile.
	if [ $had_dpdk_dir = 0 ]; then rmdir /var/run/dpdk 2>/dev/null || true; fi
	cleanup
}
make_workdir
trap net_cleanup EXIT

SOCK=$WORK/net.sock
RUNS=$WORK/runs.tsv
: >"$RUNS"

# proc_stop PID [SECS]: wait for a process we started to exit (it was told
# to), then TERM, then KILL it; forget it.
proc_stop() {
	local pid=$1 i keep=() p
	for i in $(seq $((${2:-3} * 20))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	for p in "${NET_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	NET_PIDS=("${keep[@]}")
}

# testpmd_start NAME CPU EAL-ARGS... -- APP-ARGS...: an interactive testpmd,
# all its threads on CPU, its stdin a fifo that we hold open (fd in
# FD_NAME); its output (line-buffered) in $WORK/NAME.log; PID in PID_NAME.
testpmd_start() {
	local name=$1 cpu=$2 prefix="vu-netbench-$$-$1" fd; shift 2
	rm -f "$WORK/$name.in"
	mkfifo "$WORK/$name.in"
	exec {fd}<>"$WORK/$name.in"
	FDS+=("$fd")
	PREFIXES+=("$prefix")
	# The fifo on the command itself (a background job's stdin is
	# /dev/null otherwise); taskset and stdbuf exec, so $! is testpmd.
	taskset -c "$cpu" stdbuf -oL "$TESTPMD" --no-pci --no-huge -m "$NET_MEM_MB" \
		--single-file-segments --no-shconf --file-prefix "$prefix" --log-level=notice \
		--lcores "0@$cpu,1@$cpu" "$@" <"$WORK/$name.in" >"$WORK/$name.log" 2>&1 &
	NET_PIDS+=("$!")
	printf -v "PID_$name" %s "$!"
	printf -v "FD_$name" %s "$fd"
}
pmd() { # NAME CMD
	local fd=FD_$1
	echo "$2" >&"${!fd}"
}
testpmd_stop() { # NAME
	local fdv=FD_$1 pidv=PID_$1 fd keep=() f
	[ -n "${!pidv:-}" ] || return 0
	fd=${!fdv}
	{ echo stop >&"$fd"; echo quit >&"$fd"; } 2>/dev/null || true
	proc_stop "${!pidv}" 5
	exec {fd}>&-
	for f in "${FDS[@]}"; do [ "$f" = "$fd" ] || keep+=("$f"); done
	FDS=("${keep[@]}")
	rm -rf "/var/run/dpdk/vu-netbench-$$-$1" "$WORK/$1.in"
	printf -v "PID_$1" %s ""
}
# count_of FILE PATTERN: lines of FILE matching PATTERN.
count_of() { grep -c -- "$2" "$1" 2>/dev/null || true; }
# wait_for FILE PATTERN SECS PID [N]: until N (default 1) lines of FILE
# match PATTERN (fails early if PID died).
wait_for() {
	local i
	for i in $(seq $(($3 * 40))); do
		[ "$(count_of "$1" "$2")" -ge "${5:-1}" ] && return 0
		kill -0 "$4" 2>/dev/null || break
		sleep 0.025
	done
	note "timed out waiting for '$2' in ${1##*/}:"
	tail -15 "$1" | sed 's/^/    /' >&2
	return 1
}

BPID=
# backend_start WHO DIR PKTLEN: ours (vhost-net) or dpdk (testpmd with the
# vhost PMD) on BACKEND_CPU, listening on $SOCK, forwarding between the
# guest port and net_null0 (a sink for guest TX, a source for guest RX).
backend_start() {
	local who=$1 dir=$2 len=$3 null
	if [ "$dir" = tx ]; then null="net_null0,no-rx=1"; else null="net_null0,size=$len"; fi
	rm -f "$SOCK"
	case $who in
	ours)
		taskset -c "$BACKEND_CPU" "$VHOST_NET" --socket-path "$SOCK" --uplink "$null" \
			--mode xconnect --poll always --cpus "$BACKEND_CPU" \
			-- --no-huge -m "$NET_MEM_MB" >"$WORK/ours.log" 2>&1 &
		BPID=$!
		NET_PIDS+=("$BPID")
		PREFIXES+=("vhost-net-$BPID")
		;;
	dpdk)
		testpmd_start dpdk "$BACKEND_CPU" --vdev "net_vhost0,iface=$SOCK,queues=1" --vdev "$null" \
			-- -i --forward-mode=io --nb-cores=1 --total-num-mbufs="$NET_MBUFS" --auto-start
		BPID=$PID_dpdk
		;;
	esac
	for _ in $(seq 200); do
		[ -S "$SOCK" ] && return 0
		kill -0 "$BPID" 2>/dev/null || break
		sleep 0.025
	done
	note "$who did not come up; its log:"
	sed 's/^/    /' "$WORK/$who.log" >&2
	return 1
}
backend_stop() { # WHO
	[ -n "$BPID" ] || return 0
	if [ "$1" = ours ]; then
		kill "$BPID" 2>/dev/null || true   # SIGTERM: counters to its log, clean exit
		proc_stop "$BPID" 5
		rm -rf "/var/run/dpdk/vhost-net-$BPID"
	else
		testpmd_stop dpdk
	fi
	BPID=
	rm -f "$SOCK"
}

# peer_rate NAME DIR: after WARMUP, one "show port stats" marks the start
# of the interval, a second after RUNTIME seconds gives testpmd's rate
# over it (Tx-pps for guest TX, Rx-pps for guest RX); prints pps and the
# packet count of the interval.
peer_rate() {
	local name=$1 dir=$2 log=$WORK/$1.log n
	local pid=PID_$1
	n=$(count_of "$log" "Tx-pps:")
	sleep "$warmup"
	pmd "$name" "show port stats 0"
	wait_for "$log" "Tx-pps:" 20 "${!pid}" $((n + 1)) || return 1
	sleep "$runtime"
	pmd "$name" "show port stats 0"
	wait_for "$log" "Tx-pps:" 20 "${!pid}" $((n + 2)) || return 1
	awk -v dir="$dir" '
		/NIC statistics for port 0/ { b++ }
		/RX-packets:/ { rx[b] = $2 }
		/TX-packets:/ { tx[b] = $2 }
		/Rx-pps:/ { rxpps[b] = $2 }
		/Tx-pps:/ { txpps[b] = $2 }
		END {
			if (dir == "tx") print txpps[b], tx[b] - tx[b - 1]
			else print rxpps[b], rx[b] - rx[b - 1]
		}' "$log"
}

# One measurement: start the back-end, then the peer, measure, stop both;
# append a line to $RUNS: round dir frame ring who pps packets load1.
measure() { # round case who
	local round=$1 case=$2 who=$3 dir frame ring len vdev pps= pkts line
	IFS=- read -r dir frame ring <<<"$case"
	len=$((frame - 4))
	vdev="net_virtio_user0,path=$SOCK,queues=1"
	[ "$ring" = packed ] && vdev+=",packed_vq=1"
	linexfer_mark
	backend_start "$who" "$dir" "$len" || { backend_stop "$who"; return 1; }
	testpmd_start peer "$GEN_CPU" --vdev "$vdev" -- -i --total-num-mbufs="$NET_MBUFS" --txpkts="$len"
	if wait_for "$WORK/peer.log" "testpmd>" 20 "$PID_peer"; then
		if [ "$dir" = tx ]; then pmd peer "set fwd txonly"; else pmd peer "set fwd rxonly"; fi
		pmd peer start
		read -r pps pkts < <(peer_rate peer "$dir" || echo "- -") || true
	fi
	testpmd_stop peer
	backend_stop "$who"
	linexfer_mark
	if [ -n "${NET_BENCH_KEEP:-}" ]; then
		mkdir -p "$NET_BENCH_KEEP"
		cp "$WORK/peer.log" "$NET_BENCH_KEEP/$round-$case-$who.peer.log"
		cp "$WORK/$who.log" "$NET_BENCH_KEEP/$round-$case-$who.$who.log"
	fi
	if [ -z "${pps:-}" ] || [ "$pps" = - ]; then
		note "$case/$who: no rate; peer log:"
		tail -20 "$WORK/peer.log" | sed 's/^/    /' >&2
		return 1
	fi
	line=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$round" "$dir" "$frame" "$ring" "$who" "$pps" "$pkts" \
		"$(cut -d' ' -f1 /proc/loadavg)")
	awk -F'\t' '{ printf "  round %s  guest-%s %4s B %-6s  %-4s %8.3f Mpps  (%d packets; load %s)\n",
		$1, $2, $3, $4, $5, $6 / 1e6, $7, $8 }' <<<"$line"
	[ "$pps" -gt 0 ] || return 1
	echo "$line" >>"$RUNS"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)
fail=0
if [ -n "$from_runs" ]; then
	cp "$from_runs" "$RUNS"
	rounds=$(cut -f1 "$RUNS" | sort -n | tail -1)
	load_start=
else
	echo "net-compare: $(machine_desc)"
	echo "  back-ends on CPU $BACKEND_CPU, the peer (testpmd, net_virtio_user) on CPU $GEN_CPU;" \
		"$rounds round(s) of ${warmup} s warm-up + ${runtime} s runs; load average $load_start"
	for round in $(seq 1 "$rounds"); do
		for case in "${CASES[@]}"; do
			# Alternate which side goes first from round to round.
			if [ $((round % 2)) = 1 ]; then order=(ours dpdk); else order=(dpdk ours); fi
			for who in "${order[@]}"; do
				# A run that fails (a peer that did not answer on a
				# loaded machine) is tried once more before it counts.
				measure "$round" "$case" "$who" ||
					{ note "retrying $case/$who"; measure "$round" "$case" "$who"; } ||
					{ fail=$((fail + 1)); echo "round $round $case $who" >>"$WORK/failed"; }
			done
		done
	done
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - t_start))

date=$(results_stamp)
summary=$WORK/summary.md
python3 - "$RUNS" "$WORK" "$(machine_desc)" "$rounds" "$runtime" "$warmup" "$load_start" "$load_end" \
	"$elapsed" "$from_runs" >"$summary" <<'PY'
import collections, statistics as st, sys, time
runs, work, machine, rounds, runtime, warmup, load0, load1, elapsed, from_runs = sys.argv[1:11]
R = collections.defaultdict(dict)   # (dir, frame, ring, who) -> round -> pps
loads = []
for line in open(runs):
    f = line.rstrip("\n").split("\t")
    rnd, d, frame, ring, who, pps = f[:6]
    R[(d, int(frame), ring, who)][int(rnd)] = float(pps)
    if len(f) > 7:
        loads.append(float(f[7]))
med = lambda xs: st.median(xs) if xs else float("nan")
order = [(d, fr, ring) for d in ("tx", "rx") for fr in (64, 1518) for ring in ("split", "packed")]
cases = [c for c in order if any(k[:3] == c for k in R)]
name = lambda c: "guest %s %d B %s" % ("TX" if c[0] == "tx" else "RX", c[1], c[2])
print("# vhost-net vs DPDK vhost PMD (testpmd io forwarding), %s" % time.strftime("%Y-%m-%d"))
print()
print("Machine: %s.  Back-ends on CPU 0, the peer on CPU 1; %s rounds, each run %s s of warm-up"
      % (machine, rounds, warmup))
print("then %s s measured, ours and the baseline alternating (which goes first alternates by round)." % runtime)
if load0:
    print("Load average (1, 5, 15 min) at the start: %s; at the end: %s; 1-min load at each run: %s to %s."
          % (load0, load1, min(loads) if loads else "?", max(loads) if loads else "?"))
    print("Wall time of the whole run: %d min %02d s." % (int(elapsed) // 60, int(elapsed) % 60))
elif loads:
    print("1-min load average at each run: %s to %s (summary redone from %s)." % (min(loads), max(loads), from_runs))
print()
print("Ours: `vhost-net --mode xconnect --poll always --cpus 0`, one guest port and a net_null0 uplink.")
print("Baseline: `dpdk-testpmd --forward-mode=io` between `net_vhost0` and `net_null0`, one forwarding core.")
print("Peer: `dpdk-testpmd` with `net_virtio_user0` (queues=1, packed_vq=1 for packed; other devargs default),")
print("txonly for guest TX (the back-end sends to `net_null0,no-rx=1`), rxonly for guest RX (the back-end")
print("receives from `net_null0,size=N`).  Frame sizes on the wire including the 4-byte FCS: 64 B and 1518 B")
print("frames are 60 B and 1514 B in the guest's buffers (`--txpkts`, `size=`).  The figure is the peer's")
print("Tx-pps (guest TX) or Rx-pps (guest RX) from `show port stats` over the measured interval.")
print()
print("Mpps are medians over the rounds; *ratio* is the median of the per-round ratios ours/baseline;")
print("*best* columns: the best run of each side and their ratio (runs here are bimodal; interference only slows).")
print()
print("| case | ours (Mpps) | baseline (Mpps) | ratio | ours best | baseline best | best ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
dat = open("%s/plot.dat" % work, "w")
dat.write("# case ours_median base_median ours_best base_best\n")
for c in cases:
    o = R.get(c + ("ours",), {}); b = R.get(c + ("dpdk",), {})
    om = med(list(o.values())) / 1e6; bm = med(list(b.values())) / 1e6
    ob = max(o.values(), default=float("nan")) / 1e6; bb = max(b.values(), default=float("nan")) / 1e6
    ratios = [o[r] / b[r] for r in o if r in b and b[r] > 0]
    ratio = "%.2fx" % med(ratios) if ratios else "-"
    best = "%.2fx" % (ob / bb) if o and b and bb > 0 else "-"
    print("| %s | %.2f | %.2f | %s | %.2f | %.2f | %s |" % (name(c), om, bm, ratio, ob, bb, best))
    dat.write('"%s" %.4f %.4f %.4f %.4f\n' % (name(c).replace("guest ", ""), om, bm, ob, bb))
dat.close()
import os
if os.path.exists(work + "/failed"):
    print()
    print("Runs that failed twice (no rate; left out): %s." % ", ".join(l.strip() for l in open(work + "/failed")))
PY
append_linexfer "$summary" "$RUNS" dpdk
append_runs "$summary" "round, direction, frame bytes, ring, side, pps, packets in the interval, 1-min load" "$RUNS"
echo
cat "$summary"

# Every run must produce a rate (the smoke test's only check); a full run
# keeps what it measured and says what is missing, then fails.
nruns=$(wc -l <"$RUNS")
[ "$nruns" -gt 0 ] || die "no run reported a rate"

if [ $save = 1 ]; then
	save_results net "$summary" "$RUNS"
fi
if [ $plots = 1 ]; then
	if ! command -v gnuplot >/dev/null; then
		note "gnuplot not installed (Debian: apt-get install gnuplot-nox): no plots"
	else
		pdir=$([ $save = 1 ] && echo "$out" || echo "$WORK")
		for stat in median best; do
			png=$pdir/net-$date-$stat.png
			if [ $stat = median ]; then cols='2:xtic(1)'; cb=3; else cols='4:xtic(1)'; cb=5; fi
			gnuplot <<EOF
set terminal pngcairo size 900,500 noenhanced
set output '$png'
set title 'vhost-net vs DPDK vhost PMD, one queue, $stat of $rounds rounds ($date)'
set ylabel 'Mpps seen by the peer'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30
set key top right
set grid ytics
set yrange [0:*]
plot '$WORK/plot.dat' using $cols title 'vhost-net', '' using $cb title 'DPDK vhost PMD (testpmd)'
EOF
			echo "plot $png"
		done
	fi
fi
[ "$fail" = 0 ] || die "$fail run(s) failed twice (no rate): $(paste -sd, "$WORK/failed")"
