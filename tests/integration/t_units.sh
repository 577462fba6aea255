#!/bin/bash
# t_units: the systemd units pass `systemd-analyze verify` without a word,
# and `systemd-analyze security --offline=yes` scores the relay 2.0 or
# lower and the agent 3.0 or lower.  Prints both scores.
. "$(dirname "$0")/lib.sh"

UNITS=$REPO_ROOT/systemd
MAX_relay=2.0
MAX_agent=3.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
	# part of the systemd package; install it when we can
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "systemd-analyze missing: installing systemd"
		DEBIAN_FRONTEND=noninteractive timeout 300 bash "$REPO_ROOT/tests/lockwait.sh" \
		    apt-get -o DPkg::Lock::Timeout=120 install -y \
		    --no-install-recommends systemd >"$T/apt.log" 2>&1
	fi
	command -v systemd-analyze >/dev/null 2>&1 ||
	    skip "systemd-analyze not available (apt-get install systemd)"
fi
log "$(systemd-analyze --version | head -1)"

for u in relay agent; do
	[ -f "$UNITS/simtun-$u.service" ] || fail "missing systemd/simtun-$u.service"
	[ -x "$SIMTUN_BIN/simtun-$u" ] ||
	    fail "$SIMTUN_BIN/simtun-$u not built (run make)"
done

# verify wants the ExecStart= binaries and the Documentation= man pages to
# exist: point the commands at the build and MANPATH at docs/, leave the
# rest of each unit as it is.
mkdir -p "$T/units" "$T/man/man5" "$T/man/man8"
cp "$REPO_ROOT"/docs/*.5 "$T/man/man5/" 2>/dev/null
cp "$REPO_ROOT"/docs/*.8 "$T/man/man8/" 2>/dev/null
for u in relay agent; do
	sed "s|/usr/sbin/simtun-|$SIMTUN_BIN/simtun-|g" \
	    "$UNITS/simtun-$u.service" >"$T/units/simtun-$u.service"
	grep -q "^ExecStart=$SIMTUN_BIN/simtun-$u " "$T/units/simtun-$u.service" ||
	    fail "simtun-$u.service: ExecStart is not /usr/sbin/simtun-$u"
done
MANPATH=$T/man timeout 60 systemd-analyze verify \
    "$T/units/simtun-relay.service" "$T/units/simtun-agent.service" \
    >"$T/verify.log" 2>&1
rc=$?
if [ $rc != 0 ] || [ -s "$T/verify.log" ]; then
	cat "$T/verify.log"
	fail "systemd-analyze verify: exit $rc, $(wc -l <"$T/verify.log") line(s)"
fi
log "verify: clean"

bad=0
for u in relay agent; do
	unit=$UNITS/simtun-$u.service
	timeout 60 systemd-analyze security --offline=yes --no-pager "$unit" \
	    >"$T/security-$u.log" 2>&1
	score=$(sed -n 's/.*Overall exposure level for simtun-'$u'\.service: \([0-9][0-9]*\.[0-9]\).*/\1/p' \
	    "$T/security-$u.log")
	[ -n "$score" ] || { cat "$T/security-$u.log"; fail "no exposure score for simtun-$u.service"; }
	max=MAX_$u
	if awk -v s="$score" -v m="${!max}" 'BEGIN { exit !(s <= m) }'; then
		log "simtun-$u.service: exposure $score (target <= ${!max})"
	else
		grep '✗' "$T/security-$u.log"
		log "simtun-$u.service: exposure $score ABOVE target ${!max}"
		bad=1
	fi
done
[ $bad = 0 ] || fail "exposure above target"
exit 0
