#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# get-qemu10.sh OUTDIR
#
# Unpacks QEMU 10.0 from Debian's bookworm-backports into OUTDIR, beside
# the system's QEMU 7.2 and without installing anything (apt-get download +
# dpkg -x), for interop tests against both QEMUs:
#   - adds an apt source for bookworm-backports if none is configured
#     (/etc/apt/sources.list.d/bookworm-backports.sources, deb822) and runs
#     apt-get update when apt does not know the suite yet;
#   - downloads qemu-system-x86, qemu-system-common, qemu-system-data and
#     qemu-system-modules-opengl/-spice from bookworm-backports, plus every dependency (recursively) that the
#     machine lacks or has in too old a version (e.g. seabios >> 1.16.3, which
#     bookworm lacks): those come from bookworm-backports where it has them,
#     from bookworm otherwise;
#   - unpacks them all into OUTDIR and writes OUTDIR/qemu-system-x86_64, a
#     wrapper that sets QEMU_MODULE_DIR (and LD_LIBRARY_PATH if libraries
#     were unpacked) and passes -L for the unpacked firmware and data;
#   - checks with ldd that nothing is missing, and prints how to run it.
# Idempotent: when OUTDIR already holds a working QEMU 10 it only prints
# how to run it (QEMU10_REFRESH=1 fetches again). Needs root for the apt
# source and apt-get update only.
set -euo pipefail

die() { echo "get-qemu10: $*" >&2; exit 1; }
log() { echo "get-qemu10: $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)
# It deletes OUTDIR/usr, /etc and /lib before unpacking again: only in a
# folder it made (marked) or an empty one.
if [ ! -e "$OUTDIR/.get-qemu10" ]; then
	[ -z "$(ls -A "$OUTDIR")" ] || die "$OUTDIR is not empty and not made by get-qemu10.sh"
	touch "$OUTDIR/.get-qemu10"
fi
SUITE=bookworm-backports
# The two module packages: QEMU 10 loads ui-spice-core (which needs
# ui-opengl) at every start; when its own module dir lacks them it falls back
# to the system's QEMU 7.2 modules and warns "Only modules from the same
# build can be loaded" / "undefined symbol" on every start.
PKGS=(qemu-system-x86 qemu-system-common qemu-system-data
      qemu-system-modules-opengl qemu-system-modules-spice)
MULTIARCH=x86_64-linux-gnu
WRAPPER="$OUTDIR/qemu-system-x86_64"
export LC_ALL=C

print_usage() {
	local ver
	ver=$("$WRAPPER" --version)
	ver=${ver%%$'\n'*}
	cat <<EOF
get-qemu10: $ver in $OUTDIR
Run it through the wrapper (sets everything below):
  $WRAPPER ARGS...
  e.g. QEMU=$WRAPPER tests/interop/qemu-run.sh IMAGEDIR smoke
or by hand:
  QEMU_MODULE_DIR=$OUTDIR/usr/lib/$MULTIARCH/qemu \\
EOF
	if [ -d "$OUTDIR/usr/lib/$MULTIARCH" ] && ls "$OUTDIR/usr/lib/$MULTIARCH"/*.so* >/dev/null 2>&1; then
		echo "  LD_LIBRARY_PATH=$OUTDIR/usr/lib/$MULTIARCH:$OUTDIR/lib/$MULTIARCH \\"
	fi
	echo "  $OUTDIR/usr/bin/qemu-system-x86_64 $(wrapper_l_args) ARGS..."
}

# -L options for the unpacked firmware (seabios, if it was unpacked) and
# QEMU's own data; the system's directories are still searched after them.
wrapper_l_args() {
	local a=""
	[ -d "$OUTDIR/usr/share/seabios" ] && a+="-L $OUTDIR/usr/share/seabios "
	a+="-L $OUTDIR/usr/share/qemu"
	echo "$a"
}

is_qemu10() {
	local v
	v=$("$WRAPPER" --version 2>/dev/null) || return 1
	[[ "$v" == *"version 10."* ]]
}

if [ "${QEMU10_REFRESH:-0}" != 1 ] && [ -x "$WRAPPER" ] && [ -s "$OUTDIR/.packages" ] && is_qemu10; then
	print_usage
	exit 0
fi

for tool in apt-get apt-cache dpkg dpkg-deb dpkg-query ldd; do
	command -v "$tool" >/dev/null || die "missing tool '$tool'"
done

# ---------------------------------------------------------------- apt source
has_backports_source() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# one-line format: "deb URI bookworm-backports ..."; deb822: "Suites: ... bookworm-backports"
		grep -Eq "^[[:space:]]*deb[[:space:]].*[[:space:]]$SUITE([[:space:]]|\$)" "$f" && return 0
		grep -Eiq "^Suites:.*[[:space:]]$SUITE([[:space:]]|\$)" "$f" && return 0
	done
	return 1
}
apt_knows_backports() {
	local m
	m=$(apt-cache madison qemu-system-x86 2>/dev/null || true)
	grep -q "$SUITE" <<<"$m"
}

if ! has_backports_source; then
	[ "$(id -u)" -eq 0 ] || die "no apt source for $SUITE; run as root to add one"
	log "adding /etc/apt/sources.list.d/$SUITE.sources"
	cat >"/etc/apt/sources.list.d/$SUITE.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
if ! apt_knows_backports; then
	[ "$(id -u)" -eq 0 ] || die "apt does not know $SUITE yet; run as root (apt-get update)"
	log "apt-get update"
	apt-get update -qq >&2
	apt_knows_backports || die "apt still offers no qemu-system-x86 from $SUITE"
fi

# ---------------------------------------------------------------- download
dl="$OUTDIR/.download"
rm -rf "$dl"
mkdir -p "$dl"
# apt drops to user _apt to download; let it write there.
if [ "$(id -u)" -eq 0 ] && getent passwd _apt >/dev/null; then
	chown _apt "$dl"
fi

# fetch PKG...: apt-get download, preferring bookworm-backports.
fetch() {
	log "downloading $*"
	(cd "$dl" && apt-get download -q -t "$SUITE" "$@" >&2) ||
		die "apt-get download $* failed"
}

# satisfied "NAME [(OP VER)]": true if installed here in a fitting version.
satisfied() {
	local name op ver inst
	name=$(sed -E 's/[[:space:]]*\(.*//; s/:any$//; s/[[:space:]]//g' <<<"$1")
	inst=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$name" 2>/dev/null || true)
	case "$inst" in
	"ii "*) inst=${inst#ii } ; inst=${inst# } ;;
	*) return 1 ;;
	esac
	if [[ "$1" =~ \(([<>=]+)[[:space:]]*([^\)]+)\) ]]; then
		op=${BASH_REMATCH[1]}
		ver=${BASH_REMATCH[2]}
		case "$op" in
		">=") op=ge ;; "<=") op=le ;; ">>") op=gt ;; "<<") op=lt ;; "=") op=eq ;;
		">") op=gt ;; "<") op=lt ;;
		*) return 1 ;;
		esac
		dpkg --compare-versions "$inst" "$op" "$ver"
	fi
}

