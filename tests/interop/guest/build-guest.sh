#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# build-guest.sh OUTDIR
#
# Builds the small Linux guest the interop tests boot under QEMU:
#   OUTDIR/vmlinuz            Debian 12's own kernel (linux-image-*-amd64),
#                             taken from the package archive with
#                             `apt-get download` and unpacked with `dpkg -x`
#                             into OUTDIR/kernel-pkg (never installed);
#   OUTDIR/initramfs.cpio.gz  busybox-static, the virtio-pci/-blk/-net
#                             modules (with their dependencies, in load
#                             order), an /init and the guest test scripts
#                             tests/*.sh (beside this script) as /tests/;
#   OUTDIR/fio/               the same guest with fio added: vmlinuz and an
#                             initramfs.cpio.gz that is the one above
#                             followed by a second archive holding the
#                             host's fio (/usr/bin/fio, or $FIO), every
#                             shared library `ldd` lists for it, at the
#                             same paths, and the dynamic loader. Boot it
#                             as IMAGEDIR/fio for the tests that run fio
#                             (guest/tests/blk-fio-verify.sh). A separate
#                             image because fio brings ~85 MB of libraries
#                             (librbd, ICU, ...): every boot of an image
#                             that holds them costs ~2 s more under TCG and
#                             85 MB of guest memory, which the other tests
#                             need not pay. Without fio on the host there
#                             is no OUTDIR/fio (a note says so).
#
# The guest's /init mounts proc, sys and devtmpfs, loads the modules, then
# runs /tests/NAME.sh for the kernel parameter vutest=NAME and prints
# "VUTEST-RESULT: PASS" or "VUTEST-RESULT: FAIL <reason>" on the console,
# then powers off. Parameters vuarg.KEY=VALUE on the kernel command line
# reach the test as environment variables VUARG_KEY (upper case, '-' and
# '.' become '_'). vutimeout=SECS arms a watchdog in the guest. vutest=shell
# starts an interactive shell instead (for debugging by hand only).
# Test scripts source /lib/vutest.sh for helpers (vu_fail, vu_wait_blk,
# vu_arg, vu_net_up, ...); see the library text below.
#
# Idempotent: does nothing when OUTDIR already holds an image built from the
# same inputs (this script, the test scripts, busybox, the kernel package,
# fio and each of its libraries).
# The kernel is fetched once; later runs reuse OUTDIR/kernel-pkg (no network
# needed) unless GUEST_REFRESH_KERNEL=1, which fetches the version the
# archive offers now. GUEST_KERNEL_PKG=linux-image-X-amd64 pins a package.
# GUEST_EXTRA_MODULES="mod1 mod2" adds modules (with their dependencies).
#
# Needs (Debian 12): apt, dpkg, busybox-static, cpio, gzip, kmod (depmod,
# modprobe on the host side); xz-utils/zstd only if the kernel's modules
# are compressed (Debian 12's are not); fio for OUTDIR/fio (ldd, from libc-bin,
# lists its libraries). scripts/install-deps.sh installs them.
set -euo pipefail

die() { echo "build-guest: $*" >&2; exit 1; }
log() { echo "build-guest: $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTS_DIR="$HERE/tests"
BUSYBOX=${BUSYBOX:-/bin/busybox}
FIO=${FIO:-/usr/bin/fio}
# Modules the guest needs; modprobe --show-depends adds their dependencies
# (virtio_ring, virtio, virtio_pci_modern_dev, virtio_pci_legacy_dev,
# failover, net_failover with Debian 12's kernel).
read -ra extra_modules <<<"${GUEST_EXTRA_MODULES:-}"
MODULES=(virtio_pci virtio_blk virtio_net "${extra_modules[@]}")

mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)
KPKG_DIR="$OUTDIR/kernel-pkg"

for tool in apt-get apt-cache dpkg depmod modprobe cpio gzip; do
	command -v "$tool" >/dev/null || die "missing tool '$tool' (run scripts/install-deps.sh)"
done
[ -x "$BUSYBOX" ] || die "no $BUSYBOX (install busybox-static)"
applets=$("$BUSYBOX" --list) # (no grep -q in a pipe: SIGPIPE + pipefail)
for a in sh mount insmod poweroff dd md5sum setsid cttyhack; do
	grep -qx "$a" <<<"$applets" || die "$BUSYBOX has no $a applet"
done

