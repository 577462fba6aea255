#!/bin/bash
# t_systemd: simtun under a real systemd.  A minimal Debian 12 (mmdebstrap
# --variant=minbase, cached under build/nspawn/) gets `make install
# DESTDIR=` (the plain build, default PREFIX: the units are rewritten to
# /usr/local/sbin), boots with systemd-nspawn --boot, and from outside
# (nsenter) the shipped units are started, as shipped, with the shipped
# example configs: both become active only once they said READY=1 (Type=
# notify), run as a dynamic user under their sandbox, the agent's device is
# connected on the relay (simtunctl status) and its sshd answers on the
# relay's port, `systemctl reload` keeps both active in the same process,
# neither restarts over more than one watchdog period (NRestarts=0), and
# `systemctl stop simtun-agent` frees the device's port on the relay at
# once.  Skips only when this machine cannot run systemd-nspawn.
# timeout: 420
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nspawn.sh"

nspawn_require
command -v make >/dev/null || skip "missing command: make"
command -v ssh-keygen >/dev/null || skip "missing command: ssh-keygen"

# The binaries: those under test unless they are a sanitizer build (whose
# runtime the minimal image lacks and whose leak checker ptrace(2) the
# units' seccomp filter refuses): then the plain build.
build=build
if [ -x "$SIMTUN_BIN/simtun-relay" ] &&
    ! grep -qaE '__asan_init|__ubsan_handle' "$SIMTUN_BIN/simtun-relay"; then
	case $SIMTUN_BIN in "$REPO_ROOT"/*) build=${SIMTUN_BIN#"$REPO_ROOT"/};; esac
fi

ct_unpack "$NSPAWN_CACHE/ct-$ST_ID"
unset MAKEFLAGS MFLAGS MAKELEVEL
t0=$(now)
timeout 300 make -C "$REPO_ROOT" --no-print-directory BUILD="$build" install \
    DESTDIR="$CT_ROOT" >"$T/make-install.txt" 2>&1 ||
    { tail -20 "$T/make-install.txt"; fail "make install DESTDIR=$CT_ROOT failed"; }
log "make install BUILD=$build DESTDIR=... in $(elapsed "$t0") s"
[ -x "$CT_ROOT/usr/local/sbin/simtun-relay" ] || fail "make install put no /usr/local/sbin/simtun-relay"
grep -q '^ExecStart=/usr/local/sbin/simtun-agent ' "$CT_ROOT/lib/systemd/system/simtun-agent.service" ||
    fail "installed agent unit does not start /usr/local/sbin/simtun-agent"

ct_boot
ct_simtun_check .example
exit 0
