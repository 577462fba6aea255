#!/bin/bash
# tests/mkdeb.sh ARCH BINDIR OUTDIR: build the Debian packages simtun-relay,
# simtun-agent and simtun-common (simtunctl) for ARCH (amd64, armhf, arm64)
# from the binaries in BINDIR, with dpkg-deb, into OUTDIR.  `make deb` calls
# it; the metadata lives in conf/debian/ (control.in, conffiles, maintainer
# script templates, changelog, copyright).
#
# Contents: /usr/sbin daemons and /usr/bin/simtunctl (stripped), the units
# from systemd/, /etc/simtun/*.conf and authorized_keys from conf/ as
# conffiles, man pages from docs/ (simtun-relay*, simtun-agent* to their
# package, the rest to simtun-common), changelog and copyright.
# Depends: dpkg-shlibdeps on the binaries; for a foreign ARCH whose libraries
# are not installed (sysroot builds), on the amd64 build of the same source
# (SHLIBS_BINDIR, default build-amd64), which names the same packages.
set -eu
ARCH=${1:?usage: mkdeb.sh ARCH BINDIR OUTDIR}
BINDIR=$(cd "${2:?BINDIR}" && pwd)
OUTDIR=${3:?OUTDIR}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEB=$REPO_ROOT/conf/debian
: "${DEB_MAINTAINER:=simtun maintainers <simtun@example.org>}"
: "${SHLIBS_BINDIR:=$REPO_ROOT/build-amd64}"

die() { echo "mkdeb: $*" >&2; exit 1; }

case $ARCH in
amd64) triplet=x86_64-linux-gnu machine='X86-64';;
armhf) triplet=arm-linux-gnueabihf machine='ARM';;
arm64) triplet=aarch64-linux-gnu machine='AArch64';;
*) die "unknown ARCH $ARCH";;
esac
STRIP=$triplet-strip
command -v "$STRIP" >/dev/null || { [ "$ARCH" = amd64 ] && STRIP=strip; } ||
    die "$STRIP missing (tests/cross-deps.sh $ARCH)"

VERSION=$(dpkg-parsechangelog -l "$DEB/changelog" -S Version)
upstream=$(sed -n 's/^#define SIMTUN_VERSION "\(.*\)"/\1/p' "$REPO_ROOT/common/common.h")
[ "${VERSION%-*}" = "$upstream" ] ||
    die "conf/debian/changelog says $VERSION, common/common.h says $upstream: add a changelog entry"

for b in simtun-relay simtun-agent simtunctl; do
	[ -f "$BINDIR/$b" ] || die "$BINDIR/$b missing (make cross ARCH=$ARCH)"
	readelf -h "$BINDIR/$b" | grep -q "Machine:.*$machine" ||
	    die "$BINDIR/$b is not an $ARCH binary"
done

