#!/bin/bash
# SPDX-License-Identifier: MIT
# vhost-net against DPDK testpmd with net_virtio_user as the front-end
# (a userspace virtio-net driver nobody here wrote).
#
# Each case starts vhost-net with two ports and one testpmd per guest port,
# in interactive mode fed through a fifo, then sends traffic both ways
# (txonly on one side, rxonly on the other) and checks the packet and byte
# counts exactly on both sides:
#   sender's TX == vhost-net's rx of the sender's port
#   vhost-net's rx of one port == tx + drops of the other
#   vhost-net's tx to the receiver's port == receiver's RX
# Rings: split and packed, with and without mergeable RX buffers, in_order,
# two queue pairs, the learning switch (unknown unicast is flooded), a
# net_null uplink instead of the second guest, and a net_tap uplink (in a
# network namespace of its own) whose worker sleeps on RX interrupts when
# idle and wakes for each packet.
#
# Usage: test-net-testpmd.sh BUILDDIR
# Environment: TESTPMD (default dpdk-testpmd), NET_TEST_SECS (traffic per
# direction, default 2), NET_TEST_CASES (space-separated names to run),
# NET_TEST_KEEP (a directory to copy the logs into).
# Prints "ok - NAME" / "not ok - NAME"; exits 1 on a failure, 77 to skip.
set -u

