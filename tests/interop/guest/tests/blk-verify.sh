#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest test "blk-verify": data written to a virtio-blk disk reads back
# intact. Waits (up to 30 s) for the disk, writes two different blocks of
# pseudo-random data of vuarg.mib MiB (default 16) at two offsets (start and
# end of the disk, so a backend that ignores the offset fails), with
# O_DIRECT, drops the guest's caches, reads both back with O_DIRECT and
# compares md5 sums. Runs inside the guest (busybox sh), started by /init
# for vutest=blk-verify.
# Parameters: vuarg.mib=N (MiB per block), vuarg.dev=NAME (default vda),
#             vuarg.wait=SECS (default 30).
. /lib/vutest.sh

mib=$(vu_arg mib 16)
dev=$(vu_arg dev vda)
wait=$(vu_arg wait 30)
case "$mib" in "" | *[!0-9]* | 0) vu_fail "bad vuarg.mib '$mib'" ;; esac

vu_wait_blk "$dev" "$wait" || vu_fail "/dev/$dev did not appear within ${wait}s"
sectors=$(cat "/sys/block/$dev/size")
disk_mib=$((sectors / 2048))
vu_log "/dev/$dev: $sectors sectors ($disk_mib MiB), ro=$(cat "/sys/block/$dev/ro")"
[ "$disk_mib" -ge $((2 * mib)) ] ||
	vu_fail "/dev/$dev has $disk_mib MiB, needs $((2 * mib)) (vuarg.mib=$mib)"
# Second block ends at the last whole MiB of the disk.
off2=$((disk_mib - mib))

# The first line of dd's complaint, without its "records in/out" summary.
dd_err() { grep -v -e 'records in' -e 'records out' -e 'bytes' /tmp/dd.err | head -n1; }

# /tmp is a tmpfs: the guest's 512 MiB hold 2 x 16 MiB easily.
for i in 1 2; do
	dd if=/dev/urandom of=/tmp/blk$i bs=1M count="$mib" 2>/dev/null ||
		vu_fail "cannot make $mib MiB of random data"
done
sum1=$(md5sum </tmp/blk1 | cut -d' ' -f1)
sum2=$(md5sum </tmp/blk2 | cut -d' ' -f1)
[ "$sum1" != "$sum2" ] || vu_fail "random data repeats"

dd if=/tmp/blk1 of="/dev/$dev" bs=1M seek=0 count="$mib" oflag=direct conv=fsync 2>/tmp/dd.err ||
	vu_fail "write at 0 MiB failed: $(dd_err)"
dd if=/tmp/blk2 of="/dev/$dev" bs=1M seek="$off2" count="$mib" oflag=direct conv=fsync 2>/tmp/dd.err ||
	vu_fail "write at $off2 MiB failed: $(dd_err)"
vu_log "wrote $mib MiB at 0 MiB ($sum1) and at $off2 MiB ($sum2)"

sync
echo 3 >/proc/sys/vm/drop_caches

# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail # a failed dd in "dd | md5sum" fails the pipeline
rd1=$(dd if="/dev/$dev" bs=1M skip=0 count="$mib" iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1) ||
	vu_fail "read at 0 MiB failed: $(dd_err)"
rd2=$(dd if="/dev/$dev" bs=1M skip="$off2" count="$mib" iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1) ||
	vu_fail "read at $off2 MiB failed: $(dd_err)"
vu_log "read back $rd1 and $rd2"

[ "$rd1" = "$sum1" ] || vu_fail "data at 0 MiB differs: wrote $sum1, read $rd1"
[ "$rd2" = "$sum2" ] || vu_fail "data at $off2 MiB differs: wrote $sum2, read $rd2"
vu_log "blk-verify: $((2 * mib)) MiB verified"
exit 0
