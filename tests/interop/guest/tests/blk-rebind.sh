#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest test "blk-rebind": the disk survives a device reset in mid-test.
# Writes and verifies pseudo-random data, then unbinds the virtio device
# from the virtio_blk driver through sysfs (the driver resets the device:
# the front-end stops the vhost-user queues) and binds it again (the driver
# probes it anew: features, config space, queues started again), waits for
# /dev/DEV to come back, verifies the old data, writes and verifies new
# data, and checks that every attribute in /sys/block/DEV/queue/ reads and
# has the value it had before. Repeats the unbind/bind vuarg.rounds times
# (default 2). Runs inside the guest (busybox sh), started by /init for
# vutest=blk-rebind.
# Parameters: vuarg.dev (default vda), vuarg.mib (MiB per block, default 4),
#   vuarg.rounds (default 2), vuarg.wait (default 30).
. /lib/vutest.sh

dev=$(vu_arg dev vda)
mib=$(vu_arg mib 4)
rounds=$(vu_arg rounds 2)
wait=$(vu_arg wait 30)
sys=/sys/block/$dev
drv=/sys/bus/virtio/drivers/virtio_blk
case "$mib" in "" | *[!0-9]* | 0) vu_fail "bad vuarg.mib '$mib'" ;; esac
case "$rounds" in "" | *[!0-9]* | 0) vu_fail "bad vuarg.rounds '$rounds'" ;; esac

dd_err() { grep -v -e 'records in' -e 'records out' -e 'bytes' /tmp/dd.err | head -n1; }
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail

vu_wait_blk "$dev" "$wait" || vu_fail "/dev/$dev did not appear within ${wait}s"
sectors=$(cat "$sys/size")
disk_mib=$((sectors / 2048))
need=$(((rounds + 2) * mib))
[ "$disk_mib" -ge "$need" ] || vu_fail "/dev/$dev has $disk_mib MiB, needs $need"
vdev=$(basename "$(readlink "$sys/device")")
[ -e "$drv/$vdev" ] || vu_fail "/dev/$dev is not $vdev bound to virtio_blk"
vu_log "/dev/$dev: $sectors sectors on $vdev"

# write_block NAME MIB-OFFSET: random data there, O_DIRECT; md5 in /tmp/NAME.md5
write_block() {
	dd if=/dev/urandom of="/tmp/$1" bs=1M count="$mib" 2>/dev/null ||
		vu_fail "cannot make $mib MiB of random data"
	md5sum <"/tmp/$1" | cut -d' ' -f1 >"/tmp/$1.md5"
	dd if="/tmp/$1" of="/dev/$dev" bs=1M seek="$2" count="$mib" oflag=direct conv=fsync 2>/tmp/dd.err ||
		vu_fail "write of $1 at $2 MiB failed: $(dd_err)"
	rm -f "/tmp/$1"
}
# verify_block NAME MIB-OFFSET: the disk holds what write_block put there
verify_block() {
	echo 3 >/proc/sys/vm/drop_caches
	rd=$(dd if="/dev/$dev" bs=1M skip="$2" count="$mib" iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1) ||
		vu_fail "read of $1 at $2 MiB failed: $(dd_err)"
	[ "$rd" = "$(cat "/tmp/$1.md5")" ] ||
		vu_fail "$1 at $2 MiB differs: wrote $(cat "/tmp/$1.md5"), read $rd"
}
# queue_attrs FILE: NAME=VALUE of every readable queue attribute
queue_attrs() {
	: >"$1"
	for f in "$sys"/queue/*; do
		{ [ -f "$f" ] && [ -r "$f" ]; } || continue
		v=$(cat "$f" 2>/tmp/cat.err) || vu_fail "reading $f failed: $(cat /tmp/cat.err)"
		echo "${f##*/}=$v" >>"$1"
	done
}

queue_attrs /tmp/attrs.0
write_block old 0
verify_block old 0
last=$((disk_mib - mib))
write_block old-end "$last"
verify_block old-end "$last"
vu_log "wrote and verified $mib MiB at 0 and at $last MiB"

r=1
while [ "$r" -le "$rounds" ]; do
	echo "$vdev" >"$drv/unbind" || vu_fail "round $r: unbinding $vdev from virtio_blk failed"
	n=100
	while [ -e "$sys" ]; do
		[ "$n" -gt 0 ] || vu_fail "round $r: $sys still there 10 s after the unbind"
		n=$((n - 1))
		sleep 0.1
	done
	[ ! -b "/dev/$dev" ] || vu_fail "round $r: /dev/$dev still there after the unbind"
	vu_log "round $r: $vdev unbound, /dev/$dev gone"
	echo "$vdev" >"$drv/bind" || vu_fail "round $r: binding $vdev to virtio_blk failed"
	vu_wait_blk "$dev" "$wait" || vu_fail "round $r: /dev/$dev did not come back within ${wait}s"
	[ "$(cat "$sys/size")" = "$sectors" ] ||
		vu_fail "round $r: size is $(cat "$sys/size") sectors after the rebind, was $sectors"
	vu_log "round $r: $vdev bound again, /dev/$dev back"

	verify_block old 0
	verify_block old-end "$last"
	write_block "new$r" $((mib * r))
	verify_block "new$r" $((mib * r))
	vu_log "round $r: old data intact, new data at $((mib * r)) MiB verified"

	queue_attrs "/tmp/attrs.$r"
	if ! cmp -s /tmp/attrs.0 "/tmp/attrs.$r"; then
		diff /tmp/attrs.0 "/tmp/attrs.$r" | grep '^[-+][a-z]' | sed 's/^/vutest:   /'
		vu_fail "round $r: queue attributes differ from before the rebind"
	fi
	r=$((r + 1))
done

# Every block written since the start is still there.
verify_block old 0
verify_block old-end "$last"
r=1
while [ "$r" -le "$rounds" ]; do
	verify_block "new$r" $((mib * r))
	r=$((r + 1))
done
vu_log "blk-rebind: $rounds rebinds, all data verified, $(wc -l </tmp/attrs.0) queue attributes unchanged"
exit 0
