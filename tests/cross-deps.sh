#!/bin/bash
# tests/cross-deps.sh ARCH [SYSROOT]: make this Debian 12 amd64 machine able to
# cross-build simtun for ARCH (armhf or arm64; this machine's own = native,
# nothing to do)
# and to run the result under qemu-user.  Called by `make cross` and by
# tests/integration/t_cross_agent.sh, so a fresh CI machine gets it all.
#
# As root it adds the foreign architecture, runs apt-get update (retried:
# mirrors answer a multiarch index with a size mismatch while they sync) and
# installs the cross compiler (crossbuild-essential-ARCH), qemu-user,
# pkg-config and dpkg-dev.  Not root: prints the commands and exits 1.
#
# The target's libraries (libssh, libevent, libsodium, inih, libsystemd and
# what they need, plus libc6 for qemu's loader):
#  SYSROOT=/      multiarch: apt-get install libssh-dev:ARCH ...  Needs the
#                 foreign index at exactly the versions installed natively
#                 (Multi-Arch: same), which a lagging mirror breaks.
#  SYSROOT=DIR    (default build-ARCH/sysroot) apt-get download the same
#                 packages and unpack them into DIR with dpkg -x: no foreign
#                 package is installed, so version skew between the native
#                 and the foreign index does not matter.  Done once (stamp).
# Exit 0 when the cross build can go ahead, 1 otherwise (reason on stderr).
set -u
ARCH=${1:-}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
# the machine's own architecture: a native build, make deps covers it
[ -n "$ARCH" ] && [ "$ARCH" = "$(dpkg --print-architecture)" ] && exit 0
case $ARCH in
armhf) TRIPLET=arm-linux-gnueabihf QEMU=qemu-arm;;
arm64) TRIPLET=aarch64-linux-gnu QEMU=qemu-aarch64;;
*) echo "usage: $0 armhf|arm64 [SYSROOT] (a foreign architecture)" >&2; exit 1;;
esac
SYSROOT=${2:-$REPO_ROOT/build-$ARCH/sysroot}
DEV_PKGS="libssh-dev libevent-dev libsodium-dev libinih-dev libsystemd-dev libsqlite3-dev libhiredis-dev"
# libc and kernel headers come from the cross toolchain (libc6-dev-ARCH-cross);
# only libc6 itself is unpacked, for qemu's loader.
SKIP_PKGS="libc6-dev libc-dev-bin linux-libc-dev libcrypt-dev libnsl-dev libtirpc-dev rpcsvc-proto gcc-12-base libstdc++6"

say() { echo "cross-deps: $*"; }
die() { echo "cross-deps: $*" >&2; exit 1; }

# installed PKG: true if dpkg has PKG installed.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

# apt_update: apt-get update, retried while the mirror syncs.  A foreign index
# that keeps failing is not fatal: what matters is whether the packages are
# there afterwards.
apt_update() {
	local i out rc
	for i in 1 2 3 4; do
		out=$($APT_GET update -q 2>&1); rc=$?
		if [ $rc = 0 ] && ! printf '%s\n' "$out" | grep -qE '^(E|W): Failed to fetch'; then
			return 0
		fi
		printf '%s\n' "$out" | grep -E '^(E|W): Failed to fetch' | head -2
		[ $i = 4 ] && break
		say "apt-get update failed (try $i of 4), retrying in $((i * 5)) s"
		sleep $((i * 5))
	done
	say "apt-get update still fails; going on with the indexes we have"
	return 1
}

export DEBIAN_FRONTEND=noninteractive
updated=
# apt-get and dpkg wait (bounded) for a package database another process holds
LOCKWAIT="bash $REPO_ROOT/tests/lockwait.sh"
APT_GET="$LOCKWAIT apt-get -o DPkg::Lock::Timeout=120"

