#!/bin/bash
# SPDX-License-Identifier: MIT
# vhost-net with QEMU: small Linux guests (the interop guest image of
# guest/build-guest.sh, run by qemu-run.sh) with virtio-net-pci devices on
# vhost-user sockets of one vhost-net switch.  Cases:
#   guests-tcp      two guests ping each other and move 5 MiB over TCP
#                   (checksum and TSO offloads passed from guest to guest)
#   guests-nooffload the same to a guest without GUEST_CSUM/TSO and without
#                   mergeable buffers: vhost-net segments and checksums in
#                   software
#   host-tap        a guest reaches the host through a net_tap uplink (in a
#                   network namespace this test creates): pings, TCP both ways
#   reconnect       vhost-net is killed (SIGKILL) and started again; QEMU
#                   reconnects and the guests reach each other again (split
#                   rings: QEMU does not restore packed ones after a crash)
#   multiqueue      two guests with two CPUs and two queue pairs each: from
#                   each CPU pings and a TCP stream; vhost-net's per-pair
#                   counters must show traffic on both pairs (on 7.2 this
#                   also covers its ADD_MEM_REG sent once per queue pair)
# Guest interfaces are configured with busybox ip; the guest scripts are
# net-guest-*.sh beside this one, added to the image by qemu-run.sh -s.
#
# Usage: test-net-qemu.sh BUILDDIR IMAGEDIR [QEMU]
#   IMAGEDIR  holds vmlinuz and initramfs.cpio.gz (guest/build-guest.sh)
#   QEMU      qemu-system-x86_64 to use (default $QEMU or the one in PATH;
#             QEMU 7.2 gets vectors=0, see DESIGN.md); QEMU_MODULE_DIR and
#             NET_QEMU_ARGS (e.g. "-L DIR") are passed on, NET_QEMU_DEVOPTS
#             added to every virtio-net-pci (e.g. ",packed=on" for QEMU 10)
# Environment: NET_TEST_CASES (names to run), NET_TEST_KEEP (a directory to
# copy the logs into).  Prints "ok - NAME" / "not ok - NAME"; exits 1 on a
# failure, 77 to skip.
set -u

BUILD=${1:?usage: $0 BUILDDIR IMAGEDIR [QEMU]}
IMG=${2:?usage: $0 BUILDDIR IMAGEDIR [QEMU]}
QEMU=${3:-${QEMU:-qemu-system-x86_64}}
HERE=$(cd "$(dirname "$0")" && pwd)
DAEMON=$BUILD/vhost-net/vhost-net

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$DAEMON" ] || skip "$DAEMON is not built (libdpdk missing?)"
command -v "$QEMU" >/dev/null || skip "no QEMU ($QEMU)"
[ -f "$IMG/vmlinuz" ] && [ -f "$IMG/initramfs.cpio.gz" ] ||
	skip "no guest image in $IMG (tests/interop/guest/build-guest.sh $IMG)"
command -v cpio >/dev/null || skip "no cpio (qemu-run.sh -s needs it)"

# shellcheck source=lib.sh
. "$HERE/lib.sh"

NETNS=""
net_cleanup() {
	[ -n "${NET_TEST_KEEP:-}" ] && mkdir -p "$NET_TEST_KEEP" && cp -r "$VU_TMP"/. "$NET_TEST_KEEP"/
	vu_cleanup
	[ -n "$NETNS" ] && ip netns del "$NETNS" 2>/dev/null
	true
}
trap net_cleanup EXIT

FAILS=0
VEC=""
"$QEMU" --version | grep -q "version 7\." && VEC=",vectors=0"
QEMU_MAJOR=$("$QEMU" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1)
# shellcheck disable=SC2206
QARGS=(${NET_QEMU_ARGS:-})