# fio_files: the files of the fio image, one absolute path a line: fio,
# then what `ldd` resolves for it (libraries, the dynamic loader), each at
# the path the loader will look for it in the guest. Fails if ldd cannot
# resolve a library.
fio_files() {
	local out
	out=$(ldd "$FIO" 2>&1) || { echo "ldd $FIO: $out" >&2; return 1; }
	if grep -q 'not found' <<<"$out"; then
		echo "ldd $FIO: $(grep 'not found' <<<"$out" | head -n1)" >&2
		return 1
	fi
	echo "$FIO"
	# "libX.so.N => /path (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)";
	# the vDSO ("linux-vdso.so.1 (0x...)") is no file.
	awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' <<<"$out"
}
have_fio=0
fio_list=()
if [ -x "$FIO" ]; then
	command -v ldd >/dev/null || die "no ldd (libc-bin) to list fio's libraries"
	mapfile -t fio_list < <(fio_files)
	[ ${#fio_list[@]} -gt 1 ] || die "cannot list the libraries of $FIO (see above)"
	have_fio=1
fi

# ---------------------------------------------------------------- kernel
# Which kernel package: pinned, already unpacked, or the archive's current.
kernel_pkg_from_apt() {
	local deps
	deps=$(apt-cache depends linux-image-amd64 2>/dev/null || true)
	awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }' <<<"$deps"
}
resolve_kernel_pkg() {
	local p
	p=$(kernel_pkg_from_apt)
	if [ -z "$p" ] && [ "$(id -u)" -eq 0 ]; then
		log "apt lists do not know linux-image-amd64; running apt-get update"
		apt-get update -qq >&2
		p=$(kernel_pkg_from_apt)
	fi
	[ -n "$p" ] || die "cannot tell which linux-image-*-amd64 the archive offers (apt-get update?)"
	echo "$p"
}

kpkg=""
if [ -n "${GUEST_KERNEL_PKG:-}" ]; then
	kpkg=$GUEST_KERNEL_PKG
elif [ "${GUEST_REFRESH_KERNEL:-0}" != 1 ] && [ -s "$KPKG_DIR/.package" ] &&
	[ -s "$OUTDIR/vmlinuz" ]; then
	kpkg=$(cat "$KPKG_DIR/.package")
else
	kpkg=$(resolve_kernel_pkg)
fi

if [ ! -s "$KPKG_DIR/.package" ] || [ "$(cat "$KPKG_DIR/.package")" != "$kpkg" ] ||
	[ ! -s "$OUTDIR/vmlinuz" ]; then
	log "fetching $kpkg"
	dl="$OUTDIR/.download"
	rm -rf "$dl" "$KPKG_DIR.new"
	mkdir -p "$dl"
	# apt drops to user _apt to download; let it write there (else it
	# warns and downloads unsandboxed).
	if [ "$(id -u)" -eq 0 ] && getent passwd _apt >/dev/null; then
		chown _apt "$dl"
	fi
	(cd "$dl" && apt-get download -q "$kpkg" >&2)
	debs=("$dl/$kpkg"_*.deb)
	deb=${debs[0]}
	[ -f "$deb" ] || die "apt-get download $kpkg produced no .deb"
	dpkg -x "$deb" "$KPKG_DIR.new"
	echo "$kpkg" >"$KPKG_DIR.new/.package"
	rm -rf "$KPKG_DIR" "$dl"
	mv "$KPKG_DIR.new" "$KPKG_DIR"
fi

# The kernel release (uname -r) is the name of the one modules directory.
kver=""
for d in "$KPKG_DIR"/lib/modules/* "$KPKG_DIR"/usr/lib/modules/*; do
	[ -d "$d/kernel" ] && { kver=${d##*/}; moddir_base=${d%/lib/modules/*}; break; }
done
[ -n "$kver" ] || die "no lib/modules/<release>/kernel in $KPKG_DIR"
vmlinuz="$KPKG_DIR/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || die "no $vmlinuz"

# ---------------------------------------------------------------- up to date?
stamp_of_inputs() {
	{
		echo "kernel $kpkg $kver"
		echo "modules ${MODULES[*]}"
		echo "busybox $(sha256sum <"$BUSYBOX")"
		echo "script $(sha256sum <"${BASH_SOURCE[0]}")"
		for t in "$TESTS_DIR"/*.sh; do
			[ -f "$t" ] || continue
			echo "test ${t##*/} $(sha256sum <"$t")"
		done
		if [ "$have_fio" = 1 ]; then
			for f in "${fio_list[@]}"; do
				echo "fio $f $(sha256sum <"$f")"
			done
		else
			echo "fio none"
		fi
	} | sha256sum | cut -d' ' -f1
}
stamp=$(stamp_of_inputs)
if [ -s "$OUTDIR/.stamp" ] && [ "$(cat "$OUTDIR/.stamp")" = "$stamp" ] &&
	[ -s "$OUTDIR/vmlinuz" ] && [ -s "$OUTDIR/initramfs.cpio.gz" ] &&
	{ [ "$have_fio" = 0 ] ||
		{ [ -s "$OUTDIR/fio/vmlinuz" ] && [ -s "$OUTDIR/fio/initramfs.cpio.gz" ]; }; }; then
	log "$OUTDIR is up to date ($kver)"
	exit 0