WORK=$(mktemp -d /tmp/simtun-mkdeb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

# shlibs BINARY: the shlibs:Depends value for BINARY.
shlibs() {
	local b=$1 out
	mkdir -p "$WORK/shl/debian"
	printf 'Source: simtun\n\nPackage: simtun\nArchitecture: any\n' >"$WORK/shl/debian/control"
	for bin in "$BINDIR/$b" "$SHLIBS_BINDIR/$b" "$REPO_ROOT/build/$b"; do
		[ -f "$bin" ] || continue
		out=$(cd "$WORK/shl" && DEB_HOST_ARCH=$ARCH dpkg-shlibdeps -O -e "$bin" 2>/dev/null) ||
		    out=$(cd "$WORK/shl" && dpkg-shlibdeps -O -e "$bin" 2>/dev/null) || continue
		out=${out#shlibs:Depends=}
		[ -n "$out" ] && { echo "$out"; return 0; }
	done
	# last resort: what dpkg-shlibdeps says on Debian 12 amd64
	echo "libc6 (>= 2.34), libevent-core-2.1-7 (>= 2.1.8-stable), libevent-extra-2.1-7 (>= 2.1.8-stable), libinih1 (>= 40), libsodium23 (>= 0.6.0), libsqlite3-0 (>= 3.24), libssh-4 (>= 0.10.4), libsystemd0"
}

# control_for PKG: PKG's stanza of control.in (stanzas are separated by blank lines).
control_for() {
	awk -v p="Package: $1" 'BEGIN { RS = ""; ORS = "\n" } $0 ~ "^" p "\n" { print }' \
	    "$DEB/control.in"
}

# build_pkg PKG BINARY UNIT PURGE_STATE: assemble $WORK/PKG and dpkg-deb it.
build_pkg() {
	local pkg=$1 bin=$2 unit=$3 purge=$4 root=$WORK/$1 f s dest
	rm -rf "$root"
	install -d -m 0755 "$root/DEBIAN" "$root/usr/share/doc/$pkg"
	case $bin in
	simtunctl) install -d -m 0755 "$root/usr/bin"; dest=$root/usr/bin/$bin;;
	*) install -d -m 0755 "$root/usr/sbin"; dest=$root/usr/sbin/$bin;;
	esac
	install -m 0755 "$BINDIR/$bin" "$dest"
	"$STRIP" --remove-section=.comment --remove-section=.note --strip-unneeded "$dest"

	if [ -n "$unit" ]; then
		[ -f "$REPO_ROOT/systemd/$unit" ] || die "systemd/$unit missing"
		install -d -m 0755 "$root/lib/systemd/system"
		install -m 0644 "$REPO_ROOT/systemd/$unit" "$root/lib/systemd/system/$unit"
	fi
	# conffiles: the examples from conf/, installed under their own names
	: >"$root/DEBIAN/conffiles"
	awk -v p="$pkg" '$1 == p { print $2 }' "$DEB/conffiles" | while read -r f; do
		[ -f "$REPO_ROOT/conf/${f##*/}" ] || die "conf/${f##*/} missing"
		install -d -m 0755 "$root${f%/*}"
		install -m 0644 "$REPO_ROOT/conf/${f##*/}" "$root$f"
		echo "$f" >>"$root/DEBIAN/conffiles"
	done
	[ -s "$root/DEBIAN/conffiles" ] || rm -f "$root/DEBIAN/conffiles"
	# man pages: docs/NAME.SECTION
	for f in "$REPO_ROOT"/docs/*.[1-8]; do
		[ -f "$f" ] || continue
		case ${f##*/} in
		simtun-relay*) [ "$pkg" = simtun-relay ] || continue;;
		simtun-agent*) [ "$pkg" = simtun-agent ] || continue;;
		*) [ "$pkg" = simtun-common ] || continue;;
		esac
		s=${f##*.}
		install -d -m 0755 "$root/usr/share/man/man$s"
		gzip -9n <"$f" >"$root/usr/share/man/man$s/${f##*/}.gz"
		chmod 0644 "$root/usr/share/man/man$s/${f##*/}.gz"
	done
	install -m 0644 "$DEB/copyright" "$root/usr/share/doc/$pkg/copyright"
	gzip -9n <"$DEB/changelog" >"$root/usr/share/doc/$pkg/changelog.Debian.gz"
	chmod 0644 "$root/usr/share/doc/$pkg/changelog.Debian.gz"
	if [ "$pkg" = simtun-common ]; then
		gzip -9n <"$REPO_ROOT/README.md" >"$root/usr/share/doc/$pkg/README.md.gz"
		chmod 0644 "$root/usr/share/doc/$pkg/README.md.gz"
	fi

	for s in postinst prerm postrm; do
		[ -n "$unit" ] || continue
		sed -e "s|@PKG@|$pkg|g" -e "s|@UNIT@|$unit|g" -e "s|@PURGE_STATE@|$purge|g" \
		    "$DEB/$s.in" >"$root/DEBIAN/$s"
		chmod 0755 "$root/DEBIAN/$s"
	done

	local size deps
	size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
	deps=$(shlibs "$bin")
	control_for "$pkg" | sed -e "s|@VERSION@|$VERSION|g" -e "s|@ARCH@|$ARCH|g" \
	    -e "s|@MAINTAINER@|$DEB_MAINTAINER|g" -e "s|@SIZE@|$size|g" -e "s|@SHLIBS@|$deps|g" >"$root/DEBIAN/control"
	grep -q '^Package: ' "$root/DEBIAN/control" || die "no $pkg stanza in control.in"
	(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' |
	    LC_ALL=C sort -z | xargs -0r md5sum) >"$root/DEBIAN/md5sums"
	chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"
	[ -f "$root/DEBIAN/conffiles" ] && chmod 0644 "$root/DEBIAN/conffiles"
	local out=$OUTDIR/${pkg}_${VERSION}_$ARCH.deb
	dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null ||
	    die "dpkg-deb $pkg failed"
	echo "mkdeb: $out"
}

build_pkg simtun-relay simtun-relay simtun-relay.service "ssh_host_ed25519_key ssh_host_ed25519_key.pub state.db state.db-wal state.db-shm"
build_pkg simtun-agent simtun-agent simtun-agent.service ""
build_pkg simtun-common simtunctl "" ""