# guest NAME SOCK TEST RECONNECT DEVOPTS KERNEL-ARGS...: boot a guest in
# the background (qemu-run.sh on the peer CPU); its console is NAME.console.
# GUEST_NETDEV: more -netdev options (",queues=2"), GUEST_QARGS: more QEMU
# arguments ("-smp 2": the later -smp wins over qemu-run.sh's -smp 1).
DEVOPTS=${NET_QEMU_DEVOPTS:-}
GUEST_NETDEV=""
GUEST_QARGS=()
guest() {
	local name=$1 sock=$2 test=$3 rec=$4 devopts=$5
	shift 5
	taskset -c "$VU_PEER_CPU" bash "$HERE/qemu-run.sh" -q "$QEMU" -t 300 \
		-l "$VU_TMP/$name.console" -s "$HERE/net-guest-$test.sh" "$IMG" "net-$test" "$@" -- \
		"${QARGS[@]}" "${GUEST_QARGS[@]}" -chardev "socket,id=c1,path=$sock$rec" \
		-netdev "vhost-user,id=n0,chardev=c1$GUEST_NETDEV" \
		-device "virtio-net-pci,netdev=n0$VEC$devopts$DEVOPTS" >"$VU_TMP/$name.out" 2>&1 &
	VU_PIDS+=("$!")
	eval "GPID_$name=$!"
}

# wait_guest NAME: its qemu-run.sh status (0 PASS).
wait_guest() {
	local pid rc
	pid=$(eval "echo \$GPID_$1")
	wait "$pid"
	rc=$?
	[ "$rc" = 0 ] || { echo "#   $CASE: guest $1:" >&2; tail -3 "$VU_TMP/$1.out" | sed 's/^/#     /' >&2; }
	return "$rc"
}

# console_md5 NAME WHAT: the md5 a guest printed after "WHAT".
console_md5() {
	tr -d '\r' <"$VU_TMP/$1.console" | sed -n "s/.*vutest: $2.*md5 \([0-9a-f]*\).*/\1/p" | tail -1
}

start_daemon() { # LOG ARGS...
	local log=$1
	shift
	vu_start "$VU_TMP/$log" "$DAEMON" --cpus "$VU_DAEMON_CPU" "$@"
	DPID=$VU_LAST_PID
}

finish() { # OK
	vu_stop "$DPID" TERM
	if [ "$1" = 1 ] && grep -q "stats port=0 " "$VU_TMP/daemon.$CASE.log"; then
		echo "ok - $CASE"
	else
		echo "not ok - $CASE"
		FAILS=$((FAILS + 1))
	fi
}

# Two guests, a sending 5 MiB over TCP to b; B-OPTS: b's device options.
two_guests_tcp() { # CASE B-OPTS
	local okc=1 sent got
	CASE=$1
	start_daemon "daemon.$CASE.log" --socket-path "$VU_TMP/a.sock" --socket-path "$VU_TMP/b.sock"
	vu_wait_socket "$VU_TMP/a.sock" && vu_wait_socket "$VU_TMP/b.sock" || okc=0
	guest a "$VU_TMP/a.sock" tcp "" ",mac=52:54:00:00:00:0a" vuarg.ip=10.0.0.1 vuarg.peer=10.0.0.2 vuarg.role=send
	guest b "$VU_TMP/b.sock" tcp "" ",mac=52:54:00:00:00:0b$2" vuarg.ip=10.0.0.2 vuarg.peer=10.0.0.1 vuarg.role=recv
	wait_guest a || okc=0
	wait_guest b || okc=0
	sent=$(console_md5 a sending)
	got=$(console_md5 b received)
	echo "#   $CASE: sent md5 ${sent:-none}, received md5 ${got:-none}"
	[ -n "$sent" ] && [ "$sent" = "$got" ] || okc=0
	finish $okc
}

