#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest side of test-net-qemu.sh: reach the host's tap interface
# (vuarg.peer) through vhost-net's net_tap uplink: pings, then 2.5 MiB to
# the host's TCP port 5000 and whatever the host sends from port 5001, with
# their md5 for the host to compare.
. /lib/vutest.sh
dev=$(vu_wait_netdev 30) || vu_fail "no network interface"
me=$(vu_arg ip 10.0.0.1)
peer=$(vu_arg peer 10.0.0.254)
vu_net_up "$dev" "$me" "$peer"
vu_log "ping $peer ok"
ping -c 2 -s 20000 "$peer" >/dev/null || vu_fail "no answer to 20000-byte pings"
dd if=/dev/urandom of=/tmp/f bs=65536 count=40 2>/dev/null
vu_log "sending md5 $(md5sum </tmp/f | cut -d' ' -f1)"
timeout 90 nc "$peer" 5000 </tmp/f || vu_fail "cannot send to $peer"
timeout 90 nc "$peer" 5001 >/tmp/got || vu_fail "nothing received from $peer"
vu_log "received $(wc -c </tmp/got) bytes md5 $(md5sum </tmp/got | cut -d' ' -f1)"
exit 0