fetch "${PKGS[@]}"
declare -A have=()
for p in "${PKGS[@]}"; do have[$p]=1; done

# Walk the dependencies of everything downloaded until nothing new is needed.
declare -A done_deb=()
while :; do
	new=()
	# What a package provides counts as had (qemu-system-x86 provides
	# qemu-system-any, which qemu-system-modules-opengl depends on).
	for deb in "$dl"/*.deb; do
		prov=$(dpkg-deb -f "$deb" Provides | tr ',' '\n' | sed -E 's/[[:space:]]*\(.*//; s/[[:space:]]//g')
		for n in $prov; do have[$n]=1; done
	done
	for deb in "$dl"/*.deb; do
		[ -n "${done_deb[$deb]:-}" ] && continue
		done_deb[$deb]=1
		deps=$(dpkg-deb -f "$deb" Pre-Depends Depends | sed -E 's/^(Pre-)?Depends:[[:space:]]*//' | tr '\n' ',')
		IFS=',' read -ra clauses <<<"$deps"
		for clause in "${clauses[@]}"; do
			clause=$(sed -E 's/^[[:space:]]+|[[:space:]]+$//g' <<<"$clause")
			[ -n "$clause" ] || continue
			ok=0
			IFS='|' read -ra alts <<<"$clause"
			for alt in "${alts[@]}"; do
				n=$(sed -E 's/[[:space:]]*\(.*//; s/:any$//; s/[[:space:]]//g' <<<"$alt")
				if [ -n "${have[$n]:-}" ] || satisfied "$alt"; then
					ok=1
					break
				fi
			done
			[ "$ok" = 1 ] && continue
			n=$(sed -E 's/[[:space:]]*\(.*//; s/:any$//; s/[[:space:]]//g' <<<"${alts[0]}")
			log "needs $clause (not here): fetching $n"
			have[$n]=1
			new+=("$n")
		done
	done
	[ ${#new[@]} -gt 0 ] || break
	fetch "${new[@]}"
done

# ---------------------------------------------------------------- unpack
for d in usr etc lib .packages; do rm -rf "${OUTDIR:?}/$d"; done
for deb in "$dl"/*.deb; do
	dpkg -x "$deb" "$OUTDIR"
	dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$OUTDIR/.packages"
done
rm -rf "$dl"
log "unpacked: $(cut -d' ' -f2,4 "$OUTDIR/.packages" | paste -sd',' | sed 's/,/, /g')"

bin="$OUTDIR/usr/bin/qemu-system-x86_64"
[ -x "$bin" ] || die "no $bin after unpacking"
libpath=""
if ls "$OUTDIR/usr/lib/$MULTIARCH"/*.so* >/dev/null 2>&1 || ls "$OUTDIR/lib/$MULTIARCH"/*.so* >/dev/null 2>&1; then
	libpath="$OUTDIR/usr/lib/$MULTIARCH:$OUTDIR/lib/$MULTIARCH"
fi

cat >"$WRAPPER" <<EOF
#!/bin/sh
# QEMU 10 unpacked by scripts/get-qemu10.sh: runs it with its own modules,
# firmware and data (the system's QEMU 7.2 stays as it is).
export QEMU_MODULE_DIR="$OUTDIR/usr/lib/$MULTIARCH/qemu"
${libpath:+export LD_LIBRARY_PATH="$libpath\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"}
exec "$bin" $(wrapper_l_args) "\$@"
EOF
chmod 755 "$WRAPPER"

# Nothing missing? (the binary and its loadable modules)
missing=$(for f in "$bin" "$OUTDIR/usr/lib/$MULTIARCH/qemu"/*.so; do
	[ -f "$f" ] || continue
	LD_LIBRARY_PATH="$libpath" ldd "$f" 2>&1 | grep -E 'not found' | sed "s|^|${f##*/}: |" || true
done)
if [ -n "$missing" ]; then
	rm -f "$OUTDIR/.packages"
	die "shared libraries missing:"$'\n'"$missing"
fi
is_qemu10 || {
	rm -f "$OUTDIR/.packages"
	die "$WRAPPER --version does not say version 10"
}
print_usage
