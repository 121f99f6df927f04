#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest side of test-net-qemu.sh's restart case: reach vuarg.peer, notice
# when it cannot be reached any more (the host killed vhost-net), and reach
# it again once vhost-net is back and QEMU reconnected.
. /lib/vutest.sh
dev=$(vu_wait_netdev 30) || vu_fail "no network interface"
me=$(vu_arg ip 10.0.0.1)
peer=$(vu_arg peer 10.0.0.2)
vu_net_up "$dev" "$me" "$peer"
vu_log "reached $peer"
n=0
while ping -c 1 -W 1 "$peer" >/dev/null 2>&1; do
	n=$((n + 1))
	[ "$n" -lt 180 ] || vu_fail "the backend never went away"
	sleep 0.5
done
vu_log "lost $peer"
vu_wait_ping "$peer" 120 || vu_fail "no answer from $peer after the backend restarted"
vu_log "reached $peer again"
sleep 10
exit 0
