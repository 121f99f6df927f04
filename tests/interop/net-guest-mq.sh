#!/bin/sh
# SPDX-License-Identifier: MIT
# Guest side of test-net-qemu.sh's multiqueue case (two CPUs, a NIC with
# two queue pairs).  Linux's virtio_net turns on every queue pair the
# device offers, up to the number of CPUs, and maps CPU k to queue pair k
# for transmission (XPS): so traffic sent from a process pinned to CPU k
# leaves on TX queue k.  This script checks that the interface has the two
# queue pairs (rx-0 rx-1 tx-0 tx-1), then from each CPU (busybox taskset)
# pings vuarg.peer (vuarg.pings adaptive pings of 1000 bytes, all must be
# answered) and moves vuarg.kib KiB over TCP (busybox nc): vuarg.role=send
# sends one stream from each CPU to the peer's ports 5000 (CPU 0) and 5001
# (CPU 1) and prints their md5; vuarg.role=recv receives them on listeners
# pinned the same way and prints what it got.  Finally each guest waits
# until the other is done too (a line each way over TCP port 5009), so that
# neither powers off under the other's traffic.  The host reads vhost-net's
# per-pair counters to see both pairs carry packets.
. /lib/vutest.sh
dev=$(vu_wait_netdev 30) || vu_fail "no network interface"
me=$(vu_arg ip 10.0.0.1)
peer=$(vu_arg peer 10.0.0.2)
role=$(vu_arg role send)
pings=$(vu_arg pings 100)
kib=$(vu_arg kib 1024)
q=/sys/class/net/$dev/queues

ncpu=$(nproc)
[ "$ncpu" = 2 ] || vu_fail "$ncpu CPUs online, the test wants 2 (-smp 2)"
queues=$(cd "$q" && echo *)
vu_log "$dev queues: $queues; XPS CPU masks: tx-0 $(cat "$q/tx-0/xps_cpus" 2>/dev/null)," \
	"tx-1 $(cat "$q/tx-1/xps_cpus" 2>/dev/null) (up $(cut -d" " -f1 /proc/uptime) s)"
[ "$queues" = "rx-0 rx-1 tx-0 tx-1" ] || vu_fail "$dev has queues $queues, not two pairs"

vu_net_up "$dev" "$me" "$peer"
vu_log "ping $peer ok (up $(cut -d" " -f1 /proc/uptime) s)"

# Pings from both CPUs at once.
for c in 0 1; do
	taskset -c "$c" ping -A -q -c "$pings" -s 1000 -W 5 -w 60 "$peer" >/tmp/ping$c 2>&1 &
	eval "ping$c=\$!"
done

# TCP: one stream per CPU.
if [ "$role" = recv ]; then
	for c in 0 1; do
		# A stdin that never ends: at its EOF busybox nc closes its half
		# of the connection, and the sending nc stops when it sees that.
		# A FIFO that nc holds open for writing too never ends.
		mkfifo /tmp/in$c
		taskset -c "$c" timeout 60 nc -l -p $((5000 + c)) 0<>/tmp/in$c >/tmp/got$c &
		eval "nc$c=\$!"
	done
	for c in 0 1; do
		eval "wait \$nc$c" || vu_fail "nothing received on port $((5000 + c))"
		vu_log "received on CPU $c: $(wc -c </tmp/got$c) bytes md5 $(md5sum </tmp/got$c | cut -d' ' -f1)"
	done
else
	for c in 0 1; do
		dd if=/dev/urandom of=/tmp/f$c bs=1024 count="$kib" 2>/dev/null
		vu_log "sending from CPU $c md5 $(md5sum </tmp/f$c | cut -d' ' -f1)"
	done
	for c in 0 1; do
		# The listener may not be there yet (connection refused): again,
		# for up to 60 s.
		timeout 60 sh -c "until taskset -c $c nc $peer $((5000 + c)) </tmp/f$c 2>/dev/null; do
			sleep 0.5; done" &
		eval "nc$c=\$!"
	done
	for c in 0 1; do
		eval "wait \$nc$c" || vu_fail "cannot send to $peer port $((5000 + c))"
	done
	vu_log "sent (up $(cut -d" " -f1 /proc/uptime) s)"
fi

for c in 0 1; do
	eval "wait \$ping$c"
	sum=$(grep -a "packets transmitted" /tmp/ping$c)
	vu_log "ping from CPU $c: $sum"
	# (With -A busybox may send one more than -c; all -c must come back.)
	got=$(echo "$sum" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
	[ "${got:-0}" -ge "$pings" ] || vu_fail "pings from CPU $c: ${sum:-no summary}"
done

mkfifo /tmp/in-done
timeout 60 nc -l -p 5009 0<>/tmp/in-done >/tmp/peer-done &
listener=$!
timeout 60 sh -c "until echo '$me done' | timeout 5 nc $peer 5009 2>/dev/null; do sleep 0.5; done" ||
	vu_fail "$peer never became ready to finish"
wait "$listener" || vu_fail "no word from $peer"
vu_log "peer says: $(cat /tmp/peer-done) (up $(cut -d" " -f1 /proc/uptime) s)"
exit 0
