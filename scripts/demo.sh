#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: installs what is missing, builds, then
#  1. starts vhost-blk on a sparse disk image and boots a small Linux guest
#     under QEMU attached to it; the guest writes its disk, reads it back and
#     checks the data;
#  2. starts vhost-net as a switch with two guest ports and a net_tap uplink
#     (inside a network namespace made for the demo), boots two guests on
#     its ports; they ping each other through the switch, one also pings the
#     host's tap address; then vhost-net's per-port counters.
# Guests run under TCG on one CPU, the daemons on another (adaptive
# polling).  Everything started is stopped by its PID and everything made
# (sockets, temporary files, the namespace, DPDK's runtime directory) is
# removed, also on failure or Ctrl-C.  Exits non-zero if any part failed.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS

# shellcheck source=tests/interop/lib.sh
. tests/interop/lib.sh
NETNS=""
NET_PID=""
UPLINK=""
FINAL=""
# shellcheck disable=SC2317 # called by the trap
demo_cleanup() {
	local rc=$?
	[ -n "$FINAL" ] || echo "== demo FAILED (status $rc, after $((SECONDS - t0)) s)"
	vu_cleanup
	# vhost-net removes its DPDK runtime directory when it exits cleanly.
	[ -z "$NET_PID" ] || rm -rf "/var/run/dpdk/vhost-net-$NET_PID"
	[ -z "$NETNS" ] || ip netns del "$NETNS" 2>/dev/null || true
}
trap demo_cleanup EXIT

bash scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build
bash tests/interop/guest/build-guest.sh build/guest

QEMU=qemu-system-x86_64
# console NAME: the guest's console from its test's start to its result.
console() {
	tr -d '\r' <"$VU_TMP/$1.console" | sed -n '/vutest: running/,/VUTEST-RESULT/p' |
		sed -e 's/.*\(vutest: running\)/\1/' -e "s/^/   [$1] /" -e 's/ *$//'
}

# ---------------------------------------------------------------- vhost-blk
blk_part() {
	local img=build/demo/disk.img sock=$VU_TMP/vhost-blk.sock rc=0
	mkdir -p build/demo
	[ -f "$img" ] || truncate -s 1G "$img"
	echo "== vhost-blk: serving $img (sparse, 1 GiB) on CPU $VU_DAEMON_CPU"
	vu_start "$VU_TMP/vhost-blk.log" build/vhost-blk/vhost-blk --socket-path "$sock" \
		--blk-file "$img" --num-queues 2 --cpus "$VU_DAEMON_CPU" --poll adaptive \
		--serial demo-disk
	local pid=$VU_LAST_PID
	vu_wait_socket "$sock" || { cat "$VU_TMP/vhost-blk.log"; return 1; }

	echo "== booting a guest under QEMU (TCG, CPU $VU_PEER_CPU); it writes and verifies 16 MiB"
	taskset -c "$VU_PEER_CPU" bash tests/interop/qemu-run.sh -q "$QEMU" -t 240 \
		-l "$VU_TMP/blk.console" build/guest blk-verify vuarg.mib=16 -- \
		-chardev socket,id=disk0,path="$sock" \
		-device vhost-user-blk-pci,chardev=disk0,num-queues=2 || rc=$?
	console blk
	vu_stop "$pid" TERM
	echo "== vhost-blk's log"
	sed 's/^/   /' "$VU_TMP/vhost-blk.log"
	return "$rc"
}

# ---------------------------------------------------------------- vhost-net
# net_guest NAME SOCK MAC KERNEL-ARGS...: boot a guest in the background on
# the peer CPU with a virtio-net device on SOCK; sets GPID[NAME].
declare -A GPID=()
net_guest() {
	local name=$1 sock=$2 mac=$3
	shift 3
	taskset -c "$VU_PEER_CPU" bash tests/interop/qemu-run.sh -q "$QEMU" -t 150 \
		-l "$VU_TMP/$name.console" -s tests/interop/net-guest-demo.sh build/guest net-demo "$@" -- \
		-chardev "socket,id=c0,path=$sock,reconnect=1" \
		-netdev vhost-user,id=n0,chardev=c0 \
		-device "virtio-net-pci,netdev=n0,mac=$mac$VEC" >"$VU_TMP/$name.out" 2>&1 &
	VU_PIDS+=("$!")
	GPID[$name]=$!
}

# net_report NAME STATUS: say why a guest failed; returns STATUS.
net_report() {
	if [ "$2" != 0 ]; then
		echo "== guest $1 failed (status $2):"
		grep -v '^qemu-run: qemu-system' "$VU_TMP/$1.out" | sed 's/^/   /'
	fi
	return "$2"
}

