#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest test "blk-io-loop": keeps a virtio-blk disk busy for a while,
# checking what it reads as it goes and everything written at the end, so
# that the host can do something to the backend meanwhile (kill and
# restart it, migrate the guest) and the guest proves it saw no I/O error,
# read no wrong data and lost no write. Runs inside the guest (busybox sh),
# started by /init for vutest=blk-io-loop.
#
# For about vuarg.secs seconds (or until every slot of the area is written
# once) a writer writes chunks of vuarg.kib KiB of fresh random data with
# O_DIRECT to consecutive slots of the disk, keeping the md5 of each.
# Meanwhile vuarg.readers readers read back, with O_DIRECT, 4 chunks at a
# time (one read, several requests in flight) among the slots written so
# far, and compare each chunk with its md5. With several CPUs, reader r
# runs on CPU (r + 1) mod ncpus, so a multi-queue disk has requests on
# every queue. Console lines for the host:
#   VUTEST-MARK: io-started            after the first chunk is written
#   VUTEST-PROGRESS: N T               after chunk N, at guest uptime T (s)
# At the end it stops the readers, drops the caches, reads every slot back
# with O_DIRECT and compares md5s, and reports the longest gap between two
# chunks (the stall the guest saw). Any I/O error or wrong data fails.
# Parameters: vuarg.secs (default 10), vuarg.kib (default 256),
#   vuarg.dev (default vda), vuarg.wait (default 30), vuarg.readers
#   (default 2), vuarg.fsync=1 (a FLUSH after every chunk; default 0).
. /lib/vutest.sh

secs=$(vu_arg secs 10)
kib=$(vu_arg kib 256)
dev=$(vu_arg dev vda)
wait=$(vu_arg wait 30)
readers=$(vu_arg readers 2)
conv=""
[ "$(vu_arg fsync 0)" = 1 ] && conv=,fsync
case "$secs" in "" | *[!0-9]*) vu_fail "bad vuarg.secs '$secs'" ;; esac
case "$kib" in "" | *[!0-9]* | 0) vu_fail "bad vuarg.kib '$kib'" ;; esac
case "$readers" in "" | *[!0-9]*) vu_fail "bad vuarg.readers '$readers'" ;; esac

dd_err() { grep -v -e 'records in' -e 'records out' -e 'bytes' "$1" | head -n1; }
# Guest uptime in hundredths of a second.
now_cs() { read -r up _ </proc/uptime; echo "${up%.*}${up#*.}" | sed 's/^0*//; s/^$/0/'; }
# shellcheck disable=SC3040 # busybox ash has pipefail
set -o pipefail

vu_wait_blk "$dev" "$wait" || vu_fail "/dev/$dev did not appear within ${wait}s"
sectors=$(cat "/sys/block/$dev/size")
slots=$((sectors * 512 / (kib * 1024)))
[ "$slots" -ge 8 ] || vu_fail "/dev/$dev is smaller than 8 chunks of $kib KiB"
# Keep the written area small enough to verify quickly (at most 64 MiB).
max_slots=$((65536 / kib))
[ "$max_slots" -ge 8 ] || max_slots=8
[ "$slots" -le "$max_slots" ] || slots=$max_slots
vu_log "/dev/$dev: $sectors sectors; $slots slots of $kib KiB, for ${secs}s"
rm -rf /tmp/sums /tmp/reader.stop /tmp/reader.failed
mkdir -p /tmp/sums
echo 0 >/tmp/written

