#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest test "blk-features": what the guest's virtio_blk driver sees of the
# disk matches what the backend was told to offer, and each feature works.
# Runs inside the guest (busybox sh), started by /init for vutest=blk-features.
#   - size: /sys/block/DEV/size equals vuarg.sectors (if given);
#   - serial: /sys/block/DEV/serial (a GET_ID request) equals vuarg.serial
#     (if given);
#   - read-only (vuarg.ro=1): /sys/block/DEV/ro is 1, a write and a discard
#     are refused, the data read before and after is the same, and no
#     discard is offered;
#   - writable (vuarg.ro=0, default): ro is 0; flush: the cache is "write
#     back" ("write through" with vuarg.wce=0), `sync` and dd conv=fsync work, switching cache_type to "write
#     through" (a config-space write, SET_CONFIG) and back works and data
#     written in either mode reads back; discard: discard_max_bytes > 0, a
#     range written with random data reads back as zeroes after blkdiscard;
#     write-zeroes: write_zeroes_max_bytes > 0 (busybox has no BLKZEROOUT
#     tool, so only the limit is checked);
#   - queues: the number of hardware queues in /sys/block/DEV/mq/ equals
#     vuarg.queues (if given); with more than one, I/O is issued from every
#     CPU and every virtqueue must complete requests (its MSI-X interrupt
#     count in /proc/interrupts grows);
#   - every attribute in /sys/block/DEV/queue/ can be read.
# Parameters: vuarg.dev (default vda), vuarg.wait (default 30),
#   vuarg.sectors, vuarg.serial, vuarg.ro (0|1), vuarg.queues, vuarg.wce
#   (the initial write cache the backend offers: 1, default, or 0).
. /lib/vutest.sh

dev=$(vu_arg dev vda)
wait=$(vu_arg wait 30)
want_sectors=$(vu_arg sectors "")
want_serial=$(vu_arg serial "")
ro=$(vu_arg ro 0)
want_queues=$(vu_arg queues "")
wce=$(vu_arg wce 1)
sys=/sys/block/$dev

dd_err() { grep -v -e 'records in' -e 'records out' -e 'bytes' /tmp/dd.err | head -n1; }
# md5 of N MiB at MiB offset OFF of the disk, read with O_DIRECT.
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail
read_md5() {
	dd if="/dev/$dev" bs=1M skip="$1" count="$2" iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1
}

vu_wait_blk "$dev" "$wait" || vu_fail "/dev/$dev did not appear within ${wait}s"
sectors=$(cat "$sys/size")
vu_log "/dev/$dev: $sectors sectors, ro=$(cat "$sys/ro"), serial='$(cat "$sys/serial" 2>/dev/null)'"

# ---- size
if [ -n "$want_sectors" ]; then
	[ "$sectors" = "$want_sectors" ] || vu_fail "size: $sectors sectors, expected $want_sectors"
	vu_log "size: $sectors sectors as expected"
fi

# ---- serial (read through a GET_ID request each time)
if [ -n "$want_serial" ]; then
	[ -r "$sys/serial" ] || vu_fail "serial: no $sys/serial"
	serial=$(cat "$sys/serial") || vu_fail "serial: reading $sys/serial failed"
	[ "$serial" = "$want_serial" ] || vu_fail "serial: '$serial', expected '$want_serial'"
	vu_log "serial: '$serial' as expected"
fi

