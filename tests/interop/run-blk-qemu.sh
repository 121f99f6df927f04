#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-blk-qemu.sh qemu72|qemu10 BUILDDIR WORKDIR [rbd]
#
# What the meson tests blk-qemu72 and blk-qemu10 (suite 'interop') run:
# makes sure the guest image is in WORKDIR/guest (guest/build-guest.sh,
# which does nothing when it is up to date), picks the QEMU, and runs
# test-blk-qemu.sh QEMU WORKDIR/guest BUILDDIR.
# With "rbd" (the meson tests blk-rbd-qemu72 and blk-rbd-qemu10) it runs
# test-blk-rbd-qemu.sh QEMU WORKDIR/guest BUILDDIR instead, under a
# throw-away Ceph cluster (tests/ceph/ceph-cluster.sh run, which exits 77,
# skipped, when Ceph is not installed).
#   qemu72  Debian's qemu-system-x86_64 from PATH (7.2 on Debian 12);
#   qemu10  QEMU 10.0 from bookworm-backports, unpacked into WORKDIR/qemu10
#           by scripts/get-qemu10.sh (nothing installed; reused once there).
#           If that fails (no network, no backports), the test is skipped:
#           exit status 77, with the reason printed.
# BUILDDIR is meson's build root (it holds vhost-blk/vhost-blk); WORKDIR is
# this directory's build folder. A guest image that cannot be built or a
# missing system QEMU is a failure (exit 1): the suite could not run.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCROOT=$(cd "$HERE/../.." && pwd)
if [ $# -ne 3 ] && { [ $# -ne 4 ] || [ "$4" != rbd ]; }; then
	echo "usage: $0 qemu72|qemu10 BUILDDIR WORKDIR [rbd]" >&2
	exit 2
fi
which=$1
builddir=$2
workdir=$3
suite=${4:-}
mkdir -p "$workdir"

echo "run-blk-qemu: guest image in $workdir/guest"
if ! "$HERE/guest/build-guest.sh" "$workdir/guest" >"$workdir/build-guest.log" 2>&1; then
	cat "$workdir/build-guest.log" >&2
	echo "run-blk-qemu: cannot build the guest image (see above); the interop suite cannot run" >&2
	exit 1
fi
tail -n 1 "$workdir/build-guest.log"

case "$which" in
qemu72)
	qemu=$(command -v qemu-system-x86_64) || {
		echo "run-blk-qemu: no qemu-system-x86_64 in PATH (install qemu-system-x86: scripts/install-deps.sh)" >&2
		exit 1
	}
	;;
qemu10)
	if ! "$SRCROOT/scripts/get-qemu10.sh" "$workdir/qemu10" >"$workdir/get-qemu10.log" 2>&1; then
		echo "run-blk-qemu: SKIP: scripts/get-qemu10.sh could not provide QEMU 10:"
		grep -E 'get-qemu10:|^E:|^W:|rror' "$workdir/get-qemu10.log" | tail -n 5 | sed 's/^/  /'
		exit 77
	fi
	qemu=$workdir/qemu10/qemu-system-x86_64
	;;
*)
	echo "usage: $0 qemu72|qemu10 BUILDDIR WORKDIR [rbd]" >&2
	exit 2
	;;
esac

if [ "$suite" = rbd ]; then
	exec "$SRCROOT/tests/ceph/ceph-cluster.sh" run -- \
		"$HERE/test-blk-rbd-qemu.sh" "$qemu" "$workdir/guest" "$builddir"
fi
exec "$HERE/test-blk-qemu.sh" "$qemu" "$workdir/guest" "$builddir"
