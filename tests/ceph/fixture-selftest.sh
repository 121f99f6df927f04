#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks the cluster that ceph-cluster.sh run started (CEPH_CONF,
# VU_CEPH_DIR) does what the rbd tests rely on: data written to an image
# reads back the same, resize and snapshots work, client.vhost with its
# keyring can list the pool, a wrong key is refused, and a client of
# ceph-unreachable.conf gives up within 10 s.
set -euo pipefail

: "${CEPH_CONF:?run me under ceph-cluster.sh run}" "${VU_CEPH_DIR:?run me under ceph-cluster.sh run}"
dir=$VU_CEPH_DIR
work=$dir/selftest # removed with the cluster
mkdir -p "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
rbd_() { timeout 30 rbd "$@"; }

# The client without a monitor waits its 3 s beside the other checks.
(
	start=$(date +%s%N)
	if timeout 20 rbd -c "$dir/ceph-unreachable.conf" ls rbd >/dev/null 2>&1; then
		echo "rbd ls against no monitor succeeded"
	else
		echo "$((($(date +%s%N) - start) / 1000000))"
	fi
) >"$work/unreachable" </dev/null &
unreachable=$!

head -c $((8 << 20)) /dev/urandom >"$work/in"
rbd_ import --no-progress "$work/in" rbd/selftest || fail "rbd import"
rbd_ export --no-progress rbd/selftest "$work/out" || fail "rbd export"
cmp "$work/in" "$work/out" || fail "exported data differs from imported"
ok "8 MiB imported and exported back identical"

rbd_ resize --no-progress --size 16M rbd/selftest || fail "rbd resize"
info=$(rbd_ info --format json rbd/selftest) || fail "rbd info"
size=$(grep -o '"size":[0-9]*' <<<"$info" | cut -d: -f2)
[ "$size" = $((16 << 20)) ] || fail "size after resize is $size, not 16 MiB"
rm -f "$work/out"
rbd_ export --no-progress rbd/selftest "$work/out" || fail "rbd export after resize"
cmp -n $((8 << 20)) "$work/in" "$work/out" || fail "data changed by the resize"
ok "resized to 16 MiB, data kept"

rbd_ snap create --no-progress rbd/selftest@s1 || fail "rbd snap create"
rbd_ snap ls rbd/selftest | grep -qw s1 || fail "snapshot s1 not listed"
ok "snapshot created"

ls=$(rbd_ --id vhost --keyring "$dir/keyring.vhost" ls rbd) ||
	fail "client.vhost cannot list pool rbd"
grep -qx selftest <<<"$ls" || fail "client.vhost does not see the image: $ls"
ok "client.vhost lists the pool"

ceph-authtool "$work/keyring.bogus" --create-keyring --gen-key -n client.vhost >/dev/null
if err=$(rbd_ --id vhost --keyring "$work/keyring.bogus" ls rbd 2>&1); then
	fail "a wrong key for client.vhost was accepted"
fi
grep -q 'Permission denied' <<<"$err" || fail "a wrong key failed otherwise than EACCES: $err"
ok "a wrong key is refused (EACCES)"

wait "$unreachable" || true
ms=$(cat "$work/unreachable")
[ -n "$ms" ] && [ "$ms" -eq "$ms" ] 2>/dev/null || fail "$ms"
[ "$ms" -lt 10000 ] || fail "a client of ceph-unreachable.conf took $ms ms to give up"
ok "no monitor: the client gives up after $ms ms"

rbd_ snap purge --no-progress rbd/selftest && rbd_ rm --no-progress rbd/selftest ||
	fail "removing the image"
ok "image removed"