BUILD=${1:?usage: $0 BUILDDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
DAEMON=$BUILD/vhost-net/vhost-net
TESTPMD=${TESTPMD:-dpdk-testpmd}
SECS=${NET_TEST_SECS:-2}

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$DAEMON" ] || skip "$DAEMON is not built (libdpdk missing?)"
command -v "$TESTPMD" >/dev/null || skip "$TESTPMD not found (Debian: dpdk)"
[ "$(id -u)" = 0 ] || skip "DPDK's virtio_user needs root here"
"$TESTPMD" --help 2>&1 | grep -q -- --no-huge || skip "$TESTPMD does not look like dpdk-testpmd"
command -v stdbuf >/dev/null || skip "stdbuf (coreutils) not found"
STDBUF="stdbuf -oL"

# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ "$VU_DAEMON_CPU" != "$VU_PEER_CPU" ] || skip "needs two CPUs (daemon and testpmd pinned apart)"

# testpmd (--no-shconf) still makes a runtime directory per file prefix.
PREFIXES=()
NETNS=
net_cleanup() {
	local p
	[ -n "${NET_TEST_KEEP:-}" ] && mkdir -p "$NET_TEST_KEEP" && cp -r "$VU_TMP"/. "$NET_TEST_KEEP"/
	for fd in 7 8; do eval "exec $fd>&-" 2>/dev/null || true; done
	vu_cleanup
	[ -n "$NETNS" ] && ip netns del "$NETNS" 2>/dev/null
	for p in "${PREFIXES[@]}"; do rm -rf "/var/run/dpdk/$p"; done
	rmdir /var/run/dpdk 2>/dev/null || true
}
trap net_cleanup EXIT

FAILS=0
ok() { echo "ok - $1"; }
notok() { echo "not ok - $1"; FAILS=$((FAILS + 1)); }

# wait_for FILE PATTERN SECS: until a line of FILE matches PATTERN.
wait_for() {
	local i
	for i in $(seq $(($3 * 10))); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# timed out waiting for '$2' in $1" >&2
	tail -5 "$1" | sed 's/^/#   /' >&2
	return 1
}

# Daemon counters: SIGUSR1 prints one line per port; stat PORT KEY reads
# the last one printed.
DLOG=
daemon_snapshot() {
	local n
	n=$(grep -c "stats port=0 " "$DLOG")
	kill -USR1 "$DPID"
	for _ in $(seq 50); do
		[ "$(grep -c "stats port=0 " "$DLOG")" -gt "$n" ] && break
		sleep 0.1
	done
	sleep 0.2
}
stat() {
	grep "stats port=$1 " "$DLOG" | tail -1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# One testpmd per guest port, fd 7 and 8 its stdin.
start_pmd() { # NAME FD SOCKET VDEV-EXTRA TESTPMD-EXTRA
	local name=$1 fd=$2 sock=$3 prefix="vutest-$$-$1"
	mkfifo "$VU_TMP/$name.in"
	eval "exec $fd<>\"$VU_TMP/$name.in\""
	PREFIXES+=("$prefix")
	# Not vu_start: a background command's stdin must be named on the
	# command itself (else /dev/null).  stdbuf: its output is read while
	# it runs (stdbuf execs testpmd, so the PID is testpmd's).
	# shellcheck disable=SC2086
	$STDBUF "$TESTPMD" --no-pci --no-huge -m 1024 --single-file-segments \
		--no-shconf --file-prefix "$prefix" --log-level=notice \
		--lcores "0@$VU_PEER_CPU,1@$VU_PEER_CPU" \
		--vdev "net_virtio_user0,path=$sock$4" \
		-- -i --total-num-mbufs=16384 $5 <"$VU_TMP/$name.in" >"$VU_TMP/$name.$CASE.log" 2>&1 &
	VU_PIDS+=("$!")
	eval "PID_$name=$!"
}
pmd() { # NAME-FD CMD
	echo "$2" >&"$1"
}
# pmd_stats NAME FD: RX/TX packets/bytes of its port 0 into P_RXP P_RXB P_TXP P_TXB
pmd_stats() {
	local log=$VU_TMP/$1.$CASE.log n
	n=$(grep -c "NIC statistics for port 0" "$log")
	pmd "$2" "show port stats 0"
	for _ in $(seq 100); do
		[ "$(grep -c "NIC statistics for port 0" "$log")" -gt "$n" ] && break
		sleep 0.1
	done
	sleep 0.3
	read -r P_RXP P_RXB P_TXP P_TXB < <(awk '
		/NIC statistics for port 0/ { blk = 1; next }
		blk && /RX-packets:/ { rxp = $2; rxb = $NF }
		blk && /TX-packets:/ { txp = $2; txb = $NF; blk = 0 }
		END { print rxp, rxb, txp, txb }' "$log")
}

# expect NAME A B: A == B (both non-empty).
CASE_OK=1
expect() {
	if [ -z "$2" ] || [ -z "$3" ] || [ "$2" != "$3" ]; then
		echo "#   $CASE: $1: $2 != $3" >&2
		CASE_OK=0
	fi
}
expect_pos() {
	if [ -z "$2" ] || [ "$2" -le 0 ]; then
		echo "#   $CASE: $1: expected traffic, got '$2'" >&2
		CASE_OK=0
	fi
}

# One direction: SRC sends (txonly), DST receives (rxonly).
# Ports: SP/DP the daemon's ports of SRC and DST.
direction() { # SRC SRCFD SP DST DSTFD DP
	local s_tx0 s_txb0 d_rx0 d_rxb0 v_rx0 v_rxb0 v_tx0 v_txb0 v_dr0
	pmd_stats "$1" "$2"; s_tx0=$P_TXP; s_txb0=$P_TXB
	pmd_stats "$4" "$5"; d_rx0=$P_RXP; d_rxb0=$P_RXB
	daemon_snapshot
	v_rx0=$(stat "$3" rx_packets); v_rxb0=$(stat "$3" rx_bytes)
	v_tx0=$(stat "$6" tx_packets); v_txb0=$(stat "$6" tx_bytes); v_dr0=$(stat "$6" drops)

	pmd "$5" "set fwd rxonly"; pmd "$5" "start"
	pmd "$2" "set fwd txonly"; pmd "$2" "start"
	sleep "$SECS"
	pmd "$2" "stop"
	sleep 0.5
	pmd_stats "$1" "$2"; local s_tx=$((P_TXP - s_tx0)) s_txb=$((P_TXB - s_txb0))
	# Let everything in flight reach the receiver before it stops: the
	# peers share a CPU with whatever else runs here, so wait until the
	# counts settle rather than for a fixed time.
	local v_rx v_rxb v_tx v_txb v_dr d_rx d_rxb
	for _ in $(seq 60); do
		daemon_snapshot
		v_rx=$(($(stat "$3" rx_packets) - v_rx0)); v_rxb=$(($(stat "$3" rx_bytes) - v_rxb0))
		v_tx=$(($(stat "$6" tx_packets) - v_tx0)); v_txb=$(($(stat "$6" tx_bytes) - v_txb0))
		v_dr=$(($(stat "$6" drops) - v_dr0))
		pmd_stats "$4" "$5"; d_rx=$((P_RXP - d_rx0)); d_rxb=$((P_RXB - d_rxb0))
		[ "$s_tx" = "$v_rx" ] && [ "$v_rx" = $((v_tx + v_dr)) ] && [ "$v_tx" = "$d_rx" ] && break
		sleep 0.5
	done
	pmd "$5" "stop"
	echo "#   $CASE $1->$4: sent $s_tx ($s_txb B), vhost-net in $v_rx out $v_tx drops $v_dr, received $d_rx ($d_rxb B)"
	expect_pos "$1 sent" "$s_tx"
	expect "$1 TX packets vs vhost-net rx" "$s_tx" "$v_rx"
	expect "$1 TX bytes vs vhost-net rx" "$s_txb" "$v_rxb"
	expect "vhost-net rx vs tx + drops" "$v_rx" "$((v_tx + v_dr))"
	expect_pos "vhost-net delivered" "$v_tx"
	expect "vhost-net tx packets vs $4 RX" "$v_tx" "$d_rx"
	expect "vhost-net tx bytes vs $4 RX" "$v_txb" "$d_rxb"
}

start_daemon() { # ARGS...
	DLOG=$VU_TMP/daemon.$CASE.log
	vu_start "$DLOG" "$DAEMON" --cpus "$VU_DAEMON_CPU" "$@"
	DPID=$VU_LAST_PID
}

stop_all() {
	local pid
	for fd in 7 8; do
		{ echo quit >&"$fd"; } 2>/dev/null || true
	done
	for name in a b; do
		pid=$(eval "echo \${PID_$name:-}")
		[ -n "$pid" ] || continue
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		vu_stop "$pid"
		eval "PID_$name="
	done
	for fd in 7 8; do eval "exec $fd>&-" 2>/dev/null || true; done
	vu_stop "$DPID" TERM
	if ! grep -q "stats port=0 " "$DLOG" || grep -qiE "segfault|sanitizer|assert" "$DLOG"; then
		echo "#   $CASE: vhost-net did not exit cleanly" >&2
		CASE_OK=0
	fi
	for s in "$VU_TMP"/*.sock; do
		[ -e "$s" ] && { echo "#   $CASE: socket $s left behind" >&2; CASE_OK=0; }
	done
	rm -f "$VU_TMP"/*.in
}

# Two guests through vhost-net: CASE VDEV-EXTRA NQ MODE
two_guests() {
	local vdev=$2 nq=$3 mode=$4 pmdq=""
	CASE=$1; CASE_OK=1
	[ "$nq" -gt 1 ] && pmdq="--rxq=$nq --txq=$nq"
	start_daemon --socket-path "$VU_TMP/a.sock" --socket-path "$VU_TMP/b.sock" \
		--mode "$mode" --num-queues "$nq"
	if ! vu_wait_socket "$VU_TMP/a.sock" || ! vu_wait_socket "$VU_TMP/b.sock"; then
		notok "$CASE"; stop_all; return
	fi
	start_pmd a 7 "$VU_TMP/a.sock" ",queues=$nq$vdev" "$pmdq"
	start_pmd b 8 "$VU_TMP/b.sock" ",queues=$nq$vdev" "$pmdq"
	local last=$((2 * nq - 1))
	if wait_for "$DLOG" "vhost0 queue $last: started" 30 &&
	   wait_for "$DLOG" "vhost1 queue $last: started" 30 &&
	   wait_for "$VU_TMP/a.$CASE.log" "testpmd>" 30 && wait_for "$VU_TMP/b.$CASE.log" "testpmd>" 30; then
		direction a 7 0 b 8 1
		direction b 8 1 a 7 0
	else
		CASE_OK=0
	fi
	stop_all
	[ $CASE_OK = 1 ] && ok "$CASE" || notok "$CASE"
}

# One guest and a net_null uplink in xconnect: guest TX counted exactly on
# both sides; guest RX from the endless null source: everything the uplink
# received is delivered or counted as dropped, and the guest received
# everything delivered but what was still in its ring when it stopped.
guest_null() {
	local vdev=$2
	CASE=$1; CASE_OK=1
	start_daemon --socket-path "$VU_TMP/a.sock" --uplink net_null0,size=64 --mode xconnect
	vu_wait_socket "$VU_TMP/a.sock" || { notok "$CASE"; stop_all; return; }
	start_pmd a 7 "$VU_TMP/a.sock" ",queues=1$vdev" ""
	if wait_for "$DLOG" "vhost0 queue 1: started" 30 && wait_for "$VU_TMP/a.$CASE.log" "testpmd>" 30; then
		pmd 7 "set fwd txonly"; pmd 7 "start"; sleep "$SECS"; pmd 7 "stop"; sleep 1
		pmd_stats a 7; local a_tx=$P_TXP a_txb=$P_TXB a_rx0=$P_RXP
		daemon_snapshot
		expect_pos "a sent" "$a_tx"
		expect "a TX packets vs vhost-net rx" "$a_tx" "$(stat 0 rx_packets)"
		expect "a TX bytes vs vhost-net rx" "$a_txb" "$(stat 0 rx_bytes)"
		expect "vhost-net rx vs uplink tx" "$(stat 0 rx_packets)" "$(stat 1 tx_packets)"
		pmd 7 "set fwd rxonly"; pmd 7 "start"; sleep "$SECS"; pmd 7 "stop"; sleep 0.5
		pmd_stats a 7; local a_rx=$((P_RXP - a_rx0)) a_rxb=$P_RXB
		# Delivered but unread: what fills the guest's ring after it
		# stopped reading (256 buffers of one 64-byte packet each).
		daemon_snapshot
		local unread=$(($(stat 0 tx_packets) - P_RXP))
		stop_all
		local up_rx v_tx v_txb v_dr
		up_rx=$(stat 1 rx_packets); v_tx=$(stat 0 tx_packets); v_txb=$(stat 0 tx_bytes)
		v_dr=$(stat 0 drops)
		echo "#   $CASE: a sent $a_tx; null sent $up_rx, vhost-net delivered $v_tx dropped $v_dr, a received $a_rx"
		expect "uplink rx vs guest tx + drops" "$up_rx" "$((v_tx + v_dr))"
		expect_pos "a received" "$a_rx"
		expect "vhost-net tx bytes vs packets (64 B)" "$v_txb" "$((v_tx * 64))"
		expect "a RX bytes vs packets (64 B)" "$a_rxb" "$((P_RXP * 64))"
		if [ "$unread" -lt 0 ] || [ "$unread" -gt 256 ]; then
			echo "#   $CASE: delivered $((P_RXP + unread)) but the guest read $P_RXP (ring of 256)" >&2
			CASE_OK=0
		fi
	else
		CASE_OK=0
		stop_all
	fi
	[ $CASE_OK = 1 ] && ok "$CASE" || notok "$CASE"
}

# A net_tap uplink in xconnect with one guest, vhost-net in adaptive mode:
# idle, the worker polling the tap sleeps (vhost-net uses under 10% of a
# CPU over 3 s where a spinning worker uses 100%); then 20 broadcast frames
# 100 ms apart leave the tap, each one after the worker went back to sleep,
# and all of them reach the guest.
tap_uplink_sleep() {
	local t0 t1 hz ticks
	CASE=$1; CASE_OK=1
	command -v ip >/dev/null || { echo "ok - $CASE # SKIP no ip (iproute2)"; return; }
	NETNS=vutest-net-$$
	ip netns add "$NETNS" || { notok "$CASE"; NETNS=; return; }
	# No IPv6 on the tap: the kernel's own frames (router solicitations,
	# MLD) would mix with the ones counted below.
	ip netns exec "$NETNS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1
	DLOG=$VU_TMP/daemon.$CASE.log
	vu_start "$DLOG" ip netns exec "$NETNS" "$DAEMON" --cpus "$VU_DAEMON_CPU" \
		--socket-path "$VU_TMP/a.sock" --uplink net_tap0,iface=vtap0 --mode xconnect --poll adaptive
	DPID=$VU_LAST_PID
	vu_wait_socket "$VU_TMP/a.sock" || { notok "$CASE"; stop_all; ip netns del "$NETNS"; NETNS=; return; }
	ip netns exec "$NETNS" ip addr add 10.9.0.1/24 dev vtap0 &&
		ip netns exec "$NETNS" ip link set vtap0 up || CASE_OK=0
	grep -q "vtap0.*RX interrupts," "$DLOG" || { echo "#   $CASE: no RX interrupts on the tap" >&2; CASE_OK=0; }
	start_pmd a 7 "$VU_TMP/a.sock" ",queues=1" ""
	if wait_for "$DLOG" "vhost0 queue 1: started" 30 && wait_for "$VU_TMP/a.$CASE.log" "testpmd>" 30; then
		pmd 7 "set fwd rxonly"; pmd 7 "start"; sleep 1
		hz=$(getconf CLK_TCK)
		t0=$(sed 's/^.*) //' "/proc/$DPID/stat" | awk '{ print $12 + $13 }')
		sleep 3
		t1=$(sed 's/^.*) //' "/proc/$DPID/stat" | awk '{ print $12 + $13 }')
		ticks=$((t1 - t0))
		echo "#   $CASE: idle vhost-net used $((ticks * 100 / hz)) ms of CPU in 3 s"
		[ $((ticks * 10)) -lt $((3 * hz)) ] || { echo "#   $CASE: idle worker did not sleep" >&2; CASE_OK=0; }
		daemon_snapshot
		local up0 rx0
		up0=$(stat 1 rx_packets)
		pmd_stats a 7; rx0=$P_RXP
		ip netns exec "$NETNS" python3 -c '
import socket, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("vtap0", 0))
for i in range(20):   # broadcast, local experimental ethertype, 64 bytes
    s.send(b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + bytes(50))
    time.sleep(0.1)' || CASE_OK=0
		sleep 0.5
		daemon_snapshot
		pmd_stats a 7
		local up_n=$(($(stat 1 rx_packets) - up0)) a_n=$((P_RXP - rx0))
		echo "#   $CASE: the tap sent $up_n packets, the guest received $a_n"
		expect "uplink rx (the 20 frames sent)" "$up_n" 20
		expect "guest RX vs uplink rx" "$a_n" "$up_n"
		[ $CASE_OK = 1 ] || grep "stats port=" "$DLOG" | tail -2 | sed 's/^/#     /' >&2
	else
		CASE_OK=0
	fi
	stop_all
	ip netns del "$NETNS"; NETNS=
	[ $CASE_OK = 1 ] && ok "$CASE" || notok "$CASE"
}

ALL="split-mrg split-nomrg packed-mrg packed-nomrg split-inorder packed-inorder split-mq2 packed-mq2 switch-flood null-uplink tap-uplink-sleep"
for c in ${NET_TEST_CASES:-$ALL}; do
	case $c in
	split-mrg) two_guests "$c" "" 1 xconnect ;;
	split-nomrg) two_guests "$c" ",mrg_rxbuf=0" 1 xconnect ;;
	packed-mrg) two_guests "$c" ",packed_vq=1" 1 xconnect ;;
	packed-nomrg) two_guests "$c" ",packed_vq=1,mrg_rxbuf=0" 1 xconnect ;;
	split-inorder) two_guests "$c" ",in_order=1" 1 xconnect ;;
	packed-inorder) two_guests "$c" ",packed_vq=1,in_order=1" 1 xconnect ;;
	split-mq2) two_guests "$c" "" 2 xconnect ;;
	packed-mq2) two_guests "$c" ",packed_vq=1,mrg_rxbuf=0" 2 xconnect ;;
	switch-flood) two_guests "$c" "" 1 switch ;;
	null-uplink) guest_null "$c" "" ;;
	tap-uplink-sleep) tap_uplink_sleep "$c" ;;
	*) echo "unknown case $c" >&2; FAILS=$((FAILS + 1)) ;;
	esac
done
[ "$FAILS" = 0 ]
