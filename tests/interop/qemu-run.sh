#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# qemu-run.sh [options] IMAGEDIR TEST [KERNEL-ARG...] [-- QEMU-ARG...]
#
# Boots the interop test guest built by guest/build-guest.sh (IMAGEDIR holds
# vmlinuz and initramfs.cpio.gz) under QEMU with TCG and shareable guest
# memory (memfd, share=on, as vhost-user needs), runs the guest test TEST
# (/tests/TEST.sh in the guest), and exits 0 only if the console shows
# "VUTEST-RESULT: PASS".
#
#   KERNEL-ARG...   more kernel parameters, e.g. vuarg.mib=64
#   -- QEMU-ARG...  more QEMU arguments (devices, -L DIR, ...), e.g.
#                   -- -chardev socket,id=c0,path=SOCK
#                      -device vhost-user-blk-pci,chardev=c0
# Options:
#   -q QEMU   QEMU binary (default: $QEMU, else qemu-system-x86_64)
#   -t SECS   timeout for the whole boot and test (default: $VUTEST_TIMEOUT,
#             else 120); QEMU is killed (by its PID) when it runs out
#   -l FILE   write the console log to FILE and keep it (default: a
#             temporary file, removed on exit)
#   -s FILE   a guest test script from the host: added to the initramfs as
#             /tests/TEST.sh (a second cpio appended to the initrd), so a
#             test needs no image rebuild
#   -m MIB    guest memory in MiB (default 512)
#   -v        print the whole console log at the end, not just on failure
#
# Exit status: 0 PASS; 1 FAIL (or no result line); 2 usage or setup error;
# 124 timeout. On failure the tail of the console log is printed to stderr.
# Everything it made (temporary files, the QEMU process) is removed on any
# exit, including Ctrl-C.
set -euo pipefail

usage() {
	sed -n '3,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
die() { echo "qemu-run: $*" >&2; exit 2; }

qemu=${QEMU:-qemu-system-x86_64}
timeout=${VUTEST_TIMEOUT:-120}
log=""
script=""
mem=512
verbose=0
while getopts ":q:t:l:s:m:vh" opt; do
	case "$opt" in
	q) qemu=$OPTARG ;;
	t) timeout=$OPTARG ;;
	l) log=$OPTARG ;;
	s) script=$OPTARG ;;
	m) mem=$OPTARG ;;
	v) verbose=1 ;;
	h) usage ;;
	*) echo "qemu-run: bad option -$OPTARG" >&2; usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
imgdir=$1
test=$2
shift 2
kargs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	kargs+=("$1")
	shift
done
[ $# -gt 0 ] && shift # the "--"
qargs=("$@")

case "$timeout" in "" | *[!0-9]*) die "bad timeout '$timeout'" ;; esac
case "$mem" in "" | *[!0-9]*) die "bad memory size '$mem'" ;; esac
case "$test" in "" | *[!A-Za-z0-9_.-]*) die "bad test name '$test'" ;; esac
if [ ! -f "$imgdir/vmlinuz" ] || [ ! -f "$imgdir/initramfs.cpio.gz" ]; then
	die "$imgdir has no vmlinuz and initramfs.cpio.gz (run guest/build-guest.sh $imgdir)"
fi
command -v "$qemu" >/dev/null || die "no QEMU binary '$qemu'"

# ---- cleanup on any exit
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qemu-run.XXXXXX")
qpid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill -TERM "$qpid" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$qpid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

[ -n "$log" ] || log="$tmp/console.log"
: >"$log"

