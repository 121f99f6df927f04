#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest test "blk-resize": the disk grows while the guest runs (the host
# grows the backing file and sends the backend SIGHUP; the backend tells
# the front-end with CONFIG_CHANGE_MSG, the guest gets a config interrupt).
# Writes a block at the start, prints "VUTEST-MARK: size-read" for the host,
# waits (vuarg.wait2 s, default 30) until /sys/block/DEV/size is
# vuarg.sectors, then writes and verifies a block in the last MiB of the
# new size and verifies the first block. Runs inside the guest (busybox
# sh), started by /init for vutest=blk-resize.
# Parameters: vuarg.sectors (the size after the resize, required),
#   vuarg.dev (default vda), vuarg.wait (default 30), vuarg.wait2 (30).
. /lib/vutest.sh

dev=$(vu_arg dev vda)
wait=$(vu_arg wait 30)
wait2=$(vu_arg wait2 30)
want=$(vu_arg sectors "")
sys=/sys/block/$dev
case "$want" in "" | *[!0-9]*) vu_fail "bad or missing vuarg.sectors '$want'" ;; esac

dd_err() { grep -v -e 'records in' -e 'records out' -e 'bytes' /tmp/dd.err | head -n1; }
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
read_md5() {
	dd if="/dev/$dev" bs=1M skip="$1" count=1 iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1
}

vu_wait_blk "$dev" "$wait" || vu_fail "/dev/$dev did not appear within ${wait}s"
s0=$(cat "$sys/size")
[ "$s0" -lt "$want" ] || vu_fail "the disk already has $s0 sectors (expected fewer than $want)"
dd if=/dev/urandom of=/tmp/first bs=1M count=1 2>/dev/null
dd if=/tmp/first of="/dev/$dev" bs=1M count=1 oflag=direct 2>/tmp/dd.err ||
	vu_fail "write at 0 failed: $(dd_err)"
# A write beyond the current end must fail: the size is enforced.
if dd if=/tmp/first of="/dev/$dev" bs=512 seek="$s0" count=1 oflag=direct 2>/dev/null; then
	vu_fail "a write beyond the end ($s0 sectors) succeeded"
fi
vu_log "/dev/$dev: $s0 sectors; waiting for $want"
echo "VUTEST-MARK: size-read"

n=$((wait2 * 10))
while [ "$(cat "$sys/size")" != "$want" ]; do
	[ "$n" -gt 0 ] || vu_fail "size still $(cat "$sys/size") sectors after ${wait2}s, expected $want"
	n=$((n - 1))
	sleep 0.1
done
vu_log "/dev/$dev: now $want sectors"

off=$((want / 2048 - 1))
dd if=/dev/urandom of=/tmp/last bs=1M count=1 2>/dev/null
dd if=/tmp/last of="/dev/$dev" bs=1M seek="$off" count=1 oflag=direct 2>/tmp/dd.err ||
	vu_fail "write at $off MiB (in the new space) failed: $(dd_err)"
echo 3 >/proc/sys/vm/drop_caches
rd=$(read_md5 "$off") || vu_fail "read at $off MiB failed: $(dd_err)"
[ "$rd" = "$(md5sum </tmp/last | cut -d' ' -f1)" ] || vu_fail "data at $off MiB differs"
rd=$(read_md5 0) || vu_fail "read at 0 failed: $(dd_err)"
[ "$rd" = "$(md5sum </tmp/first | cut -d' ' -f1)" ] || vu_fail "data at 0 differs after the resize"
vu_log "blk-resize: grew from $s0 to $want sectors, new space written and verified"
exit 0