# net_wait_guests: wait for guests a and b; when one fails, the other cannot
# finish (it waits for word from its peer): stop it.  Returns 0 if both passed.
net_wait_guests() {
	local first="" st=0 done=a other=b
	wait -n -p first "${GPID[a]}" "${GPID[b]}" || st=$?
	[ "$first" = "${GPID[b]}" ] && { done=b; other=a; }
	if ! net_report "$done" "$st"; then
		echo "== stopping guest $other: it cannot finish without $done"
		vu_stop "${GPID[$other]}" TERM
		return 1
	fi
	st=0
	wait "${GPID[$other]}" || st=$?
	net_report "$other" "$st"
}

net_part() {
	local daemon=build/vhost-net/vhost-net a=$VU_TMP/net-a.sock b=$VU_TMP/net-b.sock
	local rc=0 ns=() uplink=() hostarg=() where="" nports=2
	if [ ! -x "$daemon" ]; then
		echo "== no $daemon: build/ was configured without DPDK (libdpdk-dev);" \
			"rebuild with 'meson setup --reconfigure build'"
		return 1
	fi
	VEC=""
	# QEMU 7.2 crashes starting a vhost-user NIC under TCG with MSI-X (DESIGN.md).
	"$QEMU" --version | grep -q "version 7\." && VEC=",vectors=0"
	NETNS=vudemo-$$
	if ip netns add "$NETNS" 2>/dev/null; then
		ns=(ip netns exec "$NETNS")
		uplink=(--uplink 'net_tap0,iface=vtap0')
		hostarg=(vuarg.host=10.0.0.254)
		UPLINK=1
		nports=3
		where=" and a net_tap uplink (tap vtap0, 10.0.0.254, in network namespace $NETNS)"
	else
		NETNS=""
		echo "== (cannot create a network namespace: no uplink in this run)"
	fi
	echo "== vhost-net: a switch with two guest ports$where, on CPU $VU_DAEMON_CPU"
	vu_start "$VU_TMP/vhost-net.log" "${ns[@]}" "$daemon" --socket-path "$a" --socket-path "$b" \
		"${uplink[@]}" --mode switch --cpus "$VU_DAEMON_CPU" --poll adaptive
	NET_PID=$VU_LAST_PID
	if ! vu_wait_socket "$a" 20 || ! vu_wait_socket "$b" 5; then
		sed 's/^/   /' "$VU_TMP/vhost-net.log"
		return 1
	fi
	if [ -n "$NETNS" ]; then
		for _ in $(seq 50); do "${ns[@]}" ip link show vtap0 >/dev/null 2>&1 && break; sleep 0.1; done
		"${ns[@]}" ip addr add 10.0.0.254/24 dev vtap0 && "${ns[@]}" ip link set vtap0 up || return 1
	fi

	echo "== booting guests a (10.0.0.1) and b (10.0.0.2) under QEMU (TCG, CPU $VU_PEER_CPU), one per port"
	net_guest a "$a" 52:54:00:00:00:0a vuarg.ip=10.0.0.1 vuarg.peer=10.0.0.2 "${hostarg[@]}"
	net_guest b "$b" 52:54:00:00:00:0b vuarg.ip=10.0.0.2 vuarg.peer=10.0.0.1
	net_wait_guests || rc=1
	echo "== guest a's QEMU command line (b's differs in its socket, MAC and addresses)"
	sed -n 's/^qemu-run: /   /p' "$VU_TMP/a.out" | head -n 1
	console a
	console b

	if kill -0 "$NET_PID" 2>/dev/null; then
		kill -USR1 "$NET_PID"
		for _ in $(seq 50); do
			[ "$(grep -c "stats port=" "$VU_TMP/vhost-net.log")" -ge "$nports" ] && break
			sleep 0.1
		done
	fi
	echo "== vhost-net's log and its counters (kill -USR1 $NET_PID; rx: into the switch from the port," \
		"tx: out of the switch to it; drop reasons that are 0 left out)"
	sed -e 's/ drop_[a-z_]*=0\b//g' -e 's/^/   /' "$VU_TMP/vhost-net.log"
	local drc=0
	kill -TERM "$NET_PID" 2>/dev/null || true
	wait "$NET_PID" 2>/dev/null || drc=$?
	vu_stop "$NET_PID"
	[ "$drc" = 0 ] || { echo "== vhost-net exited with status $drc"; rc=1; }
	if [ -n "$NETNS" ]; then
		ip netns del "$NETNS" || rc=1
		NETNS=""
	fi
	return "$rc"
}

failed=()
blk_part || failed+=(vhost-blk)
net_part || failed+=(vhost-net)
FINAL=1
if [ ${#failed[@]} -eq 0 ]; then
	echo "== demo passed in $((SECONDS - t0)) s: the guest's data verified on the vhost-blk disk;" \
		"the guests pinged each other through vhost-net's switch${UPLINK:+ and the host through its uplink}"
	exit 0
fi
echo "== demo FAILED ($((SECONDS - t0)) s): ${failed[*]}"
exit 1
