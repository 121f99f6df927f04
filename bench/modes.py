#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Ratios by the machine's mode: which runs had the two CPUs on one L3
(fast) or two (slow), from the cache-line transfer measured before and
after each run (vu-linexfer; MODES has the two figures of each run, in
run order; a run whose two figures disagree changed mode and is left out).

    modes.py RUNS.tsv MODES BASELINE

RUNS is a benchmark's runs file (round, three case columns, side, value,
...), in run order.  For every case and side other than BASELINE it prints
the median ratio side/BASELINE over the rounds whose two runs both ran in
the same mode, for each mode, as a markdown table."""
import statistics
import sys

FAST_NS = 100  # one-way transfer below this: one L3

runs = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
marks = [float(x) for x in open(sys.argv[2]).read().split()]
base = sys.argv[3]
if len(marks) != 2 * len(runs):
    print("\n(Ratios by mode left out: %d runs but %d mode marks: a run failed or was retried.)"
          % (len(runs), len(marks)))
    sys.exit(0)
by_round = {}
cases, sides = [], []
for i, r in enumerate(runs):
    case, side = tuple(r[1:4]), r[4]
    before, after = marks[2 * i] < FAST_NS, marks[2 * i + 1] < FAST_NS
    by_round.setdefault((r[0], case), {})[side] = (float(r[5]), before if before == after else None)
    if case not in cases:
        cases.append(case)
    if side != base and not side.startswith("ceiling") and side not in sides:
        sides.append(side)
print()
print("Ratios by mode: the median of side/%s over the rounds whose two runs were both in the fast" % base)
print("mode (one L3) or both in the slow one (two L3s), before and after each run, with the number")
print("of such rounds.")
print()
print("| case | side | fast mode | slow mode |")
print("|---|---|---:|---:|")
for case in cases:
    for side in sides:
        cells = []
        for fast in (True, False):
            rs = []
            for (rnd, c), v in by_round.items():
                if c == case and side in v and base in v and v[side][1] == fast and v[base][1] == fast \
                        and v[base][0] > 0:
                    rs.append(v[side][0] / v[base][0])
            cells.append("%.2fx (%d)" % (statistics.median(rs), len(rs)) if rs else "-")
        if cells != ["-", "-"]:
            print("| %s | %s | %s | %s |" % (" ".join(case), side, cells[0], cells[1]))
