#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds, and runs every test:
#   1. the warnings-as-errors build: unit, integration, ceph (the rbd
#      engine on a throw-away one-node cluster), bench smoke runs and
#      interop suites;
#   2. the AddressSanitizer/UBSan build: unit, integration and ceph suites;
#   3. the libFuzzer harnesses, each for a short fixed time (clang).
# Prints one closing line "tests: N passed, N failed, N skipped".
# Environment: SKIP_INTEROP=1 skips the QEMU suite, SKIP_FUZZ=1 the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

passed=0 failed=0 skipped=0
tally() { # build dir: add its test results to the totals
	local log=$1/meson-logs/testlog.json
	[ -f "$log" ] || return 0
	read -r p f s < <(python3 - "$log" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
)
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

run_suites() { # build dir, suites...
	local dir=$1; shift
	local args=()
	for s in "$@"; do args+=(--suite "$s"); done
	meson test -C "$dir" "${args[@]}" --print-errorlogs --num-processes 2 || true
	tally "$dir"
}

setup() { # build dir, meson options...
	local dir=$1; shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir"
}

setup build -Dwerror=true
suites=(unit integration ceph bench)
[ "${SKIP_INTEROP:-0}" = 1 ] || suites+=(interop)
run_suites build "${suites[@]}"

setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	run_suites build-asan unit integration ceph

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
	CC=clang setup build-fuzz -Dfuzz=true -Dtests=disabled
	run_suites build-fuzz fuzz
fi

echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
