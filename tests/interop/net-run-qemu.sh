#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# net-run-qemu.sh qemu72|qemu10 BUILDDIR WORKDIR
#
# What the meson tests net-qemu72 and net-qemu10 (suite 'interop') run, as
# run-blk-qemu.sh does for vhost-blk: makes sure the guest image is in
# WORKDIR/guest (guest/build-guest.sh, a no-op when it is up to date), picks
# the QEMU, and runs test-net-qemu.sh BUILDDIR WORKDIR/guest QEMU.
#   qemu72  Debian's qemu-system-x86_64 from PATH (7.2 on Debian 12);
#   qemu10  QEMU 10.0 unpacked into WORKDIR/qemu10 by scripts/get-qemu10.sh;
#           its devices use packed rings.  Skipped (77) if it cannot be had.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCROOT=$(cd "$HERE/../.." && pwd)
if [ $# -ne 3 ]; then
	echo "usage: $0 qemu72|qemu10 BUILDDIR WORKDIR" >&2
	exit 2
fi
which=$1
builddir=$2
workdir=$3
mkdir -p "$workdir"

if ! "$HERE/guest/build-guest.sh" "$workdir/guest" >"$workdir/build-guest-net.log" 2>&1; then
	cat "$workdir/build-guest-net.log" >&2
	echo "net-run-qemu: cannot build the guest image (see above)" >&2
	exit 1
fi

case "$which" in
qemu72)
	qemu=$(command -v qemu-system-x86_64) || {
		echo "net-run-qemu: no qemu-system-x86_64 in PATH" >&2
		exit 1
	}
	;;
qemu10)
	if ! "$SRCROOT/scripts/get-qemu10.sh" "$workdir/qemu10" >"$workdir/get-qemu10-net.log" 2>&1; then
		echo "net-run-qemu: SKIP: scripts/get-qemu10.sh could not provide QEMU 10"
		exit 77
	fi
	qemu=$workdir/qemu10/qemu-system-x86_64
	export NET_QEMU_DEVOPTS=${NET_QEMU_DEVOPTS:-,packed=on}
	;;
*)
	echo "usage: $0 qemu72|qemu10 BUILDDIR WORKDIR" >&2
	exit 2
	;;
esac

exec "$HERE/test-net-qemu.sh" "$builddir" "$workdir/guest" "$qemu"
