#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Smoke test of the load generator (suite 'bench'): vu-blkgen with data
# verification against vhost-blk (io_uring on a file) over every
# transport variant it offers, against qemu-storage-daemon the same way
# when it is installed, and against vu-nullblk (both ring paths).  Each
# run is short; the test checks that each one completes without an I/O or
# verification error and reports IOPS.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_tools
make_workdir
SOCK=$WORK/blk.sock
DISK_FILE=$WORK/disk.img
truncate -s 32M "$DISK_FILE"
passed=0 failed=0

check() { # name, socket, generator args...
	local name=$1 sock=$2; shift 2
	local json iops
	json=$(run_gen "$sock" --quiet "$@")
	iops=$([ -n "$json" ] && json_get "$json" iops || echo 0)
	if [ -n "$json" ] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$iops"; then
		printf 'ok   %-40s %12.0f IOPS\n' "$name" "$iops"
		passed=$((passed + 1))
	else
		printf 'FAIL %s\n' "$name"
		failed=$((failed + 1))
	fi
}

verify=(--verify --rw randrw:50 --bs 4096 --runtime 0.3 --size 4M)

start_backend ours "$SOCK" --blk-file "$DISK_FILE" --direct off --num-queues 2 --poll adaptive
check "ours split event-idx" "$SOCK" "${verify[@]}" --ring split --iodepth 16
check "ours split no event-idx" "$SOCK" "${verify[@]}" --ring split --event-idx off --iodepth 16
check "ours split indirect" "$SOCK" "${verify[@]}" --ring split --indirect on --iodepth 16
check "ours packed event-idx" "$SOCK" "${verify[@]}" --ring packed --iodepth 16
check "ours packed no event-idx" "$SOCK" "${verify[@]}" --ring packed --event-idx off --iodepth 16
check "ours 2 queues, QD 8, 16 KiB" "$SOCK" --verify --rw randrw --bs 16k --runtime 0.3 --size 4M \
	--queues 2 --iodepth 8
check "ours sequential write, --number" "$SOCK" --rw write --bs 64k --number 2000 --iodepth 4
check "ours inflight area" "$SOCK" "${verify[@]}" --inflight on --iodepth 4
check "ours QD1 idle probe" "$SOCK" --rw randread --number 100 --iodepth 1 --idle 0.1 --probes 2 \
	--probe-gap 0.01
stop_backend

if [ -n "$QSD" ] && [ -x "$QSD" ]; then
	mapfile -t args < <(qsd_args "$SOCK" --blockdev \
		"driver=file,node-name=n0,filename=$DISK_FILE,aio=io_uring,cache.direct=off")
	start_backend qsd "$SOCK" "${args[@]}"
	check "qsd split event-idx" "$SOCK" "${verify[@]}" --ring split --iodepth 16
	check "qsd split no event-idx" "$SOCK" "${verify[@]}" --ring split --event-idx off --iodepth 16
	check "qsd split indirect" "$SOCK" "${verify[@]}" --ring split --indirect on --iodepth 16
	stop_backend
else
	note "qemu-storage-daemon not installed: its checks skipped"
fi

start_backend nullblk "$SOCK" --size 32M
check "vu-nullblk split" "$SOCK" --rw randread --runtime 0.3 --iodepth 32
check "vu-nullblk packed" "$SOCK" --rw randwrite --runtime 0.3 --iodepth 32 --ring packed
stop_backend
start_backend nullblk "$SOCK" --size 32M --raw
check "vu-nullblk --raw" "$SOCK" --rw randread --runtime 0.3 --iodepth 32
stop_backend

echo "blkgen-smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
