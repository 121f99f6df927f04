#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# net-run-qemu.sh qemu72|qemu10 BUILDDIR WORKDIR
#
# What the meson tests net-qemu72 and net-qemu10 (suite 'interop') run, as
# run-blk-qemu.sh does for vhost-blk: makes sure the guest image is in
# WORKDIR/guest and picks the QEMU (lib.sh's vu_guest_and_qemu: a QEMU 10
# that cannot be had skips the test, status 77), then runs test-net-qemu.sh
# BUILDDIR WORKDIR/guest QEMU.  With qemu10 the devices use packed rings.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -ne 3 ]; then
	echo "usage: $0 qemu72|qemu10 BUILDDIR WORKDIR" >&2
	exit 2
fi
# shellcheck source=lib.sh
. "$HERE/lib.sh"
vu_guest_and_qemu "$1" "$3"
if [ "$1" = qemu10 ]; then
	export NET_QEMU_DEVOPTS=${NET_QEMU_DEVOPTS:-,packed=on}
fi

# Not exec: lib.sh's EXIT trap removes its VU_TMP; the status is the test's.
"$HERE/test-net-qemu.sh" "$2" "$3/guest" "$VU_QEMU"
