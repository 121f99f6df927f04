#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: installs what is missing, builds, starts vhost-blk on a
# sparse disk image and boots a small Linux guest under QEMU attached to
# it; the guest writes its disk, reads it back and checks the data.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build
bash tests/interop/guest/build-guest.sh build/guest

. tests/interop/lib.sh
mkdir -p build/demo
img=build/demo/disk.img
[ -f "$img" ] || truncate -s 1G "$img"
sock=$VU_TMP/vhost-blk.sock

echo "== starting vhost-blk on $img (CPU $VU_DAEMON_CPU)"
vu_start "$VU_TMP/vhost-blk.log" build/vhost-blk/vhost-blk --socket-path "$sock" \
	--blk-file "$img" --num-queues 2 --cpus "$VU_DAEMON_CPU" --poll adaptive --serial demo-disk
vu_wait_socket "$sock"

echo "== booting the guest under QEMU (TCG, CPU $VU_PEER_CPU); it writes and verifies 16 MiB"
status=0
taskset -c "$VU_PEER_CPU" bash tests/interop/qemu-run.sh -v -t 240 build/guest blk-verify vuarg.mib=16 -- \
	-chardev socket,id=disk0,path="$sock" \
	-device vhost-user-blk-pci,chardev=disk0,num-queues=2 || status=$?
echo "== vhost-blk log"
cat "$VU_TMP/vhost-blk.log"
[ $status -eq 0 ] && echo "== demo passed: the guest's data verified on the vhost-blk disk" ||
	echo "== demo FAILED (status $status)"
exit $status
