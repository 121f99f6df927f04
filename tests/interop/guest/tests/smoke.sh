#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest test "smoke": proves the guest boots, its init loads the virtio
# modules and runs a test. Prints the kernel version and the virtio devices
# QEMU gave it, and passes. Runs inside the guest (busybox sh), started by
# /init for vutest=smoke.
. /lib/vutest.sh

vu_log "kernel $(uname -r)"
vu_log "modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
vu_log "virtio devices:"
for d in /sys/bus/virtio/devices/*; do
	[ -e "$d" ] || { vu_log "  (none)"; break; }
	# device id: 1 = net, 2 = block (virtio spec 5)
	vu_log "  ${d##*/} device=$(cat "$d/device") vendor=$(cat "$d/vendor") driver=$(basename "$(readlink "$d/driver" 2>/dev/null || echo none)")"
done
exit 0
