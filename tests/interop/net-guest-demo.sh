#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest side of scripts/demo.sh's vhost-net part: configure the virtio-net
# interface (vuarg.ip/24), wait until vuarg.peer (the other guest, behind
# vhost-net's switch) answers, show `ping -c 3` to it and, with vuarg.host,
# to the host's tap address behind vhost-net's net_tap uplink.  Then stay up
# until the peer is done as well (a line each way over TCP port 5000), so
# that neither guest powers off under the other's pings.
. /lib/vutest.sh
dev=$(vu_wait_netdev 30) || vu_fail "no network interface"
me=$(vu_arg ip 10.0.0.1)
peer=$(vu_arg peer 10.0.0.2)
host=$(vu_arg host "")
ip link set "$dev" up || vu_fail "cannot bring $dev up"
ip addr add "$me/24" dev "$dev" || vu_fail "cannot add $me to $dev"
vu_log "$dev: $me/24, MAC $(cat "/sys/class/net/$dev/address")"

# wait_for ADDR: until ADDR answers a ping (90 tries).
wait_for() {
	_n=0
	while ! ping -c 1 -W 1 "$1" >/dev/null 2>&1; do
		_n=$((_n + 1))
		[ "$_n" -lt 90 ] || vu_fail "no answer from $1"
	done
}
# show_ping ADDR: three pings, their output on the console.
show_ping() {
	ping -c 3 "$1" >/tmp/ping 2>&1
	_rc=$?
	sed 's/^/  /' /tmp/ping
	[ "$_rc" = 0 ] || vu_fail "ping $1 failed"
}

wait_for "$peer"
vu_log "ping $peer (the other guest, through the switch)"
show_ping "$peer"
if [ -n "$host" ]; then
	wait_for "$host"
	vu_log "ping $host (the host's tap, through the net_tap uplink)"
	show_ping "$host"
fi

timeout 90 nc -l -p 5000 >/tmp/peer-done &
listener=$!
n=0
while ! echo "$me done" | timeout 5 nc "$peer" 5000 2>/dev/null; do
	n=$((n + 1))
	[ "$n" -lt 60 ] || vu_fail "$peer never became ready to finish"
	sleep 0.5
done
wait "$listener" || vu_fail "no word from $peer"
vu_log "peer says: $(cat /tmp/peer-done)"
exit 0
