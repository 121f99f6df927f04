#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest test "blk-fio-verify": fio writes a virtio-blk disk and verifies
# what it wrote. Needs the guest image with fio (IMAGEDIR/fio of
# guest/build-guest.sh). Runs inside the guest (busybox sh), started by
# /init for vutest=blk-fio-verify.
#
# One fio job on /dev/DEV with O_DIRECT: random writes of mixed block sizes
# (vuarg.bs, default 4k-64k; fio's random map writes every block of the
# area once) over vuarg.mib MiB (default 32) starting at vuarg.offset MiB
# (default 0), vuarg.iodepth (default 16) requests in flight with libaio
# (psync, one at a time, if this fio has no libaio), every block carrying a
# vuarg.verify checksum (default crc32c) and a header naming its offset;
# then fio reads the whole area back and checks every block. Any I/O error,
# any checksum or header mismatch (verify_fatal), a non-zero fio status or
# an "err=" other than 0 in fio's report fails the test. fio's summary
# (IOPS, bandwidth, latency, run status) goes to the console as "vutest:
# fio: ..." lines. The random seed is printed (vuarg.seed sets it, for a
# rerun of the same pattern).
# Parameters: vuarg.dev (default vda), vuarg.mib, vuarg.offset, vuarg.bs,
#   vuarg.iodepth, vuarg.verify (crc32c, md5, ...), vuarg.engine (libaio,
#   psync; default: libaio if fio has it), vuarg.seed, vuarg.wait (30).
. /lib/vutest.sh

dev=$(vu_arg dev vda)
mib=$(vu_arg mib 32)
offset=$(vu_arg offset 0)
bs=$(vu_arg bs 4k-64k)
iodepth=$(vu_arg iodepth 16)
verify=$(vu_arg verify crc32c)
engine=$(vu_arg engine "")
seed=$(vu_arg seed "")
wait=$(vu_arg wait 30)
case "$mib" in "" | *[!0-9]* | 0) vu_fail "bad vuarg.mib '$mib'" ;; esac
case "$offset" in "" | *[!0-9]*) vu_fail "bad vuarg.offset '$offset'" ;; esac
case "$iodepth" in "" | *[!0-9]* | 0) vu_fail "bad vuarg.iodepth '$iodepth'" ;; esac
case "$bs" in "" | *[!0-9kKmM-]*) vu_fail "bad vuarg.bs '$bs'" ;; esac
case "$verify" in "" | *[!a-z0-9_]*) vu_fail "bad vuarg.verify '$verify'" ;; esac
if [ -z "$seed" ]; then
	seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
fi
case "$seed" in "" | *[!0-9]*) vu_fail "bad vuarg.seed '$seed'" ;; esac

command -v fio >/dev/null ||
	vu_fail "no fio in this guest (boot IMAGEDIR/fio of build-guest.sh; install fio on the host)"
fio --version >/tmp/fio.version 2>&1 || vu_fail "fio does not run: $(head -n1 /tmp/fio.version)"
if [ -z "$engine" ]; then
	engine=psync
	fio --enghelp 2>/dev/null | grep -qw libaio && engine=libaio
fi
[ "$engine" = libaio ] || iodepth=1 # synchronous engines have one in flight

vu_wait_blk "$dev" "$wait" || vu_fail "/dev/$dev did not appear within ${wait}s"
sectors=$(cat "/sys/block/$dev/size")
disk_mib=$((sectors / 2048))
[ "$disk_mib" -ge $((offset + mib)) ] ||
	vu_fail "/dev/$dev has $disk_mib MiB, needs $((offset + mib)) (vuarg.offset + vuarg.mib)"
vu_log "/dev/$dev: $sectors sectors; $(cat /tmp/fio.version) $engine, iodepth $iodepth," \
	"random writes of $bs over $mib MiB at $offset MiB, verify $verify, seed $seed"

fio --name=blk-fio-verify --filename="/dev/$dev" --direct=1 --ioengine="$engine" \
	--iodepth="$iodepth" --rw=randwrite --bsrange="$bs" --blockalign=4k \
	--offset="${offset}M" --size="${mib}M" --randseed="$seed" \
	--verify="$verify" --do_verify=1 --verify_fatal=1 --verify_dump=0 \
	--verify_state_save=0 --exitall_on_error=1 --continue_on_error=none \
	>/tmp/fio.out 2>&1
rc=$?

# The summary: the job's status line, IOPS/bandwidth, completion latency
# (not the percentile table), the run status of the whole group.
grep -v -e '^ *|' -e 'percentiles' -e '^ *lat (.sec) *:' -e '^ *slat' \
	-e '^ *cpu ' -e '^ *IO depths' -e '^ *submit' -e '^ *complete' -e '^ *issued' \
	-e '^ *latency *:' -e '^ *clat percentiles' -e '^ *$' /tmp/fio.out |
	sed 's/^/vutest: fio: /'

errline=$(grep -E 'err= *[^0 ]|verify: bad|verify failed|bad magic|bad header|Input/output error|fio: (io_u error|pid=)' \
	/tmp/fio.out | head -n1)
[ "$rc" -eq 0 ] || vu_fail "fio failed (status $rc)${errline:+: $errline}"
[ -z "$errline" ] || vu_fail "fio reported an error: $errline"
grep -q 'err= *0' /tmp/fio.out || vu_fail "fio's report has no 'err= 0' (did the job run?)"
# The verify pass read the whole area: READ in the run status.
grep -q 'READ: bw=' /tmp/fio.out || vu_fail "fio's report has no read (verify) phase"
vu_log "blk-fio-verify: $mib MiB written ($bs, $engine, iodepth $iodepth) and verified ($verify)"
exit 0
