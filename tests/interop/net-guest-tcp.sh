#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest side of test-net-qemu.sh: configure the virtio-net interface with
# busybox ip (vuarg.ip/24), wait until vuarg.peer answers pings, ping with
# fragmented large packets, then move 5 MiB over TCP (busybox nc) to or from
# the peer (vuarg.role=send|recv) and print the data's md5 for the host to
# compare.
. /lib/vutest.sh
dev=$(vu_wait_netdev 30) || vu_fail "no network interface"
me=$(vu_arg ip 10.0.0.1)
peer=$(vu_arg peer 10.0.0.2)
vu_net_up "$dev" "$me" "$peer"
vu_log "ping $peer ok"
ping -c 2 -s 8000 "$peer" >/dev/null || vu_fail "no answer to 8000-byte pings"
if [ "$(vu_arg role send)" = recv ]; then
	timeout 90 nc -l -p 5000 >/tmp/got || vu_fail "nothing received"
	vu_log "received $(wc -c </tmp/got) bytes md5 $(md5sum </tmp/got | cut -d' ' -f1)"
else
	dd if=/dev/urandom of=/tmp/f bs=65536 count=80 2>/dev/null
	vu_log "sending md5 $(md5sum </tmp/f | cut -d' ' -f1)"
	sleep 2
	timeout 90 nc "$peer" 5000 </tmp/f || vu_fail "cannot send to $peer"
	vu_log "sent"
fi
# Stay up a little for the peer.
sleep 5
exit 0