# 1. foreign architecture, toolchain, qemu (root only).
tools="crossbuild-essential-$ARCH qemu-user pkg-config dpkg-dev"
[ "$SYSROOT" = / ] && for p in $DEV_PKGS; do tools="$tools $p:$ARCH"; done
missing=
for p in $tools; do installed "$p" || missing="$missing $p"; done
has_arch=
dpkg --print-foreign-architectures | grep -qx "$ARCH" && has_arch=1
if [ -n "$missing" ] || [ -z "$has_arch" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "cross-deps: missing:${missing:- foreign architecture $ARCH}; run as root:" >&2
		[ -z "$has_arch" ] && echo "  dpkg --add-architecture $ARCH" >&2
		echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
		exit 1
	fi
	if [ -z "$has_arch" ]; then
		say "dpkg --add-architecture $ARCH"
		$LOCKWAIT dpkg --add-architecture "$ARCH" || die "dpkg --add-architecture $ARCH failed"
		apt_update; updated=1
	fi
	if [ -n "$missing" ]; then
		say "installing$missing"
		if ! $APT_GET install -y -q --no-install-recommends $missing; then
			[ -z "$updated" ] && { apt_update; updated=1; }
			$APT_GET install -y -q --no-install-recommends $missing ||
			    die "could not install$missing (a foreign index older than the native one? try SYSROOT=build-$ARCH/sysroot)"
		fi
	fi
fi
[ "$SYSROOT" = / ] && { say "$ARCH ready (multiarch)"; exit 0; }

# 2. sysroot: the target's -dev packages and their library closure, unpacked.
stamp=$SYSROOT/.simtun-sysroot
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$DEV_PKGS" ]; then
	exit 0
fi
closure() {
	local p a=()
	for p in $DEV_PKGS libc6; do a+=("$p:$ARCH"); done
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
	    --no-breaks --no-replaces --no-enhances "${a[@]}" 2>/dev/null |
	    grep -v '^ ' | grep ":$ARCH\$" | sort -u
}
pkgs=$(closure)
if [ -z "$pkgs" ] && [ -z "$updated" ] && [ "$(id -u)" = 0 ]; then
	apt_update; updated=1
	pkgs=$(closure)
fi
[ -n "$pkgs" ] || die "no $ARCH package index (dpkg --add-architecture $ARCH; apt-get update)"
want=
for p in $pkgs; do
	case " $SKIP_PKGS " in *" ${p%:*} "*) continue;; esac
	want="$want $p"
done
dl=$SYSROOT.debs
rm -rf "$SYSROOT" "$dl"
mkdir -p "$SYSROOT" "$dl" || die "cannot create $SYSROOT"
say "downloading into $dl:$want"
# apt-get download runs as _apt when it can: give it a directory it may write.
[ "$(id -u)" = 0 ] && chown _apt "$dl" 2>/dev/null
(cd "$dl" && apt-get download -q $want) >"$dl/download.log" 2>&1 || {
	if [ -z "$updated" ] && [ "$(id -u)" = 0 ]; then
		apt_update; updated=1
		(cd "$dl" && apt-get download -q $want) >"$dl/download.log" 2>&1
	else
		false
	fi
} || { tail -5 "$dl/download.log" >&2; die "apt-get download failed for $ARCH"; }
for f in "$dl"/*.deb; do
	dpkg -x "$f" "$SYSROOT" || die "dpkg -x $f"
done
# absolute symlinks (libfoo.so -> /lib/TRIPLET/libfoo.so.1) must point into the sysroot
find "$SYSROOT" -type l | while read -r l; do
	t=$(readlink "$l")
	case $t in /*) ln -sfn "$SYSROOT$t" "$l";; esac
done
[ -e "$SYSROOT/usr/lib/$TRIPLET/pkgconfig/libssh.pc" ] || die "sysroot incomplete: no libssh.pc"
rm -rf "$dl"
echo "$DEV_PKGS" >"$stamp"
say "$ARCH sysroot ready in $SYSROOT (run binaries with $QEMU -L $SYSROOT)"
exit 0