fi
rm -f "$OUTDIR/.stamp" # until everything below is built

log "building the guest for kernel $kver in $OUTDIR"
cp "$vmlinuz" "$OUTDIR/vmlinuz.new"
mv "$OUTDIR/vmlinuz.new" "$OUTDIR/vmlinuz"

# ---------------------------------------------------------------- modules
# Debian's package ships no modules.dep (its postinst runs depmod); make it.
depmod -b "$moddir_base" "$kver"

# Module files in load order, each once: modprobe prints the insmod lines
# that load a module after its dependencies (virtio_ring before virtio).
declare -A seen=()
ordered=()
for m in "${MODULES[@]}"; do
	out=$(modprobe -d "$moddir_base" -S "$kver" --show-depends "$m" 2>&1) ||
		die "modprobe --show-depends $m: $out"
	while read -r verb path _; do
		[ "$verb" = insmod ] || continue # "builtin NAME": nothing to load
		[ -n "${seen[$path]:-}" ] && continue
		seen[$path]=1
		ordered+=("$path")
	done <<<"$out"
done

# ---------------------------------------------------------------- initramfs
root="$OUTDIR/.initramfs"
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,mnt,root,etc,lib/modules,tests}
chmod 1777 "$root/tmp"

# busybox and a symlink per applet (what `busybox --install -s` would do).
cp "$BUSYBOX" "$root/bin/busybox"
while read -r applet; do
	[ -e "$root/$applet" ] || [ -L "$root/$applet" ] && continue
	ln -s /bin/busybox "$root/$applet"
done < <("$BUSYBOX" --list-full)

# Modules, decompressed (busybox insmod may not handle compression), flat
# in /lib/modules, with the load order in /lib/modules/load-order.
: >"$root/lib/modules/load-order"
for path in "${ordered[@]}"; do
	f=${path##*/}
	case "$f" in
	*.ko) name=${f%.ko}; cp "$path" "$root/lib/modules/$name.ko" ;;
	*.ko.xz) name=${f%.ko.xz}; xz -dc "$path" >"$root/lib/modules/$name.ko" ;;
	*.ko.zst) name=${f%.ko.zst}; zstd -qdc "$path" >"$root/lib/modules/$name.ko" ;;
	*.ko.gz) name=${f%.ko.gz}; gzip -dc "$path" >"$root/lib/modules/$name.ko" ;;
	*) die "unknown module file type: $path" ;;
	esac
	echo "$name" >>"$root/lib/modules/load-order"
done
log "modules: $(tr '\n' ' ' <"$root/lib/modules/load-order")"

# The kernel opens /dev/console for init before devtmpfs is mounted; make
# the node when we can (root), /init re-opens it after mounting anyway.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
EOF
echo "$kver" >"$root/etc/vutest-kernel"

# Test scripts from the host.
for t in "$TESTS_DIR"/*.sh; do
	[ -f "$t" ] || continue
	cp "$t" "$root/tests/"
	chmod 755 "$root/tests/${t##*/}"
done

# --- /lib/vutest.sh: helpers for the test scripts (and /init).
cat >"$root/lib/vutest.sh" <<'EOF'
# shellcheck shell=sh
# /lib/vutest.sh - helpers for guest test scripts (busybox sh).
# A test script is run as `sh /tests/NAME.sh`; exit 0 means PASS, anything
# else FAIL. It should `. /lib/vutest.sh` and use vu_fail to give a reason.
VUTEST_REASON_FILE=${VUTEST_REASON_FILE:-/tmp/vutest-reason}

