#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages the build and the tests need, only those
# missing. Idempotent, non-interactive; run as root.
set -euo pipefail

pkgs=(meson ninja-build pkg-config gcc clang libclang-rt-14-dev
      liburing-dev libnuma-dev libcmocka-dev
      dpdk dpdk-dev libdpdk-dev
      qemu-system-x86 qemu-utils busybox-static cpio fio kmod gnuplot-nox
      linux-libc-dev procps iproute2 python3
      ceph-mon ceph-osd ceph-common librbd-dev librados-dev qemu-block-extra)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages (${missing[*]}); run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
