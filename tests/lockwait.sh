#!/bin/bash
# tests/lockwait.sh CMD...: run an apt-get or dpkg command; while it fails
# only because another process holds the dpkg lock or apt's lists lock
# (unattended-upgrades, a second make deps), wait and run it again, for up
# to $SIMTUN_LOCK_TIMEOUT seconds (default 120).  Output goes to stdout
# (stderr merged); the exit status is CMD's last.  apt-get install waits by
# itself with -o DPkg::Lock::Timeout=120; apt-get update (lists lock) and
# dpkg have no such option, hence this.
set -u
limit=${SIMTUN_LOCK_TIMEOUT:-120}
log=$(mktemp /tmp/simtun-lockwait.XXXXXX) || exit 1
trap 'rm -f "$log"' EXIT
start=$SECONDS
while :; do
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	[ "$rc" = 0 ] && exit 0
	grep -qE 'locked by another process|Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock' "$log" ||
	    exit "$rc"
	if [ $((SECONDS - start)) -ge "$limit" ]; then
		echo "lockwait: still locked after $limit s: $*" >&2
		exit "$rc"
	fi
	echo "lockwait: the package database is locked; retrying in 3 s ($*)" >&2
	sleep 3
done