# ---- readers: every chunk read must match what was written there.
# /tmp/written holds how many slots are complete (data written, then md5
# stored, then the count raised); a slot is never written twice.
rpids=""
stop_readers() {
	[ -n "$rpids" ] || return 0
	touch /tmp/reader.stop
	for p in $rpids; do wait "$p" 2>/dev/null; done
	rpids=""
}
reader() { # NUMBER
	i=$1
	checked=0
	while [ ! -e /tmp/reader.stop ]; do
		w=$(cat /tmp/written)
		if [ "${w:-0}" -lt 4 ]; then
			sleep 0.05
			continue
		fi
		s=$((i % (w - 3)))
		i=$((i + 5))
		$pin dd if="/dev/$dev" of="/tmp/rd$1" bs=$((4 * kib))k skip=$((s * kib * 1024)) count=1 \
			iflag=direct,skip_bytes,fullblock \
			2>"/tmp/reader$1.err" || { dd_err "/tmp/reader$1.err" >/tmp/reader.failed; return 1; }
		k=0
		while [ "$k" -lt 4 ]; do
			got=$(dd if="/tmp/rd$1" bs="${kib}k" skip="$k" count=1 2>/dev/null | md5sum | cut -d' ' -f1)
			if [ "$got" != "$(cat "/tmp/sums/$((s + k))")" ]; then
				echo "slot $((s + k)) read back as $got, was written as $(cat "/tmp/sums/$((s + k))")" \
					>/tmp/reader.failed
				return 1
			fi
			k=$((k + 1))
		done
		checked=$((checked + 4))
		echo "$checked" >"/tmp/checked$1"
	done
}
ncpus=$(nproc)
r=0
while [ "$r" -lt "$readers" ]; do
	pin=""
	[ "$ncpus" -gt 1 ] && pin="taskset -c $(((r + 1) % ncpus))"
	reader "$r" &
	rpids="$rpids $!"
	r=$((r + 1))
done

# ---- writer
start=$(now_cs)
last=$start
max_gap=0
max_gap_at=0
n=0
while [ "$n" -lt "$slots" ]; do
	dd if=/dev/urandom of=/tmp/chunk bs="${kib}k" count=1 2>/dev/null ||
		{ stop_readers; vu_fail "cannot make random data"; }
	sum=$(md5sum </tmp/chunk | cut -d' ' -f1)
	if ! dd if=/tmp/chunk of="/dev/$dev" bs="${kib}k" seek="$n" count=1 oflag=direct \
		conv=notrunc$conv 2>/tmp/dd.err; then
		stop_readers
		vu_fail "write of chunk $n failed: $(dd_err /tmp/dd.err)"
	fi
	echo "$sum" >"/tmp/sums/$n"
	n=$((n + 1))
	echo "$n" >/tmp/written.new && mv /tmp/written.new /tmp/written
	t=$(now_cs)
	gap=$((t - last))
	if [ "$n" -gt 1 ] && [ "$gap" -gt "$max_gap" ]; then
		max_gap=$gap
		max_gap_at=$n
	fi
	last=$t
	[ "$n" -eq 1 ] && echo "VUTEST-MARK: io-started"
	echo "VUTEST-PROGRESS: $n $((t / 100)).$((t / 10 % 10))$((t % 10))"
	if [ -e /tmp/reader.failed ]; then
		stop_readers
		vu_fail "a reader failed: $(cat /tmp/reader.failed)"
	fi
	[ $((t - start)) -lt $((secs * 100)) ] || break
done
stop_readers
[ ! -e /tmp/reader.failed ] || vu_fail "a reader failed: $(cat /tmp/reader.failed)"
written=$n
checked=0
for f in /tmp/checked*; do
	[ -f "$f" ] && checked=$((checked + $(cat "$f")))
done
vu_log "readers checked $checked chunks meanwhile"
vu_log "wrote $written chunks of $kib KiB in $(((last - start) / 100)) s;" \
	"longest gap between chunks $((max_gap / 100)).$((max_gap / 10 % 10))$((max_gap % 10)) s (before chunk $max_gap_at)"

sync
echo 3 >/proc/sys/vm/drop_caches
bad=0
s=0
while [ "$s" -lt "$written" ]; do
	rd=$(dd if="/dev/$dev" bs="${kib}k" skip="$s" count=1 iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1) ||
		vu_fail "read of slot $s failed: $(dd_err /tmp/dd.err)"
	if [ "$rd" != "$(cat "/tmp/sums/$s")" ]; then
		vu_log "slot $s differs: wrote $(cat "/tmp/sums/$s"), read $rd"
		bad=$((bad + 1))
	fi
	s=$((s + 1))
done
[ "$bad" -eq 0 ] || vu_fail "$bad of $written slots hold other data than written"
vu_log "blk-io-loop: $written chunks written, all verified at the end and by the readers meanwhile"
exit 0
