#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-blk-qemu.sh qemu72|qemu10 BUILDDIR WORKDIR [rbd]
#
# What the meson tests blk-qemu72 and blk-qemu10 (suite 'interop') run:
# makes sure the guest image is in WORKDIR/guest and picks the QEMU
# (lib.sh's vu_guest_and_qemu: a guest image that cannot be built or a
# missing system QEMU is a failure, exit 1; a QEMU 10 that cannot be had
# skips the test, exit 77, with the reason printed), then runs
# test-blk-qemu.sh QEMU WORKDIR/guest BUILDDIR.
# With "rbd" (the meson tests blk-rbd-qemu72 and blk-rbd-qemu10) it runs
# test-blk-rbd-qemu.sh QEMU WORKDIR/guest BUILDDIR instead, under a
# throw-away Ceph cluster (tests/ceph/ceph-cluster.sh run, which exits 77,
# skipped, when Ceph is not installed).
# BUILDDIR is meson's build root (it holds vhost-blk/vhost-blk); WORKDIR is
# this directory's build folder.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCROOT=$(cd "$HERE/../.." && pwd)
if [ $# -ne 3 ] && { [ $# -ne 4 ] || [ "$4" != rbd ]; }; then
	echo "usage: $0 qemu72|qemu10 BUILDDIR WORKDIR [rbd]" >&2
	exit 2
fi
# shellcheck source=lib.sh
. "$HERE/lib.sh"
vu_guest_and_qemu "$1" "$3"

# Not exec: lib.sh's EXIT trap removes its VU_TMP; the status is the test's.
if [ "${4:-}" = rbd ]; then
	"$SRCROOT/tests/ceph/ceph-cluster.sh" run -- \
		"$HERE/test-blk-rbd-qemu.sh" "$VU_QEMU" "$3/guest" "$2"
else
	"$HERE/test-blk-qemu.sh" "$VU_QEMU" "$3/guest" "$2"
fi