host_tap() {
	local okc=1 sent got
	CASE=host-tap
	command -v ip >/dev/null || { echo "ok - $CASE # SKIP no ip command"; return; }
	command -v python3 >/dev/null || { echo "ok - $CASE # SKIP no python3 for the host's end"; return; }
	NETNS=vutest-net-$$
	if ! ip netns add "$NETNS" 2>/dev/null; then
		NETNS=""
		echo "ok - $CASE # SKIP cannot create a network namespace"
		return
	fi
	head -c 2621440 /dev/urandom >"$VU_TMP/hostfile"
	vu_start "$VU_TMP/daemon.$CASE.log" ip netns exec "$NETNS" "$DAEMON" --cpus "$VU_DAEMON_CPU" \
		--socket-path "$VU_TMP/a.sock" --uplink "net_tap0,iface=vtap0"
	DPID=$VU_LAST_PID
	vu_wait_socket "$VU_TMP/a.sock" || okc=0
	for _ in $(seq 50); do ip netns exec "$NETNS" ip link show vtap0 >/dev/null 2>&1 && break; sleep 0.1; done
	ip netns exec "$NETNS" ip addr add 10.0.0.254/24 dev vtap0 || okc=0
	ip netns exec "$NETNS" ip link set vtap0 up || okc=0
	cat >"$VU_TMP/host.py" <<'EOF'
import hashlib, socket, sys
def server(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.0.0.254", port))
    s.listen(1)
    s.settimeout(240)
    return s.accept()[0]
c = server(5000)
h, n = hashlib.md5(), 0
while True:
    b = c.recv(65536)
    if not b:
        break
    h.update(b)
    n += len(b)
c.close()
print("host received", n, "md5", h.hexdigest(), flush=True)
c = server(5001)
data = open(sys.argv[1], "rb").read()
c.sendall(data)
c.close()
print("host sent", len(data), "md5", hashlib.md5(data).hexdigest(), flush=True)
EOF
	vu_start "$VU_TMP/host.log" ip netns exec "$NETNS" python3 "$VU_TMP/host.py" "$VU_TMP/hostfile"
	local hpid=$VU_LAST_PID
	guest a "$VU_TMP/a.sock" host "" ",mac=52:54:00:00:00:0a" vuarg.ip=10.0.0.1 vuarg.peer=10.0.0.254
	wait_guest a || okc=0
	wait "$hpid"
	sent=$(console_md5 a sending)
	got=$(sed -n 's/^host received [0-9]* md5 //p' "$VU_TMP/host.log")
	echo "#   $CASE: guest sent md5 ${sent:-none}, host received md5 ${got:-none}"
	[ -n "$sent" ] && [ "$sent" = "$got" ] || okc=0
	sent=$(md5sum <"$VU_TMP/hostfile" | cut -d' ' -f1)
	got=$(console_md5 a received)
	echo "#   $CASE: host sent md5 $sent, guest received md5 ${got:-none}"
	[ "$sent" = "$got" ] || okc=0
	finish $okc
	ip netns del "$NETNS"
	NETNS=""
}

reconnect() {
	local okc=1 saved=$DEVOPTS
	CASE=reconnect
	# QEMU cannot give a packed ring's position back to a backend that
	# crashed (virtio_queue_packed_restore_last_avail_idx does nothing and
	# vhost-user-net has no inflight area): split rings only.
	if [[ $DEVOPTS == *packed=on* ]]; then
		echo "#   $CASE: split rings (QEMU does not restore packed rings after a backend crash)"
		DEVOPTS=${DEVOPTS//,packed=on/}
	fi
	start_daemon "daemon1.$CASE.log" --socket-path "$VU_TMP/a.sock" --socket-path "$VU_TMP/b.sock"
	vu_wait_socket "$VU_TMP/a.sock" && vu_wait_socket "$VU_TMP/b.sock" || okc=0
	guest a "$VU_TMP/a.sock" reconnect ",reconnect=1" ",mac=52:54:00:00:00:0a" vuarg.ip=10.0.0.1 vuarg.peer=10.0.0.2
	guest b "$VU_TMP/b.sock" reconnect ",reconnect=1" ",mac=52:54:00:00:00:0b" vuarg.ip=10.0.0.2 vuarg.peer=10.0.0.1
	for _ in $(seq 240); do
		grep -aq "reached 10.0.0.2" "$VU_TMP/a.console" 2>/dev/null &&
			grep -aq "reached 10.0.0.1" "$VU_TMP/b.console" 2>/dev/null && break
		sleep 0.5
	done
	# A crash: no clean-up, the socket files stay behind (and EAL's empty
	# runtime directory, removed here).
	vu_stop "$DPID" KILL
	rmdir "/var/run/dpdk/vhost-net-$DPID" 2>/dev/null
	sleep 3
	start_daemon "daemon.$CASE.log" --socket-path "$VU_TMP/a.sock" --socket-path "$VU_TMP/b.sock"
	wait_guest a || okc=0
	wait_guest b || okc=0
	grep -aq "reached 10.0.0.2 again" "$VU_TMP/a.console" || okc=0
	grep -aq "reached 10.0.0.1 again" "$VU_TMP/b.console" || okc=0
	DEVOPTS=$saved
	finish $okc
}

# Two guests with two CPUs each and NICs with two queue pairs (QEMU
# queues=2, mq=on; vhost-net --num-queues 2 on two workers where there are
# two CPUs, so each port's pairs run on different workers): from each CPU a
# guest pings the other and sends it a TCP stream (net-guest-mq.sh).
# Passes if both guests see queues rx-0 rx-1 tx-0 tx-1, all pings are
# answered, the streams arrive intact, vhost-net started the 4 queues of
# each port, and its per-pair counters (SIGUSR1, "queues port=N") show at
# least MQ_PINGS packets on every pair in both directions of both ports:
# a pair that carried nothing fails the case.
MQ_PINGS=100
multiqueue() {
	local okc=1 bad=0 cpus=$VU_DAEMON_CPU mqvec="" p q g c v line rx tx sent got nv
	CASE=multiqueue
	[ "$VU_PEER_CPU" != "$VU_DAEMON_CPU" ] && cpus+=",$VU_PEER_CPU"
	# MSI-X vectors: the 4 queues, config, control (none where VEC says so).
	[ -z "$VEC" ] && mqvec=",vectors=6"
	vu_start "$VU_TMP/daemon.$CASE.log" "$DAEMON" --cpus "$cpus" --num-queues 2 \
		--socket-path "$VU_TMP/a.sock" --socket-path "$VU_TMP/b.sock"
	DPID=$VU_LAST_PID
	vu_wait_socket "$VU_TMP/a.sock" && vu_wait_socket "$VU_TMP/b.sock" || okc=0
	GUEST_NETDEV=",queues=2"
	GUEST_QARGS=(-smp 2)
	guest a "$VU_TMP/a.sock" mq "" ",mac=52:54:00:00:00:0a,mq=on$mqvec" vuarg.ip=10.0.0.1 \
		vuarg.peer=10.0.0.2 vuarg.role=send vuarg.pings=$MQ_PINGS
	guest b "$VU_TMP/b.sock" mq "" ",mac=52:54:00:00:00:0b,mq=on$mqvec" vuarg.ip=10.0.0.2 \
		vuarg.peer=10.0.0.1 vuarg.role=recv vuarg.pings=$MQ_PINGS
	GUEST_NETDEV=""
	GUEST_QARGS=()
	wait_guest a || okc=0
	wait_guest b || okc=0
	for c in 0 1; do
		sent=$(console_md5 a "sending from CPU $c")
		got=$(console_md5 b "received on CPU $c")
		echo "#   $CASE: stream from CPU $c: sent md5 ${sent:-none}, received md5 ${got:-none}"
		[ -n "$sent" ] && [ "$sent" = "$got" ] || okc=0
	done
	for p in 0 1; do
		for q in 0 1 2 3; do
			grep -q "vhost$p queue $q: started" "$VU_TMP/daemon.$CASE.log" ||
				{ echo "#   $CASE: vhost$p queue $q never started" >&2; okc=0; }
		done
	done
	kill -USR1 "$DPID" 2>/dev/null
	for _ in $(seq 50); do
		grep -q "queues port=1 " "$VU_TMP/daemon.$CASE.log" && break
		sleep 0.1
	done
	for p in 0 1; do
		g=$([ "$p" = 0 ] && echo a || echo b)
		line=$(grep "queues port=$p " "$VU_TMP/daemon.$CASE.log" | tail -1)
		rx=$(sed -n 's/.* rx_packets=\([0-9,]*\).*/\1/p' <<<"$line")
		tx=$(sed -n 's/.* tx_packets=\([0-9,]*\).*/\1/p' <<<"$line")
		echo "#   $CASE: port $p (guest $g) packets of pairs 0,1: from the guest $rx, to the guest $tx"
		nv=0
		for v in ${rx//,/ } ${tx//,/ }; do
			nv=$((nv + 1))
			[ "$v" -ge "$MQ_PINGS" ] || { bad=1; okc=0; }
		done
		[ "$nv" = 4 ] || { bad=1; okc=0; }
	done
	[ "$bad" = 1 ] && echo "#   $CASE: a pair carried fewer than $MQ_PINGS packets one way (or no counters)" >&2
	finish $okc
}

ALL="guests-tcp guests-nooffload host-tap reconnect multiqueue"
for c in ${NET_TEST_CASES:-$ALL}; do
	case $c in
	guests-tcp) two_guests_tcp "$c" "" ;;
	guests-nooffload)
		two_guests_tcp "$c" ",guest_csum=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,mrg_rxbuf=off" ;;
	host-tap) host_tap ;;
	reconnect) reconnect ;;
	multiqueue) multiqueue ;;
	*) echo "unknown case $c" >&2; FAILS=$((FAILS + 1)) ;;
	esac
	rm -f "$VU_TMP"/*.sock
done
[ "$FAILS" = 0 ]