# vu_log MSG...: a line on the console.
vu_log() { echo "vutest: $*"; }

# vu_fail REASON...: record the reason and end the test as failed.
vu_fail() {
	echo "$*" >"$VUTEST_REASON_FILE"
	echo "vutest: FAIL: $*"
	exit 1
}

# vu_arg KEY DEFAULT: the value of kernel parameter vuarg.KEY, or DEFAULT.
vu_arg() {
	_k=$(echo "$1" | tr 'a-z.-' 'A-Z__')
	eval "_v=\${VUARG_$_k:-}"
	if [ -n "$_v" ]; then echo "$_v"; else echo "$2"; fi
}

# vu_wait_for PATH [SECS]: wait (default 30 s) until PATH exists.
vu_wait_for() {
	_n=$(( ${2:-30} * 10 ))
	while [ ! -e "$1" ]; do
		[ "$_n" -gt 0 ] || return 1
		_n=$((_n - 1))
		sleep 0.1
	done
}

# vu_wait_blk NAME [SECS]: wait (default 30 s) for block device /dev/NAME
# to appear with a non-zero size (virtio probing is asynchronous).
vu_wait_blk() {
	_n=$(( ${2:-30} * 10 ))
	while [ ! -b "/dev/$1" ] || [ "$(cat "/sys/block/$1/size" 2>/dev/null || echo 0)" = 0 ]; do
		[ "$_n" -gt 0 ] || return 1
		_n=$((_n - 1))
		sleep 0.1
	done
}

# vu_wait_netdev [SECS]: wait for a network interface other than lo; prints
# its name.
vu_wait_netdev() {
	_n=$(( ${1:-30} * 10 ))
	while :; do
		for _i in /sys/class/net/*; do
			[ "${_i##*/}" = lo ] || [ ! -e "$_i" ] || { echo "${_i##*/}"; return 0; }
		done
		[ "$_n" -gt 0 ] || return 1
		_n=$((_n - 1))
		sleep 0.1
	done
}

# vu_wait_ping ADDR [TRIES]: until ADDR answers a ping; at most TRIES
# (default 90) pings of up to 1 s each, then returns 1.
vu_wait_ping() {
	_n=0
	while ! ping -c 1 -W 1 "$1" >/dev/null 2>&1; do
		_n=$((_n + 1))
		[ "$_n" -lt "${2:-90}" ] || return 1
	done
}

# vu_net_up DEV ADDR PEER: bring network interface DEV up with ADDR/24 and
# wait (vu_wait_ping) until PEER answers; vu_fail if any of it fails.
vu_net_up() {
	ip link set "$1" up || vu_fail "cannot bring $1 up"
	ip addr add "$2/24" dev "$1" || vu_fail "cannot add $2 to $1"
	vu_wait_ping "$3" || vu_fail "no answer from $3"
}
EOF

# --- /init: PID 1.
cat >"$root/init" <<'EOF'
#!/bin/sh
# /init of the interop test guest (generated by build-guest.sh).
# Mounts, loads the virtio modules, runs /tests/$vutest.sh, prints
# "VUTEST-RESULT: PASS|FAIL <reason>" and powers off. It never leaves an
# interactive shell behind (except for vutest=shell): every path ends in a
# result line and poweroff, and if /init itself died the kernel panics and
# (panic=-1, QEMU -no-reboot) QEMU exits.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

. /lib/vutest.sh

result() {
	trap - EXIT
	echo "VUTEST-RESULT: $*"
	sync
	poweroff -f
	sleep 5
	echo o >/proc/sysrq-trigger
	exit 1 # panic, and QEMU -no-reboot exits
}
trap 'result FAIL init exited unexpectedly' EXIT