# ---- every queue attribute readable
for f in "$sys"/queue/*; do
	[ -f "$f" ] || continue
	[ -r "$f" ] || continue
	cat "$f" >/dev/null 2>/tmp/cat.err || vu_fail "reading $f failed: $(cat /tmp/cat.err)"
done
vu_log "queue attributes: $(ls "$sys/queue" | wc -l) readable"

# ---- read-only or not
cur_ro=$(cat "$sys/ro")
if [ "$ro" = 1 ]; then
	[ "$cur_ro" = 1 ] || vu_fail "read-only: $sys/ro is $cur_ro, expected 1"
	before=$(read_md5 0 1) || vu_fail "read-only: read failed: $(dd_err)"
	dd if=/dev/urandom of=/tmp/rnd bs=1M count=1 2>/dev/null
	if dd if=/tmp/rnd of="/dev/$dev" bs=1M count=1 oflag=direct conv=fsync 2>/tmp/dd.err; then
		vu_fail "read-only: the guest kernel let a write through"
	fi
	vu_log "read-only: the guest kernel refuses writes ($(dd_err))"
	# (The disk-level read-only flag that VIRTIO_BLK_F_RO sets cannot be
	# cleared from user space, so no write reaches the backend; the host
	# side checks that the backing file is unchanged.)
	if blkdiscard -o 0 -l 65536 "/dev/$dev" 2>/dev/null; then
		vu_fail "read-only: a discard succeeded"
	fi
	echo 3 >/proc/sys/vm/drop_caches
	after=$(read_md5 0 1) || vu_fail "read-only: read failed: $(dd_err)"
	[ "$before" = "$after" ] || vu_fail "read-only: data changed ($before -> $after)"
	dmax=$(cat "$sys/queue/discard_max_bytes")
	[ "$dmax" = 0 ] || vu_fail "read-only: discard_max_bytes is $dmax, expected 0 (no DISCARD)"
	vu_log "read-only: data unchanged, no discard offered"
else
	[ "$cur_ro" = 0 ] || vu_fail "writable disk: $sys/ro is $cur_ro"
	disk_mib=$((sectors / 2048))
	[ "$disk_mib" -ge 8 ] || vu_fail "disk of $disk_mib MiB is too small (needs 8)"

	# ---- flush and the write cache (CONFIG_WCE, SET_CONFIG)
	# cache_type is virtio_blk's own attribute: writing it writes the
	# wce field of config space (CONFIG_WCE); queue/write_cache follows.
	want_wc="write back"
	[ "$wce" = 0 ] && want_wc="write through"
	wc=$(cat "$sys/queue/write_cache")
	[ "$wc" = "$want_wc" ] || vu_fail "flush: write_cache is '$wc', expected '$want_wc' (vuarg.wce=$wce)"
	[ -w "$sys/cache_type" ] || vu_fail "flush: $sys/cache_type is not writable (no CONFIG_WCE)"
	for mode in "write through" "write back"; do
		echo "$mode" >"$sys/cache_type" 2>/tmp/wc.err ||
			vu_fail "flush: setting cache_type to '$mode' failed: $(cat /tmp/wc.err)"
		now=$(cat "$sys/cache_type")
		[ "$now" = "$mode" ] || vu_fail "flush: cache_type is '$now' after writing '$mode'"
		now=$(cat "$sys/queue/write_cache")
		[ "$now" = "$mode" ] || vu_fail "flush: queue/write_cache is '$now' after cache_type '$mode'"
		dd if=/dev/urandom of=/tmp/rnd bs=1M count=1 2>/dev/null
		sum=$(md5sum </tmp/rnd | cut -d' ' -f1)
		# buffered write, then fsync (FLUSH), then sync (FLUSH again)
		dd if=/tmp/rnd of="/dev/$dev" bs=1M seek=1 count=1 conv=fsync 2>/tmp/dd.err ||
			vu_fail "flush: write with fsync ('$mode') failed: $(dd_err)"
		sync || vu_fail "flush: sync failed"
		echo 3 >/proc/sys/vm/drop_caches
		rd=$(read_md5 1 1) || vu_fail "flush: read failed: $(dd_err)"
		[ "$rd" = "$sum" ] || vu_fail "flush: data written in '$mode' mode differs ($sum, read $rd)"
		vu_log "flush: '$mode': write, fsync, sync, read back OK"
		flush_sum=$sum
	done

	# ---- discard: a range of random data reads back as zeroes
	dmax=$(cat "$sys/queue/discard_max_bytes")
	[ "$dmax" -gt 0 ] || vu_fail "discard: discard_max_bytes is $dmax"
	vu_log "discard: discard_max_bytes=$dmax granularity=$(cat "$sys/queue/discard_granularity")"
	if command -v blkdiscard >/dev/null; then
		off=2 # MiB
		dd if=/dev/urandom of=/tmp/rnd bs=1M count=2 2>/dev/null
		dd if=/tmp/rnd of="/dev/$dev" bs=1M seek=$off count=2 oflag=direct 2>/tmp/dd.err ||
			vu_fail "discard: write failed: $(dd_err)"
		sum=$(md5sum </tmp/rnd | cut -d' ' -f1)
		rd=$(read_md5 $off 2) || vu_fail "discard: read failed: $(dd_err)"
		[ "$rd" = "$sum" ] || vu_fail "discard: data before the discard differs"
		blkdiscard -o $((off * 1048576)) -l 2097152 "/dev/$dev" 2>/tmp/bd.err ||
			vu_fail "discard: blkdiscard failed: $(cat /tmp/bd.err)"
		zero=$(dd if=/dev/zero bs=1M count=2 2>/dev/null | md5sum | cut -d' ' -f1)
		rd=$(read_md5 $off 2) || vu_fail "discard: read after discard failed: $(dd_err)"
		[ "$rd" = "$zero" ] || vu_fail "discard: the discarded range does not read back as zeroes"
		# The MiB before the range (written above) is untouched.
		rd=$(read_md5 1 1) || vu_fail "discard: read failed: $(dd_err)"
		[ "$rd" = "$flush_sum" ] || vu_fail "discard: the MiB before the discarded range changed"
		vu_log "discard: 2 MiB at $off MiB discarded, reads back as zeroes"
	else
		vu_log "discard: SKIP the blkdiscard part (busybox has no blkdiscard)"
	fi

	# ---- write zeroes
	wz=$(cat "$sys/queue/write_zeroes_max_bytes")
	[ "$wz" -gt 0 ] || vu_fail "write-zeroes: write_zeroes_max_bytes is $wz"
	vu_log "write-zeroes: write_zeroes_max_bytes=$wz (no BLKZEROOUT tool in busybox: limit only)"
fi

# ---- hardware queues
nq=0
for q in "$sys"/mq/*; do
	[ -d "$q" ] && nq=$((nq + 1))
done
vu_log "queues: $nq hardware queue(s), $(nproc) CPU(s)"
if [ -n "$want_queues" ]; then
	[ "$nq" = "$want_queues" ] || vu_fail "queues: $nq hardware queues, expected $want_queues"
fi
# Completion interrupts of hardware queue $1 so far (all CPUs); empty
# without a per-queue MSI-X vector.
vq_irqs() {
	awk -v name="$vdev-req.$1" -v ncpu="$(nproc)" \
		'$NF == name { n = 0; for (i = 2; i <= ncpu + 1; i++) n += $i; print n }' /proc/interrupts
}
if [ "$nq" -gt 1 ]; then
	vdev=$(basename "$(readlink "$sys/device")")
	i=0
	while [ "$i" -lt "$nq" ]; do
		eval "irq_before_$i=\$(vq_irqs $i)"
		i=$((i + 1))
	done
	# Issue reads from every CPU: each CPU maps to one hardware queue.
	cpu=0
	while [ "$cpu" -lt "$(nproc)" ]; do
		taskset -c "$cpu" dd if="/dev/$dev" of=/dev/null bs=4k count=256 skip=$((cpu * 1024)) \
			iflag=direct 2>/tmp/dd.err || vu_fail "queues: read on CPU $cpu failed: $(dd_err)"
		cpu=$((cpu + 1))
	done
	# Each virtqueue must have completed requests: its interrupt fired.
	i=0
	while [ "$i" -lt "$nq" ]; do
		eval "b=\$irq_before_$i"
		a=$(vq_irqs $i)
		if [ -z "$a" ] || [ -z "$b" ]; then
			vu_log "queues: SKIP the per-queue check (no MSI-X vector $vdev-req.$i in /proc/interrupts)"
			break
		fi
		vu_log "queues: hctx$i (CPUs $(cat "$sys/mq/$i/cpu_list")): $((a - b)) completion interrupts"
		[ "$a" -gt "$b" ] || vu_fail "queues: virtqueue $i completed nothing (no interrupt on $vdev-req.$i)"
		i=$((i + 1))
	done
fi

vu_log "blk-features: all checks passed"
exit 0
