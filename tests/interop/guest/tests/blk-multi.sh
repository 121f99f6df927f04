#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest test "blk-multi": several virtio-blk disks at once (e.g. one
# vhost-blk process serving two sockets). Runs blk-verify on each disk of
# vuarg.devs, then writes a different block of random data to the start of
# every disk, verifies each (so two disks that were one backing store would
# fail), and prints for the host "VUTEST-SUM: SERIAL MD5 MIB" per disk so
# that it can check which backing file received which data. Runs inside the
# guest (busybox sh), started by /init for vutest=blk-multi.
# Parameters: vuarg.devs (default vda,vdb), vuarg.mib (default 4),
#   vuarg.wait (default 30).
. /lib/vutest.sh

devs=$(vu_arg devs vda,vdb | tr ',' ' ')
mib=$(vu_arg mib 4)
wait=$(vu_arg wait 30)
case "$mib" in "" | *[!0-9]* | 0) vu_fail "bad vuarg.mib '$mib'" ;; esac

dd_err() { grep -v -e 'records in' -e 'records out' -e 'bytes' /tmp/dd.err | head -n1; }
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail

for d in $devs; do
	vu_wait_blk "$d" "$wait" || vu_fail "/dev/$d did not appear within ${wait}s"
done
vu_log "disks: $(for d in $devs; do printf '%s(%s sectors, serial %s) ' "$d" \
	"$(cat "/sys/block/$d/size")" "$(cat "/sys/block/$d/serial" 2>/dev/null)"; done)"

# blk-verify on each disk (its own reason file tells why it failed).
for d in $devs; do
	VUARG_DEV=$d VUARG_MIB=$mib sh /tests/blk-verify.sh || exit 1
done

# A different block on every disk, then all verified.
for d in $devs; do
	dd if=/dev/urandom of="/tmp/$d.blk" bs=1M count="$mib" 2>/dev/null || vu_fail "no random data"
	md5sum <"/tmp/$d.blk" | cut -d' ' -f1 >"/tmp/$d.md5"
	dd if="/tmp/$d.blk" of="/dev/$d" bs=1M count="$mib" oflag=direct conv=fsync 2>/tmp/dd.err ||
		vu_fail "write to /dev/$d failed: $(dd_err)"
	rm -f "/tmp/$d.blk"
done
sync
echo 3 >/proc/sys/vm/drop_caches
for d in $devs; do
	rd=$(dd if="/dev/$d" bs=1M count="$mib" iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1) ||
		vu_fail "read from /dev/$d failed: $(dd_err)"
	[ "$rd" = "$(cat "/tmp/$d.md5")" ] ||
		vu_fail "/dev/$d holds other data than written to it (wrote $(cat "/tmp/$d.md5"), read $rd)"
	echo "VUTEST-SUM: $(cat "/sys/block/$d/serial" 2>/dev/null || echo "-") $rd $mib"
done
vu_log "blk-multi: $(echo "$devs" | wc -w) disks verified, each with its own data"
exit 0