# Parameters: vutest=NAME, vutimeout=SECS, vuarg.KEY=VALUE -> VUARG_KEY.
VUTEST=""
VUTIMEOUT=0
for w in $(cat /proc/cmdline); do
	case "$w" in
	vutest=*) VUTEST=${w#vutest=} ;;
	vutimeout=*) VUTIMEOUT=${w#vutimeout=} ;;
	vuarg.*=*)
		kv=${w#vuarg.}
		k=${kv%%=*}
		v=${kv#*=}
		case "$k" in
		"" | *[!A-Za-z0-9_.-]*) echo "vutest: ignoring bad parameter $w"; continue ;;
		esac
		k=$(echo "$k" | tr 'a-z.-' 'A-Z__')
		export "VUARG_$k=$v"
		;;
	esac
done
export VUTEST VUTIMEOUT

case "$VUTIMEOUT" in
"" | *[!0-9]*) VUTIMEOUT=0 ;;
esac
if [ "$VUTIMEOUT" -gt 0 ]; then
	(
		sleep "$VUTIMEOUT"
		echo "VUTEST-RESULT: FAIL timeout: $VUTEST still running after ${VUTIMEOUT}s"
		sync
		poweroff -f
	) &
fi

ip link set lo up 2>/dev/null

while read -r m; do
	[ -n "$m" ] || continue
	insmod "/lib/modules/$m.ko" || result FAIL "insmod $m failed"
done </lib/modules/load-order

[ -n "$VUTEST" ] || result FAIL "no vutest=NAME on the kernel command line"

if [ "$VUTEST" = shell ]; then
	echo "vutest: debug shell; leave it to power off"
	setsid cttyhack sh
	result FAIL "debug shell"
fi

case "$VUTEST" in
*[!A-Za-z0-9_.-]*) result FAIL "bad test name '$VUTEST'" ;;
esac
t="/tests/$VUTEST.sh"
[ -f "$t" ] || result FAIL "no test $VUTEST in the guest (have: $(cd /tests && ls | tr '\n' ' '))"

rm -f "$VUTEST_REASON_FILE"
echo "vutest: running $VUTEST on $(uname -r)"
sh "$t"
rc=$?
if [ "$rc" -eq 0 ]; then
	result PASS
elif [ -s "$VUTEST_REASON_FILE" ]; then
	result FAIL "$(head -n1 "$VUTEST_REASON_FILE")"
else
	result FAIL "$VUTEST exited with status $rc"
fi
EOF
chmod 755 "$root/init"

# newc archive, owned by root whoever builds it, in a stable order.
(cd "$root" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --quiet) |
	gzip -9n >"$OUTDIR/initramfs.cpio.gz.new"
mv "$OUTDIR/initramfs.cpio.gz.new" "$OUTDIR/initramfs.cpio.gz"
rm -rf "$root"

# ---------------------------------------------------------------- fio image
# OUTDIR/fio: the image above, then a second archive with fio and its
# libraries (Linux unpacks concatenated archives in order; the first must
# end 4-byte aligned: pad it to 512 bytes, zeros between archives are
# skipped). Library symlinks are copied as files under the name ldd gave.
rm -rf "$OUTDIR/fio" "$OUTDIR/.fio-root"
if [ "$have_fio" = 1 ]; then
	froot="$OUTDIR/.fio-root"
	for f in "${fio_list[@]}"; do
		mkdir -p "$froot${f%/*}"
		cp -L "$f" "$froot$f"
	done
	rm -rf "$OUTDIR/fio.new"
	mkdir -p "$OUTDIR/fio.new"
	cp "$OUTDIR/vmlinuz" "$OUTDIR/fio.new/vmlinuz"
	cp "$OUTDIR/initramfs.cpio.gz" "$OUTDIR/fio.new/initramfs.cpio.gz"
	size=$(stat -c %s "$OUTDIR/fio.new/initramfs.cpio.gz")
	pad=$(((512 - size % 512) % 512))
	[ "$pad" -eq 0 ] || head -c "$pad" /dev/zero >>"$OUTDIR/fio.new/initramfs.cpio.gz"
	(cd "$froot" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --quiet) |
		gzip -6n >>"$OUTDIR/fio.new/initramfs.cpio.gz"
	rm -rf "$froot"
	mv "$OUTDIR/fio.new" "$OUTDIR/fio"
	log "fio image: $OUTDIR/fio ($("$FIO" --version), $((${#fio_list[@]} - 1)) libraries;" \
		"$(du -h "$OUTDIR/fio/initramfs.cpio.gz" | cut -f1))"
else
	log "no fio at $FIO: no $OUTDIR/fio image (install fio: scripts/install-deps.sh)"
fi
echo "$stamp" >"$OUTDIR/.stamp"
log "done: $OUTDIR/vmlinuz $OUTDIR/initramfs.cpio.gz ($(du -h "$OUTDIR/initramfs.cpio.gz" | cut -f1))"
