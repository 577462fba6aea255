#!/bin/bash
# t_systemd_deb: t_systemd with the Debian packages instead of make install.
# The packages of this machine's architecture (make deb) are installed with
# dpkg -i in the booted minimal Debian 12 (no apt: Depends must already be
# there, as in the image, or dpkg says what is missing), which must create
# the simtun user and enable and start nothing; then the shipped conffiles,
# filled in as the package descriptions say, run under the shipped units
# with the same checks as t_systemd (notify, sandbox, device connected,
# reload, a watchdog period, stop frees the port); dpkg --purge at the end
# leaves no unit state.  Skips only when this machine cannot run nspawn.
# timeout: 420
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nspawn.sh"

nspawn_require
require_cmds make ssh-keygen dpkg dpkg-deb dpkg-parsechangelog
PKGS="simtun-common simtun-relay simtun-agent"
ARCH=$(dpkg --print-architecture)

unset MAKEFLAGS MFLAGS MAKELEVEL
t0=$(now)
timeout 300 make -C "$REPO_ROOT" --no-print-directory deb DEB_ARCHES="$ARCH" >"$T/make-deb.txt" 2>&1 ||
    fail "make deb failed: $(grep -iE 'error|mkdeb:' "$T/make-deb.txt" | head -3)"
ver=$(dpkg-parsechangelog -l "$REPO_ROOT/conf/debian/changelog" -S Version)
log "make deb in $(elapsed "$t0") s"

ct_unpack "$NSPAWN_CACHE/ct-$ST_ID"
mkdir -p "$CT_ROOT/root/debs"
for p in $PKGS; do
	d=$REPO_ROOT/build-deb/${p}_${ver}_$ARCH.deb
	[ -f "$d" ] || fail "make deb did not produce $d"
	cp "$d" "$CT_ROOT/root/debs/"
done
ct_boot

out=$(cx env DEBIAN_FRONTEND=noninteractive dpkg -i $(for p in $PKGS; do echo "/root/debs/${p}_${ver}_$ARCH.deb"; done) 2>&1) ||
    { echo "$out" | tail -20; fail "dpkg -i in the container failed"; }
for p in $PKGS; do
	s=$(cx dpkg-query -W -f='${Status}' "$p")
	[ "$s" = "install ok installed" ] || fail "$p: dpkg status '$s'"
done
cx getent passwd simtun >/dev/null || fail "postinst did not create the simtun user"
for u in simtun-relay simtun-agent; do
	[ "$(cx systemctl is-enabled "$u.service" 2>/dev/null)" = disabled ] ||
	    fail "$u.service: '$(cx systemctl is-enabled "$u.service" 2>&1)', want disabled"
	cx systemctl is-active -q "$u.service" && fail "$u.service started by the package"
done
log "dpkg -i: installed, simtun user, units known but neither enabled nor started"

ct_simtun_check ""

out=$(cx env DEBIAN_FRONTEND=noninteractive dpkg --purge $PKGS 2>&1) ||
    { echo "$out" | tail -20; fail "dpkg --purge in the container failed"; }
for u in simtun-relay simtun-agent; do
	s=$(cx systemctl show -P LoadState "$u.service")
	[ "$s" = not-found ] || fail "$u.service still $s after purge"
done
# the device key is the administrator's file, not the package's: it stays
left=$(cd "$CT_ROOT/etc/simtun" 2>/dev/null && ls -A | grep -vx id_ed25519)
[ -z "$left" ] || fail "/etc/simtun after purge still has: $left"
for d in /var/lib/simtun /var/lib/private/simtun; do
	[ -e "$CT_ROOT$d" ] || [ -L "$CT_ROOT$d" ] && fail "$d left after purge: $(ls -lA "$CT_ROOT$d" 2>&1)"
done
log "dpkg --purge: units, conffiles and the relay's host key gone (the device key stays)"
exit 0