initrd="$imgdir/initramfs.cpio.gz"
if [ -n "$script" ]; then
	[ -f "$script" ] || die "no script $script"
	# Linux unpacks concatenated cpio archives in order; the later one adds
	# /tests/TEST.sh (or replaces the image's own).
	command -v cpio >/dev/null || die "no cpio (install cpio)"
	mkdir -p "$tmp/extra/tests"
	cp "$script" "$tmp/extra/tests/$test.sh"
	chmod 755 "$tmp/extra/tests/$test.sh"
	(cd "$tmp/extra" && printf '%s\n' tests "tests/$test.sh" |
		cpio -o -H newc -R 0:0 --quiet) >"$tmp/extra.cpio"
	# An uncompressed archive must start 4-byte aligned; zeros between
	# archives are skipped, so pad the image's one to 512 bytes.
	cp "$initrd" "$tmp/initrd"
	size=$(stat -c %s "$tmp/initrd")
	pad=$(( (512 - size % 512) % 512 ))
	[ "$pad" -eq 0 ] || head -c "$pad" /dev/zero >>"$tmp/initrd"
	cat "$tmp/extra.cpio" >>"$tmp/initrd"
	initrd="$tmp/initrd"
fi

# The guest's own watchdog fires a little before ours, to name the test.
append="console=ttyS0 quiet panic=-1 vutest=$test"
[ "$timeout" -gt 20 ] && append+=" vutimeout=$((timeout - 10))"
[ ${#kargs[@]} -gt 0 ] && append+=" ${kargs[*]}"

cmd=("$qemu" -accel tcg -m "$mem" -smp 1 -nographic -no-reboot
	-nic none -vga none
	-object "memory-backend-memfd,id=mem,size=${mem}M,share=on"
	-numa "node,memdev=mem"
	-kernel "$imgdir/vmlinuz" -initrd "$initrd" -append "$append"
	"${qargs[@]}")
echo "qemu-run: ${cmd[*]}" >&2

start=$SECONDS
"${cmd[@]}" </dev/null >"$log" 2>&1 &
qpid=$!

# Wait for QEMU to exit (the guest powers off after its result line), for
# the timeout, or for QEMU lingering 15 s after the result line.
status=""
seen_result=""
while kill -0 "$qpid" 2>/dev/null; do
	if [ $((SECONDS - start)) -ge "$timeout" ]; then
		status=timeout
		break
	fi
	if [ -z "$seen_result" ] && grep -aq 'VUTEST-RESULT:' "$log"; then
		seen_result=$SECONDS
	fi
	if [ -n "$seen_result" ] && [ $((SECONDS - seen_result)) -ge 15 ]; then
		echo "qemu-run: QEMU still running 15 s after the guest's result; killing it" >&2
		break
	fi
	sleep 0.2
done
if [ -z "$status" ] && ! kill -0 "$qpid" 2>/dev/null; then
	qrc=0
	wait "$qpid" || qrc=$?
	qpid=""
	[ "$qrc" -eq 0 ] || echo "qemu-run: QEMU exited with status $qrc" >&2
fi
elapsed=$((SECONDS - start))

if [ "$status" = timeout ]; then
	echo "qemu-run: $test: timeout after ${timeout}s; killing QEMU (pid $qpid)" >&2
	rc=124
elif grep -aq 'VUTEST-RESULT: PASS' "$log" && ! grep -aq 'VUTEST-RESULT: FAIL' "$log"; then
	rc=0
else
	rc=1
fi

if [ "$verbose" = 1 ]; then
	tr -d '\r' <"$log" >&2
fi
if [ "$rc" -eq 0 ]; then
	echo "qemu-run: $test: PASS (${elapsed}s)" >&2
else
	if [ "$verbose" != 1 ]; then
		echo "qemu-run: ---- last 40 lines of the console log ----" >&2
		tail -n 40 "$log" | tr -d '\r' >&2
		echo "qemu-run: ----" >&2
	fi
	reason=$(grep -a 'VUTEST-RESULT: FAIL' "$log" | head -n1 | tr -d '\r' || true)
	if [ "$rc" -eq 124 ]; then
		echo "qemu-run: $test: TIMEOUT (${elapsed}s)" >&2
	else
		echo "qemu-run: $test: FAIL (${elapsed}s)${reason:+: ${reason#*FAIL }}" >&2
	fi
fi
exit "$rc"
